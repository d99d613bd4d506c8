/*
 * bench_common — what lemur's benchmarks share: the machine's measured rates (the floors printed
 * next to every measurement), a rank-count-independent particle set, and small timing helpers.
 * Header-only (static inline): each benchmark is one translation unit built by `make bench`.
 */
#ifndef LEMUR_BENCH_COMMON_H
#define LEMUR_BENCH_COMMON_H

#include <math.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "alloc.h"
#include "particles.h"
#include "timer.h"

/** Keeps measured loops from being optimised away. */
static volatile double bench_sink;

/** Sustained bandwidth of this process (bytes/s) on its OpenMP threads while every rank runs it,
 *  best of a few passes of b = 1.5 a + 0.5 over 2 x 256 MiB: each rank's share of the node. The
 *  bytes counted are those the memory moves: a read, b read for ownership and b written (24 B per
 *  element), so the floors count written arrays twice too (write-allocate). */
static inline double bench_triad_bandwidth(void)
{
    size_t n = (size_t)32 << 20;
    double *a = lm_malloc("bench.stream", n * sizeof(double));
    double *b = lm_malloc("bench.stream", n * sizeof(double));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = (double)i;
        b[i] = 0;
    }
    double best = 0;
    for (int r = 0; r < 4; r++) {
        double t0 = timer_now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            b[i] = 1.5 * a[i] + 0.5;
        double t = timer_now() - t0;
        best = fmax(best, 3.0 * (double)n * sizeof(double) / t);
        bench_sink = b[r];
    }
    lm_free(a);
    lm_free(b);
    return best;
}

/** Single-core float FMA rate (flop/s) on L1-resident data: the FFT's compute ceiling. */
static inline double bench_fma_rate(void)
{
    enum { N = 2048, REPS = 40000 };
    static float y[N];
    for (int i = 0; i < N; i++)
        y[i] = 1.0f / (float)(i + 1);
    double t0 = timer_now();
    for (int r = 0; r < REPS; r++)
        for (int i = 0; i < N; i++)
            y[i] = y[i] * 0.999999f + 1e-7f;
    double t = timer_now() - t0;
    bench_sink = y[N - 1];
    return 2.0 * N * (double)REPS / t;
}

/** Single-core rates of the CIC kernels' memory operations on data in L1 (16 KiB tables: the
 *  best case, every access a hit): independent scattered double adds
 *  a[j] += w (paint makes 8 per particle and field) and gathered float loads times a weight
 *  (readout makes 8 per particle and field), j pseudo-random. Per second, best of 5. */
static inline void bench_scatter_gather_rates(double *adds_per_s, double *loads_per_s)
{
    enum { TABLE = 2048, N = 1 << 20 };
    double *a = lm_calloc("bench.scatter", TABLE, sizeof(double));
    float *b = lm_calloc("bench.scatter", TABLE, sizeof(float));
    uint32_t *j = lm_malloc("bench.scatter", N * sizeof(uint32_t));
    float *w = lm_malloc("bench.scatter", N * sizeof(float));
    uint64_t z = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        z ^= z << 13, z ^= z >> 7, z ^= z << 17; /* xorshift64 */
        j[i] = (uint32_t)(z % TABLE);
        w[i] = (float)(z >> 40) * 1e-7f;
    }
    double best_s = 1e30, best_g = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = timer_now();
        for (int i = 0; i < N; i++)
            a[j[i]] += (double)w[i];
        double t1 = timer_now();
        for (int i = 0; i < N; i++)
            w[i] = w[i] * b[j[i]];
        double t2 = timer_now();
        best_s = fmin(best_s, t1 - t0);
        best_g = fmin(best_g, t2 - t1);
    }
    bench_sink = a[j[7]] + w[N - 1];
    *adds_per_s = N / best_s;
    *loads_per_s = N / best_g;
    lm_free(a);
    lm_free(b);
    lm_free(j);
    lm_free(w);
}

/** A pseudo-random number in [-0.5, 0.5) of a global counter (splitmix64), so that the particle
 *  set does not depend on the number of ranks. */
static inline double bench_offset(uint64_t z)
{
    z = (z + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0 - 0.5;
}

/** This rank's share of an n^3 lattice (x planes in rank order) displaced by up to 0.4 cells. */
static inline struct particles *bench_lattice(int n, double box, int rank, int size)
{
    int64_t i0 = (int64_t)n * rank / size, i1 = (int64_t)n * (rank + 1) / size;
    int64_t m = (i1 - i0) * n * n, q0 = i0 * n * n;
    struct particles *p = particles_create(PARTICLES_POS, m);
    particles_resize(p, m);
    double h = box / n;
    for (int64_t q = 0; q < m; q++) {
        int64_t g[3] = {i0 + q / ((int64_t)n * n), (q / n) % n, q % n};
        for (int d = 0; d < 3; d++) {
            double x = (g[d] + 0.8 * bench_offset((uint64_t)(q0 + q) * 3 + (uint64_t)d)) * h;
            p->x[d][q] = (float)(x < 0 ? x + box : x >= box ? x - box : x);
        }
    }
    return p;
}

static inline double bench_max_over_ranks(MPI_Comm comm, double v)
{
    comm_max_double(comm, &v, 1);
    return v;
}

/** CPU seconds of this process (wall time much above it means the cores were shared). */
static inline double bench_cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
