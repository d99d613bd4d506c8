#include "mpi/fft.h"

#include <fftw3-mpi.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"

/** lemur's own transposed transform (slab_*): the 2-D transform of each x plane, the transpose of
 *  x and ky (in place on one rank; through one exchange of blocks between ranks), the 1-D
 *  transforms along kx of each ky plane, every step on the rank's OpenMP threads. The FFTW plans
 *  are single-threaded, float (f) or double (d). */
struct fft_slab {
    bool dbl;
    size_t mode_bytes;                /**< bytes of one complex mode */
    fftwf_plan f_plane[2], f_line[2]; /**< [0] forward, [1] backward: one x plane, one ky plane */
    fftw_plan d_plane[2], d_line[2];
    int n_ranks;
    char *packed;            /**< [n1][local x][n2/2+1] modes exchanged with the ranks (P > 1) */
    MPI_Datatype *in_packed; /**< per rank s: its ky planes of packed, [s's ky][local x] rows */
    MPI_Datatype *in_mesh;   /**< per rank s: s's x planes of my ky planes, [my ky][s's x] rows */
    int *n_packed, *n_mesh;  /**< per rank: 1, or 0 for an empty block */
    int *zeros;              /**< displacements (the types hold them) */
};

struct fft_plan {
    struct fft_layout layout;
    enum fft_precision precision;
    MPI_Comm comm;
    fftwf_plan f_fwd, f_bwd;
    fftw_plan d_fwd, d_bwd;
    struct fft_slab *slab; /**< square x-y, transposed: lemur's threaded path */
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

/* FFTW-MPI's transposed r2c (rdft2-rank-geq2-transposed) computes the 2-D r2c of each x plane, a
 * transpose of x and ky, and the 1-D transforms along kx of each ky plane; c2r the reverse. Its
 * transposes run on one thread, and between ranks in many small messages. lemur runs the same
 * three steps itself, each split over the rank's threads by planes, the planes and lines
 * transformed by the same single-threaded FFTW plans on every rank count; the transpose only
 * moves data. So the result is the same for any number of threads and any number of ranks, and,
 * the 1-D and 2-D transforms being FFTW's codelets of the same sizes and strides, bitwise that of
 * FFTW-MPI. The distribution of x and ky planes is FFTW-MPI's (fft_local_size). Used for meshes
 * with n0 = n1 (square blocks: an in-place transpose on one rank) whose planes keep the 64-byte
 * alignment of the buffer (n1 (n2/2+1) modes a multiple of 64 bytes), as FFTW's new-array
 * execution requires; other meshes take FFTW-MPI. */
static bool slab_applies(const struct fft_plan *p)
{
    const struct fft_layout *l = &p->layout;
    const int64_t mode = p->precision == FFT_PRECISION_FLOAT ? 8 : 16;
    return l->transposed && l->n[0] == l->n[1] && ((int64_t)l->n[1] * l->nkz * mode) % 64 == 0;
}

/** A block of rows (n2/2+1 complex each): count runs of len rows, stride rows apart, starting
 *  first rows into the buffer; *n = 1, or 0 for an empty block, whose type is a copy of MPI_BYTE
 *  that MPI_Alltoallw never sends (count 0) and that slab_destroy frees like the others. */
static MPI_Datatype row_block(const struct fft_slab *q, int nkz, int64_t first, int64_t count,
                              int64_t len, int64_t stride, int *n)
{
    *n = count > 0 && len > 0;
    if (!*n) {
        MPI_Datatype t;
        MPI_CHECK(MPI_Type_dup(MPI_BYTE, &t));
        return t;
    }
    const MPI_Aint row = (MPI_Aint)nkz * (MPI_Aint)q->mode_bytes;
    MPI_Datatype r, runs, t;
    MPI_CHECK(MPI_Type_contiguous(2 * nkz, q->dbl ? MPI_DOUBLE : MPI_FLOAT, &r));
    MPI_CHECK(MPI_Type_create_hvector((int)count, (int)len, stride * row, r, &runs));
    int one = 1;
    MPI_Aint at = first * row;
    MPI_CHECK(MPI_Type_create_hindexed(1, &one, &at, runs, &t));
    MPI_CHECK(MPI_Type_commit(&t));
    MPI_Type_free(&runs);
    MPI_Type_free(&r);
    return t;
}

/** The exchange between ranks: every rank's x and ky planes (FFTW-MPI's distribution, gathered)
 *  and the per-rank blocks of the packed buffer and of the transposed mesh. */
static void slab_plan_exchange(const struct fft_plan *p, struct fft_slab *q)
{
    const struct fft_layout *l = &p->layout;
    const int P = q->n_ranks, nkz = (int)l->nkz;
    const int64_t n0 = l->n[0];
    int64_t mine[4] = {l->rx0, l->rnx, l->k0, l->nk};
    int64_t *all = lm_malloc("fft.plan", (size_t)P * 4 * sizeof(int64_t));
    MPI_CHECK(MPI_Allgather(mine, 4, MPI_INT64_T, all, 4, MPI_INT64_T, p->comm));
    q->packed = lm_calloc("fft.transpose", (size_t)(l->rnx > 0 ? l->rnx : 1) * (size_t)l->n[1],
                          l->nkz * q->mode_bytes); /* touched now, not in the first transform */
    q->in_packed = lm_malloc("fft.plan", (size_t)P * sizeof(MPI_Datatype));
    q->in_mesh = lm_malloc("fft.plan", (size_t)P * sizeof(MPI_Datatype));
    q->n_packed = lm_malloc("fft.plan", (size_t)P * sizeof(int));
    q->n_mesh = lm_malloc("fft.plan", (size_t)P * sizeof(int));
    q->zeros = lm_calloc("fft.plan", (size_t)P, sizeof(int));
    for (int s = 0; s < P; s++) {
        const int64_t sx0 = all[4 * s], snx = all[4 * s + 1], sk0 = all[4 * s + 2],
                      snk = all[4 * s + 3];
        /* packed: [ky][my x] rows; rank s's part is its ky planes, one run */
        q->in_packed[s] = row_block(q, nkz, sk0 * l->rnx, 1, snk * l->rnx, 0, &q->n_packed[s]);
        /* transposed mesh: [my ky][n0 x] rows; rank s's part is its x planes of each of my ky */
        q->in_mesh[s] = row_block(q, nkz, sx0, l->nk, snx, n0, &q->n_mesh[s]);
    }
    lm_free(all);
}

/** The single-threaded plane and line plans of q on buf, float. */
static void plan_slab_float(struct fft_slab *q, const struct fft_layout *l, void *buf, unsigned fl)
{
    const int n0 = l->n[0], n1 = l->n[1], n2 = l->n[2], nkz = (int)l->nkz;
    const int n12[2] = {n1, n2}, rembed[2] = {n1, (int)l->row}, cembed[2] = {n1, nkz};
    float *r = buf;
    fftwf_complex *c = buf;
    fftwf_plan_with_nthreads(1);
    q->f_plane[0] = fftwf_plan_many_dft_r2c(2, n12, 1, r, rembed, 1, 0, c, cembed, 1, 0, fl);
    q->f_plane[1] = fftwf_plan_many_dft_c2r(2, n12, 1, c, cembed, 1, 0, r, rembed, 1, 0, fl);
    q->f_line[0] =
        fftwf_plan_many_dft(1, &n0, nkz, c, NULL, nkz, 1, c, NULL, nkz, 1, FFTW_FORWARD, fl);
    q->f_line[1] =
        fftwf_plan_many_dft(1, &n0, nkz, c, NULL, nkz, 1, c, NULL, nkz, 1, FFTW_BACKWARD, fl);
    fftwf_plan_with_nthreads(omp_get_max_threads());
    CHECK(q->f_plane[0] && q->f_plane[1] && q->f_line[0] && q->f_line[1],
          "FFTW could not plan the plane transforms of a %d x %d x %d float mesh", n0, n1, n2);
}

/** The same in double. */
static void plan_slab_double(struct fft_slab *q, const struct fft_layout *l, void *buf, unsigned fl)
{
    const int n0 = l->n[0], n1 = l->n[1], n2 = l->n[2], nkz = (int)l->nkz;
    const int n12[2] = {n1, n2}, rembed[2] = {n1, (int)l->row}, cembed[2] = {n1, nkz};
    double *r = buf;
    fftw_complex *c = buf;
    fftw_plan_with_nthreads(1);
    q->d_plane[0] = fftw_plan_many_dft_r2c(2, n12, 1, r, rembed, 1, 0, c, cembed, 1, 0, fl);
    q->d_plane[1] = fftw_plan_many_dft_c2r(2, n12, 1, c, cembed, 1, 0, r, rembed, 1, 0, fl);
    q->d_line[0] =
        fftw_plan_many_dft(1, &n0, nkz, c, NULL, nkz, 1, c, NULL, nkz, 1, FFTW_FORWARD, fl);
    q->d_line[1] =
        fftw_plan_many_dft(1, &n0, nkz, c, NULL, nkz, 1, c, NULL, nkz, 1, FFTW_BACKWARD, fl);
    fftw_plan_with_nthreads(omp_get_max_threads());
    CHECK(q->d_plane[0] && q->d_plane[1] && q->d_line[0] && q->d_line[1],
          "FFTW could not plan the plane transforms of a %d x %d x %d double mesh", n0, n1, n2);
}

static struct fft_slab *plan_slab(const struct fft_plan *p, void *buf, unsigned fl)
{
    struct fft_slab *q = lm_calloc("fft.plan", 1, sizeof *q);
    q->dbl = p->precision == FFT_PRECISION_DOUBLE;
    q->mode_bytes = q->dbl ? sizeof(fftw_complex) : sizeof(fftwf_complex);
    q->n_ranks = comm_size(p->comm);
    if (q->dbl)
        plan_slab_double(q, &p->layout, buf, fl);
    else
        plan_slab_float(q, &p->layout, buf, fl);
    if (q->n_ranks > 1)
        slab_plan_exchange(p, q);
    return q;
}

static void slab_destroy(struct fft_slab **q)
{
    struct fft_slab *s = *q;
    if (!s)
        return;
    for (int d = 0; d < 2; d++) {
        if (s->dbl) {
            fftw_destroy_plan(s->d_plane[d]);
            fftw_destroy_plan(s->d_line[d]);
        } else {
            fftwf_destroy_plan(s->f_plane[d]);
            fftwf_destroy_plan(s->f_line[d]);
        }
    }
    for (int r = 0; s->in_packed && r < s->n_ranks; r++) {
        MPI_Type_free(&s->in_packed[r]);
        MPI_Type_free(&s->in_mesh[r]);
    }
    lm_free(s->in_packed);
    lm_free(s->in_mesh);
    lm_free(s->n_packed);
    lm_free(s->n_mesh);
    lm_free(s->zeros);
    lm_free(s->packed);
    lm_free(s);
    *q = NULL;
}

/** Swap n bytes at a and b (through a small buffer). */
static void swap_bytes(char *restrict a, char *restrict b, size_t n)
{
    char t[1024];
    for (size_t o = 0; o < n; o += sizeof t) {
        size_t k = n - o < sizeof t ? n - o : sizeof t;
        memcpy(t, a + o, k);
        memcpy(a + o, b + o, k);
        memcpy(b + o, t, k);
    }
}

/* Compute kernel: swap block (i, j) with block (j, i) of the [n][n] blocks of m bytes, i < j
 * (threads take rows i; dynamic: the rows shorten). */
static void transpose_blocks(char *c, int n, size_t m)
{
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            swap_bytes(c + ((size_t)i * n + j) * m, c + ((size_t)j * n + i) * m, m);
}

/* Compute kernel: the [na][nb] blocks of m bytes into [nb][na] order, out of place (threads take
 * rows of the output). */
static void transpose_rows(const char *restrict in, char *restrict out, int64_t na, int64_t nb,
                           size_t m)
{
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < nb; j++)
        for (int64_t i = 0; i < na; i++)
            memcpy(out + (size_t)(j * na + i) * m, in + (size_t)(i * nb + j) * m, m);
}

/** The 2-D transform of every local x plane (r2c forward, c2r backward), threads taking planes. */
static void slab_planes(const struct fft_plan *p, char *r, bool forward)
{
    const struct fft_layout *l = &p->layout;
    const struct fft_slab *q = p->slab;
    const size_t plane = (size_t)l->n[1] * l->nkz * q->mode_bytes;
    const int d = forward ? 0 : 1;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        void *x = r + (size_t)i * plane;
        if (q->dbl && forward)
            fftw_execute_dft_r2c(q->d_plane[d], x, x);
        else if (q->dbl)
            fftw_execute_dft_c2r(q->d_plane[d], x, x);
        else if (forward)
            fftwf_execute_dft_r2c(q->f_plane[d], x, x);
        else
            fftwf_execute_dft_c2r(q->f_plane[d], x, x);
    }
}

/** The 1-D transforms along kx of every local ky plane, threads taking planes. */
static void slab_lines(const struct fft_plan *p, char *c, bool forward)
{
    const struct fft_layout *l = &p->layout;
    const struct fft_slab *q = p->slab;
    const size_t kplane = (size_t)l->n[0] * l->nkz * q->mode_bytes;
    const int d = forward ? 0 : 1;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t j = 0; j < l->nk; j++) {
        void *x = c + (size_t)j * kplane;
        if (q->dbl)
            fftw_execute_dft(q->d_line[d], x, x);
        else
            fftwf_execute_dft(q->f_line[d], x, x);
    }
}

/** x planes [local x][n1 ky] -> ky planes [local ky][n0 x] (forward) or back. One rank: the square
 *  blocks swapped in place. Several: the rows are regrouped by ky into the packed buffer and
 *  exchanged (each rank sends every other its ky planes of my x planes and receives its x planes
 *  of my ky planes straight into place), backward in the reverse order. */
static void slab_transpose(const struct fft_plan *p, char *c, bool forward)
{
    const struct fft_layout *l = &p->layout;
    struct fft_slab *q = p->slab;
    const size_t row = (size_t)l->nkz * q->mode_bytes;
    if (q->n_ranks == 1) {
        transpose_blocks(c, l->n[0], row);
        return;
    }
    if (forward) {
        transpose_rows(c, q->packed, l->rnx, l->n[1], row);
        MPI_CHECK(MPI_Alltoallw(q->packed, q->n_packed, q->zeros, q->in_packed, c, q->n_mesh,
                                q->zeros, q->in_mesh, p->comm));
    } else {
        MPI_CHECK(MPI_Alltoallw(c, q->n_mesh, q->zeros, q->in_mesh, q->packed, q->n_packed,
                                q->zeros, q->in_packed, p->comm));
        transpose_rows(q->packed, c, l->n[1], l->rnx, row);
    }
}

static void slab_r2c(const struct fft_plan *p, void *data)
{
    slab_planes(p, data, true);
    slab_transpose(p, data, true);
    slab_lines(p, data, true);
}

static void slab_c2r(const struct fft_plan *p, void *data)
{
    slab_lines(p, data, false);
    slab_transpose(p, data, false);
    slab_planes(p, data, false);
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
    if (slab_applies(p))
        p->slab = plan_slab(p, buf, fl);
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
    slab_destroy(&p->slab);
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
    if (plan->slab)
        slab_r2c(plan, data);
    else if (plan->precision == FFT_PRECISION_FLOAT)
        fftwf_mpi_execute_dft_r2c(plan->f_fwd, data, data);
    else
        fftw_mpi_execute_dft_r2c(plan->d_fwd, data, data);
}

void fft_c2r(const struct fft_plan *plan, void *data)
{
    if (plan->slab)
        slab_c2r(plan, data);
    else if (plan->precision == FFT_PRECISION_FLOAT)
        fftwf_mpi_execute_dft_c2r(plan->f_bwd, data, data);
    else
        fftw_mpi_execute_dft_c2r(plan->d_bwd, data, data);
}
