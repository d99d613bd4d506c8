/*
 * model_file (tier: mpi) — lemur's HDF5 model file: the architecture and weights (struct model) of
 * the field-level emulator (Jamieson et al. 2024), written by tools/convert-weights (from the
 * authors' PyTorch checkpoint or JAX .npz) or by model_file_write. A run loads it with
 * model_file_load: rank 0 reads the file (serial HDF5) and broadcasts the architecture and the
 * weights, so that a run on thousands of ranks opens the file once. Layout, format version 1
 * (MODEL_FORMAT_VERSION):
 *
 *   /                        attributes
 *       format              "lemur-emulator-model"
 *       format_version      1
 *       architecture        "styled_vnet"
 *       in_channels, out_channels, width, style_size, halo    (int; 3, 3, 64, 2, 48)
 *       bypass              1: y = net(x) + crop(x, halo)
 *       leaky_slope         0.01 (double; every LeakyReLU)
 *       demod_eps           1e-8 (double; demodulation epsilon)
 *       style               "s = [(Omega_m - 0.3) * 5, D(z) - 1]" (documentation)
 *       source              free text: what the weights were converted from
 *   /blocks/<block>          one group per block, attributes
 *       index               execution order 0, 1, ...
 *       kind                "residual" | "down" | "up"
 *       cin, cout           channels in and out
 *       activation          "leaky_relu" | "none" (the block's final activation)
 *       keep                1: output kept for a later concatenation
 *       concat_from         "" or the kept block whose output is concatenated after this block
 *                           (its channels first), cropped by
 *       concat_crop         cells on every side
 *       layers              the layer names, comma separated ("convs.0,convs.2,skip" | "convs.0")
 *   /layers/<block>.<layer>  one group per styled convolution, attributes
 *       kind                "conv" | "tconv"
 *       kernel, stride, cin, cout
 *       activation          "leaky_relu" | "none" (right after this convolution in its block)
 *     and float32 datasets
 *       style_weight        [cin, style_size]     u = style_weight s + style_bias
 *       style_bias          [cin]
 *       weight              conv [cout, cin, k, k, k]; tconv [cin, cout, k, k, k] (PyTorch's)
 *       bias                [cout]
 *
 * Reading checks the format and version, every attribute, every dataset's presence and shape
 * (naming the offending tensor and both shapes), refuses NaN or infinite weights (naming the
 * tensor and the index of the first), refuses layer groups no block uses, and runs model_check.
 */
#ifndef LEMUR_MODEL_FILE_H
#define LEMUR_MODEL_FILE_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "model.h"

/** Read the model file at path on every rank of comm: rank 0 reads it and broadcasts it.
 *  @return this rank's copy (free with model_destroy), or NULL on every rank with err set
 *  identically (the reader's message: file, group, attribute or tensor, expected and found
 *  shapes). Collective on comm. */
struct model *model_file_load(const char *path, MPI_Comm comm, struct lm_err *err);

/** Read the model file at path in this process alone (model_file_load on one rank). Returns the
 *  model, or NULL with err naming the file and the offending group / attribute / tensor. Local.
 *  Free with model_destroy. */
struct model *model_file_read(const char *path, struct lm_err *err);

/** Write m to path (through a temporary name renamed when complete). Returns false with err on
 *  failure. Local. */
bool model_file_write(const struct model *m, const char *path, struct lm_err *err);

#endif
