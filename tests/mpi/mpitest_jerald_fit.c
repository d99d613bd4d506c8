/*
 * mpitest_jerald_fit — losses and reverse-mode gradients of JERALD maps at any rank count (run.sh:
 * 1-4). Properties:
 *   - the gradient of the training loss with respect to every trained parameter (layers, final
 *     map, depletion) equals central finite differences of the loss, for dark-matter maps (L2,
 *     L2 with the smoothing operator, L1), a stellar map with a frozen first layer and an HI map,
 *     on even and odd meshes: |g − fd| <= 3e-2 |fd| + 2e-3 max|fd| (the forward pass is float,
 *     so the loss carries ~1e-7 relative noise, and CIC makes it piecewise smooth);
 *   - the loss is 0 and the gradient 0 when the target is the map itself;
 *   - losses and gradients on every rank equal a one-process evaluation (MPI_COMM_SELF) of the
 *     same particles to 1e-5 relative (float roundings of rank-dependent sums);
 *   - region sizes tile the mesh.
 */
#define T_USE_MPI
#include "harness.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "jerald_adjoint.h"
#include "jerald_fit_plan.h"
#include "jerald_plan.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "particles.h"
#include "power.h"

#define BOX 40.0
/** Central-difference step relative to max(|θ|, 1). */
#define FD_REL 1e-2

static const struct power_options popts = {.compensate = true, .los = 2};

static double hash01(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/** This rank's share of n^3 cell-centred sites with smooth displacements and jitter. */
static struct particles *make_particles(int n, MPI_Comm comm)
{
    int64_t total = (int64_t)n * n * n, r = comm_rank(comm), p = comm_size(comm);
    int64_t g0 = total * r / p, g1 = total * (r + 1) / p;
    struct particles *parts = particles_create(PARTICLES_POS | PARTICLES_ID, g1 - g0);
    particles_resize(parts, g1 - g0);
    double h = BOX / n, kf = 2 * M_PI / BOX;
    for (int64_t g = g0; g < g1; g++) {
        int64_t q[3] = {g / ((int64_t)n * n), (g / n) % n, g % n};
        for (int d = 0; d < 3; d++) {
            double qd = (q[d] + 0.5) * h;
            double v = qd + 0.8 * h * (sin(kf * qd + d) + 0.5 * sin(2 * kf * q[(d + 1) % 3] * h)) +
                       0.4 * h * (hash01((uint64_t)g * 3 + (uint64_t)d) - 0.5);
            v -= BOX * floor(v / BOX);
            parts->x[d][g - g0] = (float)v >= (float)BOX ? 0.0f : (float)v;
        }
        parts->id[g - g0] = (uint64_t)g;
    }
    return parts;
}

static struct jerald_map dm_map(int n_layers)
{
    struct jerald_map m = {.name = "dm", .model = JERALD_MODEL_DM, .n_layers = n_layers};
    m.stellar = -1;
    for (int i = 0; i < n_layers; i++)
        m.layer[i].density = (struct jerald_term){50.0 / (i + 1), 0.6 + 0.1 * i, 0.3, 3, 0.2};
    return m;
}

static struct jerald_map stellar_map(void)
{
    struct jerald_map m = dm_map(2);
    snprintf(m.name, sizeof m.name, "stars");
    m.model = JERALD_MODEL_STELLAR;
    m.green = JERALD_GREEN_SM;
    m.final = (struct jerald_final){1.3, 1.7, -0.05, 0};
    return m;
}

static struct jerald_map hi_map(void)
{
    struct jerald_map m = dm_map(1);
    snprintf(m.name, sizeof m.name, "hi");
    m.model = JERALD_MODEL_HI;
    m.green = JERALD_GREEN_SM;
    m.layer[0].density.alpha = 400;
    m.layer[0].repel = (struct jerald_term){150, 0.7, 0.3, 2, 0.1};
    m.final = (struct jerald_final){1.1, 1.6, 0.02, 0.1};
    m.depletion = (struct jerald_depletion){0.4, 0.2, 0.8, -0.1, 0.2, 2, 0.3, 0.05};
    return m;
}

/** A plan on comm with particles migrated to it and a target: map `t` of the same particles. */
struct setup {
    struct jerald_fit_plan *plan;
    struct particles *x0;
    float *stellar;
};

static struct setup make_setup(int n_side, int n_mesh, const struct jerald_map *target_map,
                               const struct jerald_loss *loss, MPI_Comm comm)
{
    struct setup s = {0};
    s.plan = jerald_fit_plan_create(n_mesh, BOX, 6, &popts, comm);
    struct jerald_plan *fwd = jerald_fit_plan_forward(s.plan);
    s.x0 = make_particles(n_side, comm);
    migrate_particles(jerald_plan_decomp(fwd), s.x0, BOX);
    struct particles *w = particles_create(PARTICLES_POS | PARTICLES_ID, s.x0->n);
    size_t bytes = fft_alloc_bytes(jerald_plan_fft(fwd));
    /* the stellar map of an HI map: a stellar map of the same particles */
    struct jerald_map sm = stellar_map();
    particles_resize(w, s.x0->n);
    for (int d = 0; d < 3; d++)
        memcpy(w->x[d], s.x0->x[d], (size_t)s.x0->n * sizeof(float));
    memcpy(w->id, s.x0->id, (size_t)s.x0->n * sizeof(uint64_t));
    s.stellar = jerald_mesh_alloc(fwd, "test");
    memcpy(s.stellar, jerald_map_execute(fwd, &sm, w, NULL), bytes);
    particles_resize(w, s.x0->n);
    for (int d = 0; d < 3; d++)
        memcpy(w->x[d], s.x0->x[d], (size_t)s.x0->n * sizeof(float));
    memcpy(w->id, s.x0->id, (size_t)s.x0->n * sizeof(uint64_t));
    float *target = jerald_mesh_alloc(fwd, "test");
    memcpy(target, jerald_map_execute(fwd, target_map, w, s.stellar), bytes);
    jerald_fit_set_target(s.plan, target, loss);
    lm_free(target);
    particles_destroy(&w);
    return s;
}

static void free_setup(struct setup *s)
{
    lm_free(s->stellar);
    particles_destroy(&s->x0);
    jerald_fit_plan_destroy(&s->plan);
}

/** Every trained parameter of m: gradient against central differences of the training loss. */
static void check_fd(const char *what, int n_side, int n_mesh, const struct jerald_map *start,
                     const struct jerald_map *planted, int first, const struct jerald_loss *loss)
{
    struct setup s = make_setup(n_side, n_mesh, planted, loss, MPI_COMM_WORLD);
    const float *st = start->model == JERALD_MODEL_HI ? s.stellar : NULL;
    struct jerald_map *g = lm_calloc("test", 1, sizeof *g), m = *start;
    double l0[JERALD_N_REGIONS], lp[JERALD_N_REGIONS], lm[JERALD_N_REGIONS];
    jerald_fit_evaluate(s.plan, &m, first, s.x0, st, l0, g);
    int n = jerald_fit_pack(&m, first, NULL);
    double theta[256], grad[256], fd[256], big = 0;
    jerald_fit_pack(&m, first, theta);
    jerald_fit_pack(g, first, grad);
    for (int i = 0; i < n; i++) {
        double e = FD_REL * (fabs(theta[i]) > 1 ? fabs(theta[i]) : 1), t = theta[i];
        theta[i] = t + e;
        jerald_fit_unpack(&m, first, theta);
        jerald_fit_evaluate(s.plan, &m, first, s.x0, st, lp, NULL);
        theta[i] = t - e;
        jerald_fit_unpack(&m, first, theta);
        jerald_fit_evaluate(s.plan, &m, first, s.x0, st, lm, NULL);
        theta[i] = t;
        jerald_fit_unpack(&m, first, theta);
        fd[i] = (lp[0] - lm[0]) / (2 * e);
        big = fabs(fd[i]) > big ? fabs(fd[i]) : big;
    }
    T_CHECK(l0[0] > 0 && big > 0, "%s: loss %g, largest derivative %g", what, l0[0], big);
    for (int i = 0; i < n; i++) {
        char name[96];
        jerald_fit_param_name(&m, first, i, name, sizeof name);
        if (t_rank == 0 && getenv("LEMUR_TEST_VERBOSE"))
            printf("  %s %-24s grad %+.6e  fd %+.6e\n", what, name, grad[i], fd[i]);
        T_CHECK(fabs(grad[i] - fd[i]) <= 3e-2 * fabs(fd[i]) + 2e-3 * big,
                "%s: d L / d %s = %.6e, finite differences %.6e", what, name, grad[i], fd[i]);
    }
    lm_free(g);
    free_setup(&s);
}

static void test_fd_dm(void)
{
    struct jerald_map start = dm_map(2), planted = dm_map(2);
    planted.layer[0].density.alpha = 80;
    planted.layer[1].density.gamma = 0.4;
    struct jerald_loss l2 = {.p = 2}, l2s = {.p = 2, .smoothing_n = 1}, l1 = {.p = 1};
    check_fd("dm L2 16^3", 16, 16, &start, &planted, 0, &l2);
    check_fd("dm L2 smoothed 15^3", 16, 15, &start, &planted, 0, &l2s);
    check_fd("dm L1 16^3", 16, 16, &start, &planted, 0, &l1);
}

static void test_fd_stellar(void)
{
    struct jerald_map start = stellar_map(), planted = stellar_map();
    planted.layer[1].density.alpha = 20;
    planted.final.mu = 1.5;
    struct jerald_loss l2 = {.p = 2};
    check_fd("stellar 16^3 (layer 0 frozen)", 16, 16, &start, &planted, 1, &l2);
}

static void test_fd_hi(void)
{
    struct jerald_map start = hi_map(), planted = hi_map();
    planted.layer[0].repel.alpha = 250;
    planted.final.w = 1.4;
    planted.depletion.beta1 = 0.6;
    struct jerald_loss l2 = {.p = 2};
    check_fd("hi 16^3", 16, 16, &start, &planted, 0, &l2);
}

static void test_zero_at_target(void)
{
    struct jerald_map m = dm_map(2);
    struct jerald_loss l2 = {.p = 2};
    struct setup s = make_setup(12, 12, &m, &l2, MPI_COMM_WORLD);
    struct jerald_map *g = lm_calloc("test", 1, sizeof *g);
    double loss[JERALD_N_REGIONS];
    jerald_fit_evaluate(s.plan, &m, 0, s.x0, NULL, loss, g);
    double theta[16];
    int n = jerald_fit_pack(g, 0, theta);
    for (int r = 0; r < JERALD_N_REGIONS; r++)
        T_CHECK(loss[r] == 0, "region %d: loss %g at the target itself", r, loss[r]);
    for (int i = 0; i < n; i++)
        T_CHECK(theta[i] == 0, "gradient %d = %g at the target itself", i, theta[i]);
    int64_t size[JERALD_N_REGIONS];
    jerald_fit_region_sizes(s.plan, size);
    T_CHECK(size[0] + size[1] + size[2] == 12 * 12 * 12 && size[0] == 6 * 144 && size[2] == 125,
            "regions %lld %lld %lld", (long long)size[0], (long long)size[1], (long long)size[2]);
    lm_free(g);
    free_setup(&s);
}

/** Losses and gradient of map m on comm. */
static int eval_on(MPI_Comm comm, const struct jerald_map *m, const struct jerald_map *planted,
                   int n_mesh, double loss[JERALD_N_REGIONS], double *theta)
{
    struct jerald_loss l2 = {.p = 2, .smoothing_n = 0.5};
    struct setup s = make_setup(16, n_mesh, planted, &l2, comm);
    struct jerald_map *g = lm_calloc("test", 1, sizeof *g);
    jerald_fit_evaluate(s.plan, m, 0, s.x0, m->model == JERALD_MODEL_HI ? s.stellar : NULL, loss,
                        g);
    int n = jerald_fit_pack(g, 0, theta);
    lm_free(g);
    free_setup(&s);
    return n;
}

static void test_ranks(void)
{
    struct jerald_map maps[2] = {dm_map(2), hi_map()}, planted[2] = {dm_map(2), hi_map()};
    planted[0].layer[0].density.alpha = 90;
    planted[1].final.mu = 1.3;
    int sizes[2] = {16, 7};
    for (int c = 0; c < 2; c++) {
        double la[3], lb[3], ga[256], gb[256];
        int n = eval_on(MPI_COMM_WORLD, &maps[c], &planted[c], sizes[c], la, ga);
        eval_on(MPI_COMM_SELF, &maps[c], &planted[c], sizes[c], lb, gb);
        for (int r = 0; r < 3; r++)
            T_CLOSE(la[r], lb[r], 1e-5);
        double big = 0;
        for (int i = 0; i < n; i++)
            big = fabs(gb[i]) > big ? fabs(gb[i]) : big;
        for (int i = 0; i < n; i++)
            T_CLOSE_TOL(ga[i], gb[i], 1e-5, 1e-6 * big);
    }
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_zero_at_target);
    T_RUN(test_fd_dm);
    T_RUN(test_fd_stellar);
    T_RUN(test_fd_hi);
    T_RUN(test_ranks);
    return t_finish();
}
