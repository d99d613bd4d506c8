/*
 * mesh (tier: kernels) — the local layout of a distributed real / complex 3-D mesh and the k-space
 * iterator (kernels tier: no MPI). The layout is FFTW-MPI's (src/mpi/fft.h fills it); kernels that
 * walk a slab in real space or its modes in k space need only this header.
 *
 * A real mesh of n[0] x n[1] x n[2] nodes is split into x-slabs: this rank owns the planes
 * [rx0, rx0 + rnx). Rows along z are padded to row = 2 (n[2]/2 + 1) reals:
 *
 *   real    x[i][j][k]  at  data[((i - rx0) n[1] + j) row + k]          (k < n[2])
 *   complex transposed: c[j][i][k]  at  ((j - k0) n[0] + i) nkz + k   (this rank: ky in [k0,
 * k0+nk)) not transposed: c[i][j][k]  at  ((i - k0) n[1] + j) nkz + k   (kx in [k0, k0+nk)) where
 * nkz = n[2]/2 + 1 and each complex element is two reals (re, im).
 *
 * Code never indexes k-space by hand: struct fft_kiter walks the local modes and gives, for each,
 * the local element index, the global integer indices, the signed frequencies (numpy fftfreq
 * convention: m = i for i < (n+1)/2, else i - n; along z m = k >= 0), the physical wave vector
 * k_d = 2π m_d / L_d and the Hermitian weight (1 on the kz = 0 plane and, for even n[2], on the
 * kz = n[2]/2 plane; 2 elsewhere, standing for the mode and its conjugate).
 *
 * The local modes form fft_kiter_n_rows() rows of nkz contiguous elements; fft_kiter_begin_rows
 * walks a range of them, so an OpenMP loop gives each thread its own rows:
 *
 *   #pragma omp parallel for schedule(static)
 *   for (ptrdiff_t r = 0; r < n_rows; r++)
 *       for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it)) ...
 */
#ifndef LEMUR_MESH_H
#define LEMUR_MESH_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/** Where this rank's data lie, real and complex (all counts in elements, not bytes). */
struct fft_layout {
    int n[3];                /**< global real mesh */
    double box[3];           /**< box side lengths L_d (Mpc/h) */
    ptrdiff_t rx0, rnx;      /**< owned real x planes [rx0, rx0 + rnx) */
    ptrdiff_t row;           /**< reals per padded z row: 2 (n[2]/2 + 1) */
    bool transposed;         /**< complex layout [ky][kx][kz] (true) or [kx][ky][kz] */
    ptrdiff_t k0, nk;        /**< owned range of the outer complex axis (ky or kx) */
    ptrdiff_t nkz;           /**< complex elements per z row: n[2]/2 + 1 */
    ptrdiff_t alloc_complex; /**< complex elements to allocate (covers both layouts) */
};

/** Local element index of real node (ix, iy, iz), ix global and owned. Local. */
static inline ptrdiff_t fft_real_index(const struct fft_layout *l, ptrdiff_t ix, ptrdiff_t iy,
                                       ptrdiff_t iz)
{
    return ((ix - l->rx0) * l->n[1] + iy) * l->row + iz;
}

/** Signed frequency of index i on an axis of n (numpy fftfreq order). */
static inline int fft_signed_index(int i, int n) { return i < (n + 1) / 2 ? i : i - n; }

/** Iterator over the local complex modes:
 *    struct fft_kiter it;
 *    for (fft_kiter_begin(&it, layout); !it.done; fft_kiter_next(&it)) use it.index, it.k, ...
 *  Rows along z are contiguous, so the walk is sequential in memory. Local. */
struct fft_kiter {
    bool done;
    ptrdiff_t index; /**< complex element index in the local array */
    int i[3];        /**< global indices (z in [0, n[2]/2]) */
    int m[3];        /**< signed integer frequencies */
    double k[3];     /**< wave vector 2π m / L (h/Mpc) */
    double k2;       /**< |k|^2 */
    int weight;      /**< Hermitian weight, 1 or 2 */
    /* private */
    const struct fft_layout *l;
    ptrdiff_t row, n_rows; /**< current local row and the end of the walk */
    double kf[3];          /**< fundamental frequency per axis */
    double kxy2;           /**< kx^2 + ky^2 of the current row */
    int w_last;            /**< weight of the last z index */
};

/** Set the row-dependent fields of it (indices, frequencies) for row it->row. */
static inline void fft_kiter_set_row(struct fft_kiter *it)
{
    const struct fft_layout *l = it->l;
    int outer = (int)(l->k0 + it->row / (l->transposed ? l->n[0] : l->n[1]));
    int inner = (int)(it->row % (l->transposed ? l->n[0] : l->n[1]));
    it->i[0] = l->transposed ? inner : outer;
    it->i[1] = l->transposed ? outer : inner;
    for (int d = 0; d < 2; d++) {
        it->m[d] = fft_signed_index(it->i[d], l->n[d]);
        it->k[d] = it->kf[d] * it->m[d];
    }
    it->kxy2 = it->k[0] * it->k[0] + it->k[1] * it->k[1];
}

/** Set the z-dependent fields of it for z index it->i[2]. */
static inline void fft_kiter_set_z(struct fft_kiter *it)
{
    int iz = it->i[2];
    it->m[2] = iz;
    it->k[2] = it->kf[2] * iz;
    it->k2 = it->kxy2 + it->k[2] * it->k[2];
    it->weight = iz == 0 ? 1 : (iz == it->l->nkz - 1 ? it->w_last : 2);
}

/** Number of local complex rows (of nkz elements each) of layout l. Local. */
static inline ptrdiff_t fft_kiter_n_rows(const struct fft_layout *l)
{
    return l->nk * (l->transposed ? l->n[0] : l->n[1]);
}

/** Start the walk over the modes of layout l. Local. */
void fft_kiter_begin(struct fft_kiter *it, const struct fft_layout *l);

/** Start a walk over the local rows [row0, row1) of layout l only (clamped to the local rows;
 *  the walk is empty when the range is). Local. */
void fft_kiter_begin_rows(struct fft_kiter *it, const struct fft_layout *l, ptrdiff_t row0,
                          ptrdiff_t row1);

/** Advance to the next local mode (sets it->done after the last). Local. */
static inline void fft_kiter_next(struct fft_kiter *it)
{
    it->index++;
    if (++it->i[2] < it->l->nkz) {
        fft_kiter_set_z(it);
        return;
    }
    if (++it->row >= it->n_rows) {
        it->done = true;
        return;
    }
    it->i[2] = 0;
    fft_kiter_set_row(it);
    fft_kiter_set_z(it);
}

/** Check that n is a mesh lemur can transform (each side in [2, 65536]); on failure err names
 *  key (e.g. "power.n_mesh") and the value. Local. */
bool fft_check_size(const int n[3], const char *key, struct lm_err *err);

#endif
