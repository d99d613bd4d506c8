/*
 * model (tier: kernels) — the emulator's weights and architecture in memory (struct model): the
 * styled V-Net of Jamieson et al. 2024 as a list of blocks (residual, down, up; skip
 * concatenations) made of styled convolutions ("layers") with their raw parameters.
 * src/mpi/model_file.h reads and writes it as lemur's HDF5 model file; emunet.h turns it into NN
 * graphs and premodulated weights.
 *
 * Block semantics (executed in order, t the running activation, x the network input):
 *   RESIDUAL  layers {convs.0, convs.2, skip}: h = LReLU(conv(t, convs.0)); r = conv(h, convs.2);
 *             t = act(r + crop(conv(t, skip), c)), c = ((k0 - 1) + (k2 - 1)) / 2 cells
 *   DOWN, UP  layer {convs.0}: t = act(conv(t, convs.0)) (a stride-2 conv / transposed conv)
 *   keep         the block's output is kept for a later concatenation
 *   concat_from  after the block, t = concat([crop(kept output of that block, concat_crop), t])
 *   bypass       after the last block, y = t + crop(x, halo)
 * Layers are numbered in block order (a residual block's convs.0, convs.2, skip); layer i is
 * convolution slot i of every graph built from the model.
 *
 * This module needs neither HDF5 nor MPI.
 */
#ifndef LEMUR_MODEL_H
#define LEMUR_MODEL_H

#include <stdbool.h>

#include "error.h"
#include "nn.h"

/** Version of the model-file layout this lemur reads and writes. */
#define MODEL_FORMAT_VERSION 1

/** The kinds of blocks. */
enum model_block_kind { MODEL_BLOCK_RESIDUAL, MODEL_BLOCK_DOWN, MODEL_BLOCK_UP };

/** One styled convolution with its raw parameters (owned by the model). */
struct model_layer {
    struct nn_conv_desc desc; /**< name "<block>.<layer>", cin, cout, kernel, stride, transposed */
    enum nn_act act;          /**< activation right after this convolution inside its block
                               *   (RESIDUAL: convs.0 LReLU, the others none; DOWN/UP the
                               *   block's activation) */
    float *style_weight;      /**< [cin][n_style] */
    float *style_bias;        /**< [cin] */
    float *weight;            /**< conv [cout][cin][k][k][k]; tconv [cin][cout][k][k][k] */
    float *bias;              /**< [cout] */
};

/** One block of the network. */
struct model_block {
    char name[NN_NAME_LEN];
    enum model_block_kind kind;
    int cin, cout;
    enum nn_act act; /**< the block's final activation */
    bool keep;       /**< output kept for a later concatenation */
    int concat_from; /**< -1, or the block whose kept output is concatenated after this one */
    int concat_crop; /**< cells cropped from that output on every side */
    int n_layers;    /**< 3 (RESIDUAL) or 1 */
    int layer[3];    /**< indices into model.layers, in the order of the kind's layer names */
};

/** A whole model. */
struct model {
    int format_version;
    int in_channels, out_channels;
    int width;   /**< channel width of the V-Net (64 for the published model) */
    int n_style; /**< style vector length (2) */
    int halo;    /**< input cells beyond the output on every side (48) */
    bool bypass; /**< y = net(x) + crop(x, halo) */
    int n_blocks;
    struct model_block *blocks;
    int n_layers;
    struct model_layer *layers;
    char source[256]; /**< where the weights came from (free text) */
};

/** Layer names of a block kind: RESIDUAL {"convs.0", "convs.2", "skip"}, DOWN/UP {"convs.0"}.
 *  Returns the count and points *names at a static table. Local. */
int model_block_layer_names(enum model_block_kind kind, const char *const **names);
/** "residual", "down", "up". Local. */
const char *model_block_kind_name(enum model_block_kind kind);

/** Build the styled V-Net of Jamieson et al. 2024 (3 levels) with channel width `width` (64 for the
 *  published model; smaller for fast tests), in/out channels and style size, every parameter
 *  zero. Local. Free with model_destroy. */
struct model *model_create_styled_vnet(int width, int in_channels, int out_channels, int n_style);

/** Fill every parameter with deterministic pseudo-random values of the scales PyTorch's
 *  initialisation gives (style_bias near 1). Local. */
void model_fill_random(struct model *m, unsigned long seed);

/** Check the model's internal consistency (block channels against their layers, layer kinds,
 *  concatenation sources kept and earlier, halo against the receptive field); names the first
 *  offending block or layer in err. Local. */
bool model_check(const struct model *m, struct lm_err *err);

/** Index of the layer called name ("<block>.<layer>"), or -1. Local. */
int model_find_layer(const struct model *m, const char *name);

/** Number of parameters (all four tensors of every layer). Local. */
long model_n_params(const struct model *m);

/** Free (NULL-safe) and set *m = NULL. Local. */
void model_destroy(struct model **m);

/** Allocate a model with n_blocks blocks and n_layers layers, all zero (tensors unallocated);
 *  for readers. Local. */
struct model *model_alloc(int n_blocks, int n_layers);
/** Allocate (zeroed) the four tensors of layer l after its desc and m->n_style. Local. */
void model_layer_alloc(const struct model *m, struct model_layer *l);

#endif
