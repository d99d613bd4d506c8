/*
 * net (tier: kernels) — a generic network DESCRIBED by its model file rather than built by code:
 * named inputs on their grids and nodes in topological order (unpadded conv3d of any kernel with
 * bias, leaky_relu, relu, gelu, add, concat, central crop, x2 upsampling), from which the NN
 * engine's graph for any output tile is built (nn.h). The super-resolution generator of Kodi
 * Ramanah et al. 2020 (MNRAS 495 4227) is one such description
 * (config/networks/superres-ramanah2020.yml).
 *
 * Description (YAML, stored as text in the model file, src/mpi/net_file.h):
 *   name: superres-ramanah2020
 *   inputs:                       # in the order the engine takes them
 *     - {name: hr_ic, channels: 1, scale: 1}     # scale: grid spacing in output cells
 *     - {name: lr_density, channels: 1, scale: 2}
 *   nodes:                        # each reads earlier inputs or nodes by name
 *     - {name: up, op: upsample, inputs: [lr_density], mode: trilinear}
 *     - {name: c1, op: conv3d, inputs: [x], kernel: 7, channels: 6}
 *     - {name: a1, op: leaky_relu, inputs: [c1], slope: 0.1}
 *     - {name: k1, op: crop, inputs: [b1], like: a1}   # or cells: 2 (per side)
 *     - {name: j1, op: concat, inputs: [a1, k1, ...]}  # channels in this order
 *   output: out
 * Ops and shapes (n cells per axis): conv3d kernel k: n - k + 1, channels as given, weights
 * [channels][cin][k][k][k] and bias [channels]; leaky_relu (slope, default 0.01), relu, gelu (erf
 * form): unchanged; add (2 or more equal shapes); concat (2 or more, equal spatial shapes); crop:
 * n - 2 cells, or the shape of node `like`; upsample nearest: 2n, trilinear: 2n - 2 (valid cells of
 * PyTorch's align_corners=False interpolation).
 *
 * The halo is DERIVED: walking the graph back from the output, every node gets the region it
 * must cover beyond the output tile (half cells of the output grid: a kernel k adds (k - 1)/2 of
 * the node's cells, a crop its cells, a trilinear upsampling one output-grid cell) and its grid
 * spacing; an input's halo is that margin in its own cells, rounded up (a crop `like` another
 * node absorbs the rounding). A tile of output M1 x M2 x M3 (multiples of every input's scale)
 * takes input k as M / scale_k + 2 halo_k cells per axis, starting halo_k cells before the
 * tile's anchor / scale_k. Shapes are checked when the description is parsed (on a probe tile) and
 * again for every tile; messages name the node.
 */
#ifndef LEMUR_NET_H
#define LEMUR_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "nn.h"

/** Most inputs one node reads (add, concat). */
#define NET_MAX_NODE_IN 8

/** The ops of a description (NET_INPUT for the inputs, which come first). */
enum net_op {
    NET_INPUT,
    NET_CONV3D,
    NET_LEAKY_RELU,
    NET_RELU,
    NET_GELU,
    NET_ADD,
    NET_CONCAT,
    NET_CROP,
    NET_UPSAMPLE,
    NET_N_OPS
};

/** One input or node. */
struct net_node {
    char name[NN_NAME_LEN];
    enum net_op op;
    int n_in;
    int in[NET_MAX_NODE_IN]; /**< indices of earlier nodes */
    int channels;            /**< output channels (given for inputs and conv3d, else derived) */
    int cin;                 /**< conv3d: input channels (derived) */
    int kernel;              /**< conv3d */
    float slope;             /**< leaky_relu */
    int crop;                /**< crop: cells per side, or -1 with like */
    int like;                /**< crop: the node whose shape to take, or -1 */
    enum nn_upsample mode;   /**< upsample */
    int scale;               /**< grid spacing in output cells (given for inputs, else derived) */
    int margin2;             /**< derived: cells beyond the output tile per side, x2, output grid */
    float *weight;           /**< conv3d: [channels][cin][k][k][k] (owned; NULL until set) */
    float *bias;             /**< conv3d: [channels] */
};

/** A parsed description (and, once set, its weights). */
struct net {
    char name[NN_NAME_LEN];
    int n_nodes;
    struct net_node *nodes; /**< inputs first, then nodes in the description's order */
    int n_inputs;
    int output;
    int halo[NN_MAX_INPUTS]; /**< derived halo of each input, in its own cells */
    int n_convs;
    char *text; /**< the description as parsed (owned) */
};

/** Parse and check description yaml (source names it in messages): names unique, references to
 *  earlier nodes, op keys, channels, grids, the halo and a probe tile's shapes. Returns the net
 *  (weights unset) or NULL with err naming the node or key. Local. Free with net_destroy. */
struct net *net_parse(const char *yaml, const char *source, struct lm_err *err);
/** Free (NULL-safe) and set *n = NULL. Local. */
void net_destroy(struct net **n);
/** Index of the node called name, or -1. Local. */
int net_find(const struct net *n, const char *name);
/** "conv3d", "leaky_relu", ... Local. */
const char *net_op_name(enum net_op op);
/** Floats of conv3d node i's weight (channels cin k^3); 0 for other ops. Local. */
size_t net_weight_count(const struct net *n, int i);
/** Allocate (zeroed) the weight and bias of every conv3d node. Local. */
void net_alloc_weights(struct net *n);
/** Fill every weight and bias with deterministic pseudo-random values (uniform in
 *  +-1/sqrt(cin k^3), PyTorch's default scale). Local. */
void net_fill_random(struct net *n, unsigned long seed);
/** Largest scale of the inputs (tile sizes and anchors must be multiples of it). Local. */
int net_max_scale(const struct net *n);
/** Cells per axis of input k (0-based) for an output tile out. Local. */
void net_input_extent(const struct net *n, int k, const int out[3], int in[3]);

/** Build the NN graph of one output tile out[3] (multiples of net_max_scale): the inputs as the
 *  graph's inputs in order, one convolution slot per conv3d node in order. Returns the graph, or
 *  NULL with err naming the node whose shapes do not fit. Local. Free with nn_graph_destroy. */
struct nn_graph *net_graph(const struct net *n, const int out[3], struct lm_err *err);
/** Weights of every slot of a graph from net_graph (weights must be set). Local. Free with
 *  nn_weights_destroy. */
struct nn_weights *net_weights(const struct net *n, const struct nn_graph *g);

#endif
