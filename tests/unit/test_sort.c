/*
 * test_sort — the threaded stable counting sort against a brute-force stable sort (qsort of
 * (key, index) pairs): random keys (one counter update per item), keys in runs as spatially
 * ordered particles give (blocks of few keys), a single key, more threads than items, no items;
 * the permutation and the offsets are the same at 1, 2, 3 and 4 threads.
 */
#include "harness.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "sort.h"

/** The keys of a case, computed by the sort's block callback from this table. */
struct key_table {
    const uint32_t *key;
};

static void table_block(const void *ctx, int64_t i0, int m, uint32_t *key)
{
    const struct key_table *t = ctx;
    memcpy(key, t->key + i0, (size_t)m * sizeof *key);
}

static const uint32_t *cmp_keys;

static int cmp_stable(const void *a, const void *b)
{
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (cmp_keys[i] != cmp_keys[j])
        return cmp_keys[i] < cmp_keys[j] ? -1 : 1;
    return i < j ? -1 : i > j; /* equal keys keep their order */
}

static uint64_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/** Sort n keys in [0, n_keys) at 1-4 threads and compare with the brute-force order. */
static void check_case(const char *name, const uint32_t *key, int64_t n, int64_t n_keys)
{
    uint32_t *ref = malloc((size_t)(n + 1) * sizeof *ref);
    for (int64_t i = 0; i < n; i++)
        ref[i] = (uint32_t)i;
    cmp_keys = key;
    qsort(ref, (size_t)n, sizeof *ref, cmp_stable);
    struct key_table t = {key};
    struct sort_keys k = {n, n_keys, table_block, &t};
    uint32_t *perm = malloc((size_t)(n + 1) * sizeof *perm);
    int64_t *start = malloc((size_t)(n_keys + 1) * sizeof *start);
    int64_t *work = malloc((size_t)(4 * n_keys) * sizeof *work);
    for (int nt = 1; nt <= 4; nt++) {
        memset(perm, 0xff, (size_t)(n + 1) * sizeof *perm);
        sort_counting(&k, nt, work, perm, start);
        int64_t bad = 0, bad_start = 0;
        for (int64_t i = 0; i < n; i++)
            bad += perm[i] != ref[i];
        for (int64_t b = 0, i = 0; b <= n_keys; b++) {
            bad_start += start[b] != i; /* first sorted position with key >= b */
            while (i < n && key[ref[i]] == (uint32_t)b)
                i++;
        }
        T_CHECK(bad == 0, "%s, %d threads: %lld of %lld items out of place", name, nt,
                (long long)bad, (long long)n);
        T_CHECK(bad_start == 0, "%s, %d threads: %lld offsets wrong", name, nt,
                (long long)bad_start);
    }
    free(ref);
    free(perm);
    free(start);
    free(work);
}

static void test_random_keys(void)
{
    enum { N = 20011, K = 997 };
    uint32_t *key = malloc(N * sizeof *key);
    uint64_t s = 7;
    for (int i = 0; i < N; i++)
        key[i] = (uint32_t)(rng(&s) % K);
    check_case("random keys", key, N, K);
    free(key);
}

/* Runs of one or two keys per block of 256 (a displaced lattice painted by x plane), and runs
 * that cross block boundaries, exercise the few-keys path. */
static void test_runs(void)
{
    enum { N = 50000, K = 60 };
    uint32_t *key = malloc(N * sizeof *key);
    uint64_t s = 11;
    for (int i = 0; i < N; i++) {
        uint32_t plane = (uint32_t)(i / 900) % (K - 1);
        key[i] = plane + (rng(&s) % 5 == 0); /* the neighbouring plane now and then */
    }
    check_case("runs", key, N, K);
    for (int i = 0; i < N; i++)
        key[i] = (uint32_t)(i / 300) % 3 ? 5 : 20; /* two keys far apart */
    check_case("two far keys", key, N, K);
    free(key);
}

static void test_edges(void)
{
    uint32_t key[7] = {3, 3, 3, 3, 3, 3, 3};
    check_case("one key", key, 7, 4);
    uint32_t few[3] = {2, 0, 2};
    check_case("fewer items than threads", few, 3, 3);
    check_case("no items", few, 0, 3);
}

/* A case must be able to fail: a sort by the wrong key is caught. */
static void test_detects_error(void)
{
    uint32_t key[5] = {1, 0, 1, 0, 0}, wrong[5] = {0, 0, 1, 1, 0};
    struct key_table t = {wrong};
    struct sort_keys k = {5, 2, table_block, &t};
    uint32_t perm[5];
    int64_t start[3], work[2];
    sort_counting(&k, 1, work, perm, start);
    uint32_t want[5] = {1, 3, 4, 0, 2}; /* stable order of key[] */
    int differ = 0;
    for (int i = 0; i < 5; i++)
        differ += perm[i] != want[i];
    (void)key;
    T_CHECK(differ > 0, "the order of other keys matched by chance");
}

int main(void)
{
    T_RUN(test_random_keys);
    T_RUN(test_runs);
    T_RUN(test_edges);
    T_RUN(test_detects_error);
    return t_finish();
}
