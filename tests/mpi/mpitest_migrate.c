/*
 * Particle tests (run at 1, 2, 3 and 4 ranks) on slabs and blocks of non-cubic meshes (uneven
 * splits, ranks without planes):
 *   - migration keeps the exact multiset of IDs (globally gathered and sorted), every particle
 *     lands on the owner of its position, positions are wrapped into [0, L), and every field
 *     travels with its particle (values are functions of the ID); boundary positions included;
 *   - a plan kept across steps (migrate_plan_update, threaded) gives exactly the store a fresh
 *     plan per step gives.
 */
#define T_USE_MPI
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "harness.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/migrate.h"
#include "particles.h"

static const double L = 100.0;

struct dcase {
    const char *name;
    int n[3];
    bool slabs;
    int grid[3];
};

static const struct dcase CASES[] = {
    {"slabs 10x7x13", {10, 7, 13}, true, {0, 0, 0}},
    {"slabs 3x7x5", {3, 7, 5}, true, {0, 0, 0}},
    {"blocks 10x7x13", {10, 7, 13}, false, {0, 0, 0}},
    {"blocks 4x4x4", {4, 4, 4}, false, {0, 0, 0}},
    {"blocks 10x7x13 z-grid", {10, 7, 13}, false, {1, 1, 0}},
    {"blocks 10x7x13 y-grid", {10, 7, 13}, false, {1, 0, 1}},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static int g_rank, g_size;

static void make_decomp(struct decomp *d, const struct dcase *c)
{
    if (c->slabs)
        decomp_create_slabs_default(d, MPI_COMM_WORLD, c->n);
    else
        decomp_create_blocks(d, MPI_COMM_WORLD, c->n, c->grid);
}

static uint64_t hash64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Initial position of particle id on axis a: mostly in [-L, 2L), some exactly on cell faces, on
 * 0, L, -0 and just below 0 (which wraps to a value that rounds to L). */
static float pos0(uint64_t id, int a, const int n[3])
{
    uint64_t h = hash64(id * 3 + (uint64_t)a);
    switch (h % 8) {
    case 0:
        return (float)((double)(h >> 20 & 63) * (L / n[a])); /* a cell face */
    case 1:
        return (float)((h >> 8) % 2 ? L : -1e-6);
    default:
        return (float)((double)(h >> 11) / 9007199254740992.0 * 3 * L - L);
    }
}

static float vel0(uint64_t id, int a) { return (float)(id % 1000) + 0.25f * (float)a; }

/* Particles of this rank before migration: IDs rank * 1e6 + i, count depends on the rank. */
static struct particles *make_particles(const struct dcase *c, unsigned fields, int64_t n)
{
    struct particles *p = particles_create(fields, 16);
    particles_resize(p, n);
    for (int64_t i = 0; i < n; i++) {
        uint64_t id = (uint64_t)g_rank * 1000000u + (uint64_t)i;
        for (int a = 0; a < 3; a++) {
            p->x[a][i] = pos0(id, a, c->n);
            if (fields & PARTICLES_VEL)
                p->v[a][i] = vel0(id, a);
        }
        if (fields & PARTICLES_ID)
            p->id[i] = id;
        if (fields & PARTICLES_WEIGHT)
            p->w[i] = (float)(id % 77);
    }
    return p;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* All ranks' values, gathered and sorted on every rank. */
static uint64_t *gather_sorted(const uint64_t *v, int64_t n, int64_t *n_all)
{
    int *cnt = malloc(sizeof(int) * (size_t)g_size), *disp = malloc(sizeof(int) * (size_t)g_size);
    int mine = (int)n;
    MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, MPI_COMM_WORLD);
    int64_t tot = 0;
    for (int r = 0; r < g_size; r++) {
        disp[r] = (int)tot;
        tot += cnt[r];
    }
    uint64_t *all = malloc(sizeof(uint64_t) * (size_t)(tot + 1));
    MPI_Allgatherv(v, mine, MPI_UINT64_T, all, cnt, disp, MPI_UINT64_T, MPI_COMM_WORLD);
    qsort(all, (size_t)tot, sizeof(uint64_t), cmp_u64);
    free(cnt);
    free(disp);
    *n_all = tot;
    return all;
}

/* Expected wrapped coordinate of a position (independent of particles_wrap). */
static bool wrapped_ok(float got, float orig)
{
    double y = fmod((double)orig, L);
    if (y < 0)
        y += L;
    float e = (float)y;
    if ((double)e >= L)
        e = 0.0f;
    return got == e && got >= 0.0f && (double)got < L;
}

static void check_migrated(const struct dcase *c, const struct decomp *d, const struct particles *p)
{
    int64_t bad_owner = 0, bad_field = 0;
    for (int64_t i = 0; i < p->n; i++) {
        const float x[3] = {p->x[0][i], p->x[1][i], p->x[2][i]};
        bad_owner += decomp_owner_pos(d, x, L) != g_rank;
        uint64_t id = p->id[i];
        for (int a = 0; a < 3; a++) {
            bad_field += !wrapped_ok(x[a], pos0(id, a, c->n));
            if (p->fields & PARTICLES_VEL)
                bad_field += p->v[a][i] != vel0(id, a);
        }
        if (p->fields & PARTICLES_WEIGHT)
            bad_field += p->w[i] != (float)(id % 77);
    }
    T_CHECK(bad_owner == 0, "%s: %lld particles not on their owner", c->name, (long long)bad_owner);
    T_CHECK(bad_field == 0, "%s: %lld wrong field values", c->name, (long long)bad_field);
}

static void check_ids(const struct dcase *c, const struct particles *p, int64_t n_per_rank_base)
{
    int64_t n_all;
    uint64_t *all = gather_sorted(p->id, p->n, &n_all);
    int64_t expect_n = 0, bad = 0, k = 0;
    for (int r = 0; r < g_size; r++)
        expect_n += n_per_rank_base + 37 * r;
    T_CHECK(n_all == expect_n, "%s: %lld particles after migration, expected %lld", c->name,
            (long long)n_all, (long long)expect_n);
    for (int r = 0; r < g_size && n_all == expect_n; r++)
        for (int64_t i = 0; i < n_per_rank_base + 37 * r; i++)
            bad += all[k++] != (uint64_t)r * 1000000u + (uint64_t)i;
    T_CHECK(bad == 0, "%s: %lld IDs differ from the original multiset", c->name, (long long)bad);
    free(all);
}

static void test_migrate(void)
{
    const unsigned field_sets[] = {PARTICLES_POS | PARTICLES_ID, PARTICLES_ALL};
    for (int ci = 0; ci < N_CASES; ci++)
        for (int fi = 0; fi < 2; fi++) {
            struct decomp d;
            make_decomp(&d, &CASES[ci]);
            int64_t base = 3000;
            struct particles *p = make_particles(&CASES[ci], field_sets[fi], base + 37 * g_rank);
            struct migrate_plan *m = migrate_plan_create(&d, p, L);
            int64_t ns = migrate_plan_n_send(m), nk = migrate_plan_n_keep(m);
            T_CHECK(ns + nk == base + 37 * g_rank, "send + keep = %lld", (long long)(ns + nk));
            migrate_execute(m, p);
            T_CHECK(p->n == nk + migrate_plan_n_recv(m), "n after migration");
            migrate_plan_destroy(&m);
            T_CHECK(m == NULL, "destroy sets NULL");
            check_migrated(&CASES[ci], &d, p);
            check_ids(&CASES[ci], p, base);
            /* migrating again moves nothing; to another decomposition moves correctly */
            struct decomp d2;
            decomp_create_blocks(&d2, MPI_COMM_WORLD, CASES[ci].n, (const int[3]){1, 0, 1});
            migrate_particles(&d, p, L);
            check_migrated(&CASES[ci], &d, p);
            migrate_particles(&d2, p, L);
            check_migrated(&CASES[ci], &d2, p);
            check_ids(&CASES[ci], p, base);
            particles_destroy(&p);
            decomp_destroy(&d);
            decomp_destroy(&d2);
        }
}

/* Move every particle by a function of its ID (a few cells, both signs). */
static void shift_particles(struct particles *p, int step)
{
    for (int64_t i = 0; i < p->n; i++)
        for (int a = 0; a < 3; a++)
            p->x[a][i] += (float)(12.0 * sin(0.37 * (double)p->id[i] + a + step));
}

static bool same_store(const struct particles *a, const struct particles *b)
{
    if (a->n != b->n)
        return false;
    size_t n = (size_t)a->n;
    bool same = memcmp(a->id, b->id, n * sizeof *a->id) == 0 && memcmp(a->w, b->w, n * 4) == 0;
    for (int d = 0; d < 3; d++)
        same = same && memcmp(a->x[d], b->x[d], n * 4) == 0 && memcmp(a->v[d], b->v[d], n * 4) == 0;
    return same;
}

/* A plan kept across steps and re-planned (migrate_plan_update, on 3 threads) leaves the store
 * exactly as a fresh plan per step does (on 1 thread): same particles in the same order. */
static void test_update(void)
{
    int saved = omp_get_max_threads();
    for (int ci = 0; ci < N_CASES; ci++) {
        struct decomp d;
        make_decomp(&d, &CASES[ci]);
        int64_t n = 2000 + 53 * g_rank;
        struct particles *p = make_particles(&CASES[ci], PARTICLES_ALL, n);
        struct particles *q = make_particles(&CASES[ci], PARTICLES_ALL, n);
        omp_set_num_threads(3);
        struct migrate_plan *m = migrate_plan_create(&d, p, L);
        migrate_execute(m, p);
        omp_set_num_threads(1);
        migrate_particles(&d, q, L);
        for (int step = 0; step < 3; step++) {
            shift_particles(p, step);
            shift_particles(q, step);
            omp_set_num_threads(3);
            migrate_plan_update(m, &d, p, L);
            int64_t moved = migrate_plan_n_send(m);
            comm_sum_int64(MPI_COMM_WORLD, &moved, 1);
            T_CHECK(g_size == 1 || CASES[ci].n[0] < 4 || moved > 0, "%s step %d: nothing moved",
                    CASES[ci].name, step);
            migrate_execute(m, p);
            omp_set_num_threads(1);
            migrate_particles(&d, q, L);
            T_CHECK(same_store(p, q), "%s step %d: the kept plan's store differs from a fresh one",
                    CASES[ci].name, step);
            int64_t bad_owner = 0;
            for (int64_t i = 0; i < p->n; i++) {
                const float x[3] = {p->x[0][i], p->x[1][i], p->x[2][i]};
                bad_owner += decomp_owner_pos(&d, x, L) != g_rank;
            }
            T_CHECK(bad_owner == 0, "%s step %d: %lld particles not on their owner", CASES[ci].name,
                    step, (long long)bad_owner);
        }
        int64_t n_all, expect = 0, bad = 0, k = 0;
        uint64_t *all = gather_sorted(p->id, p->n, &n_all);
        for (int r = 0; r < g_size; r++)
            expect += 2000 + 53 * r;
        T_CHECK(n_all == expect, "%s: %lld particles, expected %lld", CASES[ci].name,
                (long long)n_all, (long long)expect);
        for (int r = 0; r < g_size && n_all == expect; r++)
            for (int64_t i = 0; i < 2000 + 53 * r; i++)
                bad += all[k++] != (uint64_t)r * 1000000u + (uint64_t)i;
        T_CHECK(bad == 0, "%s: %lld IDs differ from the original multiset", CASES[ci].name,
                (long long)bad);
        free(all);
        migrate_plan_destroy(&m);
        particles_destroy(&p);
        particles_destroy(&q);
        decomp_destroy(&d);
    }
    omp_set_num_threads(saved);
}

static void test_store(void)
{
    struct particles *p = particles_create(PARTICLES_POS | PARTICLES_WEIGHT, 0);
    T_CHECK(p->v[0] == NULL && p->id == NULL && p->x[2] != NULL && p->w != NULL, "fields");
    particles_resize(p, 1000);
    T_CHECK(p->n == 1000 && p->cap >= 1000, "resize");
    for (int64_t i = 0; i < 1000; i++) {
        p->x[0][i] = (float)i - 500.0f;
        p->x[1][i] = (float)(L * (i % 3)); /* 0, L, 2L */
        p->x[2][i] = -1e-7f * (float)(i % 2);
        p->w[i] = (float)i;
    }
    particles_wrap(p, L);
    int64_t bad = 0;
    for (int64_t i = 0; i < 1000; i++)
        for (int a = 0; a < 3; a++)
            bad += !(p->x[a][i] >= 0.0f && (double)p->x[a][i] < L);
    T_CHECK(bad == 0, "%lld positions outside [0, L) after wrap", (long long)bad);
    T_CHECK(p->x[1][1] == 0.0f && p->x[1][2] == 0.0f, "multiples of L wrap to 0");
    particles_reserve(p, 5000);
    T_CHECK(p->w[999] == 999.0f && p->n == 1000, "reserve keeps contents");
    const int64_t idx[3] = {7, 3, 999};
    char buf[3 * 16];
    particles_pack(p, PARTICLES_POS | PARTICLES_WEIGHT, idx, 0, 3, buf);
    particles_unpack(p, PARTICLES_POS | PARTICLES_WEIGHT, 0, 3, buf);
    T_CHECK(p->w[0] == 7.0f && p->w[1] == 3.0f && p->w[2] == 999.0f, "pack/unpack");
    T_CHECK(particles_record_bytes(PARTICLES_ALL) == 36, "record bytes");
    particles_destroy(&p);
    T_CHECK(p == NULL, "destroy sets NULL");
    particles_destroy(&p);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    T_RUN(test_store);
    T_RUN(test_migrate);
    T_RUN(test_update);
    return t_finish();
}
