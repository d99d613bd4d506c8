/*
 * bench_jerald_fit — time one optimisation step of `lemur jerald-fit`: the loss and its gradient
 * with respect to every parameter of a dark-matter map (forward layers, final map, loss, reverse
 * pass), plus the Adam update.
 *
 *   mpirun -n <P> build/bench/bench_jerald_fit [n_part_side [n_mesh [layers [steps]]]]
 *                                                                    (defaults 128 128 2 3)
 *
 * n_part_side^3 particles on a perturbed lattice (box 1000 n_part_side / 512 Mpc/h) are migrated
 * to the slabs of an n_mesh^3 mesh; the target is the map of the same particles with every α
 * raised by 30%. After one warm-up evaluation, `steps` steps are timed; the table gives the
 * seconds per step, per step and layer (the figure JERALD quotes: 15-20 s per layer at 512^3 on 32
 * CPUs), the phases (max over ranks) and the memory peaks (the labelled allocator's per-rank peak
 * and the resident set size, max over ranks).
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "alloc.h"
#include "jerald_adjoint.h"
#include "jerald_fit_plan.h"
#include "jerald_plan.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "particles.h"
#include "power.h"
#include "timer.h"
#include "bench_common.h"

static const char *const phases[] = {"jerald_fit.forward", "jerald_fit.loss", "jerald_fit.final",
                                     "jerald_fit.paint",   "jerald_fit.fft",  "jerald_fit.kspace",
                                     "jerald_fit.readout", "route",           "jerald_fit.reverse"};
enum { N_PHASES = sizeof phases / sizeof phases[0] };

static struct jerald_map dm_map(int layers, double alpha)
{
    struct jerald_map m = {.name = "dm", .model = JERALD_MODEL_DM, .n_layers = layers};
    m.stellar = -1;
    for (int i = 0; i < layers; i++)
        m.layer[i].density = (struct jerald_term){alpha, 0.5, 1.0, 8.0, 0.0};
    return m;
}

/** The target: the map of m on a copy of the particles. */
static void set_target(struct jerald_fit_plan *plan, const struct jerald_map *m,
                       const struct particles *x0)
{
    struct jerald_plan *fwd = jerald_fit_plan_forward(plan);
    struct particles *w = particles_create(PARTICLES_POS | PARTICLES_ID, x0->n);
    particles_resize(w, x0->n);
    for (int d = 0; d < 3; d++)
        memcpy(w->x[d], x0->x[d], (size_t)x0->n * sizeof(float));
    memset(w->id, 0, (size_t)x0->n * sizeof(uint64_t));
    float *t = jerald_mesh_alloc(fwd, "bench.target");
    memcpy(t, jerald_map_execute(fwd, m, w, NULL), fft_alloc_bytes(jerald_plan_fft(fwd)));
    struct jerald_loss loss = {.p = 2};
    jerald_fit_set_target(plan, t, &loss);
    lm_free(t);
    particles_destroy(&w);
}

int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    msg_set_verbosity(0);
    int n_side = argc > 1 ? atoi(argv[1]) : 128, n_mesh = argc > 2 ? atoi(argv[2]) : 128;
    int layers = argc > 3 ? atoi(argv[3]) : 2, steps = argc > 4 ? atoi(argv[4]) : 3;
    int rank = comm_rank(world), size = comm_size(world);
    double box = 1000.0 * n_side / 512.0;
    struct power_options po = {.compensate = true, .los = 2};
    double t_plan = timer_now();
    struct jerald_fit_plan *plan = jerald_fit_plan_create(n_mesh, box, 6, &po, world);
    t_plan = bench_max_over_ranks(world, timer_now() - t_plan);
    struct particles *x0 = bench_lattice(n_side, box, rank, size);
    migrate_particles(jerald_plan_decomp(jerald_fit_plan_forward(plan)), x0, box);
    struct jerald_map planted = dm_map(layers, 1.3), m = dm_map(layers, 1.0);
    set_target(plan, &planted, x0);
    struct jerald_map *grad = lm_calloc("bench.grad", 1, sizeof *grad);
    int n = jerald_fit_pack(&m, 0, NULL);
    double *theta = lm_calloc("bench.adam", 4 * (size_t)n, sizeof(double));
    struct jerald_adam adam = {
        .n = n, .m = theta + 2 * n, .v = theta + 3 * n, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    double loss[JERALD_N_REGIONS];
    jerald_fit_evaluate(plan, &m, 0, x0, NULL, loss, grad); /* warm-up: buffers, migrate plan */
    timer_reset();
    double t0 = timer_now(), c0 = bench_cpu_seconds();
    for (int s = 0; s < steps; s++) {
        jerald_fit_evaluate(plan, &m, 0, x0, NULL, loss, grad);
        jerald_fit_pack(&m, 0, theta);
        jerald_fit_pack(grad, 0, theta + n);
        jerald_adam_step(&adam, theta, theta + n, 1e-2);
        jerald_fit_unpack(&m, 0, theta);
    }
    double t = bench_max_over_ranks(world, timer_now() - t0) / steps;
    double cpu = bench_max_over_ranks(world, bench_cpu_seconds() - c0) / steps;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak = bench_max_over_ranks(world, (double)alloc_peak());
    double rss = bench_max_over_ranks(world, (double)ru.ru_maxrss * 1024.0);
    if (rank == 0) {
        printf("bench_jerald_fit: %d^3 particles, %d^3 mesh, box %g Mpc/h, %d layer(s), %d rank(s) "
               "x %d thread(s); plan %.3f s\n",
               n_side, n_mesh, box, layers, size, omp_get_max_threads(), t_plan);
        printf("optimisation step (loss + gradient + Adam): %.3f s, %.3f s per layer (cpu %.3f s "
               "per step); training loss %.6e\n",
               t, t / layers, cpu, loss[JERALD_REGION_TRAIN]);
        printf("%-20s %12s %14s\n", "phase", "per step [s]", "per layer [s]");
    }
    for (int i = 0; i < N_PHASES; i++) {
        double p = bench_max_over_ranks(world, timer_total(phases[i])) / steps;
        if (rank == 0)
            printf("%-20s %12.3f %14.3f\n", phases[i], p, p / layers);
    }
    if (rank == 0)
        printf("memory peak per rank: allocator %.1f MiB, resident %.1f MiB\n", peak / 1048576,
               rss / 1048576);
    lm_free(theta);
    lm_free(grad);
    particles_destroy(&x0);
    jerald_fit_plan_destroy(&plan);
    comm_finalize(&world);
    return 0;
}
