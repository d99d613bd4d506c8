/*
 * bench_bias — the Lagrangian-bias network (Wu, Muñoz & Eisenstein 2023): inference and one
 * training epoch on Zel'dovich particles.
 *
 *   OMP_NUM_THREADS=<t> mpirun -n <P> build/bench/bench_bias [n [n_train [epochs]]]
 *                                                         (defaults 256 100 1)
 *
 * n^3 particles at z = 0 in a box of n·1000/512 Mpc/h (lemur's IC plan, Eisenstein & Hu, seed 42).
 * The network has PyTorch's initial law (seed 1) and the orthogonalisation of the box.
 * Inference, timed (max over ranks) phase by phase:
 *   features   δ_R, ∇²δ_R, G2_R at R = 1, 2.83, 8 Mpc/h (double FFTs) and their normalisation
 *   mlp        θ_in and the 5 x 64 GELU network for every site (float, OpenBLAS sgemm)
 *   carry      f fetched by the particles' IDs
 *   paint      migration to the mesh's slabs and the NGP halo field on an n^3 mesh, its FFT
 * and particles/s = n^3 / their sum. Training: the target is the NGP mass field of the particles
 * with the network's own weights as masses; 10% of the particles sampled, batches of 1e5; the
 * time of each epoch (forward, cell sums, backward in double with dgemm, Adam).
 * tools/bench/torch_bias.py runs the same network in PyTorch on the same cores.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bias.h"
#include "bias_fit_plan.h"
#include "bias_plan.h"
#include "cosmology.h"
#include "ic_plan.h"
#include "linear_power.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/lagrangian.h"
#include "mpi/migrate.h"
#include "power_plan.h"
#include "timer.h"
#include "bench_common.h"

static double max_time(double t, MPI_Comm comm)
{
    comm_max_double(comm, &t, 1);
    return t;
}

int main(int argc, char **argv)
{
    MPI_Comm comm = comm_init(&argc, &argv);
    int n = argc > 1 ? atoi(argv[1]) : 256, n_train = argc > 2 ? atoi(argv[2]) : 100;
    int epochs = argc > 3 ? atoi(argv[3]) : 1;
    double box = n * 1000.0 / 512;
    struct cosmology c = cosmo_quijote_fiducial();
    struct lm_err err = {0};
    struct linear_power_params lpp = {.source = LINEAR_POWER_EH};
    struct linear_power *power = linear_power_create(&c, &lpp, &err);
    struct ic_setup s = {.n = n, .box_size = box, .seed = 42, .lpt_order = 1, .power = power};
    struct ic_plan *ic = power ? ic_plan_create(&s, comm, &err) : NULL;
    comm_agree(comm, &err);
    ic_plan_execute(ic);
    const struct ic_fields *f = ic_plan_fields(ic);
    struct particles *parts = ic_particles_create(f, &c, box, 0.0);
    const double scales[3] = {1.0, 2.83, 8.0};
    struct bias_model *m = bias_model_create(3, scales);
    int np = (int)bias_n_params(m);
    double *theta = lm_malloc("bench", (size_t)np * sizeof *theta);
    bias_params_init(m, 1, theta);
    bias_params_set(m, theta);

    double t0 = timer_now();
    struct bias_features *bf = bias_features_create(f, 3, scales, comm);
    double t_feat = max_time(timer_now() - t0, comm);
    double cov[81];
    bias_features_cov(bf, cov, comm);
    CHECK(bias_orth_from_cov(m, cov, &err), "%s", err.msg);
    t0 = timer_now();
    float *fs = bias_site_weights(bf, m);
    double t_mlp = max_time(timer_now() - t0, comm);
    struct particles *h = particles_create(PARTICLES_POS | PARTICLES_WEIGHT, parts->n);
    particles_resize(h, parts->n);
    for (int d = 0; d < 3; d++)
        memcpy(h->x[d], parts->x[d], (size_t)parts->n * sizeof(float));
    t0 = timer_now();
    lagrangian_fetch(&bf->layout, 1, fs, parts->n, parts->id, h->w, comm, &err);
    double t_carry = max_time(timer_now() - t0, comm);
    int nn[3] = {n, n, n};
    double bx[3] = {box, box, box};
    struct power_options o = {.compensate = true};
    struct power_plan *pp = power_plan_create(nn, bx, &o, comm);
    float *mesh = power_mesh_alloc(pp, "bench.mesh");
    double sum_f = 0, n3 = (double)n * n * n;
    for (int64_t i = 0; i < h->n; i++)
        sum_f += h->w[i];
    comm_sum_double(comm, &sum_f, 1);
    t0 = timer_now();
    migrate_particles(power_plan_decomp(pp), h, box);
    bias_halo_density(pp, h, n3, sum_f, true, true, mesh);
    double t_paint = max_time(timer_now() - t0, comm);
    double t_inf = t_feat + t_mlp + t_carry + t_paint;
    if (comm_rank(comm) == 0) {
        printf("bias inference: %d^3 particles, %d rank(s) x %d thread(s)\n", n, comm_size(comm),
               omp_get_max_threads());
        printf(
            "  %-10s %9.3f s\n  %-10s %9.3f s  (%.3g sites/s)\n  %-10s %9.3f s\n  %-10s %9.3f s\n",
            "features", t_feat, "mlp", t_mlp, n3 / t_mlp, "carry", t_carry, "paint", t_paint);
        printf("  %-10s %9.3f s  %.4g particles/s\n", "total", t_inf, n3 / t_inf);
    }
    lm_free(mesh);
    power_plan_destroy(&pp);

    /* training: the network's own weights as halo masses at the particles' positions (gathered) */
    float *in = bias_features_input(bf, m);
    int64_t nh = parts->n;
    comm_sum_int64(comm, &nh, 1);
    float *pos = lm_malloc("bench", (size_t)nh * 3 * sizeof *pos);
    double *mass = lm_malloc("bench", (size_t)nh * sizeof *mass);
    float *own = lm_malloc("bench", (size_t)(parts->n ? parts->n : 1) * sizeof *own);
    lagrangian_fetch(&bf->layout, 1, fs, parts->n, parts->id, own, comm, &err);
    int P = comm_size(comm), r = comm_rank(comm);
    int64_t at = 0;
    for (int q = 0; q < P; q++) { /* rank q's haloes, broadcast (bench only: fine at 256^3) */
        int64_t k = parts->n;
        MPI_Bcast(&k, 1, MPI_INT64_T, q, comm);
        float *buf = lm_malloc("bench", (size_t)(k ? k : 1) * 4 * sizeof *buf);
        if (q == r)
            for (int64_t i = 0; i < k; i++) {
                for (int d = 0; d < 3; d++)
                    buf[4 * i + d] = parts->x[d][i];
                buf[4 * i + 3] = own[i];
            }
        MPI_Bcast(buf, (int)(4 * k), MPI_FLOAT, q, comm);
        for (int64_t i = 0; i < k; i++, at++) {
            memcpy(pos + 3 * at, buf + 4 * i, 3 * sizeof *pos);
            mass[at] = buf[4 * i + 3];
        }
        lm_free(buf);
    }
    struct bias_fit_setup st = {.n_mesh = n_train,
                                .subsample = 0.1,
                                .batch_particles = 100000,
                                .seed = 1,
                                .box = box,
                                .n_part = n3};
    struct bias_fit_set set;
    t0 = timer_now();
    bias_fit_set_create(&set, &st, parts, &bf->layout, in, m->n_in, nh, pos, mass, comm, &err);
    double t_setup = max_time(timer_now() - t0, comm);
    double *loss = lm_malloc("bench", (size_t)(epochs > 0 ? epochs : 1) * sizeof *loss);
    struct bias_fit_options fo = {.epochs = epochs, .lr = 0.02, .lr_decay = 0.9, .seed = 1};
    t0 = timer_now();
    bias_fit_train(&set.d, &fo, np, theta, loss, comm);
    double t_train = max_time(timer_now() - t0, comm);
    if (comm_rank(comm) == 0)
        printf("bias training: %d^3 mesh, %d batches; set-up %.3f s, %.3f s per epoch "
               "(loss %.6g)\n",
               n_train, set.d.n_batches, t_setup, t_train / (epochs > 0 ? epochs : 1),
               epochs > 0 ? loss[epochs - 1] : 0.0);
    bias_fit_set_destroy(&set);
    lm_free(loss);
    lm_free(own);
    lm_free(pos);
    lm_free(mass);
    lm_free(in);
    lm_free(fs);
    particles_destroy(&h);
    particles_destroy(&parts);
    bias_features_destroy(&bf);
    lm_free(theta);
    bias_model_destroy(&m);
    ic_plan_destroy(&ic);
    linear_power_destroy(&power);
    comm_finalize(&comm);
    return 0;
}
