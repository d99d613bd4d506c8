/*
 * fft (tier: mpi) — distributed real-to-complex 3-D FFTs: lemur's slab transform, or FFTW-MPI.
 *
 * A real mesh of n[0] x n[1] x n[2] nodes is split into x-slabs (FFTW's block distribution,
 * ceil(n0 / P) planes per rank, so with P > n[0] the last ranks own none and simply take part in
 * the transposes); the complex result is transposed by default (FFTW_MPI_TRANSPOSED_OUT, one
 * transpose fewer) or kept as x-slabs (FFT_NOT_TRANSPOSED). The local layout of both, and the
 * k-space iterator that walks it, are in mesh.h (struct fft_layout, struct fft_kiter).
 *
 * Transforms are unnormalised (FFTW): c2r(r2c(x)) = n0 n1 n2 x. Precision is float by default,
 * double on request; data pointers are void * over the plan's real type. Plans are made once;
 * planning with FFT_MEASURE overwrites the buffer it is given. Every plan runs with the OpenMP
 * threads of its rank (omp_get_max_threads() when it is created; FFTW's threads are started once,
 * before FFTW-MPI).
 *
 * A transposed plan of a mesh with n0 = n1 (and n1 (n2/2+1) modes a multiple of 64 bytes) runs
 * lemur's slab transform, the three steps of FFTW-MPI's own: the 2-D transform of each x plane, the
 * transpose of x and ky, the 1-D transforms along kx of each ky plane. The plane and line steps
 * run on the rank's threads with the same single-threaded FFTW plans on every rank count; the
 * transpose swaps square blocks in place on one rank, and between ranks regroups the rows by ky on
 * the threads and exchanges them in one MPI_Alltoallw, received straight into place. Its result
 * is bitwise FFTW-MPI's, for any number of ranks and threads. Memory: on several ranks the plan
 * keeps one real slab of exchange buffer ("fft.transpose"). Other meshes take FFTW-MPI (its
 * transposes are serial and made of many messages).
 */
#ifndef LEMUR_FFT_H
#define LEMUR_FFT_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "mesh.h"

enum fft_precision { FFT_PRECISION_FLOAT, FFT_PRECISION_DOUBLE };

enum fft_flags {
    FFT_ESTIMATE = 0,            /**< FFTW_ESTIMATE planning (default; fast, buffer untouched) */
    FFT_MEASURE = 1u << 0,       /**< FFTW_MEASURE planning (slower plan, faster transforms) */
    FFT_NOT_TRANSPOSED = 1u << 1 /**< k-space as x-slabs [kx][ky][kz] (one more transpose) */
};

struct fft_plan;

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

#endif
