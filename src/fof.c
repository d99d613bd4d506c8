/* fof — friends-of-friends on one domain: cell list and lock-free union-find (see fof.h). */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE (Linux) */
#include "fof.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"
#include "error.h"
#include "sort.h"

/* Cells are at least ℓ (1 + FOF_CELL_SLACK) wide, so rounding in the cell index never separates
 * two friends by more than one cell; z windows are widened by the same factor. */
#define FOF_CELL_SLACK 1e-6

/** The geometry of one search: x-y cells of side >= ℓ whose particles form rows sorted by z. */
struct cell_grid {
    int nc[2];       /**< cells along x and y */
    bool periodic_x; /**< x wraps (the whole box); y and z always do */
    double scale[2]; /**< cell index = (coordinate - origin) * scale */
    double origin;   /**< x origin of the window */
};

/** Cells along an axis of the given extent: as many as fit with side >= max(ℓ, s_density); a
 *  periodic axis with fewer than 3 cells gets 1 (so that no neighbour is visited twice). */
static int cells_along(double extent, double link, double s_density, bool periodic)
{
    double side = fmax(link * (1 + FOF_CELL_SLACK), s_density);
    double nc = floor(extent / side);
    if (nc > 1 << 16)
        nc = 1 << 16;
    if (nc < 1 || (periodic && nc < 3))
        nc = 1;
    return (int)nc;
}

static void grid_init(struct cell_grid *g, int64_t n, const struct fof_domain *d)
{
    bool whole = d->x_width >= d->box;
    double ext[2] = {whole ? d->box : d->x_width, d->box};
    /* rows of side half the mean spacing: a z window of 2ℓ then holds few particles */
    double s_density = 0.5 * cbrt(ext[0] * ext[1] * d->box / (double)(n > 0 ? n : 1));
    g->periodic_x = whole;
    for (int a = 0; a < 2; a++) {
        g->nc[a] = cells_along(ext[a], d->link, s_density, a == 1 || whole);
        g->scale[a] = g->nc[a] / ext[a];
    }
    g->origin = whole ? 0 : d->x_origin;
}

static inline int cell_coord(const struct cell_grid *g, int a, double u, double box)
{
    if (a == 0 && !g->periodic_x) {
        u -= g->origin;
        if (u < 0)
            u += box;
        else if (u >= box)
            u -= box;
    }
    int i = (int)(u * g->scale[a]);
    return i < 0 ? 0 : i >= g->nc[a] ? g->nc[a] - 1 : i;
}

int64_t fof_link_workspace(int64_t n, const struct fof_domain *d)
{
    struct cell_grid g;
    grid_init(&g, n, d);
    int64_t rows = (int64_t)g.nc[0] * g.nc[1];
    /* per-particle arrays (5n int32 at the peak), int32 row starts, and while sorting int64
     * counts per thread and int64 row starts */
    return (5 * n + rows + 1) * (int64_t)sizeof(int32_t) +
           ((int64_t)omp_get_max_threads() * rows + rows + 1) * (int64_t)sizeof(int64_t);
}

/** lm_malloc for the large work arrays, advising the kernel to back them with huge pages where
 *  it can: first touch of hundreds of MB in 4 KiB pages costs more than the sort that fills them.
 */
static void *work_alloc(const char *label, size_t bytes)
{
    void *p = lm_malloc(label, bytes);
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
    return p;
}

/* ---- union-find ------------------------------------------------------------------------- */

/** Root of i with path halving; parents only ever decrease, so concurrent halving is safe. */
static inline int32_t uf_find(int32_t *p, int32_t i)
{
    for (;;) {
        int32_t q = __atomic_load_n(&p[i], __ATOMIC_ACQUIRE);
        if (q == i)
            return i;
        int32_t g = __atomic_load_n(&p[q], __ATOMIC_ACQUIRE);
        if (g != q)
            __atomic_store_n(&p[i], g, __ATOMIC_RELEASE);
        i = g;
    }
}

/** Merge the sets of a and b: the larger root is linked under the smaller with a CAS. */
static inline void uf_union(int32_t *p, int32_t a, int32_t b)
{
    for (;;) {
        a = uf_find(p, a);
        b = uf_find(p, b);
        if (a == b)
            return;
        if (a < b) {
            int32_t t = a;
            a = b;
            b = t;
        }
        int32_t expected = a;
        if (__atomic_compare_exchange_n(&p[a], &expected, b, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return;
    }
}

/** A sorted position: one 16-byte record, so that a pair test reads one cache line per particle. */
struct sorted_pos {
    float x[4]; /**< x, y, z; x[3] pads the record */
};

/* ---- rows ------------------------------------------------------------------------------- */

/** Keys of the row sort: the x-y cell of each particle. */
struct row_keys {
    const float *const *x;
    const struct cell_grid *g;
    double box;
};

static void row_key_block(const void *ctx, int64_t i0, int m, uint32_t *key)
{
    const struct row_keys *c = ctx;
    const struct cell_grid *g = c->g;
    for (int k = 0; k < m; k++)
        key[k] = (uint32_t)((int64_t)cell_coord(g, 0, c->x[0][i0 + k], c->box) * g->nc[1] +
                            cell_coord(g, 1, c->x[1][i0 + k], c->box));
}

/** Sort the particles by row (counting sort), then each row by z: perm lists particle indices row
 *  by row, start[r] is the first entry of row r (start[n_rows] = n), pos[s].x[d] = x[d][perm[s]].
 */
static void rows_sort(const float *const x[3], int64_t n, const struct cell_grid *g, double box,
                      int32_t *perm, int32_t *start, int64_t n_rows, struct sorted_pos *pos)
{
    /* the shared stable counting sort by row (threaded, the same order for any thread count) */
    int n_threads = omp_get_max_threads();
    int64_t *count = lm_malloc("fof.cells", (size_t)n_threads * (size_t)n_rows * sizeof *count);
    int64_t *start64 = lm_malloc("fof.cells", (size_t)(n_rows + 1) * sizeof *start64);
    struct row_keys rk = {x, g, box};
    struct sort_keys k = {n, n_rows, row_key_block, &rk};
    sort_counting(&k, n_threads, count, (uint32_t *)perm, start64);
    int32_t longest = 0;
    for (int64_t r = 0; r <= n_rows; r++) {
        start[r] = (int32_t)start64[r];
        if (r > 0 && start[r] - start[r - 1] > longest)
            longest = start[r] - start[r - 1];
    }
    lm_free(start64);
    lm_free(count);
    /* each row: a counting sort by z bin (about one particle per bin; bins are monotone in z),
     * then an insertion sort of the (z, index) keys, which moves entries only within their bin */
    size_t per = 3 * (size_t)(longest + 1); /* b, c: keys; then bin_start, bin */
    uint64_t *buf = lm_malloc("fof.cells", (size_t)n_threads * per * 8);
#pragma omp parallel
    {
        uint64_t *b = buf + (size_t)omp_get_thread_num() * per, *c = b + longest + 1;
        int32_t *bin_start = (int32_t *)(c + longest + 1), *bin = bin_start + longest + 1;
#pragma omp for schedule(dynamic, 64)
        for (int64_t r = 0; r < n_rows; r++) {
            int32_t r0 = start[r], m = start[r + 1] - r0;
            double zscale = m / box;
            for (int32_t k = 0; k <= m; k++)
                bin_start[k] = 0;
            for (int32_t k = 0; k < m; k++) {
                float z = x[2][perm[r0 + k]] + 0.0f; /* -0 sorts as +0 */
                uint32_t bits;
                memcpy(&bits, &z, sizeof bits);
                c[k] = (uint64_t)bits << 32 | (uint32_t)perm[r0 + k];
                int32_t zb = (int32_t)((double)z * zscale);
                bin[k] = zb < 0 ? 0 : zb >= m ? m - 1 : zb;
                bin_start[bin[k] + 1]++;
            }
            for (int32_t q = 0; q < m; q++)
                bin_start[q + 1] += bin_start[q];
            for (int32_t k = 0; k < m; k++)
                b[bin_start[bin[k]]++] = c[k];
            for (int32_t i = 1; i < m; i++) {
                uint64_t v = b[i];
                int32_t j = i;
                for (; j > 0 && b[j - 1] > v; j--)
                    b[j] = b[j - 1];
                b[j] = v;
            }
            for (int32_t k = 0; k < m; k++) {
                int32_t i = (int32_t)(uint32_t)b[k];
                perm[r0 + k] = i;
                pos[r0 + k] = (struct sorted_pos){{x[0][i], x[1][i], x[2][i], 0.0f}};
            }
        }
    }
    lm_free(buf);
}

/** The search of one row against itself or another row. */
struct row_link {
    const struct sorted_pos *pos;
    double box, link, reach; /**< reach: the z window half-width, ℓ widened by the slack */
    int32_t *parent;
};

static inline void try_pair(const struct row_link *k, int32_t i, int32_t j)
{
    if (fof_friends(k->pos[i].x, k->pos[j].x, k->box, k->link))
        uf_union(k->parent, i, j);
}

/** First entry of [b0, b1) (sorted by z) with z >= v. */
static inline int32_t lower_bound(const struct sorted_pos *p, int32_t b0, int32_t b1, double v)
{
    while (b0 < b1) {
        int32_t mid = b0 + (b1 - b0) / 2;
        if ((double)p[mid].x[2] < v)
            b0 = mid + 1;
        else
            b1 = mid;
    }
    return b0;
}

/** Pairs within one row: each particle with those above it within the reach (and across z = L). */
static void link_row_self(const struct row_link *k, int32_t r0, int32_t r1)
{
    const struct sorted_pos *p = k->pos;
    for (int32_t s = r0; s < r1; s++) {
        double top = (double)p[s].x[2] + k->reach;
        for (int32_t t = s + 1; t < r1 && (double)p[t].x[2] <= top; t++)
            try_pair(k, s, t);
        for (int32_t t = r0; t < s && top >= k->box && (double)p[t].x[2] <= top - k->box; t++)
            try_pair(k, s, t);
    }
}

/** Pairs of row [a0, a1) with row [b0, b1): z windows [z - reach, z + reach], periodic. */
static void link_rows(const struct row_link *k, int32_t a0, int32_t a1, int32_t b0, int32_t b1)
{
    const struct sorted_pos *p = k->pos;
    int32_t lo = b0;
    for (int32_t s = a0; s < a1 && b0 < b1; s++) {
        double zs = p[s].x[2], bottom = zs - k->reach, top = zs + k->reach;
        while (lo < b1 && (double)p[lo].x[2] < bottom)
            lo++;
        for (int32_t t = lo; t < b1 && (double)p[t].x[2] <= top; t++)
            try_pair(k, s, t);
        if (bottom < 0)
            for (int32_t t = lower_bound(p, b0, b1, bottom + k->box); t < b1; t++)
                try_pair(k, s, t);
        if (top >= k->box)
            for (int32_t t = b0; t < b1 && (double)p[t].x[2] <= top - k->box; t++)
                try_pair(k, s, t);
    }
}

/** Row (ix, iy) with itself and the forward rows (x, y+1), (x+1, y-1), (x+1, y), (x+1, y+1). */
static void link_row(const struct cell_grid *g, const int32_t *start, const struct row_link *k,
                     int ix, int iy)
{
    const int nx = g->nc[0], ny = g->nc[1];
    int64_t r = (int64_t)ix * ny + iy;
    int32_t a0 = start[r], a1 = start[r + 1];
    link_row_self(k, a0, a1);
    static const int rows[4][2] = {{0, 1}, {1, -1}, {1, 0}, {1, 1}};
    for (int o = 0; o < 4; o++) {
        int jx = ix + rows[o][0], jy = iy + rows[o][1];
        if ((rows[o][1] != 0 && ny == 1) || (rows[o][0] != 0 && nx == 1))
            continue;
        if (jx >= nx) {
            if (!g->periodic_x)
                continue;
            jx -= nx;
        }
        jy = jy < 0 ? jy + ny : jy >= ny ? jy - ny : jy;
        int64_t q = (int64_t)jx * ny + jy;
        link_rows(k, a0, a1, start[q], start[q + 1]);
    }
}

void fof_link(const float *const x[3], int64_t n, const struct fof_domain *d, int32_t *root)
{
    CHECK(n < INT32_MAX, "fof: %lld particles in one domain; at most %d are supported",
          (long long)n, INT32_MAX - 1);
    CHECK(d->link > 0 && d->link < 0.5 * d->box,
          "fof: linking length %g Mpc/h; expected a value in (0, %g) (half the box)", d->link,
          0.5 * d->box);
    struct cell_grid g;
    grid_init(&g, n, d);
    int64_t n_rows = (int64_t)g.nc[0] * g.nc[1];
    size_t m = (size_t)(n > 0 ? n : 1);
    int32_t *perm = work_alloc("fof.cells", m * sizeof *perm);
    int32_t *key = work_alloc("fof.cells", m * sizeof *key);
    int32_t *start = lm_malloc("fof.cells", (size_t)(n_rows + 1) * sizeof *start);
    struct sorted_pos *pos = work_alloc("fof.sorted", m * sizeof *pos);
    rows_sort(x, n, &g, d->box, perm, start, n_rows, pos);
    /* union-find over sorted positions, in root[] */
    int32_t *parent = root;
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++)
        parent[s] = (int32_t)s;
    struct row_link k = {.pos = pos,
                         .box = d->box,
                         .link = d->link,
                         .reach = d->link * (1 + FOF_CELL_SLACK),
                         .parent = parent};
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rows; r++)
        if (start[r] < start[r + 1])
            link_row(&g, start, &k, (int)(r / g.nc[1]), (int)(r % g.nc[1]));
    lm_free(pos);
    lm_free(start);
    /* each entry to its root, and key[root] = the smallest original index of the component (an
     * atomic minimum; the root's own entry starts it) */
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t s = 0; s < n; s++)
            key[s] = perm[s];
#pragma omp for schedule(static)
        for (int64_t s = 0; s < n; s++) {
            int32_t r = uf_find(parent, (int32_t)s);
            if (r == s)
                continue;
            __atomic_store_n(&parent[s], r, __ATOMIC_RELAXED);
            int32_t v = perm[s], cur = __atomic_load_n(&key[r], __ATOMIC_RELAXED);
            while (v < cur && !__atomic_compare_exchange_n(&key[r], &cur, v, true, __ATOMIC_RELAXED,
                                                           __ATOMIC_RELAXED))
                ;
        }
    }
    int32_t *tmp = work_alloc("fof.cells", m * sizeof *tmp);
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++)
        tmp[s] = key[parent[s]];
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++)
        root[perm[s]] = tmp[s];
    lm_free(tmp);
    lm_free(key);
    lm_free(perm);
}

void fof_labels(int64_t n, const int32_t *root, const uint64_t *id, uint64_t *label)
{
    /* label[r] = the smallest ID of r's component (an atomic minimum), then copied to members */
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++)
            label[i] = id[i];
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            int32_t r = root[i];
            if (r == i)
                continue;
            uint64_t v = id[i], cur = __atomic_load_n(&label[r], __ATOMIC_RELAXED);
            while (v < cur && !__atomic_compare_exchange_n(&label[r], &cur, v, true,
                                                           __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
        }
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++)
            if (root[i] != i)
                label[i] = label[root[i]];
    }
}

/* ---- group properties ------------------------------------------------------------------- */

static inline double min_image(double dx, double box)
{
    double half = 0.5 * box;
    if (dx > half)
        dx -= box;
    else if (dx < -half)
        dx += box;
    return dx;
}

void fof_group_properties(const float *const x[3], const float *const v[3], const int64_t *idx,
                          int64_t m, uint64_t first_id, double box, double particle_mass,
                          struct fof_group *g)
{
    double ref[3], sx[3] = {0, 0, 0}, sv[3] = {0, 0, 0};
    for (int d = 0; d < 3; d++)
        ref[d] = x[d][idx[0]];
    for (int64_t k = 0; k < m; k++)
        for (int d = 0; d < 3; d++) {
            sx[d] += min_image((double)x[d][idx[k]] - ref[d], box);
            sv[d] += v ? (double)v[d][idx[k]] : 0.0;
        }
    double mx[3], mv[3], r2 = 0, v2 = 0;
    for (int d = 0; d < 3; d++) {
        mx[d] = sx[d] / (double)m;
        mv[d] = sv[d] / (double)m;
    }
    for (int64_t k = 0; k < m; k++)
        for (int d = 0; d < 3; d++) {
            double dx = min_image((double)x[d][idx[k]] - ref[d], box) - mx[d];
            double dv = (v ? (double)v[d][idx[k]] : 0.0) - mv[d];
            r2 += dx * dx;
            v2 += dv * dv;
        }
    g->len = m;
    g->first_id = first_id;
    g->mass = (double)m * particle_mass;
    for (int d = 0; d < 3; d++) {
        double p = ref[d] + mx[d];
        p = p < 0 ? p + box : p >= box ? p - box : p;
        g->pos[d] = p < box ? p : 0.0;
        g->vel[d] = mv[d];
    }
    g->vel_disp = sqrt(v2 / (3.0 * (double)m));
    g->radius = sqrt(r2 / (double)m);
}

int fof_group_compare(const void *a, const void *b)
{
    const struct fof_group *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->first_id < y->first_id ? -1 : x->first_id > y->first_id;
}

void fof_catalogue_free(struct fof_catalogue *c)
{
    lm_free(c->groups);
    lm_free(c->member_ids);
    memset(c, 0, sizeof *c);
}
