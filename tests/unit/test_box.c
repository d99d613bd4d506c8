/*
 * Tests of the box module: intersections, growth, wrapping, and periodic overlaps checked cell by
 * cell against a brute-force count (boxes wider than the mesh and far outside [0, n) included).
 * Single process.
 */
#include <stdint.h>

#include "box.h"
#include "harness.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int64_t rng_int(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo));
}

static void test_basic(void)
{
    struct box3 a = {{0, 0, 0}, {4, 5, 6}}, b = {{2, -1, 3}, {7, 2, 9}}, r;
    T_CHECK(box3_volume(&a) == 120, "volume %lld", (long long)box3_volume(&a));
    T_CHECK(box3_intersect(&a, &b, &r), "boxes meet");
    T_CHECK(r.lo[0] == 2 && r.hi[0] == 4 && r.lo[1] == 0 && r.hi[1] == 2 && r.lo[2] == 3 &&
                r.hi[2] == 6,
            "intersection wrong");
    struct box3 c = {{5, 0, 0}, {6, 1, 1}};
    T_CHECK(!box3_intersect(&a, &c, &r), "disjoint boxes reported as meeting");
    struct box3 e = {{3, 3, 3}, {3, 9, 9}};
    T_CHECK(box3_empty(&e) && box3_volume(&e) == 0, "empty box");
    T_CHECK(box3_contains(&a, &e), "empty box is contained anywhere");
    const int64_t lo[3] = {1, 0, 2}, hi[3] = {0, 3, 1};
    struct box3 g = box3_grow(&a, lo, hi);
    T_CHECK(g.lo[0] == -1 && g.hi[0] == 4 && g.lo[1] == 0 && g.hi[1] == 8 && g.lo[2] == -2 &&
                g.hi[2] == 7,
            "grow wrong");
    T_CHECK(box3_contains(&g, &a) && !box3_contains(&a, &g), "containment");
    struct box3 pd = box3_pad(&a, 2);
    T_CHECK(box3_volume(&pd) == 8 * 9 * 10, "pad");
    T_CHECK(box3_wrap(-1, 7) == 6 && box3_wrap(-14, 7) == 0 && box3_wrap(15, 7) == 1, "wrap");
    T_CHECK(box3_equal(&e, &(struct box3){{0, 0, 0}, {0, 0, 0}}), "empty boxes equal");
}

/* Brute force: cells of w whose periodic image lies in b. */
static int64_t brute_count(const struct box3 *b, const struct box3 *w, const int64_t n[3])
{
    int64_t cnt = 0;
    for (int64_t i = w->lo[0]; i < w->hi[0]; i++)
        for (int64_t j = w->lo[1]; j < w->hi[1]; j++)
            for (int64_t k = w->lo[2]; k < w->hi[2]; k++) {
                int64_t u[3] = {box3_wrap(i, n[0]), box3_wrap(j, n[1]), box3_wrap(k, n[2])};
                bool in = true;
                for (int a = 0; a < 3; a++)
                    in = in && u[a] >= b->lo[a] && u[a] < b->hi[a];
                cnt += in;
            }
    return cnt;
}

static void test_periodic_overlaps(void)
{
    const int64_t n[3] = {5, 7, 4};
    struct box3_overlap ov[4096];
    for (int t = 0; t < 300; t++) {
        struct box3 b, w;
        for (int a = 0; a < 3; a++) {
            b.lo[a] = rng_int(0, n[a]);
            b.hi[a] = rng_int(b.lo[a], n[a] + 1);
            w.lo[a] = rng_int(-3 * n[a], 2 * n[a]);
            w.hi[a] = w.lo[a] + rng_int(0, 3 * n[a]);
        }
        int m = box3_periodic_overlaps(&b, &w, n, 4096, ov);
        T_CHECK(m <= 4096, "too many overlaps %d", m);
        int64_t vol = 0;
        for (int q = 0; q < m && q < 4096; q++) {
            struct box3 back = box3_shift(
                &ov[q].part, (int64_t[3]){-ov[q].shift[0], -ov[q].shift[1], -ov[q].shift[2]});
            T_CHECK(box3_contains(&w, &ov[q].part), "overlap %d outside w", q);
            T_CHECK(box3_contains(&b, &back), "overlap %d does not image b", q);
            T_CHECK(!box3_empty(&ov[q].part), "empty overlap reported");
            for (int a = 0; a < 3; a++)
                T_CHECK(ov[q].shift[a] % n[a] == 0, "shift not a multiple of n");
            vol += box3_volume(&ov[q].part);
        }
        T_CHECK(vol == brute_count(&b, &w, n), "case %d: overlap volume %lld, brute force %lld", t,
                (long long)vol, (long long)brute_count(&b, &w, n));
        T_CHECK(box3_periodic_overlaps(&b, &w, n, 0, NULL) == m, "count-only call differs");
    }
}

static void test_offset(void)
{
    struct box3 a = {{-2, 3, 1}, {4, 5, 6}};
    const int64_t dims[3] = {6, 2, 8};
    T_CHECK(box3_offset(&a, dims, -2, 3, 1) == 0, "origin");
    T_CHECK(box3_offset(&a, dims, -1, 4, 2) == (1 * 2 + 1) * 8 + 1, "offset");
}

int main(void)
{
    T_RUN(test_basic);
    T_RUN(test_periodic_overlaps);
    T_RUN(test_offset);
    return t_finish();
}
