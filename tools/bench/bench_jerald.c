/*
 * bench_jerald — time JERALD-style displacement layers and maps.
 *
 *   mpirun -n <P> build/bench/bench_jerald [n_part_side [n_mesh [layers]]]   (defaults 256 512 2)
 *
 * n_part_side^3 particles on a perturbed lattice (box 1000 n_part_side / 512 Mpc/h, the emulator's
 * spacing) are migrated to the slabs of an n_mesh^3 mesh. Two maps are evaluated as `lemur jerald`
 * does: a dark-matter map of `layers` layers (dm Green's function) and a stellar map of `layers`
 * layers (sm form) with its final ReLU, each starting from a copy of the input particles. The
 * table gives the time of each layer and phase (max over ranks), the plan set-up
 * (jerald_plan_create and jerald_plan_reserve), and the memory peaks: the labelled allocator's
 * per-rank peak and the resident set size (max over ranks), and
 * the allocator's peak beyond the meshes per particle of a rank (the JERALD working set). Each
 * phase is printed next to its floor (bytes / the measured bandwidth of a rank's threads, or
 * flops / their FMA rate; see phase_floor).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "alloc.h"
#include "jerald_plan.h"
#include "mpi/comm.h"
#include "mpi/migrate.h"
#include "particles.h"
#include "power.h"
#include "timer.h"
#include "bench_common.h"

/** The two maps of the benchmark: dark matter and stellar mass, `layers` layers each. */
static void make_maps(struct jerald_map maps[2], int layers)
{
    memset(maps, 0, 2 * sizeof *maps);
    for (int m = 0; m < 2; m++) {
        snprintf(maps[m].name, sizeof maps[m].name, "%s", m ? "stars" : "dm");
        maps[m].model = m ? JERALD_MODEL_STELLAR : JERALD_MODEL_DM;
        maps[m].green = m ? JERALD_GREEN_SM : JERALD_GREEN_DM;
        maps[m].n_layers = layers;
        maps[m].stellar = -1;
        for (int i = 0; i < layers; i++)
            maps[m].layer[i].density = (struct jerald_term){1.0, 0.5, 1.0, 8.0, 0.0};
        maps[m].final = (struct jerald_final){1.0, 1.5, 0.0, 0.0};
    }
}

static void copy_positions(struct particles *dst, const struct particles *src)
{
    particles_resize(dst, src->n);
    for (int d = 0; d < 3; d++)
        memcpy(dst->x[d], src->x[d], (size_t)src->n * sizeof(float));
}

static const char *const phases[] = {"jerald.paint",   "jerald.source",  "jerald.fft",
                                     "jerald.kspace",  "jerald.readout", "jerald.displace",
                                     "jerald.migrate", "jerald.final"};
enum { N_PHASES = sizeof phases / sizeof phases[0] };

/** What the floors of the phases are made of. */
struct floors {
    double np, nm;    /**< particles and mesh nodes (global) */
    double P;         /**< ranks */
    double bw, flops; /**< bandwidth per rank (bytes/s), FMA rate of a rank's threads (flop/s) */
};

/** Floor of phase i over the whole run (n_layers layers, 2 final maps), or 0 where none applies,
 *  as bytes / bandwidth: paint 12 B per particle + 8 B per node per call; readout 12 B per
 *  particle read, 24 B written-allocated and 12 B per node; the source 8 B per node; k space 32 B
 *  per complex mode; displacement 36 B per particle (the readout read, positions read and
 *  written); migration (several ranks) 20 B per particle (the positions read to find each one's
 *  rank, the destination written-allocated; the few that leave are not counted); and the FFT,
 *  4 transforms of 5 N log2 N / 2 flops per layer / FMA rate. */
static double phase_floor(int i, const struct floors *f, int n_layers)
{
    double L = n_layers, nm = f->nm, np = f->np, bytes = 0;
    switch (i) {
    case 0:
        bytes = (L + 2) * (12 * np + 8 * nm);
        break;
    case 1:
        bytes = L * 8 * nm;
        break;
    case 2:
        return L * 4 * 2.5 * nm * log2(nm) / f->P / f->flops;
    case 3:
        bytes = L * 32 * nm / 2;
        break;
    case 4:
        bytes = L * (36 * np + 12 * nm);
        break;
    case 5:
        bytes = L * 36 * np;
        break;
    case 6:
        bytes = f->P > 1 ? L * 20 * np : 0;
        break;
    case 7:
        bytes = 8 * nm;
        break;
    default:
        return 0;
    }
    return bytes / f->P / f->bw;
}

static void print_phases(MPI_Comm comm, int n_layers, const struct floors *f)
{
    if (comm_rank(comm) == 0)
        printf("%-16s %10s %14s %10s %10s\n", "phase", "total [s]", "per layer [s]", "floor [s]",
               "time/floor");
    for (int i = 0; i < N_PHASES; i++) {
        double t = bench_max_over_ranks(comm, timer_total(phases[i]));
        double fl = phase_floor(i, f, n_layers);
        if (comm_rank(comm) == 0 && fl > 0)
            printf("%-16s %10.3f %14.3f %10.3f %10.1f\n", phases[i] + 7, t, t / n_layers, fl,
                   t / fl);
        else if (comm_rank(comm) == 0)
            printf("%-16s %10.3f %14.3f %10s %10s\n", phases[i] + 7, t, t / n_layers, "-", "-");
    }
}

/** Evaluate both maps: per-layer and per-map wall times and per-map CPU times (max over
 *  ranks). */
static void run_maps(struct jerald_plan *plan, const struct jerald_map maps[2],
                     const struct particles *input, struct particles *work, MPI_Comm comm,
                     double *layer_s, double *map_s, double *cpu_s)
{
    int k = 0;
    for (int m = 0; m < 2; m++) {
        double t_map = timer_now(), c_map = bench_cpu_seconds();
        copy_positions(work, input);
        for (int i = 0; i < maps[m].n_layers; i++) {
            double t0 = timer_now();
            jerald_layer_execute(plan, &maps[m], i, work, NULL);
            layer_s[k++] = bench_max_over_ranks(comm, timer_now() - t0);
        }
        struct jerald_map final_only = maps[m];
        final_only.n_layers = 0;
        jerald_map_execute(plan, &final_only, work, NULL);
        map_s[m] = bench_max_over_ranks(comm, timer_now() - t_map);
        cpu_s[m] = bench_max_over_ranks(comm, bench_cpu_seconds() - c_map);
    }
}

int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    msg_set_verbosity(0);
    int n_side = argc > 1 ? atoi(argv[1]) : 256, n_mesh = argc > 2 ? atoi(argv[2]) : 512;
    int layers = argc > 3 ? atoi(argv[3]) : 2, rank = comm_rank(world), size = comm_size(world);
    double box = 1000.0 * n_side / 512.0;
    struct jerald_map maps[2];
    make_maps(maps, layers);
    struct power_options po = {.compensate = true, .los = 2};
    double t_plan = timer_now();
    struct jerald_plan *plan = jerald_plan_create(n_mesh, box, 6, &po, world);
    t_plan = timer_now() - t_plan;
    struct particles *input = bench_lattice(n_side, box, rank, size);
    migrate_particles(jerald_plan_decomp(plan), input, box);
    struct particles *work = particles_create(PARTICLES_POS, input->cap);
    double t_reserve = timer_now();
    jerald_plan_reserve(plan, work);
    t_plan = bench_max_over_ranks(world, t_plan + timer_now() - t_reserve);
    timer_reset();
    double layer_s[2 * JERALD_MAX_LAYERS], map_s[2], cpu_s[2];
    run_maps(plan, maps, input, work, world, layer_s, map_s, cpu_s);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak = bench_max_over_ranks(world, (double)alloc_peak());
    double rss = bench_max_over_ranks(world, (double)ru.ru_maxrss * 1024.0);
    /* everything but the meshes, per particle of the most loaded rank (both particle copies of
     * the benchmark, input and work, included) */
    double beyond = bench_max_over_ranks(
        world, ((double)alloc_peak() - (double)alloc_label_peak("jerald.mesh")) /
                   (double)(input->n > 0 ? input->n : 1));
    double meshes = bench_max_over_ranks(world, (double)alloc_label_peak("jerald.mesh"));
    if (rank == 0) {
        printf("bench_jerald: %d^3 particles, %d^3 mesh, box %g Mpc/h, %d rank(s) x %d "
               "thread(s); plan %.3f s\n",
               n_side, n_mesh, box, size, omp_get_max_threads(), t_plan);
        for (int m = 0; m < 2; m++) {
            printf("map %-6s (%d layers): %.3f s (cpu %.3f s); layers:", maps[m].name, layers,
                   map_s[m], cpu_s[m]);
            for (int i = 0; i < layers; i++)
                printf(" %.3f", layer_s[m * layers + i]);
            printf(" s\n");
        }
    }
    double bw = bench_triad_bandwidth(), fl = bench_fma_rate();
    comm_min_double(world, &bw, 1);
    comm_min_double(world, &fl, 1);
    struct floors f = {pow(n_side, 3), pow(n_mesh, 3), size, bw, fl * omp_get_max_threads()};
    print_phases(world, 2 * layers, &f);
    if (rank == 0)
        printf("memory peak per rank: allocator %.1f MiB, resident %.1f MiB; meshes %.1f MiB, "
               "the rest %.1f B per particle\n",
               peak / 1048576, rss / 1048576, meshes / 1048576, beyond);
    particles_destroy(&work);
    particles_destroy(&input);
    jerald_plan_destroy(&plan);
    comm_finalize(&world);
    return 0;
}
