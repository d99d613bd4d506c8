/*
 * emulate (tier: plans) — the distributed emulator driver: the field-level V-Net run over a
 * periodic box spread over the ranks of a communicator (Jamieson et al. 2024: tiles with 48-cell
 * halos).
 *
 * A plan owns a 3-D block decomposition of the n[0] x n[1] x n[2] Lagrangian grid whose splits lie
 * on the 8-cell lattice (the V-Net is translation-equivariant only for shifts that are multiples of
 * 8, so tiles are anchored on that global lattice: see src/tiling.h). Each rank
 *   1. receives the linear displacement Ψ_lin (z = 0, Mpc/h) of its block (emulate_plan_input:
 *      three compact component planes, [c][i][j][k], filled by the caller: a field reader, a test);
 *   2. gathers once the periodic region its tiles read, tiling.in = the union of the tile outputs
 *      grown by the network's halo (48 cells), with one box-overlap exchange (src/mpi/exchange.h):
 *      every cell travels once per rank that needs it, wrapping periodically (also when the region
 *      is wider than the box);
 *   3. per style (Ωm, D(z)) premodulates the weights once and runs its tiles (src/tiling.h) with
 *      one NN plan and one caller-owned workspace, reading each tile's input as a strided view of
 *      the gathered region and writing its output straight into the result arrays:
 *          x = Ψ_lin D / 6,   Ψ_NL = 6 y,   v = 6 D f H(z) / (1 + z) dy/dD   [km/s]
 *      (dx/dD = x / D; the engine carries the exact forward-mode derivative).
 * The results cover tiling.out (the block, plus up to 7 cells beyond its end where n is not a
 * multiple of 8); only the block is meaningful. Every voxel is computed by the same network on the
 * same input neighbourhood with the same lattice alignment whatever the number of ranks or the
 * tile size, so the results agree to float rounding (bitwise with the CPU backend).
 *
 * The network is the styled V-Net of a struct model (src/model.h) run tile by tile through the
 * single-tile emulator of src/emunet.h (its NN plan with a caller-owned workspace).
 *
 * Lifetime: emulate_plan_create (decomposition, tile choice checked against memory, NN plan,
 * exchange plan, every buffer) → fill emulate_plan_input → emulate_plan_gather → any number of
 * emulate_plan_run (one per redshift; no allocation) → emulate_plan_destroy(&plan).
 */
#ifndef LEMUR_EMULATE_H
#define LEMUR_EMULATE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "box.h"
#include "emunet.h"
#include "error.h"
#include "model.h"
#include "nn.h"
#include "tiling.h"

/** The emulator's training grid spacing [Mpc/h]. */
#define EMULATE_SPACING (1000.0 / 512.0)
/** Largest tile side the automatic choice considers. */
#define EMULATE_MAX_AUTO_TILE 256

/** Options of a plan. */
struct emulate_opts {
    int tile;                         /**< output tile side, a multiple of 8; 0: automatic */
    bool velocities;                  /**< carry the D-derivative and return velocities */
    const struct nn_backend *backend; /**< where the network runs */
    size_t mem_limit;                 /**< bytes this rank may use for the driver's buffers, the
                                       *   NN plan and its workspace (host backends); 0: no limit */
    size_t device_limit;              /**< device bytes for the plan and workspace (backends
                                       *   that run on a device); 0: the device's free memory */
    bool progress;                    /**< print tiles done, rate and ETA (rank 0) */
};

/** What one run is for: the style and the velocity factor of one redshift. */
struct emulate_style {
    double omega_m;    /**< Ωm (style s0 = (Ωm − 0.3) 5) */
    double D;          /**< linear growth D(z), D(0) = 1 (style s1 = D − 1) */
    double vel_factor; /**< emunet_velocity_factor: v = vel_factor dΨ_NL/dD [km/s] */
    double redshift;   /**< for messages */
};

struct emulate_plan;

/** Memory a plan would use on this rank for a given tile side (the engine's workspace query plus
 *  the driver's buffers), for the tile choice and for the messages of a refusal. */
struct emulate_memory {
    size_t workspace; /**< caller-owned NN workspace */
    size_t plan;      /**< held by the NN plan (weights) */
    size_t buffers;   /**< input block, gathered region, results */
    size_t host;      /**< total in host memory */
    size_t device;    /**< total in device memory (CUDA backends) */
};

/** Create a plan for an n[0] x n[1] x n[2] periodic grid over the ranks of comm running model m
 *  (which must outlive the plan; the same model on every rank): 8-aligned block decomposition,
 *  tile choice (opts->tile, or the largest side up to EMULATE_MAX_AUTO_TILE whose memory fits
 *  opts->mem_limit / device_limit: tiling_choose), tile plan, workspace, gather exchange, buffers.
 *  @return the plan, or NULL on every rank with err set identically (a tile that is not a
 *  multiple of 8, a tile whose memory does not fit — naming the bytes needed and available — a
 *  model the emulator cannot run, a plan the engine refuses). Collective on comm. Free with
 *  emulate_plan_destroy. */
struct emulate_plan *emulate_plan_create(MPI_Comm comm, const int n[3], const struct model *m,
                                         const struct emulate_opts *opts, struct lm_err *err);

/** Free the plan (NULL-safe) and set *plan = NULL. Collective on the plan's communicator. */
void emulate_plan_destroy(struct emulate_plan **plan);

/** This rank's block of the grid (global cells, may be empty). Local. */
struct box3 emulate_plan_block(const struct emulate_plan *plan);

struct decomp;
/** The plan's block decomposition (8-aligned blocks on a process grid), e.g. to redistribute an
 *  input field into it. Owned by the plan. Local. */
const struct decomp *emulate_plan_decomp(const struct emulate_plan *plan);

/** The input array of this rank's block: three compact planes [c][i][j][k] over
 *  emulate_plan_block, to be filled with Ψ_lin (z = 0, Mpc/h) before emulate_plan_gather. Owned
 *  by the plan. Local. */
float *emulate_plan_input(struct emulate_plan *plan);

/** Gather the periodic region every tile of this rank reads (collective exchange). Call once after
 *  filling the input (again only if the input changes). Collective. */
void emulate_plan_gather(struct emulate_plan *plan);

/** Run every tile of this rank for one style: premodulate, execute, scale the velocities. The
 *  results are then in emulate_plan_results. No allocation. Local (no communication), but the
 *  progress messages assume every rank runs it. */
void emulate_plan_run(struct emulate_plan *plan, const struct emulate_style *style);

/** The results of the last run: arrays over *box (the union of the tile outputs, containing the
 *  block) with extents dims (three planes [c][i][j][k] of dims[0] dims[1] dims[2] each): psi the
 *  nonlinear displacement Ψ_NL [Mpc/h], vel the velocity [km/s] (NULL without velocities). Owned
 *  by the plan, valid until the next run. Local. */
struct emulate_results {
    const float *psi, *vel;
    struct box3 box;
    int64_t dims[3];
    int64_t plane; /**< dims[0] dims[1] dims[2] */
};
struct emulate_results emulate_plan_results(const struct emulate_plan *plan);

/** The tiling of this rank, the memory figures and the tile side in use. Local. */
const struct tiling *emulate_plan_tiling(const struct emulate_plan *plan);
struct emulate_memory emulate_plan_memory(const struct emulate_plan *plan);
int emulate_plan_tile(const struct emulate_plan *plan);

/** Seconds per tile of the last run on this rank (0 before any run). Local. */
double emulate_plan_tile_seconds(const struct emulate_plan *plan);

#endif
