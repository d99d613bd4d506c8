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
    int n_offsets;    /**< forward neighbour offsets in use */
    int offsets[13][3];
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
    g->n_offsets = 0;
    for (int dx = 0; dx <= 1; dx++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dz = -1; dz <= 1; dz++) {
                int o[3] = {dx, dy, dz};
                bool forward = dx > 0 || (dx == 0 && (dy > 0 || (dy == 0 && dz > 0)));
                bool usable = forward;
                for (int a = 0; a < 3; a++)
                    usable &= o[a] == 0 || g->nc[a] > 1;
                if (!usable)
                    continue;
                for (int a = 0; a < 3; a++)
                    g->offsets[g->n_offsets][a] = o[a];
                g->n_offsets++;
            }
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
    return (2 * n + cells + 1) * (int64_t)sizeof(int32_t);
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
 *  the first entry of cell c (start[n_cells] = n). */
static void cells_sort(const float *const x[3], int64_t n, const struct cell_grid *g, double box,
                       int32_t *perm, int32_t *start, int64_t n_cells)
{
    int32_t *key = lm_malloc("fof.cells", (size_t)(n > 0 ? n : 1) * sizeof *key);
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
    lm_free(key);
}

/** Link the pairs of particles a[0..na) x b[0..nb) (same cell when same != 0: pairs j > i). */
static inline void link_cells(const float *const x[3], const int32_t *a, int32_t na,
                              const int32_t *b, int32_t nb, bool same, double box, double link,
                              int32_t *root)
{
    for (int32_t s = 0; s < na; s++) {
        int32_t i = a[s];
        float xi[3] = {x[0][i], x[1][i], x[2][i]};
        for (int32_t t = same ? s + 1 : 0; t < nb; t++) {
            int32_t j = b[t];
            float xj[3] = {x[0][j], x[1][j], x[2][j]};
            if (fof_friends(xi, xj, box, link))
                uf_union(root, i, j);
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
    int32_t *perm = lm_malloc("fof.cells", (size_t)(n > 0 ? n : 1) * sizeof *perm);
    int32_t *start = lm_malloc("fof.cells", (size_t)(n_cells + 1) * sizeof *start);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        root[i] = (int32_t)i;
    cells_sort(x, n, &g, d->box, perm, start, n_cells);
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t c = 0; c < n_cells; c++) {
        int32_t na = start[c + 1] - start[c];
        if (na == 0)
            continue;
        const int32_t *a = perm + start[c];
        int ci[3] = {(int)(c / ((int64_t)g.nc[1] * g.nc[2])), (int)(c / g.nc[2] % g.nc[1]),
                     (int)(c % g.nc[2])};
        link_cells(x, a, na, a, na, true, d->box, d->link, root);
        for (int o = 0; o < g.n_offsets; o++) {
            int cj[3];
            bool inside = true;
            for (int k = 0; k < 3; k++) {
                cj[k] = ci[k] + g.offsets[o][k];
                if (g.periodic[k])
                    cj[k] = cj[k] < 0 ? cj[k] + g.nc[k] : cj[k] >= g.nc[k] ? cj[k] - g.nc[k] : cj[k];
                else
                    inside &= cj[k] >= 0 && cj[k] < g.nc[k];
            }
            if (!inside)
                continue;
            int64_t cn = ((int64_t)cj[0] * g.nc[1] + cj[1]) * g.nc[2] + cj[2];
            link_cells(x, a, na, perm + start[cn], start[cn + 1] - start[cn], false, d->box,
                       d->link, root);
        }
    }
    /* parents point to smaller indices: one ascending pass leaves every entry at its root */
    for (int64_t i = 0; i < n; i++)
        root[i] = root[root[i]];
    lm_free(start);
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
