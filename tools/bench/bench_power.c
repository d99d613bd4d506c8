/*
 * bench_power — time the stages of a power-spectrum measurement and compare them with floors.
 *
 *   mpirun -n <P> build/bench/bench_power [n_mesh [n_part_side [repeats]]]   (defaults 256 256 3)
 *
 * n_part_side^3 particles on a perturbed lattice (Lagrangian order, as the emulator writes them)
 * are migrated to the FFT slabs, painted with CIC onto an n_mesh^3 mesh, transformed, normalised /
 * compensated and binned. Each stage is timed (max over ranks, mean of the repeats after one
 * warm-up) next to its
 * floor on this machine:
 *   paint     (12 B per particle read + 8 B per mesh node written-allocated) / bandwidth
 *   (sort)    the part of paint that orders the particles by x plane: 4 B per particle read
 *   fft       5 N log2 N / 2 flops (real-to-complex: half the complex count) / measured FMA rate
 *   k-space   8 B per complex mode read + written / bandwidth (normalise, window)
 *   bin       8 B per complex mode read / bandwidth
 *   readout   (12 B per particle read + 8 B written-allocated + 4 B per mesh node read) /
 *             bandwidth: the CIC gather of one field at the particles (the adjoint of paint;
 *             timed apart)
 * The bandwidth is measured by all ranks at once, each on its OpenMP threads (each rank's share of
 * the node), counting the bytes the memory moves (write-allocate included, as in the floors),
 * the FMA rate per core (times the threads of a rank); floors divide the work evenly
 * over the ranks. Memory:
 * the per-rank peak of the labelled allocator (max over ranks).
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

/** Keeps the measuring loops from being optimised away. */

struct stage_row {
    const char *name, *timer;
    double floor_s;
};

static void print_table(MPI_Comm comm, const struct stage_row *rows, int n_rows, int repeats)
{
    if (comm_rank(comm) == 0)
        printf("%-10s %12s %12s %10s\n", "stage", "time [s]", "floor [s]", "time/floor");
    for (int i = 0; i < n_rows; i++) {
        double t = bench_max_over_ranks(comm, timer_total(rows[i].timer)) / repeats;
        if (comm_rank(comm) == 0)
            printf("%-10s %12.4f %12.4f %10.1f\n", rows[i].name, t, rows[i].floor_s,
                   t / rows[i].floor_s);
    }
}

int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    int n_mesh = argc > 1 ? atoi(argv[1]) : 256, n_side = argc > 2 ? atoi(argv[2]) : 256;
    int repeats = argc > 3 ? atoi(argv[3]) : 3, rank = comm_rank(world), size = comm_size(world);
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
    struct power_spectrum *s = power_spectrum_create(power_plan_n_bins(pp), 1);
    /* readout (timed after the spectra) on a painter of the same FFT, at the particles */
    struct paint_plan *ro = paint_plan_create(power_plan_fft(pp), 1, world);
    float *val = lm_malloc("bench.readout", (size_t)(p->n + 1) * sizeof(float));
    struct cic_points pts = {.n = p->n, .x = {p->x[0], p->x[1], p->x[2]}};
    paint_execute(ro, 1, &mesh, &pts, 0.0);
    power_density(pp, p, mesh, NULL); /* warm-up: first touch of the mesh pages */
    timer_reset();
    double cpu_total = bench_cpu_seconds();
    for (int r = 0; r < repeats; r++) {
        timer_start("bench.total");
        power_density(pp, p, mesh, NULL);
        power_measure(pp, 1, &mesh, &mesh, s);
        timer_stop("bench.total");
    }
    cpu_total = bench_cpu_seconds() - cpu_total;
    double cpu_readout = bench_cpu_seconds();
    for (int r = 0; r < repeats; r++)
        paint_readout(ro, 1, &mesh, &pts, 0.0, &val);
    cpu_readout = bench_cpu_seconds() - cpu_readout;
    cpu_total = bench_max_over_ranks(world, cpu_total) / repeats;
    cpu_readout = bench_max_over_ranks(world, cpu_readout) / repeats;
    double peak = bench_max_over_ranks(world, (double)alloc_peak());
    double bw = bench_triad_bandwidth(), fl = bench_fma_rate();
    comm_min_double(world, &bw, 1);
    comm_min_double(world, &fl, 1);
    double np = pow(n_side, 3), nm = pow(n_mesh, 3), nk = nm / 2, P = size;
    double threads = omp_get_max_threads();
    double share = bw; /* measured by all ranks at once: each rank's share of the node */
    const struct stage_row rows[] = {
        {"paint", "power.paint", (12 * np + 8 * nm) / P / share},
        {"(sort)", "paint.sort", 4 * np / P / share},
        {"fft", "power.fft", 2.5 * nm * log2(nm) / P / (fl * threads)},
        {"k-space", "power.kspace", 16 * nk / P / share},
        {"bin", "power.bin", 8 * nk / P / share},
        {"readout", "paint.readout", (20 * np + 4 * nm) / P / share},
        {"total", "bench.total",
         ((12 * np + 8 * nm) / share + 24 * nk / share) / P +
             2.5 * nm * log2(nm) / P / (fl * threads)},
    };
    if (rank == 0)
        printf("bench_power: %d^3 particles, %d^3 mesh, %d rank(s) x %d thread(s), mean of %d; "
               "bandwidth %.1f GB/s per rank, float FMA rate %.1f Gflop/s per core; migration "
               "%.3f s\n",
               n_side, n_mesh, size, (int)threads, repeats, bw / 1e9, fl / 1e9, t_migrate);
    print_table(world, rows, 7, repeats);
    if (rank == 0)
        printf("CPU time per repeat (all threads of a rank, max over ranks): total %.4f s, "
               "readout %.4f s (wall much above CPU / threads: the cores were shared)\n",
               cpu_total, cpu_readout);
    if (rank == 0)
        printf("memory peak per rank %.1f MiB (mesh %.1f MiB, particles %.1f MiB per rank); "
               "P(k=%.4f) = %.6g\n",
               peak / 1048576, fft_alloc_bytes(power_plan_fft(pp)) / 1048576.0,
               12 * np / P / 1048576, s->k[4], s->P[0][4]);
    power_spectrum_destroy(&s);
    lm_free(val);
    paint_plan_destroy(&ro);
    lm_free(mesh);
    particles_destroy(&p);
    power_plan_destroy(&pp);
    comm_finalize(&world);
    return 0;
}
