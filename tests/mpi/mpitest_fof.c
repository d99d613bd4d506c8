/*
 * Friends-of-friends tests (run at 1, 2, 3 and 4 ranks) in an odd box (37 Mpc/h, 37 slab cells,
 * so slabs are uneven and at 4 ranks one is thinner):
 *   - the cell-list kernel against brute-force O(n^2) linking on clustered random points, for the
 *     whole periodic box and for an x window (a slab with its ghost layers);
 *   - the kernel's components are the same at 1, 2 and 4 threads;
 *   - the distributed catalogue (particles dealt round-robin to the ranks, groups straddling slab
 *     faces and the periodic boundary) is bitwise the catalogue of rank 0 alone, whose groups are
 *     the brute-force components; and the same at 1, 2 and 4 threads.
 */
#define T_USE_MPI
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fof.h"
#include "fof_plan.h"
#include "harness.h"
#include "particles.h"

static const double L = 37.0;
static const double LINK = 0.45;

static uint64_t hash64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t k) { return (double)(hash64(k) >> 11) / 9007199254740992.0; }

/* Clustered points: blobs centred on slab faces of 2, 3 and 4 ranks and on the periodic
 * boundary, plus uniform field points. Positions wrapped into [0, L). */
static void make_points(int64_t n, float *x[3], uint64_t *id)
{
    const double cx[8] = {0.0, 19.0, 13.0, 26.0, 10.0, 36.9, 30.0, 5.0};
    for (int64_t i = 0; i < n; i++) {
        int blob = (int)(hash64((uint64_t)i * 7 + 1) % 12);
        for (int d = 0; d < 3; d++) {
            double u = unit((uint64_t)i * 3 + (uint64_t)d + 1000);
            double p = blob < 8
                           ? (d == 0 ? cx[blob] : (d == 1 ? 36.8 : 7.0 * blob)) + (u - 0.5) * 5.0
                           : u * L;
            p = fmod(p + L, L);
            x[d][i] = (float)p;
            if (x[d][i] >= (float)L)
                x[d][i] = 0;
        }
        id[i] = hash64((uint64_t)i) >> 20; /* distinct, unordered IDs */
    }
}

/* Brute-force components: root[i] = the smallest index of i's component. */
static void brute_force(const float *const x[3], int64_t n, double box, double link, int32_t *root)
{
    for (int64_t i = 0; i < n; i++)
        root[i] = (int32_t)i;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            float a[3] = {x[0][i], x[1][i], x[2][i]}, b[3] = {x[0][j], x[1][j], x[2][j]};
            if (!fof_friends(a, b, box, link))
                continue;
            int32_t ri = (int32_t)i, rj = (int32_t)j;
            while (root[ri] != ri)
                ri = root[ri];
            while (root[rj] != rj)
                rj = root[rj];
            if (ri != rj)
                root[ri > rj ? ri : rj] = ri < rj ? ri : rj;
        }
    for (int64_t i = 0; i < n; i++)
        root[i] = root[root[i]];
}

enum { N_KERNEL = 1500 };

static void test_kernel_brute_force(void)
{
    float *x[3];
    uint64_t *id = lm_malloc("test", N_KERNEL * sizeof *id);
    for (int d = 0; d < 3; d++)
        x[d] = lm_malloc("test", N_KERNEL * sizeof(float));
    make_points(N_KERNEL, x, id);
    int32_t *ref = lm_malloc("test", N_KERNEL * sizeof *ref);
    int32_t *got = lm_malloc("test", N_KERNEL * sizeof *got);
    brute_force((const float *const *)x, N_KERNEL, L, LINK, ref);
    struct fof_domain whole = {.box = L, .link = LINK, .x_width = L};
    fof_link((const float *const *)x, N_KERNEL, &whole, got);
    int bad = 0, n_multi = 0;
    for (int i = 0; i < N_KERNEL; i++) {
        bad += got[i] != ref[i];
        n_multi += ref[i] != i;
    }
    T_CHECK(bad == 0 && n_multi > 100, "whole box: %d differences, %d linked particles", bad,
            n_multi);
    /* x window [30, 30 + 22) mod L: the points inside it */
    float *y[3];
    int64_t m = 0;
    for (int d = 0; d < 3; d++)
        y[d] = lm_malloc("test", N_KERNEL * sizeof(float));
    for (int i = 0; i < N_KERNEL; i++) {
        double u = fmod(x[0][i] - 30.0 + L, L);
        if (u < 22.0) {
            for (int d = 0; d < 3; d++)
                y[d][m] = x[d][i];
            m++;
        }
    }
    struct fof_domain win = {.box = L, .link = LINK, .x_origin = 30.0, .x_width = 22.0};
    brute_force((const float *const *)y, m, L, LINK, ref);
    fof_link((const float *const *)y, m, &win, got);
    bad = 0;
    for (int64_t i = 0; i < m; i++)
        bad += got[i] != ref[i];
    T_CHECK(bad == 0 && m > 500, "window: %d differences among %lld points", bad, (long long)m);
    /* labels are the smallest ID of each component */
    uint64_t *lab = lm_malloc("test", N_KERNEL * sizeof *lab);
    fof_labels(m, got, id, lab);
    for (int64_t i = 0; i < m; i++)
        T_CHECK(lab[i] <= id[i] && lab[i] == lab[got[i]], "label of %lld", (long long)i);
    for (int d = 0; d < 3; d++) {
        lm_free(x[d]);
        lm_free(y[d]);
    }
    lm_free(lab);
    lm_free(id);
    lm_free(ref);
    lm_free(got);
}

static void test_kernel_threads(void)
{
    enum { N = 20000 };
    float *x[3];
    uint64_t *id = lm_malloc("test", N * sizeof *id);
    for (int d = 0; d < 3; d++)
        x[d] = lm_malloc("test", N * sizeof(float));
    make_points(N, x, id);
    int32_t *r[3];
    const int threads[3] = {1, 2, 4};
    struct fof_domain whole = {.box = L, .link = LINK, .x_width = L};
    for (int t = 0; t < 3; t++) {
        r[t] = lm_malloc("test", N * sizeof(int32_t));
        omp_set_num_threads(threads[t]);
        fof_link((const float *const *)x, N, &whole, r[t]);
    }
    omp_set_num_threads(1);
    T_CHECK(memcmp(r[0], r[1], N * sizeof(int32_t)) == 0, "1 and 2 threads differ");
    T_CHECK(memcmp(r[0], r[2], N * sizeof(int32_t)) == 0, "1 and 4 threads differ");
    for (int t = 0; t < 3; t++)
        lm_free(r[t]);
    for (int d = 0; d < 3; d++)
        lm_free(x[d]);
    lm_free(id);
}

/* ---- distributed ------------------------------------------------------------------------ */

enum { N_DIST = 6000 };

/* This rank's round-robin share of the points (all of them when everything). */
static struct particles *share(MPI_Comm comm, bool everything)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    float *x[3];
    uint64_t *id = lm_malloc("test", N_DIST * sizeof *id);
    for (int d = 0; d < 3; d++)
        x[d] = lm_malloc("test", N_DIST * sizeof(float));
    make_points(N_DIST, x, id);
    struct particles *p = particles_create(PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID, 16);
    for (int64_t i = 0; i < N_DIST; i++) {
        if (!everything && i % size != rank)
            continue;
        particles_resize(p, p->n + 1);
        int64_t k = p->n - 1;
        for (int d = 0; d < 3; d++) {
            p->x[d][k] = x[d][i];
            p->v[d][k] = (float)(100.0 * unit((uint64_t)i * 5 + (uint64_t)d + 77) - 50.0);
        }
        p->id[k] = id[i];
    }
    for (int d = 0; d < 3; d++)
        lm_free(x[d]);
    lm_free(id);
    return p;
}

static void find_groups(MPI_Comm comm, bool everything, struct fof_catalogue *c)
{
    struct fof_options o = {
        .link = LINK, .min_length = 5, .particle_mass = 2.5, .members = true, .n_slab_cells = 37};
    struct particles *p = share(comm, everything);
    struct fof_plan *plan = fof_plan_create(&o, L, comm);
    fof_plan_execute(plan, p, c);
    fof_plan_destroy(&plan);
    particles_destroy(&p);
}

static bool same_catalogue(const struct fof_catalogue *a, const struct fof_catalogue *b)
{
    return a->n_groups == b->n_groups && a->n_members == b->n_members &&
           memcmp(a->groups, b->groups, (size_t)a->n_groups * sizeof *a->groups) == 0 &&
           memcmp(a->member_ids, b->member_ids, (size_t)a->n_members * sizeof(uint64_t)) == 0;
}

static void test_distributed_vs_rank0(void)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct fof_catalogue all;
    find_groups(MPI_COMM_WORLD, false, &all);
    MPI_Comm self;
    MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? 0 : MPI_UNDEFINED, 0, &self);
    if (rank == 0) {
        struct fof_catalogue one;
        find_groups(self, true, &one);
        T_CHECK(all.n_groups > 8, "only %lld groups", (long long)all.n_groups);
        T_CHECK(same_catalogue(&all, &one),
                "catalogue differs from rank 0 alone (%lld vs %lld "
                "groups)",
                (long long)all.n_groups, (long long)one.n_groups);
        /* groups = brute-force components of >= 5 members */
        struct particles *p = share(self, true);
        int32_t *root = lm_malloc("test", N_DIST * sizeof *root);
        brute_force((const float *const *)p->x, N_DIST, L, LINK, root);
        int32_t *cnt = lm_calloc("test", N_DIST, sizeof *cnt);
        int64_t n_big = 0, n_mem = 0;
        for (int i = 0; i < N_DIST; i++)
            cnt[root[i]]++;
        for (int i = 0; i < N_DIST; i++)
            if (cnt[i] >= 5) {
                n_big++;
                n_mem += cnt[i];
            }
        T_CHECK(n_big == one.n_groups && n_mem == one.n_members,
                "brute force: %lld groups, %lld members; plan %lld, %lld", (long long)n_big,
                (long long)n_mem, (long long)one.n_groups, (long long)one.n_members);
        for (int64_t k = 1; k < one.n_groups; k++)
            T_CHECK(fof_group_compare(&one.groups[k - 1], &one.groups[k]) < 0, "order at %lld",
                    (long long)k);
        lm_free(root);
        lm_free(cnt);
        particles_destroy(&p);
        fof_catalogue_free(&one);
        MPI_Comm_free(&self);
    }
    fof_catalogue_free(&all);
}

static void test_distributed_threads(void)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct fof_catalogue c[3];
    const int threads[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(threads[t]);
        find_groups(MPI_COMM_WORLD, false, &c[t]);
    }
    omp_set_num_threads(1);
    if (rank == 0)
        T_CHECK(same_catalogue(&c[0], &c[1]) && same_catalogue(&c[0], &c[2]),
                "catalogue depends on the number of threads");
    for (int t = 0; t < 3; t++)
        fof_catalogue_free(&c[t]);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_kernel_brute_force);
    T_RUN(test_kernel_threads);
    T_RUN(test_distributed_vs_rank0);
    T_RUN(test_distributed_threads);
    return t_finish();
}
