/*
 * box (tier: kernels) — half-open boxes of global mesh indices and their periodic images.
 *
 * A struct box3 is the set of cells lo[a] <= i_a < hi[a] on the three axes (x, y, z). Boxes live in
 * global index space of an n[0] x n[1] x n[2] periodic mesh; a box may extend outside [0, n) (a
 * ghosted array, an emulator tile with its halo), in which case global index i stands for the cell
 * i mod n. Boxes of any size are allowed, also wider than the mesh (a halo wider than the box wraps
 * several times).
 *
 * This module is local and never calls MPI, so that code in src/ (tiling, painters) can use it.
 */
#ifndef LEMUR_BOX_H
#define LEMUR_BOX_H

#include <stdbool.h>
#include <stdint.h>

/** Half-open box of global cell indices: lo[a] <= i_a < hi[a]. Empty when hi[a] <= lo[a]. */
struct box3 {
    int64_t lo[3], hi[3];
};

/** One periodic overlap of a box b with a region w (see box3_periodic_overlaps): the part of w
 *  (in w's index frame) that is the image of the cells part - shift of b. */
struct box3_overlap {
    struct box3 part; /**< cells of w covered by this image of b, in w's frame */
    int64_t shift[3]; /**< image shift, a multiple of n per axis: part - shift lies inside b */
};

/** Extent of b along axis a (0 when empty). Local. */
static inline int64_t box3_extent(const struct box3 *b, int a)
{
    return b->hi[a] > b->lo[a] ? b->hi[a] - b->lo[a] : 0;
}

/** Number of cells of b (0 when empty). Local. */
int64_t box3_volume(const struct box3 *b);

/** True when b holds no cell. Local. */
bool box3_empty(const struct box3 *b);

/** True when every cell of inner lies in outer (an empty inner is contained anywhere). Local. */
bool box3_contains(const struct box3 *outer, const struct box3 *inner);

/** True when the boxes are equal (all empty boxes compare equal). Local. */
bool box3_equal(const struct box3 *a, const struct box3 *b);

/** Intersection of a and b (no periodicity) into *out; returns false when it is empty. Local. */
bool box3_intersect(const struct box3 *a, const struct box3 *b, struct box3 *out);

/** b grown by w_lo[a] cells below and w_hi[a] cells above on each axis a. Local. */
struct box3 box3_grow(const struct box3 *b, const int64_t w_lo[3], const int64_t w_hi[3]);

/** b grown by w cells on every side of every axis. Local. */
struct box3 box3_pad(const struct box3 *b, int64_t w);

/** b translated by s. Local. */
struct box3 box3_shift(const struct box3 *b, const int64_t s[3]);

/** i wrapped into [0, n) for any integer i and n > 0. Local. */
static inline int64_t box3_wrap(int64_t i, int64_t n)
{
    if (i >= 0 && i < n)
        return i; /* the usual case, without a division */
    int64_t r = i % n;
    return r < 0 ? r + n : r;
}

/** All periodic images of b (a box inside [0, n)) that meet w (any box): writes at most cap
 *  overlaps to out, ordered by ascending shift (x slowest), and returns how many there are in
 *  total, so a caller can size out with a first call of cap 0. Local. */
int box3_periodic_overlaps(const struct box3 *b, const struct box3 *w, const int64_t n[3], int cap,
                           struct box3_overlap *out);

/** Linear offset of global cell (i, j, k) in a C row-major array that covers box a with allocated
 *  extents dims (dims[2] may exceed the box extent, e.g. FFTW's padded 2(n/2+1)). Local. */
static inline int64_t box3_offset(const struct box3 *a, const int64_t dims[3], int64_t i, int64_t j,
                                  int64_t k)
{
    return ((i - a->lo[0]) * dims[1] + (j - a->lo[1])) * dims[2] + (k - a->lo[2]);
}

#endif
