/*
 * sort (tier: kernels) — a stable counting sort of n items by small integer keys, on OpenMP
 * threads, the same permutation for any number of threads.
 *
 * The keys are not stored: a caller's function computes those of a block of consecutive items
 * into a small buffer (so it can be written as a vectorisable loop), once to count and once to
 * scatter. Thread t takes the contiguous items [n t / T, n (t + 1) / T); the counts are laid out
 * key by key, and within a key thread by thread, so every item lands where the serial stable sort
 * puts it (Knuth, TAOCP vol. 3, sec. 5.2, Algorithm D, distribution counting). Used by the CIC
 * painter (keys: x planes) and by friends-of-friends (keys: x-y rows of cells).
 */
#ifndef LEMUR_SORT_H
#define LEMUR_SORT_H

#include <stdint.h>

/** Items whose keys a sort_key_block call computes at once (the keys buffer's length). */
#define SORT_BLOCK 256

/** What the counting sort needs to know about its items. */
struct sort_keys {
    int64_t n;      /**< items 0 .. n-1 (n < 2^32) */
    int64_t n_keys; /**< keys lie in [0, n_keys) */
    /** Keys of items [i0, i0 + m) (m <= SORT_BLOCK) into key[0 .. m); ctx is passed through. */
    void (*block)(const void *ctx, int64_t i0, int m, uint32_t *key);
    const void *ctx;
};

/** Sort items 0 .. n-1 stably by key: perm lists them key by key, key k occupying
 *  perm[start[k] .. start[k + 1]). The permutation does not depend on the number of threads.
 *  @param n_threads  OpenMP threads to use (at most; >= 1)
 *  @param work       n_threads n_keys counts (scratch, caller's)
 *  @param perm       out: n item indices
 *  @param start      out: n_keys + 1 offsets (start[n_keys] = n)
 *  Local. */
void sort_counting(const struct sort_keys *k, int n_threads, int64_t *work, uint32_t *perm,
                   int64_t *start);

#endif
