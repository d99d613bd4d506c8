/*
 * decomp (tier: mpi) — decompositions of an n[0] x n[1] x n[2] periodic mesh over the ranks of a
 * communicator.
 *
 * Every decomposition is a process grid dims[0] x dims[1] x dims[2] (rank = (c0*dims[1] +
 * c1)*dims[2]
 * + c2, row-major like MPI_Cart) with one split table per axis: grid coordinate c owns the global
 * indices split[a][c] <= i < split[a][c+1]. Two kinds are built from it:
 *
 *   DECOMP_SLABS   x-slabs, dims = {P, 1, 1}, matching FFTW-MPI's local_n0 / local_0_start. When P
 *                  exceeds n[0] some ranks hold zero planes; they still take part in every
 * collective and every exchange (with nothing to send). DECOMP_BLOCKS  3-D blocks on a process grid
 * (MPI_Dims_create, or a given grid); splits may be uneven (the first n % dims ranks of an axis get
 * one more cell).
 *
 * Ownership queries are O(1): per-axis lookup tables owner[a][i] give the grid coordinate owning
 * global index i, so the owner rank of a cell or of a position is three loads and a multiply-add.
 * The whole decomposition (every rank's box) is known on every rank after creation.
 *
 * Cells and positions: cell i covers [i h, (i+1) h) with h = box_size / n; the cell of a position
 * is decomp_cell_index (double arithmetic, wrapped periodically). CIC node i sits at x = i h, so a
 * particle's lower CIC node is its cell: every module (migration, ghosts, painters) uses
 * decomp_cell_index so that they agree on boundaries bit for bit.
 *
 * A decomposition duplicates the communicator it is given (d->comm); plans built on it duplicate
 * d->comm in turn. decomp_destroy frees the tables and the duplicate. A struct decomp owns its
 * tables: pass it by pointer, never copy it by value.
 */
#ifndef LEMUR_DECOMP_H
#define LEMUR_DECOMP_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "box.h"

enum decomp_kind {
    DECOMP_SLABS,  /**< x-slabs (FFTW-MPI layout), dims = {P, 1, 1} */
    DECOMP_BLOCKS, /**< 3-D blocks on a process grid */
};

/** A decomposition of a periodic mesh. Every field is read-only after creation. */
struct decomp {
    enum decomp_kind kind;
    MPI_Comm comm;     /**< duplicate of the communicator given at creation (owned) */
    int rank, n_ranks; /**< this rank and the size of comm */
    int n[3];          /**< global mesh cells per axis */
    int dims[3];       /**< process grid; dims[0]*dims[1]*dims[2] == n_ranks */
    int coords[3];     /**< this rank's grid coordinates */
    int64_t *split[3]; /**< dims[a]+1 entries, split[a][0] = 0, split[a][dims[a]] = n[a] */
    int *owner[3];     /**< n[a] entries: grid coordinate owning global index i on axis a */
    struct box3 box;   /**< cells owned by this rank (inside [0, n)); may be empty */
};

/** Slab decomposition from this rank's FFTW-MPI numbers (fftw_mpi_local_size_3d's local_n0 and
 *  local_0_start; for r2c transforms pass the real mesh n). The per-rank splits are allgathered
 *  and must tile [0, n[0]) in rank order (ranks with local_n0 == 0 may report any start).
 *  Collective on comm; CHECKs the splits (message names the offending rank). */
void decomp_create_slabs(struct decomp *d, MPI_Comm comm, const int n[3], ptrdiff_t local_n0,
                         ptrdiff_t local_0_start);

/** Slab decomposition with FFTW-MPI's default split (block = ceil(n[0]/P); trailing ranks may hold
 *  fewer or zero planes), identical to fftw_mpi_local_size_3d without FFTW_MPI_TRANSPOSED flags.
 *  Collective on comm. */
void decomp_create_slabs_default(struct decomp *d, MPI_Comm comm, const int n[3]);

/** Block decomposition on a process grid. dims == NULL or all zeros: MPI_Dims_create chooses it
 *  (zeros in a partial dims are filled in, nonzeros are kept); the product must equal the size of
 *  comm. Each axis is split as evenly as possible (the first n % dims coordinates get one more
 *  cell); an axis with dims[a] > n[a] leaves some coordinates empty. Collective on comm. */
void decomp_create_blocks(struct decomp *d, MPI_Comm comm, const int n[3], const int dims[3]);

/** Block decomposition with explicit split tables: splits[a] has dims[a]+1 nondecreasing entries
 *  from 0 to n[a]. Identical arguments on every rank. Collective on comm. */
void decomp_create_splits(struct decomp *d, MPI_Comm comm, const int n[3], const int dims[3],
                          const int64_t *const splits[3]);

/** Free the tables and the duplicated communicator, zero *d. NULL and zeroed structs are ignored.
 *  Collective on d->comm (it frees a communicator). */
void decomp_destroy(struct decomp *d);

/** Rank at grid coordinates c (each 0 <= c[a] < dims[a]). Local. */
static inline int decomp_rank_of_coords(const struct decomp *d, const int c[3])
{
    return (c[0] * d->dims[1] + c[1]) * d->dims[2] + c[2];
}

/** Grid coordinates of rank r. Local. */
void decomp_coords_of_rank(const struct decomp *d, int r, int c[3]);

/** Owned box of any rank r (known everywhere). Local. */
struct box3 decomp_box_of(const struct decomp *d, int r);

/** Owner rank of global cell (i, j, k); indices are wrapped periodically first, so any integers
 *  are accepted. O(1). Local. */
static inline int decomp_owner_cell(const struct decomp *d, int64_t i, int64_t j, int64_t k)
{
    int c[3] = {d->owner[0][box3_wrap(i, d->n[0])], d->owner[1][box3_wrap(j, d->n[1])],
                d->owner[2][box3_wrap(k, d->n[2])]};
    return decomp_rank_of_coords(d, c);
}

/** decomp_cell_index with its scale n / box_size given, so that loops over particles compute it
 *  once. Local. */
static inline int64_t decomp_cell_scaled(double x, int n, double scale)
{
    double u = x * scale;
    int64_t i = (int64_t)u;
    if ((double)i > u)
        i--; /* floor for negative u */
    return box3_wrap(i, n);
}

/** Cell index in [0, n) along one axis of a position x (any real value, wrapped periodically) in
 *  a box of side box_size split into n cells: floor(x n / box_size) mod n in double. Local. */
static inline int64_t decomp_cell_index(double x, int n, double box_size)
{
    return decomp_cell_scaled(x, n, (double)n / box_size);
}

/** Owner rank of the cell holding position x[3] (Mpc/h, any value: wrapped periodically) in a
 *  periodic box of side box_size. O(1). Local. */
static inline int decomp_owner_pos(const struct decomp *d, const float x[3], double box_size)
{
    return decomp_owner_cell(d, decomp_cell_index(x[0], d->n[0], box_size),
                             decomp_cell_index(x[1], d->n[1], box_size),
                             decomp_cell_index(x[2], d->n[2], box_size));
}

/** True when a and b describe the same decomposition (same mesh, grid and splits). Local. */
bool decomp_same(const struct decomp *a, const struct decomp *b);

#endif
