/* fof — friends-of-friends on one domain: cell list and lock-free union-find (see fof.h). */
#include "fof.h"

#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "error.h"

/* Cells are at least ℓ (1 + FOF_CELL_SLACK) wide, so rounding in the cell index never separates
 * two friends by more than one cell. */
#define FOF_CELL_SLACK 1e-7

/** The cell list geometry of one search. */
struct cell_grid {
    int nc[3];        /**< cells per axis */
    bool periodic[3]; /**< axis wraps (x: whole box; y, z always) */
    double scale[3];  /**< cell index = (coordinate - origin) * scale */
    double origin;    /**< x origin of the window */
};

/** Cells along an axis of the given extent: as many as fit with side >= max(ℓ, s_density); a
 *  periodic axis with fewer than 3 cells gets 1 (so that no neighbour is visited twice). */
static int cells_along(double extent, double link, double s_density, bool periodic)
{
    double side = fmax(link * (1 + FOF_CELL_SLACK), s_density);
    double nc = floor(extent / side);
    if (nc > 1 << 20)
        nc = 1 << 20;
    if (nc < 1 || (periodic && nc < 3))
        nc = 1;
    return (int)nc;
}

static void grid_init(struct cell_grid *g, int64_t n, const struct fof_domain *d)
{
    bool whole = d->x_width >= d->box;
    double ext[3] = {whole ? d->box : d->x_width, d->box, d->box};
    /* about one particle per cell: side^3 = V / n */
    double s_density = cbrt(ext[0] * ext[1] * ext[2] / (double)(n > 0 ? n : 1));
    for (int a = 0; a < 3; a++) {
        g->periodic[a] = a > 0 || whole;
        g->nc[a] = cells_along(ext[a], d->link, s_density, g->periodic[a]);
        g->scale[a] = g->nc[a] / ext[a];
    }
    g->origin = whole ? 0 : d->x_origin;
}

static inline int cell_coord(const struct cell_grid *g, int a, double u, double box)
{
    if (a == 0 && !g->periodic[0]) {
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
    int64_t cells = (int64_t)g.nc[0] * g.nc[1] * g.nc[2];
    return (5 * n + cells + 1) * (int64_t)sizeof(int32_t);
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

/* ---- cell list -------------------------------------------------------------------------- */

/** Counting sort of the particles by cell: perm lists particle indices cell by cell, start[c] is
 *  the first entry of cell c (start[n_cells] = n), xs[d][s] = x[d][perm[s]]. key is scratch. */
static void cells_sort(const float *const x[3], int64_t n, const struct cell_grid *g, double box,
                       int32_t *key, int32_t *perm, int32_t *start, int64_t n_cells, float *xs[3])
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int c0 = cell_coord(g, 0, x[0][i], box), c1 = cell_coord(g, 1, x[1][i], box),
            c2 = cell_coord(g, 2, x[2][i], box);
        key[i] = (int32_t)(((int64_t)c0 * g->nc[1] + c1) * g->nc[2] + c2);
    }
    for (int64_t c = 0; c <= n_cells; c++)
        start[c] = 0;
    for (int64_t i = 0; i < n; i++)
        start[key[i] + 1]++;
    for (int64_t c = 0; c < n_cells; c++)
        start[c + 1] += start[c];
    for (int64_t i = 0; i < n; i++)
        perm[start[key[i]]++] = (int32_t)i;
    for (int64_t c = n_cells; c > 0; c--)
        start[c] = start[c - 1];
    start[0] = 0;
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++)
        for (int d = 0; d < 3; d++)
            xs[d][s] = x[d][perm[s]];
}

/** Link the pairs of sorted particles [a0, a1) x [b0, b1) (b0 == a0: pairs within one range). */
static inline void link_ranges(float *const xs[3], int32_t a0, int32_t a1, int32_t b0, int32_t b1,
                               double box, double link, int32_t *parent)
{
    bool same = a0 == b0;
    for (int32_t i = a0; i < a1; i++) {
        float xi[3] = {xs[0][i], xs[1][i], xs[2][i]};
        for (int32_t j = same ? i + 1 : b0; j < b1; j++) {
            float xj[3] = {xs[0][j], xs[1][j], xs[2][j]};
            if (fof_friends(xi, xj, box, link))
                uf_union(parent, i, j);
        }
    }
}

/** Link cell c (coordinates ci) with itself and its forward neighbours: the next cell of its z row
 *  and, in the rows (x, y+1), (x+1, y-1), (x+1, y), (x+1, y+1), the cells z-1 .. z+1 (contiguous
 *  in the sorted order unless they wrap). */
static void link_cell(const struct cell_grid *g, const int32_t *start, float *const xs[3],
                      const int ci[3], int64_t c, double box, double link, int32_t *parent)
{
    const int nx = g->nc[0], ny = g->nc[1], nz = g->nc[2];
    int32_t a0 = start[c], a1 = start[c + 1];
    link_ranges(xs, a0, a1, a0, a1, box, link, parent);
    int64_t row = c - ci[2];
    if (nz > 1) {
        int64_t cn = row + (ci[2] + 1 == nz ? 0 : ci[2] + 1);
        link_ranges(xs, a0, a1, start[cn], start[cn + 1], box, link, parent);
    }
    static const int rows[4][2] = {{0, 1}, {1, -1}, {1, 0}, {1, 1}};
    for (int r = 0; r < 4; r++) {
        int jx = ci[0] + rows[r][0], jy = ci[1] + rows[r][1];
        if ((rows[r][1] != 0 && ny == 1) || (rows[r][0] != 0 && nx == 1))
            continue;
        if (jx >= nx) {
            if (!g->periodic[0])
                continue;
            jx -= nx;
        }
        jy = jy < 0 ? jy + ny : jy >= ny ? jy - ny : jy;
        int64_t base = ((int64_t)jx * ny + jy) * nz;
        if (nz == 1) {
            link_ranges(xs, a0, a1, start[base], start[base + 1], box, link, parent);
        } else if (ci[2] > 0 && ci[2] + 1 < nz) {
            link_ranges(xs, a0, a1, start[base + ci[2] - 1], start[base + ci[2] + 2], box, link,
                        parent);
        } else {
            for (int dz = -1; dz <= 1; dz++) {
                int jz = ci[2] + dz;
                jz = jz < 0 ? jz + nz : jz >= nz ? jz - nz : jz;
                link_ranges(xs, a0, a1, start[base + jz], start[base + jz + 1], box, link, parent);
            }
        }
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
    int64_t n_cells = (int64_t)g.nc[0] * g.nc[1] * g.nc[2];
    CHECK(n_cells < INT32_MAX, "fof: %lld cells in one domain", (long long)n_cells);
    size_t m = (size_t)(n > 0 ? n : 1);
    int32_t *perm = lm_malloc("fof.cells", m * sizeof *perm);
    int32_t *key = lm_malloc("fof.cells", m * sizeof *key);
    int32_t *start = lm_malloc("fof.cells", (size_t)(n_cells + 1) * sizeof *start);
    float *xs[3];
    for (int a = 0; a < 3; a++)
        xs[a] = lm_malloc("fof.sorted", m * sizeof(float));
    cells_sort(x, n, &g, d->box, key, perm, start, n_cells, xs);
    /* union-find over sorted positions, in root[] */
    int32_t *parent = root;
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++)
        parent[s] = (int32_t)s;
#pragma omp parallel for schedule(dynamic, 512)
    for (int64_t c = 0; c < n_cells; c++) {
        if (start[c] == start[c + 1])
            continue;
        int ci[3] = {(int)(c / ((int64_t)g.nc[1] * g.nc[2])), (int)(c / g.nc[2] % g.nc[1]),
                     (int)(c % g.nc[2])};
        link_cell(&g, start, xs, ci, c, d->box, d->link, parent);
    }
    for (int a = 0; a < 3; a++)
        lm_free(xs[a]);
    lm_free(start);
    /* parents point to smaller sorted indices: one ascending pass leaves each entry at its root;
     * key[root] becomes the smallest original index of the component */
    for (int64_t s = 0; s < n; s++) {
        int32_t r = parent[s] = parent[parent[s]];
        if (r == s)
            key[s] = perm[s];
        else if (perm[s] < key[r])
            key[r] = perm[s];
    }
    int32_t *tmp = lm_malloc("fof.cells", m * sizeof *tmp);
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
    for (int64_t i = 0; i < n; i++) {
        int32_t r = root[i];
        if (r == i)
            label[i] = id[i];
        else if (id[i] < label[r])
            label[r] = id[i];
    }
    for (int64_t i = 0; i < n; i++)
        label[i] = label[root[i]];
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
