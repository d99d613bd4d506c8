/*
 * bench_fft — time lemur's distributed 3-D FFTs next to FFTW-MPI's and the floors.
 *
 *   mpirun -n <P> build/bench/bench_fft [n [repeats]]   (defaults 256 5)
 *
 * For float and double, an n^3 mesh is transformed forward (r2c) and back (c2r) in place by an
 * fft_plan (lemur's slab transform where it applies, see src/mpi/fft.h) and by FFTW-MPI's own
 * transposed plans (FFTW_ESTIMATE, the rank's OpenMP threads) on the same buffer; each row gives
 * the best of the repeats (max over ranks) of one transform. Floors: the flops, 5 N log2 N / 2 per
 * r2c or c2r, over the FMA rate of the rank's threads (bench_fma_rate, float; a double FMA does
 * half the work), and, with several ranks, the bytes of the transpose over the measured bandwidth:
 * the local slab read, regrouped (written-allocated) and received (written-allocated), 5 slab
 * sizes.
 */
#include <fftw3-mpi.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "timer.h"
#include "bench_common.h"

/** FFTW-MPI's transposed pair on buf, float or double. */
struct fftw_pair {
    fftwf_plan f[2];
    fftw_plan d[2];
};

static struct fftw_pair fftw_pair_create(int n, bool dbl, void *buf, MPI_Comm comm)
{
    struct fftw_pair q = {{0}, {0}};
    const unsigned fwd = FFTW_ESTIMATE | FFTW_MPI_TRANSPOSED_OUT;
    const unsigned bwd = FFTW_ESTIMATE | FFTW_MPI_TRANSPOSED_IN;
    if (dbl) {
        fftw_plan_with_nthreads(omp_get_max_threads());
        q.d[0] = fftw_mpi_plan_dft_r2c_3d(n, n, n, buf, buf, comm, fwd);
        q.d[1] = fftw_mpi_plan_dft_c2r_3d(n, n, n, buf, buf, comm, bwd);
    } else {
        fftwf_plan_with_nthreads(omp_get_max_threads());
        q.f[0] = fftwf_mpi_plan_dft_r2c_3d(n, n, n, buf, buf, comm, fwd);
        q.f[1] = fftwf_mpi_plan_dft_c2r_3d(n, n, n, buf, buf, comm, bwd);
    }
    return q;
}

static void fftw_pair_execute(const struct fftw_pair *q, bool dbl, int dir)
{
    if (dbl)
        fftw_execute(q->d[dir]);
    else
        fftwf_execute(q->f[dir]);
}

static void fftw_pair_destroy(struct fftw_pair *q, bool dbl)
{
    for (int d = 0; d < 2; d++) {
        if (dbl)
            fftw_destroy_plan(q->d[d]);
        else
            fftwf_destroy_plan(q->f[d]);
    }
}

/** Seconds of one transform in direction dir (0: r2c, 1: c2r) by lemur (which = 0) or FFTW-MPI
 *  (which = 1), max over ranks. */
static double timed(MPI_Comm comm, const struct fft_plan *p, const struct fftw_pair *q, bool dbl,
                    void *buf, int which, int dir)
{
    MPI_Barrier(comm);
    double t0 = timer_now();
    if (which == 0 && dir == 0)
        fft_r2c(p, buf);
    else if (which == 0)
        fft_c2r(p, buf);
    else
        fftw_pair_execute(q, dbl, dir);
    return bench_max_over_ranks(comm, timer_now() - t0);
}

int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    const int n = argc > 1 ? atoi(argv[1]) : 256, repeats = argc > 2 ? atoi(argv[2]) : 5;
    const int P = comm_size(world), threads = omp_get_max_threads();
    double bw = bench_triad_bandwidth(), fl = bench_fma_rate();
    comm_min_double(world, &bw, 1);
    comm_min_double(world, &fl, 1);
    const double N = pow(n, 3), flops = 2.5 * N * log2(N) / P;
    if (comm_rank(world) == 0) {
        printf("bench_fft: %d^3 mesh, %d rank(s) x %d thread(s), best of %d; bandwidth %.1f GB/s "
               "per rank, float FMA rate %.1f Gflop/s per core\n",
               n, P, threads, repeats, bw / 1e9, fl / 1e9);
        printf("%-8s %-4s %12s %12s %9s %12s %12s\n", "type", "dir", "lemur [s]", "FFTW-MPI [s]",
               "speed-up", "flops [s]", "transpose [s]");
    }
    const int nn[3] = {n, n, n};
    for (int pr = 0; pr < 2; pr++) {
        const bool dbl = pr == 1;
        struct fft_plan *p = fft_plan_create(
            nn, NULL, dbl ? FFT_PRECISION_DOUBLE : FFT_PRECISION_FLOAT, 0, NULL, world);
        void *buf = fft_alloc(p, "bench.fft");
        struct fftw_pair q = fftw_pair_create(n, dbl, buf, world);
        const size_t real = dbl ? sizeof(double) : sizeof(float);
        const double slab = (double)fft_layout(p)->rnx * n * fft_layout(p)->row * (double)real;
        double best[2][2] = {{INFINITY, INFINITY}, {INFINITY, INFINITY}};
        for (int r = 0; r <= repeats; r++) /* the first round warms up (first touch) */
            for (int which = 0; which < 2; which++)
                for (int dir = 0; dir < 2; dir++) {
                    double t = timed(world, p, &q, dbl, buf, which, dir);
                    if (r > 0)
                        best[which][dir] = fmin(best[which][dir], t);
                }
        const double f_floor = flops / (fl * threads / (dbl ? 2.0 : 1.0));
        const double t_floor = 5 * slab / bw;
        char tf[32] = "-"; /* one rank: no exchange */
        if (P > 1)
            snprintf(tf, sizeof tf, "%.4f", t_floor);
        for (int dir = 0; dir < 2 && comm_rank(world) == 0; dir++)
            printf("%-8s %-4s %12.4f %12.4f %9.2f %12.4f %12s\n", dbl ? "double" : "float",
                   dir ? "c2r" : "r2c", best[0][dir], best[1][dir], best[1][dir] / best[0][dir],
                   f_floor, tf);
        fftw_pair_destroy(&q, dbl);
        lm_free(buf);
        fft_plan_destroy(&p);
    }
    comm_finalize(&world);
    return 0;
}
