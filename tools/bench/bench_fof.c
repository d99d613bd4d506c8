/*
 * bench_fof — friends-of-friends throughput and memory on Zel'dovich particles.
 *
 *   OMP_NUM_THREADS=<t> mpirun -n <P> build/bench/bench_fof [n [lpt_order [b [repeats]]]]
 *                                                        (defaults 256 1 0.2 2)
 *
 * n^3 particles at z = 0 in a box of n·1000/512 Mpc/h (the emulator's spacing), made by lemur's
 * IC plan (Eisenstein & Hu, Quijote fiducial cosmology, seed 42; lpt_order 2 adds 2LPT), are
 * searched with ℓ = b L / n (min_length 20). One warm-up search, then repeats timed searches
 * (max over ranks; the first migration from the IC slabs is in the warm-up). Reported:
 *   particles/s     n^3 / time of a search (migration, ghosts, linking, merging, groups, gather)
 *   per phase       fof.migrate, fof.ghosts, fof.link, fof.merge, fof.groups, fof.gather
 *   B/particle      (peak of the labelled allocator during a search - the store before it) / the
 *                   rank's particles (max over ranks): the memory beyond the particle store
 *                   (positions, velocities, IDs: 32 B per particle)
 * A floor for linking: 12 B per particle read per neighbour cell visit is not meaningful for a
 * random-access union-find, so the table gives the measured rates only, with CPU seconds per
 * wall second (below the thread count means the cores were shared).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "cosmology.h"
#include "fof_plan.h"
#include "ic_plan.h"
#include "mpi/fft.h"
#include "linear_power.h"
#include "mpi/comm.h"
#include "timer.h"
#include "bench_common.h"

static struct particles *za_particles(int n, double box, int lpt, MPI_Comm comm)
{
    struct cosmology c = cosmo_quijote_fiducial();
    struct lm_err err = {0};
    struct linear_power_params lp = {.source = LINEAR_POWER_EH};
    struct linear_power *power = linear_power_create(&c, &lp, &err);
    struct ic_setup s = {.n = n, .box_size = box, .seed = 42, .lpt_order = lpt, .power = power};
    struct ic_plan *plan = power ? ic_plan_create(&s, comm, &err) : NULL;
    comm_agree(comm, &err);
    ic_plan_execute(plan);
    struct particles *p = ic_particles_create(ic_plan_fields(plan), &c, box, 0.0);
    ic_plan_destroy(&plan);
    linear_power_destroy(&power);
    return p;
}

int main(int argc, char **argv)
{
    MPI_Comm comm = comm_init(&argc, &argv);
    int n = argc > 1 ? atoi(argv[1]) : 256, lpt = argc > 2 ? atoi(argv[2]) : 1;
    double b = argc > 3 ? atof(argv[3]) : 0.2;
    int repeats = argc > 4 ? atoi(argv[4]) : 2, rank = comm_rank(comm), size = comm_size(comm);
    double box = n * 1000.0 / 512.0;
    struct particles *p = za_particles(n, box, lpt, comm);
    struct fof_options o = {
        .link = b * box / n, .min_length = 20, .particle_mass = 1, .n_slab_cells = n};
    struct fof_plan *plan = fof_plan_create(&o, box, comm);
    struct fof_catalogue cat;
    fof_plan_execute(plan, p, &cat); /* warm-up, and the migration from the IC slabs */
    fof_catalogue_free(&cat);
    timer_reset();
    double wall = 0, cpu = 0, per_part = 0;
    for (int r = 0; r < repeats; r++) {
        comm_barrier(comm);
        size_t base = alloc_current();
        alloc_peak_reset();
        double c0 = bench_cpu_seconds(), t0 = timer_now();
        fof_plan_execute(plan, p, &cat);
        double dt = bench_max_over_ranks(comm, timer_now() - t0);
        cpu += bench_cpu_seconds() - c0;
        wall += dt;
        double extra = (double)(alloc_peak() - base) / (double)(p->n > 0 ? p->n : 1);
        per_part = fmax(per_part, bench_max_over_ranks(comm, extra));
        if (r < repeats - 1)
            fof_catalogue_free(&cat);
    }
    wall /= repeats;
    cpu = bench_max_over_ranks(comm, cpu / repeats);
    static const char *const phases[] = {"fof.migrate", "fof.ghosts", "fof.link",
                                         "fof.merge",   "fof.groups", "fof.gather"};
    double t_phase[6];
    for (int i = 0; i < 6; i++)
        t_phase[i] = bench_max_over_ranks(comm, timer_total(phases[i])) / repeats;
    if (rank == 0) {
        double np = (double)n * n * n;
        printf("bench_fof: %d^3 particles (%s z = 0), box %g Mpc/h, b = %g, %d rank(s) x %d "
               "thread(s)\n",
               n, lpt == 2 ? "2LPT" : "ZA", box, b, size, omp_get_max_threads());
        printf("groups %lld (>= 20 members), members %lld (%.1f%%), ghosts %lld, rounds %d\n",
               (long long)cat.n_groups, (long long)cat.n_members, 100.0 * cat.n_members / np,
               (long long)cat.n_ghosts, cat.n_rounds);
        printf("%-12s %10s\n", "phase", "time [s]");
        for (int i = 0; i < 6; i++)
            printf("%-12s %10.3f\n", phases[i], t_phase[i]);
        printf("%-12s %10.3f   %.3g particles/s, %.3g per core, CPU/wall %.2f\n", "total", wall,
               np / wall, np / wall / (size * omp_get_max_threads()), cpu / wall);
        printf("per CPU second: %.3g particles/s per core (the rate on an unshared core)\n",
               np / (cpu * size));
        printf("memory beyond the particle store: %.1f B/particle (peak over ranks)\n", per_part);
    }
    fof_catalogue_free(&cat);
    fof_plan_destroy(&plan);
    particles_destroy(&p);
    comm_finalize(&comm);
    return 0;
}
