/*
 * fft — distributed real-to-complex 3-D FFTs over FFTW-MPI, and the k-space iterator.
 *
 * A real mesh of n[0] x n[1] x n[2] nodes is split into x-slabs: this rank owns the planes
 * [rx0, rx0 + rnx) (FFTW's block distribution, ceil(n0 / P) planes per rank, so with P > n[0] the
 * last ranks own none and simply take part in the transposes). Rows along z are padded to
 * row = 2 (n[2]/2 + 1) reals, and the transform is in place:
 *
 *   real    x[i][j][k]  at  data[((i - rx0) n[1] + j) row + k]          (k < n[2])
 *   complex transposed (the default, FFTW_MPI_TRANSPOSED_OUT, one transpose fewer):
 *           c[j][i][k]  at  ((j - k0) n[0] + i) nkz + k   with this rank owning ky in [k0, k0+nk)
 *           not transposed (FFT_NOT_TRANSPOSED):
 *           c[i][j][k]  at  ((i - k0) n[1] + j) nkz + k   with kx in [k0, k0+nk)
 *   where nkz = n[2]/2 + 1 and each complex element is two reals (re, im).
 *
 * Code never indexes k-space by hand: struct fft_kiter walks the local modes and gives, for each,
 * the local element index, the global integer indices, the signed frequencies (numpy fftfreq
 * convention: m = i for i < (n+1)/2, else i - n; along z m = k >= 0), the physical wave vector
 * k_d = 2π m_d / L_d and the Hermitian weight (1 on the kz = 0 plane and, for even n[2], on the
 * kz = n[2]/2 plane; 2 elsewhere, standing for the mode and its conjugate).
 *
 * Transforms are unnormalised (FFTW): c2r(r2c(x)) = n0 n1 n2 x. Precision is float by default,
 * double on request; data pointers are void * over the plan's real type. Plans are made once;
 * planning with FFT_MEASURE overwrites the buffer it is given.
 */
#ifndef LEMUR_FFT_H
#define LEMUR_FFT_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum fft_precision { FFT_PRECISION_FLOAT, FFT_PRECISION_DOUBLE };

enum fft_flags {
    FFT_ESTIMATE = 0,            /**< FFTW_ESTIMATE planning (default; fast, buffer untouched) */
    FFT_MEASURE = 1u << 0,       /**< FFTW_MEASURE planning (slower plan, faster transforms) */
    FFT_NOT_TRANSPOSED = 1u << 1 /**< k-space as x-slabs [kx][ky][kz] (one more transpose) */
};

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

struct fft_plan;

/** Check that n is a mesh lemur can transform (each side in [2, 65536]); on failure err names
 *  key (e.g. "power.n_mesh") and the value. Local. */
bool fft_check_size(const int n[3], const char *key, struct lm_err *err);

/** Query the layout a plan over n with these flags will have, without planning, so that buffers
 *  can be sized first (FFTW's local_size). box may be NULL (then L_d = 1). Collective on comm. */
void fft_local_size(const int n[3], const double box[3], unsigned flags, MPI_Comm comm,
                    struct fft_layout *out);

/** Create an in-place r2c / c2r plan pair.
 *  @param n, box    global mesh and box sides (box NULL: unit box)
 *  @param precision float or double real type
 *  @param flags     enum fft_flags, or-ed
 *  @param buffer    a buffer of fft_alloc_bytes() (overwritten with FFT_MEASURE), or NULL to plan
 *                   on a temporary one
 *  @param comm      duplicated; the plan's own
 *  @return the plan; free with fft_plan_destroy. Collective on comm. */
struct fft_plan *fft_plan_create(const int n[3], const double box[3], enum fft_precision precision,
                                 unsigned flags, void *buffer, MPI_Comm comm);
/** Free plan (NULL-safe) and set *plan = NULL. Collective on the plan's communicator. */
void fft_plan_destroy(struct fft_plan **plan);

/** The plan's layout. Local. */
const struct fft_layout *fft_layout(const struct fft_plan *plan);
/** The plan's communicator (its own duplicate), for collectives over the same ranks. Local. */
MPI_Comm fft_comm(const struct fft_plan *plan);
/** The plan's precision. Local. */
enum fft_precision fft_precision(const struct fft_plan *plan);
/** Bytes a mesh buffer of this plan needs (real and complex views). Local. */
size_t fft_alloc_bytes(const struct fft_plan *plan);
/** Allocate a zeroed mesh buffer under label (lm_calloc; the caller frees with lm_free). Local. */
void *fft_alloc(const struct fft_plan *plan, const char *label);

/** Forward transform in place, real x-slabs → complex (unnormalised). data must be aligned as
 *  lm_malloc blocks are. Collective on the plan's communicator. */
void fft_r2c(const struct fft_plan *plan, void *data);
/** Backward transform in place, complex → real x-slabs (unnormalised). Collective. */
void fft_c2r(const struct fft_plan *plan, void *data);

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
    ptrdiff_t row, n_rows; /**< current local row and their count */
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

/** Start the walk over the modes of layout l. Local. */
void fft_kiter_begin(struct fft_kiter *it, const struct fft_layout *l);

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

#endif
