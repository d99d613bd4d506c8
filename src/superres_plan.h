/*
 * superres_plan (tier: plans) — a generic network (net.h) run over a periodic box spread over the
 * ranks of a communicator: the super-resolution generator of Kodi Ramanah et al. 2020 (MNRAS 495
 * 4227), which maps the low-resolution (LR) evolved density plus the high-resolution (HR) linear
 * density to the HR evolved density, or any other described network.
 *
 * The output grid (n[0] x n[1] x n[2], the HR grid) is cut into blocks whose splits lie on the
 * 8-cell lattice (as the emulator's, src/emulate_plan.h); input k of the network, on a grid of
 * spacing scale_k output cells (n / scale_k cells per axis), is decomposed by the same splits
 * divided by scale_k. Each rank covers its block with tiles (src/tiling.h) anchored on the global
 * 8-lattice; tile t reads, from input k, the cells anchor / scale_k - halo_k ... of its output
 * extent / scale_k + 2 halo_k (halo_k derived from the graph), wrapped periodically. Each input's
 * region (the union of its tiles' inputs) is gathered once by a box-overlap exchange
 * (src/mpi/exchange.h). Every output cell is computed by the same network on the same input
 * neighbourhood whatever the ranks and the tile size: results agree bitwise on the CPU backend.
 *
 * Lifetime: superres_plan_create → fill superres_plan_input(k) over superres_plan_block_of(k) →
 * superres_plan_gather → superres_plan_run → superres_plan_results → superres_plan_destroy(&p).
 */
#ifndef LEMUR_SUPERRES_PLAN_H
#define LEMUR_SUPERRES_PLAN_H

#include <mpi.h>
#include <stdint.h>

#include "box.h"
#include "error.h"
#include "net.h"
#include "nn.h"
#include "tiling.h"

struct superres_plan;

/** Create a plan for output grid n over comm running network `net` (weights set; the same on
 *  every rank, outliving the plan) on backend be with output tiles of side tile (a multiple of 8;
 *  0: the block's largest extent up to 64). n must be a multiple of every input's scale and
 *  every scale must divide 8. Returns NULL on every rank with err set identically on failure.
 *  Collective on comm. Free with superres_plan_destroy. */
struct superres_plan *superres_plan_create(MPI_Comm comm, const int n[3], const struct net *net,
                                           int tile, const struct nn_backend *be,
                                           struct lm_err *err);
/** Free (NULL-safe), set *p = NULL. Collective. */
void superres_plan_destroy(struct superres_plan **p);
/** This rank's block of input k's grid (k = 0 .. n_inputs - 1; the output grid's block for an
 *  input of scale 1). Local. */
struct box3 superres_plan_block_of(const struct superres_plan *p, int k);
/** Input k's array over its block: channels compact planes [c][i][j][k]; the caller fills it.
 *  Owned by the plan. Local. */
float *superres_plan_input(struct superres_plan *p, int k);
/** Gather every input's periodic region (collective exchanges). Collective. */
void superres_plan_gather(struct superres_plan *p);
/** Run every tile of this rank (no communication, no allocation). Local. */
void superres_plan_run(struct superres_plan *p);
/** The output over *box (the tiles' union, containing the block) with extents dims: channels
 *  planes [c][i][j][k]. Owned by the plan. Local. */
const float *superres_plan_results(const struct superres_plan *p, struct box3 *box,
                                   int64_t dims[3]);
/** The output block of this rank (the cells it owns). Local. */
struct box3 superres_plan_block(const struct superres_plan *p);
struct decomp;
/** The decomposition of input k's grid (input k's arrays live on its blocks). Owned by the plan.
 *  Local. */
const struct decomp *superres_plan_input_decomp(const struct superres_plan *p, int k);
/** The decomposition of the output grid. Owned by the plan. Local. */
const struct decomp *superres_plan_output_decomp(const struct superres_plan *p);
/** The tile side in use. Local. */
int superres_plan_tile(const struct superres_plan *p);

#endif
