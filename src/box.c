#include "box.h"

int64_t box3_volume(const struct box3 *b)
{
    return box3_extent(b, 0) * box3_extent(b, 1) * box3_extent(b, 2);
}

bool box3_empty(const struct box3 *b) { return box3_volume(b) == 0; }

bool box3_contains(const struct box3 *outer, const struct box3 *inner)
{
    if (box3_empty(inner))
        return true;
    for (int a = 0; a < 3; a++)
        if (inner->lo[a] < outer->lo[a] || inner->hi[a] > outer->hi[a])
            return false;
    return true;
}

bool box3_equal(const struct box3 *a, const struct box3 *b)
{
    if (box3_empty(a) || box3_empty(b))
        return box3_empty(a) && box3_empty(b);
    for (int k = 0; k < 3; k++)
        if (a->lo[k] != b->lo[k] || a->hi[k] != b->hi[k])
            return false;
    return true;
}

bool box3_intersect(const struct box3 *a, const struct box3 *b, struct box3 *out)
{
    struct box3 r;
    for (int k = 0; k < 3; k++) {
        r.lo[k] = a->lo[k] > b->lo[k] ? a->lo[k] : b->lo[k];
        r.hi[k] = a->hi[k] < b->hi[k] ? a->hi[k] : b->hi[k];
    }
    *out = r;
    return !box3_empty(&r);
}

struct box3 box3_grow(const struct box3 *b, const int64_t w_lo[3], const int64_t w_hi[3])
{
    struct box3 r;
    for (int a = 0; a < 3; a++) {
        r.lo[a] = b->lo[a] - w_lo[a];
        r.hi[a] = b->hi[a] + w_hi[a];
    }
    return r;
}

struct box3 box3_pad(const struct box3 *b, int64_t w)
{
    const int64_t ws[3] = {w, w, w};
    return box3_grow(b, ws, ws);
}

struct box3 box3_shift(const struct box3 *b, const int64_t s[3])
{
    struct box3 r;
    for (int a = 0; a < 3; a++) {
        r.lo[a] = b->lo[a] + s[a];
        r.hi[a] = b->hi[a] + s[a];
    }
    return r;
}

/* floor(p / q) for q > 0 */
static int64_t floor_div(int64_t p, int64_t q) { return p >= 0 ? p / q : -((-p + q - 1) / q); }

/* Image multiples m with [lo + m n, hi + m n) meeting [wlo, whi): m in [*m0, *m1]. */
static void image_range(int64_t lo, int64_t hi, int64_t wlo, int64_t whi, int64_t n, int64_t *m0,
                        int64_t *m1)
{
    /* lo + m n < whi  and  hi + m n > wlo */
    *m1 = floor_div(whi - lo - 1, n);
    *m0 = floor_div(wlo - hi, n) + 1;
}

int box3_periodic_overlaps(const struct box3 *b, const struct box3 *w, const int64_t n[3], int cap,
                           struct box3_overlap *out)
{
    if (box3_empty(b) || box3_empty(w))
        return 0;
    int64_t m0[3], m1[3];
    for (int a = 0; a < 3; a++)
        image_range(b->lo[a], b->hi[a], w->lo[a], w->hi[a], n[a], &m0[a], &m1[a]);
    int count = 0;
    for (int64_t i = m0[0]; i <= m1[0]; i++)
        for (int64_t j = m0[1]; j <= m1[1]; j++)
            for (int64_t k = m0[2]; k <= m1[2]; k++) {
                const int64_t s[3] = {i * n[0], j * n[1], k * n[2]};
                struct box3 img = box3_shift(b, s), part;
                if (!box3_intersect(&img, w, &part))
                    continue;
                if (count < cap)
                    out[count] = (struct box3_overlap){.part = part, .shift = {s[0], s[1], s[2]}};
                count++;
            }
    return count;
}
