/*
 * mpitest_jerald — JERALD displacement layers and maps at any rank count (run.sh: 1-4).
 * Properties:
 *   - particles exactly on the mesh nodes make ρ = 1: the layers leave them in place and the
 *     dark-matter map is 1 everywhere;
 *   - layers conserve the particles (count, IDs) and keep each on the rank owning its slab; the
 *     dark-matter map has mean 1;
 *   - α > 0 moves particles toward an overdensity (α < 0 away), with no motion across the
 *     plane-parallel perturbation;
 *   - one layer's displacement is linear in α;
 *   - reading the gradient in small chunks (ranks making calls with no particle left) gives
 *     bitwise the same particles as one call, and so do layers on a plan reserved for the
 *     particles (jerald_plan_reserve) beforehand;
 *   - dark-matter, stellar and HI maps on all ranks equal a one-process evaluation of the same
 *     particles (MPI_COMM_SELF) on even, odd and tiny meshes (some ranks without planes): rms
 *     difference <= 1e-6 of the map's rms, largest <= 1e-6 of its largest value (painting sums in
 *     double, so the rank count's order of the sums does not reach the float maps);
 *   - the maps are bitwise the same at 1, 2 and 4 OpenMP threads.
 */
#define T_USE_MPI
#include "harness.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "jerald_plan.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "particles.h"
#include "power.h"

#define BOX 40.0

static const struct power_options popts = {.compensate = true, .los = 2};

static double hash01(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/** Position of lattice site g of n^3 (cell-centred when jitter > 0) with a smooth displacement:
 *  amp cells of a few long modes plus jitter cells of noise. */
static void site(int64_t g, int n, double amp, double jitter, float x[3])
{
    int64_t q[3] = {g / ((int64_t)n * n), (g / n) % n, g % n};
    double h = BOX / n, kf = 2 * M_PI / BOX;
    for (int d = 0; d < 3; d++) {
        double qd = (q[d] + (jitter > 0 ? 0.5 : 0)) * h;
        double psi = amp * h *
                     (sin(kf * qd + d) + 0.5 * sin(2 * kf * q[(d + 1) % 3] * h + 1.0) +
                      0.3 * sin(3 * kf * q[(d + 2) % 3] * h));
        double v = qd + psi + jitter * h * (hash01((uint64_t)g * 3 + (uint64_t)d) - 0.5);
        v -= BOX * floor(v / BOX);
        x[d] = (float)v >= (float)BOX ? 0.0f : (float)v;
    }
}

/** This rank's share of the n^3 sites (all of them when comm has one rank). */
static struct particles *make_particles(int n, double amp, double jitter, MPI_Comm comm)
{
    int64_t total = (int64_t)n * n * n, r = comm_rank(comm), p = comm_size(comm);
    int64_t g0 = total * r / p, g1 = total * (r + 1) / p;
    struct particles *parts = particles_create(PARTICLES_POS | PARTICLES_ID, g1 - g0);
    particles_resize(parts, g1 - g0);
    for (int64_t g = g0; g < g1; g++) {
        float x[3];
        site(g, n, amp, jitter, x);
        for (int d = 0; d < 3; d++)
            parts->x[d][g - g0] = x[d];
        parts->id[g - g0] = (uint64_t)g;
    }
    return parts;
}

static struct jerald_map dm_map(int n_layers, double alpha)
{
    struct jerald_map m = {.name = "dm", .model = JERALD_MODEL_DM, .n_layers = n_layers};
    m.stellar = -1;
    for (int i = 0; i < n_layers; i++)
        m.layer[i].density = (struct jerald_term){alpha / (i + 1), 0.5 + 0.2 * i, 0.3, 4, 0.3};
    return m;
}

static struct jerald_map stellar_map(void)
{
    struct jerald_map m = dm_map(1, 60);
    snprintf(m.name, sizeof m.name, "stars");
    m.model = JERALD_MODEL_STELLAR;
    m.green = JERALD_GREEN_SM;
    m.final = (struct jerald_final){1.3, 1.7, -0.05, 0};
    return m;
}

static struct jerald_map hi_map(void)
{
    struct jerald_map m = dm_map(2, 400);
    snprintf(m.name, sizeof m.name, "hi");
    m.model = JERALD_MODEL_HI;
    m.green = JERALD_GREEN_SM;
    for (int i = 0; i < 2; i++)
        m.layer[i].repel = (struct jerald_term){150, 0.7, 0.3, 2, 0.1};
    m.final = (struct jerald_final){1.1, 1.6, 0.02, 0.1};
    m.depletion = (struct jerald_depletion){0.4, 0.2, 0.8, -0.1, 0.2, 2, 0.3, 0.05};
    m.stellar = 1;
    return m;
}

/** The real nodes of a plan mesh gathered in C order on rank 0 (lm_malloc'd there, NULL
 *  elsewhere). */
static double *gather_mesh(const struct jerald_plan *plan, const float *mesh, MPI_Comm comm)
{
    const struct fft_layout *l = fft_layout(jerald_plan_fft(plan));
    int plane = l->n[1] * l->n[2], size = comm_size(comm), count = (int)l->rnx * plane;
    double *mine = lm_malloc("test", (size_t)(count ? count : 1) * sizeof(double));
    for (ptrdiff_t i = 0; i < l->rnx; i++)
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++)
                mine[(i * l->n[1] + j) * l->n[2] + k] = mesh[fft_real_index(l, l->rx0 + i, j, k)];
    int *counts = lm_malloc("test", (size_t)size * sizeof(int));
    int *displs = lm_malloc("test", (size_t)size * sizeof(int));
    int first = (int)l->rx0 * plane;
    MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, 0, comm);
    MPI_Gather(&first, 1, MPI_INT, displs, 1, MPI_INT, 0, comm);
    double *all =
        comm_rank(comm) == 0 ? lm_malloc("test", (size_t)l->n[0] * plane * sizeof(double)) : NULL;
    MPI_Gatherv(mine, count, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, comm);
    lm_free(mine);
    lm_free(counts);
    lm_free(displs);
    return all;
}

/** dm, stellar and HI maps of the n_side^3 set on an n_mesh^3 mesh, gathered on rank 0. */
static void evaluate_maps(int n_side, int n_mesh, MPI_Comm comm, double *out[3])
{
    struct jerald_plan *plan = jerald_plan_create(n_mesh, BOX, 6, &popts, comm);
    struct jerald_map maps[3] = {dm_map(2, 60), stellar_map(), hi_map()};
    float *stellar = jerald_mesh_alloc(plan, "test");
    const struct fft_plan *fft = jerald_plan_fft(plan);
    for (int m = 0; m < 3; m++) {
        struct particles *parts = make_particles(n_side, 0.3, 0.5, comm);
        migrate_particles(jerald_plan_decomp(plan), parts, BOX);
        float *map = jerald_map_execute(plan, &maps[m], parts, m == 2 ? stellar : NULL);
        if (m == 1)
            memcpy(stellar, map, fft_alloc_bytes(fft));
        out[m] = gather_mesh(plan, map, comm);
        particles_destroy(&parts);
    }
    lm_free(stellar);
    jerald_plan_destroy(&plan);
}

static void compare_maps(int n_side, int n_mesh)
{
    MPI_Comm world = MPI_COMM_WORLD;
    double *dist[3], *serial[3] = {NULL, NULL, NULL};
    evaluate_maps(n_side, n_mesh, world, dist);
    if (comm_rank(world) != 0)
        return;
    evaluate_maps(n_side, n_mesh, MPI_COMM_SELF, serial);
    int64_t n = (int64_t)n_mesh * n_mesh * n_mesh;
    for (int m = 0; m < 3; m++) {
        double d2 = 0, m2 = 0, dmax = 0, vmax = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = dist[m][i] - serial[m][i];
            d2 += d * d;
            m2 += serial[m][i] * serial[m][i];
            dmax = fmax(dmax, fabs(d));
            vmax = fmax(vmax, fabs(serial[m][i]));
        }
        T_CHECK(sqrt(d2 / m2) <= 1e-6 && dmax <= 1e-6 * vmax,
                "mesh %d, map %d: rms diff %.3g of rms, max diff %.3g of max", n_mesh, m,
                sqrt(d2 / m2), dmax / vmax);
        lm_free(dist[m]);
        lm_free(serial[m]);
    }
}

/* The maps (two displacement layers, readout, migration, final transformations) are bitwise the
 * same at 1, 2 and 4 OpenMP threads at this rank count; the compared maps vary. */
static void maps_thread_independent(int n_side, int n_mesh)
{
    MPI_Comm world = MPI_COMM_WORLD;
    int saved = omp_get_max_threads();
    double *ref[3], *got[3];
    omp_set_num_threads(1);
    evaluate_maps(n_side, n_mesh, world, ref);
    int64_t n = (int64_t)n_mesh * n_mesh * n_mesh;
    for (int nt = 2; nt <= 4; nt *= 2) {
        omp_set_num_threads(nt);
        evaluate_maps(n_side, n_mesh, world, got);
        for (int m = 0; m < 3 && comm_rank(world) == 0; m++) {
            int64_t differ = 0;
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t i = 0; i < n; i++) {
                differ += memcmp(&got[m][i], &ref[m][i], sizeof(double)) != 0;
                lo = fmin(lo, ref[m][i]);
                hi = fmax(hi, ref[m][i]);
            }
            T_CHECK(hi > lo, "mesh %d map %d is constant (%g)", n_mesh, m, lo);
            T_CHECK(differ == 0, "mesh %d map %d: %lld nodes differ between 1 and %d threads",
                    n_mesh, m, (long long)differ, nt);
            lm_free(got[m]);
        }
    }
    for (int m = 0; m < 3 && comm_rank(world) == 0; m++)
        lm_free(ref[m]);
    omp_set_num_threads(saved);
}

static void test_maps_thread_independent(void)
{
    maps_thread_independent(24, 24);
    maps_thread_independent(8, 5);
}

static void test_maps_rank_independent(void)
{
    compare_maps(24, 24);
    compare_maps(20, 17);
    compare_maps(8, 5);
}

static void test_lattice_at_rest(void)
{
    int n = 16;
    struct jerald_plan *plan = jerald_plan_create(n, BOX, 6, &popts, MPI_COMM_WORLD);
    struct particles *parts = make_particles(n, 0, 0, MPI_COMM_WORLD);
    migrate_particles(jerald_plan_decomp(plan), parts, BOX);
    struct particles *orig = make_particles(n, 0, 0, MPI_COMM_WORLD);
    migrate_particles(jerald_plan_decomp(plan), orig, BOX);
    struct jerald_map m = dm_map(2, 60);
    float *map = jerald_map_execute(plan, &m, parts, NULL);
    double moved = 0;
    for (int64_t i = 0; i < parts->n; i++)
        for (int d = 0; d < 3; d++)
            moved = fmax(moved, fabs(parts->x[d][i] - orig->x[d][i]));
    T_CHECK(parts->n == orig->n && moved < 1e-6, "a uniform lattice moved by %g Mpc/h", moved);
    const struct fft_layout *l = fft_layout(jerald_plan_fft(plan));
    double worst = 0;
    for (ptrdiff_t i = 0; i < l->rnx; i++)
        for (int j = 0; j < n; j++)
            for (int k = 0; k < n; k++)
                worst = fmax(worst, fabs(map[fft_real_index(l, l->rx0 + i, j, k)] - 1));
    T_CHECK(worst < 1e-6, "rho of a lattice differs from 1 by %g", worst);
    particles_destroy(&orig);
    particles_destroy(&parts);
    jerald_plan_destroy(&plan);
}

/** Layers of map m on the n^3 set with readout chunks of chunk particles (0: default), the plan
 *  reserved for the particles first or not; the positions in ID order, gathered on rank 0. */
static float *positions_after(int n, int64_t chunk, bool reserve, const struct jerald_map *m)
{
    struct jerald_plan *plan = jerald_plan_create(15, BOX, 6, &popts, MPI_COMM_WORLD);
    if (chunk > 0)
        jerald_plan_set_readout_chunk(plan, chunk);
    struct particles *parts = make_particles(n, 0.4, 0.5, MPI_COMM_WORLD);
    if (comm_rank(MPI_COMM_WORLD) == 1)
        particles_resize(parts, 0); /* uneven counts: rank 1 holds nothing at first */
    migrate_particles(jerald_plan_decomp(plan), parts, BOX);
    if (reserve)
        jerald_plan_reserve(plan, parts);
    for (int i = 0; i < m->n_layers; i++)
        jerald_layer_execute(plan, m, i, parts, NULL);
    int64_t total = (int64_t)n * n * n;
    float *mine = lm_calloc("test", (size_t)(3 * total), sizeof(float));
    for (int64_t i = 0; i < parts->n; i++)
        for (int d = 0; d < 3; d++)
            mine[3 * (int64_t)parts->id[i] + d] = parts->x[d][i];
    float *all = lm_calloc("test", (size_t)(3 * total), sizeof(float));
    MPI_Reduce(mine, all, (int)(3 * total), MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
    lm_free(mine);
    particles_destroy(&parts);
    jerald_plan_destroy(&plan);
    return all;
}

static void test_chunked_readout(void)
{
    struct jerald_map m = dm_map(2, 80);
    float *one = positions_after(12, 0, false, &m), *chunked = positions_after(12, 97, false, &m);
    float *reserved = positions_after(12, 0, true, &m);
    int64_t differ = 0, differ_reserved = 0;
    for (int64_t i = 0; i < 3 * 12 * 12 * 12; i++) {
        differ += one[i] != chunked[i];
        differ_reserved += one[i] != reserved[i];
    }
    T_CHECK(differ == 0, "%lld coordinates differ between chunked and one-call readouts",
            (long long)differ);
    T_CHECK(differ_reserved == 0,
            "%lld coordinates differ between layers on a reserved plan and on a plain one",
            (long long)differ_reserved);
    lm_free(one);
    lm_free(chunked);
    lm_free(reserved);
}

static void test_conservation(void)
{
    int n = 20;
    struct jerald_plan *plan = jerald_plan_create(18, BOX, 4, &popts, MPI_COMM_WORLD);
    struct particles *parts = make_particles(n, 0.4, 0.5, MPI_COMM_WORLD);
    const struct decomp *dec = jerald_plan_decomp(plan);
    migrate_particles(dec, parts, BOX);
    struct jerald_map m = dm_map(3, 80);
    float *map = jerald_map_execute(plan, &m, parts, NULL);
    int64_t sums[3] = {parts->n, 0, 0}, misplaced = 0, outside = 0;
    for (int64_t i = 0; i < parts->n; i++) {
        sums[1] += (int64_t)parts->id[i];
        sums[2] += (int64_t)(parts->id[i] * parts->id[i] % 1000003);
        float x[3] = {parts->x[0][i], parts->x[1][i], parts->x[2][i]};
        misplaced += decomp_owner_pos(dec, x, BOX) != dec->rank;
        for (int d = 0; d < 3; d++)
            outside += !(x[d] >= 0 && x[d] < BOX);
    }
    comm_sum_int64(MPI_COMM_WORLD, sums, 3);
    int64_t total = (int64_t)n * n * n, want[3] = {total, total * (total - 1) / 2, 0};
    for (int64_t g = 0; g < total; g++)
        want[2] += (int64_t)((uint64_t)g * (uint64_t)g % 1000003);
    T_CHECK(sums[0] == want[0] && sums[1] == want[1] && sums[2] == want[2],
            "particles or IDs lost: %lld of %lld", (long long)sums[0], (long long)want[0]);
    T_CHECK(misplaced == 0 && outside == 0, "%lld particles off their slab, %lld outside the box",
            (long long)misplaced, (long long)outside);
    T_CLOSE(jerald_mesh_mean(plan, map), 1.0, 1e-6);
    particles_destroy(&parts);
    jerald_plan_destroy(&plan);
}

/** Mean x displacement toward the plane x = L/2 of particles in the middle half of a box with a
 *  plane-parallel overdensity there, and the largest y, z displacement. */
static void pull_toward_plane(double alpha, double *toward, double *sideways)
{
    int n = 16;
    struct jerald_plan *plan = jerald_plan_create(n, BOX, 6, &popts, MPI_COMM_WORLD);
    struct particles *parts = make_particles(n, 0, 0, MPI_COMM_WORLD);
    double h = BOX / n, kf = 2 * M_PI / BOX;
    for (int64_t i = 0; i < parts->n; i++) { /* ψ = -A sin(k (q - L/2)): δ peaks at L/2 */
        double q = parts->x[0][i] + 0.5 * h;
        parts->x[0][i] = (float)(q - 0.3 * h * sin(kf * (q - BOX / 2)));
        parts->x[1][i] += (float)(0.5 * h);
        parts->x[2][i] += (float)(0.5 * h);
    }
    migrate_particles(jerald_plan_decomp(plan), parts, BOX);
    struct particles *before = particles_create(PARTICLES_POS, parts->n);
    particles_resize(before, parts->n);
    for (int d = 0; d < 3; d++)
        memcpy(before->x[d], parts->x[d], (size_t)parts->n * sizeof(float));
    struct jerald_map m = dm_map(1, alpha);
    m.layer[0].density.kh = 0;
    jerald_layer_execute(plan, &m, 0, parts, NULL);
    double s[2] = {0, 0};
    *sideways = 0;
    for (int64_t i = 0; i < parts->n; i++) { /* no particle crosses the box edge here */
        double x = before->x[0][i], dx = parts->x[0][i] - x;
        if (x > BOX / 4 && x < 3 * BOX / 4) {
            s[0] += x < BOX / 2 ? dx : -dx;
            s[1] += 1;
        }
        for (int d = 1; d < 3; d++)
            *sideways = fmax(*sideways, fabs(parts->x[d][i] - before->x[d][i]));
    }
    comm_sum_double(MPI_COMM_WORLD, s, 2);
    comm_max_double(MPI_COMM_WORLD, sideways, 1);
    *toward = s[0] / s[1];
    particles_destroy(&before);
    particles_destroy(&parts);
    jerald_plan_destroy(&plan);
}

static void test_attraction_and_linearity(void)
{
    double t1, t2, tm, side;
    pull_toward_plane(2000, &t1, &side);
    T_CHECK(t1 > 1e-2, "alpha > 0 must pull toward the overdensity: %g Mpc/h", t1);
    T_CHECK(side < 1e-4 * t1, "sideways motion %g for a plane-parallel perturbation", side);
    pull_toward_plane(4000, &t2, &side);
    T_CLOSE(t2, 2 * t1, 1e-4);
    pull_toward_plane(-2000, &tm, &side);
    T_CLOSE(tm, -t1, 1e-4);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    msg_set_verbosity(0);
    T_RUN(test_lattice_at_rest);
    T_RUN(test_conservation);
    T_RUN(test_attraction_and_linearity);
    T_RUN(test_chunked_readout);
    T_RUN(test_maps_rank_independent);
    T_RUN(test_maps_thread_independent);
    return t_finish();
}
