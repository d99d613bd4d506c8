/*
 * tiling — how one rank covers its block of the Lagrangian grid with emulator tiles.
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
 * Everything here is Local, allocates nothing and never calls MPI.
 */
#ifndef LEMUR_TILING_H
#define LEMUR_TILING_H

#include <stdbool.h>

#include "box.h"

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

#endif
