#include "mpi/fft.h"

#include <fftw3-mpi.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"

/** The transposed float transform of a single rank, run plane by plane on the rank's OpenMP
 *  threads (fft_local_execute). */
struct fft_local {
    fftwf_plan plane_fwd, plane_bwd; /**< 2-D r2c / c2r of one x plane (single-threaded) */
    fftwf_plan line_fwd, line_bwd;   /**< the n2/2+1 1-D transforms along kx of one ky plane */
};

struct fft_plan {
    struct fft_layout layout;
    enum fft_precision precision;
    MPI_Comm comm;
    fftwf_plan f_fwd, f_bwd;
    fftw_plan d_fwd, d_bwd;
    struct fft_local *local; /**< one rank, float, square x-y, transposed: the threaded path */
};

/* FFTW's threads first, then FFTW-MPI (the order the FFTW manual asks for, section 6.11). */
static void fft_init_once(void)
{
    static bool done = false;
    if (done)
        return;
    CHECK(fftwf_init_threads() && fftw_init_threads(), "FFTW could not start its threads");
    fftwf_mpi_init();
    fftw_mpi_init();
    done = true;
}

void fft_local_size(const int n[3], const double box[3], unsigned flags, MPI_Comm comm,
                    struct fft_layout *out)
{
    fft_init_once();
    struct fft_layout *l = out;
    memset(l, 0, sizeof *l);
    for (int d = 0; d < 3; d++) {
        l->n[d] = n[d];
        l->box[d] = box ? box[d] : 1.0;
    }
    l->nkz = n[2] / 2 + 1;
    l->row = 2 * l->nkz;
    l->transposed = !(flags & FFT_NOT_TRANSPOSED);
    ptrdiff_t n1_local = 0, n1_start = 0;
    /* The float and double distributions are the same function of (n, P). */
    l->alloc_complex = fftwf_mpi_local_size_3d_transposed(n[0], n[1], l->nkz, comm, &l->rnx,
                                                          &l->rx0, &n1_local, &n1_start);
    if (!l->transposed) { /* the non-transposed plan may need more room than the transposed one */
        ptrdiff_t n0_local, n0_start;
        ptrdiff_t alloc = fftwf_mpi_local_size_3d(n[0], n[1], l->nkz, comm, &n0_local, &n0_start);
        l->alloc_complex = alloc > l->alloc_complex ? alloc : l->alloc_complex;
    }
    l->k0 = l->transposed ? n1_start : l->rx0;
    l->nk = l->transposed ? n1_local : l->rnx;
}

static void plan_float(struct fft_plan *p, void *buf, unsigned fl)
{
    const struct fft_layout *l = &p->layout;
    float *r = buf;
    fftwf_complex *c = buf;
    unsigned tf = l->transposed ? FFTW_MPI_TRANSPOSED_OUT : 0;
    unsigned tb = l->transposed ? FFTW_MPI_TRANSPOSED_IN : 0;
    p->f_fwd = fftwf_mpi_plan_dft_r2c_3d(l->n[0], l->n[1], l->n[2], r, c, p->comm, fl | tf);
    p->f_bwd = fftwf_mpi_plan_dft_c2r_3d(l->n[0], l->n[1], l->n[2], c, r, p->comm, fl | tb);
    CHECK(p->f_fwd && p->f_bwd, "FFTW-MPI could not plan a %d x %d x %d float transform", l->n[0],
          l->n[1], l->n[2]);
}

/* One rank with FFTW_MPI_TRANSPOSED_OUT computes, as FFTW-MPI does on any number of ranks
 * (rdft2-rank-geq2-transposed): the 2-D r2c of each x plane, a transpose of the [n0][n1] blocks of
 * n2/2+1 modes, the 1-D transforms along kx of each ky plane. FFTW-MPI's one-rank transpose runs
 * on one thread; here every step is split over the rank's threads by planes (the transpose by
 * pairs of blocks), each plane transformed by the same single-threaded FFTW plan, so the result
 * is the same for any number of threads and, the 1-D and 2-D transforms being FFTW's codelets of
 * the same sizes and strides, bitwise that of FFTW-MPI on several ranks. Used for float meshes with
 * n0 = n1 (an in-place transpose of square blocks) whose planes keep the 64-byte alignment of the
 * buffer (n1 (n2/2+1) a multiple of 8), as FFTW's new-array execution requires. */
static bool local_applies(const struct fft_plan *p)
{
    const struct fft_layout *l = &p->layout;
    return comm_size(p->comm) == 1 && p->precision == FFT_PRECISION_FLOAT && l->transposed &&
           l->n[0] == l->n[1] && ((int64_t)l->n[1] * l->nkz) % 8 == 0;
}

static struct fft_local *plan_local(const struct fft_plan *p, void *buf, unsigned fl)
{
    const struct fft_layout *l = &p->layout;
    const int n0 = l->n[0], n1 = l->n[1], n2 = l->n[2], nkz = (int)l->nkz;
    struct fft_local *q = lm_calloc("fft.plan", 1, sizeof *q);
    float *r = buf;
    fftwf_complex *c = buf;
    const int n12[2] = {n1, n2}, rembed[2] = {n1, (int)l->row}, cembed[2] = {n1, nkz};
    fftwf_plan_with_nthreads(1);
    q->plane_fwd = fftwf_plan_many_dft_r2c(2, n12, 1, r, rembed, 1, 0, c, cembed, 1, 0, fl);
    q->plane_bwd = fftwf_plan_many_dft_c2r(2, n12, 1, c, cembed, 1, 0, r, rembed, 1, 0, fl);
    q->line_fwd =
        fftwf_plan_many_dft(1, &n0, nkz, c, NULL, nkz, 1, c, NULL, nkz, 1, FFTW_FORWARD, fl);
    q->line_bwd =
        fftwf_plan_many_dft(1, &n0, nkz, c, NULL, nkz, 1, c, NULL, nkz, 1, FFTW_BACKWARD, fl);
    fftwf_plan_with_nthreads(omp_get_max_threads());
    CHECK(q->plane_fwd && q->plane_bwd && q->line_fwd && q->line_bwd,
          "FFTW could not plan the plane transforms of a %d x %d x %d float mesh", n0, n1, n2);
    return q;
}

static void local_destroy(struct fft_local **q)
{
    if (!*q)
        return;
    fftwf_destroy_plan((*q)->plane_fwd);
    fftwf_destroy_plan((*q)->plane_bwd);
    fftwf_destroy_plan((*q)->line_fwd);
    fftwf_destroy_plan((*q)->line_bwd);
    lm_free(*q);
    *q = NULL;
}

/* Compute kernel: swap block (i, j) with block (j, i) of the [n][n] blocks of m modes, i < j
 * (threads take rows i; dynamic: the rows shorten). */
static void transpose_blocks(fftwf_complex *c, int n, int64_t m)
{
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            fftwf_complex *a = c + ((int64_t)i * n + j) * m, *b = c + ((int64_t)j * n + i) * m;
            for (int64_t k = 0; k < m; k++) {
                float re = a[k][0], im = a[k][1];
                a[k][0] = b[k][0];
                a[k][1] = b[k][1];
                b[k][0] = re;
                b[k][1] = im;
            }
        }
}

/** The 2-D transform of every x plane (r2c forward, c2r backward), threads taking planes. */
static void local_planes(const struct fft_plan *p, float *r, bool forward)
{
    const struct fft_layout *l = &p->layout;
    const int64_t plane = (int64_t)l->n[1] * l->row;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < l->n[0]; i++) {
        float *x = r + i * plane;
        if (forward)
            fftwf_execute_dft_r2c(p->local->plane_fwd, x, (fftwf_complex *)x);
        else
            fftwf_execute_dft_c2r(p->local->plane_bwd, (fftwf_complex *)x, x);
    }
}

/** The 1-D transforms along kx of every ky plane, threads taking planes. */
static void local_lines(const struct fft_plan *p, fftwf_complex *c, bool forward)
{
    const struct fft_layout *l = &p->layout;
    const int64_t kplane = (int64_t)l->n[0] * l->nkz;
    fftwf_plan line = forward ? p->local->line_fwd : p->local->line_bwd;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < l->n[1]; j++)
        fftwf_execute_dft(line, c + j * kplane, c + j * kplane);
}

static void local_r2c(const struct fft_plan *p, float *r)
{
    local_planes(p, r, true);
    transpose_blocks((fftwf_complex *)r, p->layout.n[0], p->layout.nkz);
    local_lines(p, (fftwf_complex *)r, true);
}

static void local_c2r(const struct fft_plan *p, float *r)
{
    local_lines(p, (fftwf_complex *)r, false);
    transpose_blocks((fftwf_complex *)r, p->layout.n[0], p->layout.nkz);
    local_planes(p, r, false);
}

static void plan_double(struct fft_plan *p, void *buf, unsigned fl)
{
    const struct fft_layout *l = &p->layout;
    double *r = buf;
    fftw_complex *c = buf;
    unsigned tf = l->transposed ? FFTW_MPI_TRANSPOSED_OUT : 0;
    unsigned tb = l->transposed ? FFTW_MPI_TRANSPOSED_IN : 0;
    p->d_fwd = fftw_mpi_plan_dft_r2c_3d(l->n[0], l->n[1], l->n[2], r, c, p->comm, fl | tf);
    p->d_bwd = fftw_mpi_plan_dft_c2r_3d(l->n[0], l->n[1], l->n[2], c, r, p->comm, fl | tb);
    CHECK(p->d_fwd && p->d_bwd, "FFTW-MPI could not plan a %d x %d x %d double transform", l->n[0],
          l->n[1], l->n[2]);
}

struct fft_plan *fft_plan_create(const int n[3], const double box[3], enum fft_precision precision,
                                 unsigned flags, void *buffer, MPI_Comm comm)
{
    struct lm_err err = {{0}};
    fft_check_size(n, "fft mesh", &err);
    comm_agree(comm, &err);
    struct fft_plan *p = lm_calloc("fft.plan", 1, sizeof *p);
    p->precision = precision;
    MPI_CHECK(MPI_Comm_dup(comm, &p->comm));
    fft_local_size(n, box, flags, p->comm, &p->layout);
    void *buf = buffer ? buffer : lm_malloc("fft.plan_scratch", fft_alloc_bytes(p));
    unsigned fl = (flags & FFT_MEASURE) ? FFTW_MEASURE : FFTW_ESTIMATE;
    /* Each rank's transforms use the OpenMP threads it runs with. */
    fftwf_plan_with_nthreads(omp_get_max_threads());
    fftw_plan_with_nthreads(omp_get_max_threads());
    if (local_applies(p))
        p->local = plan_local(p, buf, fl);
    else if (precision == FFT_PRECISION_FLOAT)
        plan_float(p, buf, fl);
    else
        plan_double(p, buf, fl);
    if (!buffer)
        lm_free(buf);
    return p;
}

void fft_plan_destroy(struct fft_plan **plan)
{
    struct fft_plan *p = *plan;
    if (!p)
        return;
    if (p->f_fwd)
        fftwf_destroy_plan(p->f_fwd);
    if (p->f_bwd)
        fftwf_destroy_plan(p->f_bwd);
    if (p->d_fwd)
        fftw_destroy_plan(p->d_fwd);
    if (p->d_bwd)
        fftw_destroy_plan(p->d_bwd);
    local_destroy(&p->local);
    MPI_Comm_free(&p->comm);
    lm_free(p);
    *plan = NULL;
}

const struct fft_layout *fft_layout(const struct fft_plan *plan) { return &plan->layout; }

MPI_Comm fft_comm(const struct fft_plan *plan) { return plan->comm; }

enum fft_precision fft_precision(const struct fft_plan *plan) { return plan->precision; }

size_t fft_alloc_bytes(const struct fft_plan *plan)
{
    size_t real = plan->precision == FFT_PRECISION_FLOAT ? sizeof(float) : sizeof(double);
    size_t n = (size_t)plan->layout.alloc_complex;
    return 2 * real * (n > 0 ? n : 1);
}

void *fft_alloc(const struct fft_plan *plan, const char *label)
{
    return lm_calloc(label, 1, fft_alloc_bytes(plan));
}

void fft_r2c(const struct fft_plan *plan, void *data)
{
    if (plan->local)
        local_r2c(plan, data);
    else if (plan->precision == FFT_PRECISION_FLOAT)
        fftwf_mpi_execute_dft_r2c(plan->f_fwd, data, data);
    else
        fftw_mpi_execute_dft_r2c(plan->d_fwd, data, data);
}

void fft_c2r(const struct fft_plan *plan, void *data)
{
    if (plan->local)
        local_c2r(plan, data);
    else if (plan->precision == FFT_PRECISION_FLOAT)
        fftwf_mpi_execute_dft_c2r(plan->f_bwd, data, data);
    else
        fftw_mpi_execute_dft_c2r(plan->d_bwd, data, data);
}
