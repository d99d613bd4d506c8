#include "mpi/fft.h"

#include <fftw3-mpi.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"

struct fft_plan {
    struct fft_layout layout;
    enum fft_precision precision;
    MPI_Comm comm;
    fftwf_plan f_fwd, f_bwd;
    fftw_plan d_fwd, d_bwd;
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
    if (precision == FFT_PRECISION_FLOAT)
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
    if (plan->precision == FFT_PRECISION_FLOAT)
        fftwf_mpi_execute_dft_r2c(plan->f_fwd, data, data);
    else
        fftw_mpi_execute_dft_r2c(plan->d_fwd, data, data);
}

void fft_c2r(const struct fft_plan *plan, void *data)
{
    if (plan->precision == FFT_PRECISION_FLOAT)
        fftwf_mpi_execute_dft_c2r(plan->f_bwd, data, data);
    else
        fftw_mpi_execute_dft_c2r(plan->d_bwd, data, data);
}
