/*
 * tiling (tier: kernels) — how one rank covers its block of the Lagrangian grid with emulator
 * tiles.
 *
 * The emulator maps an input tile of (M + 2 halo) cells per axis to an output tile of M cells per
 * axis (every convolution is "valid"; halo = 48 for the V-Net of Jamieson et al. 2024). Its three
 * stride-2 levels make it translation-equivariant only for shifts that are multiples of 8: an
 * output cell depends on where the tile's 8-cell lattice lies. Every tile anchor therefore sits on
 * the GLOBAL lattice 8Z (in the unwrapped index frame [0, n)), so that each cell is computed with
 * the same alignment — and the same arithmetic on the same neighbourhood — whatever the block
 * decomposition and the tile size. For a rank owning the block [lo, hi):
 *
 *   - the cover is [floor8(lo), ceil8(hi)) per axis (the block itself when its bounds are
 *     multiples of 8, as the emulator's decomposition makes them; a bound that is not gives up to
 *     7 extra cells, computed but never used);
 *   - the output tile side along axis a is s[a] = min(tile, cover extent): a multiple of 8, never
 *     more than the requested tile;
 *   - the anchors are cover.lo, cover.lo + s, ... and the last one is shifted back to
 *     cover.hi − s (still on the lattice), so the last two tiles overlap instead of leaving the
 *     cover.
 * Every tile of a block has the same shape, so one NN plan serves them all.
 *
 * The union of the tile outputs is tiling.out (the cover; it contains the block) and the union of
 * their inputs is tiling.in = out grown by halo on every side: the region a rank gathers once from
 * the distributed field before running its tiles, cutting each tile's input out of it locally.
 *
 * The tile side itself is chosen by tiling_choose, the one tile chooser of lemur: the largest side
 * (a multiple of 8) whose NN plan fits the memory budget of the space the backend keeps it in
 * (host or device), together with whatever else the caller keeps there. It knows backends only
 * through the memory queries of their table (nn_plan_size, nn_backend_mem_available, nn.h).
 *
 * Everything here is Local and never calls MPI; only tiling_choose allocates (graphs, while it
 * sizes them).
 */
#ifndef LEMUR_TILING_H
#define LEMUR_TILING_H

#include <stdbool.h>

#include "box.h"
#include "error.h"
#include "nn.h"

/** Tiles are multiples of this many cells per axis (three stride-2 levels). */
#define TILING_QUANTUM 8

/** The tiles covering one block. Read-only after tiling_init. */
struct tiling {
    struct box3 block; /**< the cells owned (global indices, may be empty) */
    int halo;          /**< input cells needed beyond the output on every side */
    int shape[3];      /**< output tile shape (multiples of TILING_QUANTUM; 0 when no tiles) */
    int n_axis[3];     /**< tiles along each axis */
    int n_tiles;       /**< n_axis[0] n_axis[1] n_axis[2] (0 for an empty block) */
    struct box3 out;   /**< union of the tile outputs: the cover (contains block) */
    struct box3 in;    /**< union of the tile inputs: out grown by halo */
};

/** True when tile is a usable requested tile side: a positive multiple of TILING_QUANTUM. Local. */
bool tiling_valid_side(long tile);

/** The cover of block: [floor8(lo), ceil8(hi)) per axis (empty for an empty block). Local. */
struct box3 tiling_cover(const struct box3 *block);

/** Plan the tiles of block with requested side tile (tiling_valid_side) and halo width halo.
 *  @param t      out: the tiling (no memory is held; nothing to free)
 *  @param block  in: the owned cells (may be empty: then n_tiles = 0 and out, in are empty)
 *  Local. */
void tiling_init(struct tiling *t, const struct box3 *block, int tile, int halo);

/** Output box of tile i (0 <= i < n_tiles; x slowest, z fastest); its lower corner lies on the
 *  lattice 8Z. Local. */
struct box3 tiling_tile(const struct tiling *t, int i);

/** Input box of tile i: its output box grown by t->halo. Local. */
struct box3 tiling_tile_input(const struct tiling *t, int i);

/** What tiling_choose is asked. */
struct tiling_request {
    const struct nn_backend *backend; /**< where the plan would run */
    bool tangents;                    /**< plans with tangents (velocities) */
    int min_side, max_side;           /**< sides considered: the multiples of TILING_QUANTUM in
                                       *   [min_side, max_side] */
    size_t budget[NN_MEM_N_SPACES];   /**< bytes available in each memory space; 0: no stated
                                       *   limit, and then the backend's own space is bounded by
                                       *   nn_backend_mem_available (none where it cannot tell) */
    /** The graph of the tiles of side `side` (a new graph the chooser destroys), and in other[]
     *  the bytes the caller needs at that side besides the plan, per memory space (zeroed before
     *  the call). NULL with err untouched: no plan is needed at that side (nothing to run); NULL
     *  with err set: no graph exists for that side (it is skipped). */
    struct nn_graph *(*build)(int side, void *ctx, size_t other[NN_MEM_N_SPACES],
                              struct lm_err *err);
    void *ctx; /**< passed to build */
};

/** The answer of tiling_choose: the chosen side, or where nothing fits the smallest side sized. */
struct tiling_choice {
    int side;                       /**< the side (0 when no side could be sized) */
    bool fits;                      /**< its memory fits every budget */
    struct nn_plan_mem plan;        /**< its plan's memory (zero bytes when no plan is needed) */
    size_t need[NN_MEM_N_SPACES];   /**< bytes it needs per space: the caller's and the plan's */
    size_t budget[NN_MEM_N_SPACES]; /**< the budgets applied (0: unlimited) */
};

/** The largest side (a multiple of TILING_QUANTUM in [min_side, max_side]) whose needs fit every
 *  budget: for each memory space, the caller's other bytes plus, in the backend's space, the
 *  plan's workspace and plan memory (nn_plan_size, nothing allocated). Needs are taken to grow
 *  with the side (the activations scale with the tile's volume): the largest side is sized first,
 *  then the smallest, then the range is bisected, so a few sizings answer for any range.
 *  @param rq   in: the request
 *  @param out  out: the choice; when nothing fits, the figures of the smallest side
 *  @return true when a side fits; false with err saying why (no side fits — naming the smallest
 *          side, its needs and the budgets — or no side could be sized, or no multiple of
 *          TILING_QUANTUM lies in the range, or the backend's memory query failed).
 *  Local. */
bool tiling_choose(const struct tiling_request *rq, struct tiling_choice *out, struct lm_err *err);

/** "host" or "device". Local. */
const char *tiling_space_name(enum nn_mem_space s);

#endif
