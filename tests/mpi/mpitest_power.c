/*
 * mpitest_power — power spectra of a fixed particle set are the same at every rank count
 * (run.sh: 1-4 ranks): each case is measured distributed on MPI_COMM_WORLD and, on every rank, on
 * MPI_COMM_SELF with the whole set, and the two must agree to 1e-6 relative (auto P with
 * multipoles, cross, momentum; with and without interlacing; cubic, non-cubic mesh with uneven
 * splits, non-cubic box, n0 < ranks). Further properties: the mode counts of one all-covering bin
 * add up to N^3 - 1; a uniform velocity v0 gives P_p = |v0|^2 P; a translation by whole cells
 * leaves P unchanged; bad options are rejected with the key in the message; every spectrum and the
 * particle sums behind the normalisation and shot noise are bitwise the same at 1, 2 and 4 OpenMP
 * threads; the momentum fields painted in the density's order equal a fresh painting bit for bit.
 */
#define T_USE_MPI
#include "harness.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "particles.h"
#include "power_plan.h"

struct setup {
    int n[3];
    double box[3];
    bool interlace;
    double kmax; /**< 0: Nyquist */
};

static const struct setup setups[] = {
    {.n = {16, 16, 16}, .box = {100, 100, 100}},
    {.n = {16, 16, 16}, .box = {100, 100, 100}, .interlace = true},
    {.n = {10, 12, 9}, .box = {80, 80, 80}},                     /* uneven splits at 3, 4 ranks */
    {.n = {12, 8, 10}, .box = {120, 60, 90}, .interlace = true}, /* non-cubic box */
    {.n = {3, 8, 6}, .box = {60, 60, 60}, .kmax = 0.4},          /* a rank without planes */
};
static const int n_setups = 5;
static const int64_t n_total = 4000;

static double hash01(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/** Global particle g: clustered positions (a few clumps plus uniform), velocities, weights. */
static void particle(int64_t g, const double box[3], float x[3], float v[3], float *w)
{
    int clump = (int)(hash01((uint64_t)g * 8 + 7) * 6);
    for (int d = 0; d < 3; d++) {
        double c = hash01((uint64_t)clump * 3 + (uint64_t)d + 1000003) * box[d];
        double u = hash01((uint64_t)g * 8 + (uint64_t)d);
        double xd = g % 3 ? c + (u - 0.5) * 0.2 * box[d] : u * box[d];
        x[d] = (float)(xd - box[d] * floor(xd / box[d]));
        if (x[d] >= box[d])
            x[d] = 0;
        v[d] = (float)(300 * (hash01((uint64_t)g * 8 + (uint64_t)d + 3) - 0.5) + 100 * d);
    }
    *w = (float)(0.5 + hash01((uint64_t)g * 8 + 6));
}

static struct particles *make_particles(const double box[3], int64_t a, int64_t b)
{
    struct particles *p = particles_create(PARTICLES_POS | PARTICLES_VEL | PARTICLES_WEIGHT, b - a);
    particles_resize(p, b - a);
    for (int64_t g = a; g < b; g++) {
        float x[3], v[3], w;
        particle(g, box, x, v, &w);
        for (int d = 0; d < 3; d++) {
            p->x[d][g - a] = x[d];
            p->v[d][g - a] = v[d];
        }
        p->w[g - a] = w;
    }
    return p;
}

/** Keep the particles whose x cell this rank owns (the migration of a non-cubic box). */
static void keep_own(const struct decomp *d, const double box[3], struct particles *p)
{
    int64_t m = 0;
    for (int64_t i = 0; i < p->n; i++) {
        int64_t c = decomp_cell_index(p->x[0][i], d->n[0], box[0]);
        if (c >= d->box.lo[0] && c < d->box.hi[0])
            particles_move(p, m++, i);
    }
    p->n = m;
}

/** Place this rank's particles: migrate (cubic box) or filter a full copy (non-cubic box). */
static struct particles *placed_particles(const struct setup *s, struct power_plan *pp,
                                          MPI_Comm comm)
{
    bool cubic = s->box[0] == s->box[1] && s->box[1] == s->box[2];
    int r = comm_rank(comm), P = comm_size(comm);
    if (cubic) {
        struct particles *p = make_particles(s->box, n_total * r / P, n_total * (r + 1) / P);
        migrate_particles(power_plan_decomp(pp), p, s->box[0]);
        return p;
    }
    struct particles *p = make_particles(s->box, 0, n_total);
    keep_own(power_plan_decomp(pp), s->box, p);
    return p;
}

enum { COL_K, COL_N, COL_P0, COL_P2, COL_P4, COL_CROSS, COL_MOM, N_COLS };

/** Measure every spectrum of setup s on comm into out[N_COLS][n_bins]; returns n_bins. */
static int measure(const struct setup *s, MPI_Comm comm, double *out, int cap)
{
    struct power_options o = {
        .compensate = true, .interlace = s->interlace, .los = 2, .kmax = s->kmax};
    struct power_plan *pp = power_plan_create(s->n, s->box, &o, comm);
    struct particles *p = placed_particles(s, pp, comm);
    int nb = power_plan_n_bins(pp);
    T_CHECK(nb <= cap, "%d bins", nb);
    float *d = power_mesh_alloc(pp, "test.delta"), *du = power_mesh_alloc(pp, "test.delta");
    float *m[3];
    for (int c = 0; c < 3; c++)
        m[c] = power_mesh_alloc(pp, "test.mom");
    power_density(pp, p, d, NULL);
    power_momentum_same_points(pp, p, m, NULL);
    float *w = p->w;
    p->w = NULL; /* unit weights for the cross spectrum */
    power_density(pp, p, du, NULL);
    p->w = w;
    struct power_spectrum *a = power_spectrum_create(nb, POWER_N_ELL);
    struct power_spectrum *x = power_spectrum_create(nb, 1), *pm = power_spectrum_create(nb, 1);
    power_measure(pp, 1, &d, &d, a);
    power_measure(pp, 1, &d, &du, x);
    power_measure(pp, 3, m, m, pm);
    for (int i = 0; i < nb; i++) {
        const double col[N_COLS] = {a->k[i],    a->n_modes[i], a->P[0][i], a->P[1][i],
                                    a->P[2][i], x->P[0][i],    pm->P[0][i]};
        for (int c = 0; c < N_COLS; c++)
            out[c * cap + i] = col[c];
    }
    power_spectrum_destroy(&a);
    power_spectrum_destroy(&x);
    power_spectrum_destroy(&pm);
    for (int c = 0; c < 3; c++)
        lm_free(m[c]);
    lm_free(d);
    lm_free(du);
    particles_destroy(&p);
    power_plan_destroy(&pp);
    return nb;
}

static void test_rank_count_invariance(void)
{
    enum { CAP = 64 };
    static double dist[N_COLS * CAP], ser[N_COLS * CAP];
    for (int c = 0; c < n_setups; c++) {
        const struct setup *s = &setups[c];
        int nb = measure(s, MPI_COMM_WORLD, dist, CAP);
        int nb1 = measure(s, MPI_COMM_SELF, ser, CAP);
        T_CHECK(nb == nb1, "bins %d vs %d", nb, nb1);
        double worst = 0;
        for (int col = 0; col < N_COLS; col++) {
            double scale = 0;
            for (int i = 0; i < nb; i++)
                scale = fmax(scale, fabs(ser[col * CAP + i]));
            for (int i = 0; i < nb; i++) {
                double a = dist[col * CAP + i], b = ser[col * CAP + i];
                double tol = 1e-6 * fabs(b) + 1e-9 * scale;
                if (col == COL_P2 || col == COL_P4) /* near zero: relative to the bin's P0 */
                    tol = 1e-6 * fabs(ser[COL_P0 * CAP + i]);
                if (!(fabs(a - b) <= tol) && !(isnan(a) && isnan(b)))
                    T_CHECK(0, "setup %d column %d bin %d: %.10g vs serial %.10g", c, col, i, a, b);
                double ref = col == COL_P2 || col == COL_P4 ? ser[COL_P0 * CAP + i] : b;
                if (ref != 0 && !isnan(ref))
                    worst = fmax(worst, fabs(a - b) / fabs(ref));
            }
        }
        if (t_rank == 0 && t_size > 1)
            printf("    setup %d (%dx%dx%d%s): %d bins, max relative difference to 1 rank %.2e "
                   "(P_2, P_4: relative to P_0)\n",
                   c, s->n[0], s->n[1], s->n[2], s->interlace ? ", interlaced" : "", nb, worst);
    }
}

/* The spectra are bitwise the same at 1, 2 and 4 OpenMP threads (painting, FFT, k-space loops and
 * binning), at this rank count; the compared spectra are checked to be non-trivial. */
static void test_thread_count_invariance(void)
{
    enum { CAP = 64 };
    static double ref[N_COLS * CAP], got[N_COLS * CAP];
    int saved = omp_get_max_threads();
    for (int c = 0; c < n_setups; c++) {
        omp_set_num_threads(1);
        int nb = measure(&setups[c], MPI_COMM_WORLD, ref, CAP);
        int positive = 0;
        for (int i = 0; i < nb; i++)
            positive += ref[COL_P0 * CAP + i] > 0 && ref[COL_MOM * CAP + i] > 0;
        T_CHECK(positive >= 1, "setup %d: no bin with P > 0 and P_p > 0", c);
        for (int nt = 2; nt <= 4; nt *= 2) {
            omp_set_num_threads(nt);
            memset(got, 0, sizeof got);
            T_CHECK(measure(&setups[c], MPI_COMM_WORLD, got, CAP) == nb, "bins");
            int differ = 0;
            for (int col = 0; col < N_COLS; col++)
                for (int i = 0; i < nb; i++)
                    differ += memcmp(&got[col * CAP + i], &ref[col * CAP + i], sizeof(double)) != 0;
            T_CHECK(differ == 0, "setup %d: %d values differ between 1 and %d threads", c, differ,
                    nt);
        }
    }
    omp_set_num_threads(saved);
}

/* The particle sums (Σ w, Σ w^2, Σ w^2 |v|^2, N) of power_density and power_momentum are bitwise
 * the same at 1, 2 and 4 OpenMP threads on an odd particle count (several sum blocks, the last one
 * partial), and equal a plain serial double sum over the whole set to 1e-12. */
static void test_sums_thread_invariance(void)
{
    const struct setup s = {.n = {16, 16, 16}, .box = {100, 100, 100}};
    const int64_t n = 100003;
    struct power_options o = {.compensate = true};
    struct power_plan *pp = power_plan_create(s.n, s.box, &o, MPI_COMM_WORLD);
    int r = comm_rank(MPI_COMM_WORLD), P = comm_size(MPI_COMM_WORLD);
    struct particles *p = make_particles(s.box, n * r / P, n * (r + 1) / P);
    migrate_particles(power_plan_decomp(pp), p, s.box[0]);
    float *d = power_mesh_alloc(pp, "test.delta"), *m[3];
    for (int c = 0; c < 3; c++)
        m[c] = power_mesh_alloc(pp, "test.mom");
    struct particles *all = make_particles(s.box, 0, n);
    double ref[4] = {(double)n, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        double w = all->w[i], v2 = 0;
        for (int c = 0; c < 3; c++)
            v2 += (double)all->v[c][i] * all->v[c][i];
        ref[1] += w;
        ref[2] += w * w;
        ref[3] += w * w * v2;
    }
    particles_destroy(&all);
    int saved = omp_get_max_threads();
    struct power_sums first[2];
    for (int nt = 1; nt <= 4; nt *= 2) {
        omp_set_num_threads(nt);
        struct power_sums got[2];
        power_density(pp, p, d, &got[0]);
        power_momentum(pp, p, m, &got[1]);
        if (nt == 1)
            memcpy(first, got, sizeof got);
        T_CHECK(memcmp(got, first, sizeof got) == 0, "sums at %d threads differ from 1 thread", nt);
        const double dens[4] = {got[0].n_part, got[0].sum_w, got[0].sum_w2, got[0].sum_w2v2};
        const double mom[4] = {got[1].n_part, got[1].sum_w, got[1].sum_w2, got[1].sum_w2v2};
        for (int k = 0; k < 3; k++) {
            T_CLOSE(dens[k], ref[k], 1e-12);
            T_CLOSE(mom[k], ref[k], 1e-12);
        }
        T_CHECK(dens[3] == 0, "density sums carry no velocity term: %g", dens[3]);
        T_CLOSE(mom[3], ref[3], 1e-12);
    }
    omp_set_num_threads(saved);
    for (int c = 0; c < 3; c++)
        lm_free(m[c]);
    lm_free(d);
    particles_destroy(&p);
    power_plan_destroy(&pp);
}

/* The momentum fields painted in the order of the density's painting (power_momentum_same_points,
 * as `lemur power` does) are bitwise those of a fresh power_momentum, with and without
 * interlacing, meshes and spectrum alike; the spectrum is non-trivial. */
static void test_momentum_same_points(void)
{
    for (int c = 0; c < n_setups; c++) {
        const struct setup *s = &setups[c];
        struct power_options o = {.compensate = true, .interlace = s->interlace, .kmax = s->kmax};
        struct power_plan *pp = power_plan_create(s->n, s->box, &o, MPI_COMM_WORLD);
        struct particles *p = placed_particles(s, pp, MPI_COMM_WORLD);
        int nb = power_plan_n_bins(pp);
        size_t n_floats = fft_alloc_bytes(power_plan_fft(pp)) / sizeof(float);
        float *d = power_mesh_alloc(pp, "test.delta"), *m[3], *fresh[3];
        for (int k = 0; k < 3; k++) {
            m[k] = power_mesh_alloc(pp, "test.mom");
            fresh[k] = power_mesh_alloc(pp, "test.mom");
        }
        struct power_sums s_reuse, s_fresh;
        power_density(pp, p, d, NULL);
        power_momentum_same_points(pp, p, m, &s_reuse);
        power_momentum(pp, p, fresh, &s_fresh);
        int differ = 0;
        for (int k = 0; k < 3; k++)
            differ += memcmp(m[k], fresh[k], n_floats * sizeof(float)) != 0;
        T_CHECK(differ == 0, "setup %d: %d momentum meshes differ from a fresh paint", c, differ);
        T_CHECK(memcmp(&s_reuse, &s_fresh, sizeof s_reuse) == 0, "setup %d: sums differ", c);
        struct power_spectrum *a = power_spectrum_create(nb, 1), *b = power_spectrum_create(nb, 1);
        power_measure(pp, 3, m, m, a);
        power_measure(pp, 3, fresh, fresh, b);
        int positive = 0;
        for (int i = 0; i < nb; i++) {
            positive += a->P[0][i] > 0;
            T_CHECK(memcmp(&a->P[0][i], &b->P[0][i], sizeof(double)) == 0,
                    "setup %d bin %d: P_p %.17g vs fresh %.17g", c, i, a->P[0][i], b->P[0][i]);
        }
        T_CHECK(positive >= 1, "setup %d: no bin with P_p > 0", c);
        power_spectrum_destroy(&a);
        power_spectrum_destroy(&b);
        for (int k = 0; k < 3; k++) {
            lm_free(m[k]);
            lm_free(fresh[k]);
        }
        lm_free(d);
        particles_destroy(&p);
        power_plan_destroy(&pp);
    }
}

static void test_mode_count(void)
{
    const int n[3] = {10, 12, 9};
    const double box[3] = {80, 80, 80};
    struct power_options o = {.compensate = true, .dk = 1e3, .kmax = 1e3};
    struct power_plan *pp = power_plan_create(n, box, &o, MPI_COMM_WORLD);
    T_CHECK(power_plan_n_bins(pp) == 1, "one bin");
    float *d = power_mesh_alloc(pp, "test.delta");
    struct power_spectrum *a = power_spectrum_create(1, 1);
    power_measure(pp, 1, &d, &d, a);
    T_CLOSE(a->n_modes[0], 10.0 * 12 * 9 - 1, 1e-15);
    power_spectrum_destroy(&a);
    lm_free(d);
    power_plan_destroy(&pp);
}

/* p = (1 + δ) v0 for a uniform velocity v0, so P_p = |v0|^2 P for every bin. */
static void test_uniform_velocity(void)
{
    const struct setup s = {.n = {16, 16, 16}, .box = {100, 100, 100}, .interlace = true};
    struct power_options o = {.compensate = true, .interlace = true};
    struct power_plan *pp = power_plan_create(s.n, s.box, &o, MPI_COMM_WORLD);
    struct particles *p = placed_particles(&s, pp, MPI_COMM_WORLD);
    const float v0[3] = {120, -50, 30};
    for (int64_t i = 0; i < p->n; i++)
        for (int d = 0; d < 3; d++)
            p->v[d][i] = v0[d];
    int nb = power_plan_n_bins(pp);
    float *d = power_mesh_alloc(pp, "test.delta"), *m[3];
    for (int c = 0; c < 3; c++)
        m[c] = power_mesh_alloc(pp, "test.mom");
    power_density(pp, p, d, NULL);
    power_momentum(pp, p, m, NULL);
    struct power_spectrum *a = power_spectrum_create(nb, 1), *pm = power_spectrum_create(nb, 1);
    power_measure(pp, 1, &d, &d, a);
    power_measure(pp, 3, m, m, pm);
    double v2 = 120.0 * 120 + 50 * 50 + 30 * 30;
    for (int i = 0; i < nb; i++)
        if (a->n_modes[i] > 0) /* bin 0 holds only the excluded DC mode */
            T_CLOSE(pm->P[0][i], v2 * a->P[0][i], 1e-5);
    power_spectrum_destroy(&a);
    power_spectrum_destroy(&pm);
    for (int c = 0; c < 3; c++)
        lm_free(m[c]);
    lm_free(d);
    particles_destroy(&p);
    power_plan_destroy(&pp);
}

/* Moving every particle by two whole cells along the line of sight (the RSD displacement with a
 * uniform velocity) changes only phases: P and its multipoles stay the same. */
static void test_whole_cell_translation(void)
{
    const struct setup s = {.n = {16, 16, 16}, .box = {64, 64, 64}};
    struct power_options o = {.compensate = true, .los = 1};
    struct power_plan *pp = power_plan_create(s.n, s.box, &o, MPI_COMM_WORLD);
    int nb = power_plan_n_bins(pp);
    struct power_spectrum *a = power_spectrum_create(nb, POWER_N_ELL);
    struct power_spectrum *b = power_spectrum_create(nb, POWER_N_ELL);
    float *d = power_mesh_alloc(pp, "test.delta");
    struct particles *p = placed_particles(&s, pp, MPI_COMM_WORLD);
    for (int64_t i = 0; i < p->n; i++) /* positions on a 1/64-cell grid: translations exact */
        for (int c = 0; c < 3; c++)
            p->x[c][i] = (float)(floor(p->x[c][i] * 16.0) / 16.0);
    power_density(pp, p, d, NULL);
    power_measure(pp, 1, &d, &d, a);
    for (int64_t i = 0; i < p->n; i++)
        p->v[1][i] = 100.0f;
    power_rsd_displace(p, 1, 0.08); /* 8 Mpc/h = 2 cells */
    migrate_particles(power_plan_decomp(pp), p, 64.0);
    power_density(pp, p, d, NULL);
    power_measure(pp, 1, &d, &d, b);
    for (int i = 0; i < nb; i++)
        for (int e = 0; e < POWER_N_ELL && a->n_modes[i] > 0; e++)
            T_CLOSE_TOL(b->P[e][i], a->P[e][i], 1e-5, 1e-6 * fabs(a->P[0][i]));
    power_spectrum_destroy(&a);
    power_spectrum_destroy(&b);
    lm_free(d);
    particles_destroy(&p);
    power_plan_destroy(&pp);
}

static void test_bad_options(void)
{
    const int n[3] = {16, 16, 16}, n_bad[3] = {16, 1, 16};
    const double box[3] = {100, 100, 100};
    struct power_options o = {.kmin = 0.5, .kmax = 0.4};
    struct lm_err err = {{0}};
    T_CHECK(!power_options_check(&o, n, box, &err), "kmax < kmin is rejected");
    T_CHECK(strstr(err.msg, "power.kmax") != NULL, "message: %s", err.msg);
    struct power_options ok = {.compensate = true};
    struct lm_err err2 = {{0}};
    T_CHECK(!power_options_check(&ok, n_bad, box, &err2), "a 1-node mesh axis is rejected");
    T_CHECK(strstr(err2.msg, "power.n_mesh") != NULL, "message: %s", err2.msg);
    struct lm_err err3 = {{0}};
    T_CHECK(power_options_check(&ok, n, box, &err3), "defaults are valid: %s", err3.msg);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_rank_count_invariance);
    T_RUN(test_thread_count_invariance);
    T_RUN(test_sums_thread_invariance);
    T_RUN(test_momentum_same_points);
    T_RUN(test_mode_count);
    T_RUN(test_uniform_velocity);
    T_RUN(test_whole_cell_translation);
    T_RUN(test_bad_options);
    return t_finish();
}
