/* sort — a stable counting sort on threads (sort.h). */
#include "sort.h"

#include <omp.h>
#include <string.h>

/** A block whose keys span fewer than this many values is counted and scattered key by key with
 *  vectorisable compares (items in spatial order make such blocks: a row of particles touches
 *  one or two x planes); other blocks take one counter update per item. */
#define SORT_FEW_KEYS 16

/** Smallest and largest key of a block. */
static void key_range(const uint32_t *key, int m, uint32_t *lo, uint32_t *hi)
{
    uint32_t a = key[0], b = key[0];
    for (int j = 1; j < m; j++) {
        a = key[j] < a ? key[j] : a;
        b = key[j] > b ? key[j] : b;
    }
    *lo = a;
    *hi = b;
}

/** Items of the block with key v. */
static int count_key(const uint32_t *key, int m, uint32_t v)
{
    int c = 0;
    for (int j = 0; j < m; j++)
        c += key[j] == v;
    return c;
}

static void count_block(const uint32_t *key, int m, int64_t *cnt)
{
    uint32_t lo, hi;
    key_range(key, m, &lo, &hi);
    if (hi - lo >= SORT_FEW_KEYS) {
        for (int j = 0; j < m; j++)
            cnt[key[j]]++;
        return;
    }
    for (uint32_t v = lo; v <= hi; v++)
        cnt[v] += count_key(key, m, v);
}

/** Items i0 .. i0 + m - 1 to their places; in a block of few keys, each present key's items are
 *  compressed in order into buf (m + 1 entries) and copied at once. */
static void scatter_block(const uint32_t *key, int m, int64_t i0, int64_t *cnt, uint32_t *perm,
                          uint32_t *buf)
{
    uint32_t lo, hi;
    key_range(key, m, &lo, &hi);
    if (hi - lo >= SORT_FEW_KEYS) {
        for (int j = 0; j < m; j++)
            perm[cnt[key[j]]++] = (uint32_t)(i0 + j);
        return;
    }
    for (uint32_t v = lo; v <= hi; v++) {
        if (count_key(key, m, v) == 0)
            continue;
        int c = 0;
        for (int j = 0; j < m; j++) {
            buf[c] = (uint32_t)(i0 + j);
            c += key[j] == v;
        }
        memcpy(perm + cnt[v], buf, (size_t)c * sizeof *buf);
        cnt[v] += c;
    }
}

/* Compute kernel: thread t counts the keys of its contiguous items; one thread turns the counts
 * into offsets (key by key, thread by thread within a key); each thread then scatters its items
 * in order. */
void sort_counting(const struct sort_keys *k, int n_threads, int64_t *work, uint32_t *perm,
                   int64_t *start)
{
    const int64_t n = k->n, nk = k->n_keys;
    memset(work, 0, (size_t)n_threads * (size_t)nk * sizeof *work);
#pragma omp parallel num_threads(n_threads)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
        int64_t *cnt = work + (int64_t)t * nk;
        uint32_t key[SORT_BLOCK], buf[SORT_BLOCK + 1];
        for (int64_t i = i0; i < i1; i += SORT_BLOCK) {
            int m = i1 - i < SORT_BLOCK ? (int)(i1 - i) : SORT_BLOCK;
            k->block(k->ctx, i, m, key);
            count_block(key, m, cnt);
        }
#pragma omp barrier
#pragma omp single
        {
            int64_t o = 0;
            for (int64_t b = 0; b < nk; b++) {
                start[b] = o;
                for (int u = 0; u < nt; u++) {
                    int64_t c = work[(int64_t)u * nk + b];
                    work[(int64_t)u * nk + b] = o;
                    o += c;
                }
            }
            start[nk] = o;
        }
        for (int64_t i = i0; i < i1; i += SORT_BLOCK) {
            int m = i1 - i < SORT_BLOCK ? (int)(i1 - i) : SORT_BLOCK;
            k->block(k->ctx, i, m, key);
            scatter_block(key, m, i, cnt, perm, buf);
        }
    }
}
