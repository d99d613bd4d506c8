/*
 * bench_power — time the stages of a power-spectrum measurement and compare them with floors.
 *
 *   mpirun -n <P> build/bench/bench_power [n_mesh [n_part_side [repeats [interlace]]]]
 *   (defaults 256 256 3 0; interlace 1: the interlaced spectrum, two meshes painted and transformed
 *   per field, the second in the painting order of the first)
 *
 * n_part_side^3 particles on a perturbed lattice (Lagrangian order, as the emulator writes them)
 * are migrated to the FFT slabs, painted with CIC onto an n_mesh^3 mesh, transformed, normalised /
 * compensated and binned. Each stage is timed (max over ranks, best of the repeats after one
 * warm-up) next to its floor on this machine:
 *   paint     (12 B per particle read + 8 B per mesh node written-allocated) / bandwidth
 *             (interlaced: the particles read twice, two meshes written)
 *   (sort)    the part of paint that orders the particles by x plane: 4 B per particle read
 *   fft       5 N log2 N / 2 flops (real-to-complex: half the complex count) / measured FMA rate
 *   k-space   8 B per complex mode read + written / bandwidth (normalise, window; interlaced:
 *             the second mesh read too)
 *   bin       8 B per complex mode read / bandwidth
 *   readout   (12 B per particle read + 8 B written-allocated + 4 B per mesh node read) /
 *             bandwidth: the CIC gather of one field at the particles (the adjoint of paint;
 *             timed apart)
 * Below the table, paint and readout against the rate of their inner step alone: 8 scattered
 * double adds and 8 gathered loads per particle at the rate this core sustains for that loop in
 * isolation with every access an L1 hit (bench_scatter_gather_rates). Not a hardware limit (the
 * isolated loop loads its indices too), but what scalar code of that shape achieves here: a
 * paint or readout near it is bound by its scattered memory operations, not by bandwidth.
 * The bandwidth is measured by all ranks at once, each on its OpenMP threads (each rank's share of
 * the node), counting the bytes the memory moves (write-allocate included, as in the floors),
 * the FMA rate per core (times the threads of a rank); floors divide the work evenly
 * over the ranks. With more than one thread per rank the stages are timed again in the same run
 * at one thread per rank (plans made anew at one thread, the same particles and mesh): the last
 * columns are those times and the speed-up of the threads. Memory: the per-rank peak of the
 * labelled allocator (max over ranks).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "mpi/paint.h"
#include "particles.h"
#include "power_plan.h"
#include "timer.h"
#include "bench_common.h"

/** The stages of the table: name, timer, floor (s). */
struct stage_row {
    const char *name, *timer;
    double floor_s;
};

enum { N_ROWS = 7 };

/** What one layout (a thread count) measures: best seconds per row (max over ranks), CPU seconds
 *  per repeat, the spectrum. */
struct layout_times {
    double best[N_ROWS], cpu;
};

/* One warm-up, then `repeats` times: the spectrum (paint, FFT, k-space, binning: "bench.total")
 * and, apart, the readout of the mesh at the particles; each row keeps its best repeat. */
static void measure(MPI_Comm comm, struct power_plan *pp, struct paint_plan *ro,
                    const struct particles *p, float *mesh, float *val, struct power_spectrum *s,
                    const struct stage_row *rows, int repeats, struct layout_times *out)
{
    struct cic_points pts = {.n = p->n, .x = {p->x[0], p->x[1], p->x[2]}};
    power_density(pp, p, mesh, NULL); /* warm-up: first touch of the pages */
    paint_readout(ro, 1, &mesh, &pts, 0.0, &val);
    double cpu = bench_cpu_seconds();
    for (int i = 0; i < N_ROWS; i++)
        out->best[i] = INFINITY;
    for (int r = 0; r < repeats; r++) {
        timer_reset();
        timer_start("bench.total");
        power_density(pp, p, mesh, NULL);
        power_measure(pp, 1, &mesh, &mesh, s);
        timer_stop("bench.total");
        paint_readout(ro, 1, &mesh, &pts, 0.0, &val);
        for (int i = 0; i < N_ROWS; i++) {
            double t = bench_max_over_ranks(comm, timer_total(rows[i].timer));
            out->best[i] = t < out->best[i] ? t : out->best[i];
        }
    }
    out->cpu = bench_max_over_ranks(comm, bench_cpu_seconds() - cpu) / repeats;
}

/** Plans at the current thread count and one measurement. */
static void measure_layout(MPI_Comm comm, const int n[3], const double box[3], bool interlace,
                           const struct particles *p, float *mesh, float *val,
                           const struct stage_row *rows, int repeats, struct layout_times *out,
                           struct power_spectrum **spectrum)
{
    struct power_options o = {.compensate = true, .interlace = interlace};
    struct power_plan *pp = power_plan_create(n, box, &o, comm);
    struct paint_plan *ro = paint_plan_create(power_plan_fft(pp), 1, comm);
    struct power_spectrum *s = power_spectrum_create(power_plan_n_bins(pp), 1);
    measure(comm, pp, ro, p, mesh, val, s, rows, repeats, out);
    if (spectrum)
        *spectrum = s;
    else
        power_spectrum_destroy(&s);
    paint_plan_destroy(&ro);
    power_plan_destroy(&pp);
}

int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    int n_mesh = argc > 1 ? atoi(argv[1]) : 256, n_side = argc > 2 ? atoi(argv[2]) : 256;
    int repeats = argc > 3 ? atoi(argv[3]) : 3, rank = comm_rank(world), size = comm_size(world);
    const bool interlace = argc > 4 && atoi(argv[4]) != 0;
    const int threads = omp_get_max_threads();
    double box = 1000.0 * n_side / 512.0;
    const int n[3] = {n_mesh, n_mesh, n_mesh};
    const double boxes[3] = {box, box, box};
    struct power_options o = {.compensate = true};
    struct power_plan *pp = power_plan_create(n, boxes, &o, world);
    struct particles *p = bench_lattice(n_side, box, rank, size);
    double t_migrate = timer_now();
    migrate_particles(power_plan_decomp(pp), p, box);
    t_migrate = bench_max_over_ranks(world, timer_now() - t_migrate);
    float *mesh = power_mesh_alloc(pp, "bench.mesh");
    float *val = lm_malloc("bench.readout", (size_t)(p->n + 1) * sizeof(float));
    size_t mesh_bytes = fft_alloc_bytes(power_plan_fft(pp));
    power_plan_destroy(&pp);

    struct stage_row rows[N_ROWS] = {
        {"paint", "power.paint", 0}, {"(sort)", "paint.sort", 0},
        {"fft", "power.fft", 0},     {"k-space", "power.kspace", 0},
        {"bin", "power.bin", 0},     {"readout", "paint.readout", 0},
        {"total", "bench.total", 0},
    };
    struct layout_times many, one;
    struct power_spectrum *s = NULL;
    measure_layout(world, n, boxes, interlace, p, mesh, val, rows, repeats, &many, &s);
    if (threads > 1) {
        omp_set_num_threads(1);
        measure_layout(world, n, boxes, interlace, p, mesh, val, rows, repeats, &one, NULL);
        omp_set_num_threads(threads);
    }
    double peak = bench_max_over_ranks(world, (double)alloc_peak());

    double bw = bench_triad_bandwidth(), fl = bench_fma_rate(), adds, loads;
    bench_scatter_gather_rates(&adds, &loads);
    comm_min_double(world, &bw, 1);
    comm_min_double(world, &fl, 1);
    comm_min_double(world, &adds, 1);
    comm_min_double(world, &loads, 1);
    double np = pow(n_side, 3), nm = pow(n_mesh, 3), nk = nm / 2, P = size;
    double share = bw; /* measured by all ranks at once: each rank's share of the node */
    const double m = interlace ? 2 : 1; /* meshes per field */
    const double paint_b = m * (12 * np + 8 * nm), fft_s = m * 2.5 * nm * log2(nm) / (fl * threads);
    const double floors[N_ROWS] = {
        paint_b / P / share,                                   /* paint */
        4 * np / P / share,                                    /* its sort */
        fft_s / P,                                             /* fft */
        (8 * m + 8) * nk / P / share,                          /* k-space */
        8 * nk / P / share,                                    /* bin */
        (20 * np + 4 * nm) / P / share,                        /* readout */
        (paint_b + (8 * m + 16) * nk) / P / share + fft_s / P, /* total */
    };
    for (int i = 0; i < N_ROWS; i++)
        rows[i].floor_s = floors[i];
    if (rank == 0) {
        printf("bench_power: %d^3 particles, %d^3 mesh%s, %d rank(s) x %d thread(s), best of %d; "
               "bandwidth %.1f GB/s per rank, float FMA rate %.1f Gflop/s per core; migration "
               "%.3f s\n",
               n_side, n_mesh, interlace ? " (interlaced)" : "", size, threads, repeats, bw / 1e9,
               fl / 1e9, t_migrate);
        printf("%-10s %12s %12s %10s", "stage", "time [s]", "floor [s]", "time/floor");
        if (threads > 1)
            printf(" %14s %9s", "1 thread [s]", "speed-up");
        printf("\n");
        for (int i = 0; i < N_ROWS; i++) {
            printf("%-10s %12.4f %12.4f %10.1f", rows[i].name, many.best[i], rows[i].floor_s,
                   many.best[i] / rows[i].floor_s);
            if (threads > 1)
                printf(" %14.4f %9.2f", one.best[i], one.best[i] / many.best[i]);
            printf("\n");
        }
        double paint_ops = 8 * m * np / P / (adds * threads),
               read_ops = 8 * np / P / (loads * threads);
        printf(
            "inner-step floors (this core's %.2g scattered double adds/s and %.2g gathered float "
            "loads/s in L1, times %d thread(s)): paint %.4f s (8 adds per particle and mesh; at "
            "%.1fx), "
            "readout %.4f s (8 loads per particle; at %.1fx)\n",
            adds, loads, threads, paint_ops, many.best[0] / paint_ops, read_ops,
            many.best[5] / read_ops);
        printf("CPU time per repeat of the spectrum and the readout (all threads of a rank, max "
               "over ranks): %.4f s (wall much above CPU / threads: the cores were shared)\n",
               many.cpu);
        printf("memory peak per rank %.1f MiB (mesh %.1f MiB, particles %.1f MiB per rank); "
               "P(k=%.4f) = %.6g\n",
               peak / 1048576, mesh_bytes / 1048576.0, 12 * np / P / 1048576, s->k[4], s->P[0][4]);
    }
    power_spectrum_destroy(&s);
    lm_free(val);
    lm_free(mesh);
    particles_destroy(&p);
    comm_finalize(&world);
    return 0;
}
