/* fof_plan — distributed friends-of-friends groups (see fof_plan.h). */
#include "fof_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/fof_exchange.h"
#include "mpi/migrate.h"
#include "timer.h"

/* Ghost layers are ℓ (1 + FOF_GHOST_SLACK) thick: rounding never drops a friend. */
#define FOF_GHOST_SLACK 1e-6

struct fof_plan {
    struct fof_options o;
    double box;
    struct decomp d;
    MPI_Comm comm; /**< d.comm */
};

struct fof_plan *fof_plan_create(const struct fof_options *o, double box, MPI_Comm comm)
{
    CHECK(o->link > 0 && o->link < 0.5 * box,
          "fof: linking length %g Mpc/h; expected a value in (0, %g)", o->link, 0.5 * box);
    CHECK(o->min_length >= 1 && o->n_slab_cells >= 1, "fof: min_length %lld, slab cells %d",
          (long long)o->min_length, o->n_slab_cells);
    struct fof_plan *p = lm_calloc("fof.plan", 1, sizeof *p);
    p->o = *o;
    p->box = box;
    const int n[3] = {o->n_slab_cells, 1, 1};
    decomp_create_slabs_default(&p->d, comm, n);
    p->comm = p->d.comm;
    return p;
}

const struct decomp *fof_plan_decomp(const struct fof_plan *p) { return &p->d; }

void fof_plan_destroy(struct fof_plan **pp)
{
    struct fof_plan *p = pp ? *pp : NULL;
    if (!p)
        return;
    decomp_destroy(&p->d);
    lm_free(p);
    *pp = NULL;
}

/** lm_realloc that also starts from NULL. */
static void *grow(void *ptr, size_t bytes)
{
    return ptr ? lm_realloc(ptr, bytes) : lm_malloc("fof.lists", bytes);
}

/* ---- ghosts ----------------------------------------------------------------------------- */

/** A growing list of (particle, destination) copies. */
struct copies {
    int64_t n, cap;
    int32_t *idx, *dest;
};

static void copies_add(struct copies *c, int32_t i, int32_t r)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->idx = grow(c->idx, (size_t)c->cap * sizeof *c->idx);
        c->dest = grow(c->dest, (size_t)c->cap * sizeof *c->dest);
    }
    c->idx[c->n] = i;
    c->dest[c->n++] = r;
}

/** Every rank other than this one whose slab lies within ℓ' of particle i (x periodic). */
static void ghost_destinations(const struct fof_plan *p, const struct particles *parts,
                               double reach, struct copies *c)
{
    const struct decomp *d = &p->d;
    int n = d->n[0];
    for (int64_t i = 0; i < parts->n; i++) {
        double x = parts->x[0][i];
        int64_t lo = decomp_cell_index(x - reach, n, p->box);
        int64_t hi = decomp_cell_index(x + reach, n, p->box);
        int64_t span = 2 * reach >= p->box ? n : (hi - lo + n) % n + 1;
        int64_t first = c->n;
        int last = d->rank;
        for (int64_t s = 0; s < span; s++) {
            int r = d->owner[0][(lo + s) % n];
            if (r == last || r == d->rank)
                continue;
            last = r;
            bool seen = false;
            for (int64_t k = first; k < c->n && !seen; k++)
                seen = c->dest[k] == r;
            if (!seen)
                copies_add(c, (int32_t)i, r);
        }
    }
}

/* ---- labels ----------------------------------------------------------------------------- */

/** Merge component labels (label[root]) across ranks through the ghost copies until no label
 *  changes; returns the number of rounds. */
static int merge_labels(struct fof_exchange *x, int64_t n_own, const int32_t *root, uint64_t *label,
                        MPI_Comm comm)
{
    timer_start("fof.merge");
    int64_t ng = fof_exchange_n_ghosts(x);
    uint64_t *gv = lm_malloc("fof.merge", (size_t)(ng > 0 ? ng : 1) * sizeof *gv);
    int rounds = 0;
    for (;;) {
        rounds++;
        int64_t changed = 0;
        fof_exchange_forward(x, label, root, gv);
        for (int64_t g = 0; g < ng; g++) {
            int32_t r = root[n_own + g];
            if (gv[g] < label[r]) {
                label[r] = gv[g];
                changed++;
            }
        }
        for (int64_t g = 0; g < ng; g++)
            gv[g] = label[root[n_own + g]];
        changed += fof_exchange_backward_min(x, gv, label, root);
        if (fof_exchange_sum(comm, changed) == 0)
            break;
    }
    lm_free(gv);
    timer_stop("fof.merge");
    return rounds;
}

/* ---- groups ----------------------------------------------------------------------------- */

/** One member of a group that spans ranks, sent to the group's home rank. */
struct member_record {
    uint64_t label, id;
    float x[3], v[3];
};

static int member_compare(const void *a, const void *b)
{
    const struct member_record *x = a, *y = b;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/** The groups found on this rank, with their member IDs (group by group, sorted) when wanted. */
struct group_list {
    int64_t n, cap;
    struct fof_group *g;
    int64_t n_ids, cap_ids;
    uint64_t *ids;
};

static void groups_add(struct group_list *l, const struct fof_group *g, const uint64_t *ids,
                       const int64_t *idx, bool members)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->g = grow(l->g, (size_t)l->cap * sizeof *l->g);
    }
    l->g[l->n++] = *g;
    if (!members)
        return;
    if (l->n_ids + g->len > l->cap_ids) {
        l->cap_ids = 2 * (l->n_ids + g->len);
        l->ids = grow(l->ids, (size_t)l->cap_ids * sizeof *l->ids);
    }
    for (int64_t k = 0; k < g->len; k++)
        l->ids[l->n_ids++] = ids[idx ? idx[k] : k];
}

static const uint64_t *sort_ids;
static int index_by_id(const void *a, const void *b)
{
    uint64_t x = sort_ids[*(const int64_t *)a], y = sort_ids[*(const int64_t *)b];
    return (x > y) - (x < y);
}

/** Groups whose members are all owned here (no ghost, no copy elsewhere): sizes, members sorted by
 *  ID, properties. shared[r] marks the roots of the other components. */
static void local_groups(const struct fof_plan *p, const struct particles *parts, int64_t n_own,
                         const int32_t *root, const uint64_t *label, const uint8_t *shared,
                         struct group_list *out)
{
    int32_t *cnt = lm_calloc("fof.groups", (size_t)(n_own > 0 ? n_own : 1), sizeof *cnt);
    for (int64_t i = 0; i < n_own; i++)
        if (!shared[root[i]])
            cnt[root[i]]++;
    int64_t n_groups = 0, n_mem = 0;
    for (int64_t i = 0; i < n_own; i++)
        if (cnt[i] >= p->o.min_length) {
            n_groups++;
            n_mem += cnt[i];
        }
    int64_t *off = lm_malloc("fof.groups", (size_t)(n_groups + 1) * sizeof *off);
    int64_t *mem = lm_malloc("fof.groups", (size_t)(n_mem > 0 ? n_mem : 1) * sizeof *mem);
    int64_t *groot = lm_malloc("fof.groups", (size_t)(n_groups + 1) * sizeof *groot);
    off[0] = 0;
    for (int64_t i = 0, k = 0; i < n_own; i++)
        if (cnt[i] >= p->o.min_length) {
            off[k + 1] = off[k] + cnt[i];
            groot[k] = i;
            cnt[i] = -(int32_t)(k + 1); /* group number, negative */
            k++;
        } else {
            cnt[i] = 0;
        }
    int64_t *fill = lm_malloc("fof.groups", (size_t)(n_groups + 1) * sizeof *fill);
    memcpy(fill, off, (size_t)(n_groups + 1) * sizeof *fill);
    for (int64_t i = 0; i < n_own; i++) {
        int32_t k = cnt[root[i]];
        if (k < 0)
            mem[fill[-k - 1]++] = i;
    }
    struct fof_group *g = lm_malloc("fof.groups", (size_t)(n_groups + 1) * sizeof *g);
    sort_ids = parts->id;
    const float *const *v = (parts->fields & PARTICLES_VEL) ? (const float *const *)parts->v : NULL;
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t k = 0; k < n_groups; k++) {
        qsort(mem + off[k], (size_t)(off[k + 1] - off[k]), sizeof *mem, index_by_id);
        fof_group_properties((const float *const *)parts->x, v, mem + off[k], off[k + 1] - off[k],
                             label[groot[k]], p->box, p->o.particle_mass, &g[k]);
    }
    for (int64_t k = 0; k < n_groups; k++)
        groups_add(out, &g[k], parts->id, mem + off[k], p->o.members);
    lm_free(g);
    lm_free(fill);
    lm_free(groot);
    lm_free(mem);
    lm_free(off);
    lm_free(cnt);
}

/** Groups spanning ranks: owned members go to rank label mod P, which sorts them by (label, ID)
 *  and measures the groups of at least min_length members. */
static void shared_groups(const struct fof_plan *p, const struct particles *parts, int64_t n_own,
                          const int32_t *root, const uint64_t *label, const uint8_t *shared,
                          struct group_list *out)
{
    int P = p->d.n_ranks;
    int64_t n = 0;
    for (int64_t i = 0; i < n_own; i++)
        n += shared[root[i]];
    struct member_record *rec = lm_malloc("fof.groups", (size_t)(n > 0 ? n : 1) * sizeof *rec);
    int32_t *dest = lm_malloc("fof.groups", (size_t)(n > 0 ? n : 1) * sizeof *dest);
    bool vel = parts->fields & PARTICLES_VEL;
    for (int64_t i = 0, k = 0; i < n_own; i++) {
        if (!shared[root[i]])
            continue;
        struct member_record *r = &rec[k];
        memset(r, 0, sizeof *r);
        r->label = label[root[i]];
        r->id = parts->id[i];
        for (int d = 0; d < 3; d++) {
            r->x[d] = parts->x[d][i];
            r->v[d] = vel ? parts->v[d][i] : 0.0f;
        }
        dest[k++] = (int32_t)(r->label % (uint64_t)P);
    }
    int64_t m;
    struct member_record *got = fof_exchange_records(p->comm, rec, n, sizeof *rec, dest, &m);
    lm_free(rec);
    lm_free(dest);
    qsort(got, (size_t)m, sizeof *got, member_compare);
    float *buf = lm_malloc("fof.groups", (size_t)(m > 0 ? m : 1) * 6 * sizeof *buf);
    uint64_t *ids = lm_malloc("fof.groups", (size_t)(m > 0 ? m : 1) * sizeof *ids);
    int64_t *seq = lm_malloc("fof.groups", (size_t)(m > 0 ? m : 1) * sizeof *seq);
    const float *x[3], *v[3];
    for (int d = 0; d < 3; d++) {
        x[d] = buf + (size_t)d * m;
        v[d] = buf + (size_t)(3 + d) * m;
    }
    for (int64_t k = 0; k < m; k++) {
        for (int d = 0; d < 3; d++) {
            buf[(size_t)d * m + k] = got[k].x[d];
            buf[(size_t)(3 + d) * m + k] = got[k].v[d];
        }
        ids[k] = got[k].id;
        seq[k] = k;
    }
    for (int64_t a = 0, b; a < m; a = b) {
        for (b = a + 1; b < m && got[b].label == got[a].label; b++)
            ;
        if (b - a < p->o.min_length)
            continue;
        struct fof_group g;
        fof_group_properties(x, vel ? v : NULL, seq + a, b - a, got[a].label, p->box,
                             p->o.particle_mass, &g);
        groups_add(out, &g, ids, seq + a, p->o.members);
    }
    lm_free(seq);
    lm_free(ids);
    lm_free(buf);
    lm_free(got);
}

/* ---- catalogue -------------------------------------------------------------------------- */

/** A group with where its member IDs start in the gathered ID array. */
struct placed_group {
    struct fof_group g;
    int64_t ids_at;
};

static int placed_compare(const void *a, const void *b)
{
    return fof_group_compare(&((const struct placed_group *)a)->g,
                             &((const struct placed_group *)b)->g);
}

static void gather_catalogue(const struct fof_plan *p, const struct group_list *l,
                             struct fof_catalogue *out)
{
    timer_start("fof.gather");
    int64_t n;
    struct fof_group *all = fof_exchange_gather(p->comm, l->g, l->n, sizeof *l->g, &n);
    int64_t n_ids = 0;
    uint64_t *ids = NULL;
    if (p->o.members)
        ids = fof_exchange_gather(p->comm, l->ids, l->n_ids, sizeof *l->ids, &n_ids);
    int64_t n_members = 0;
    for (int64_t k = 0; k < l->n; k++)
        n_members += l->g[k].len;
    out->n_members = fof_exchange_sum(p->comm, n_members);
    if (p->d.rank == 0) {
        struct placed_group *pg = lm_malloc("fof.groups", (size_t)(n > 0 ? n : 1) * sizeof *pg);
        for (int64_t k = 0, at = 0; k < n; k++) {
            pg[k] = (struct placed_group){all[k], at};
            at += all[k].len;
        }
        qsort(pg, (size_t)n, sizeof *pg, placed_compare);
        out->groups = lm_malloc("fof.catalogue", (size_t)(n > 0 ? n : 1) * sizeof *out->groups);
        if (ids)
            out->member_ids =
                lm_malloc("fof.catalogue", (size_t)(n_ids > 0 ? n_ids : 1) * sizeof(uint64_t));
        for (int64_t k = 0, at = 0; k < n; k++) {
            out->groups[k] = pg[k].g;
            if (ids)
                memcpy(out->member_ids + at, ids + pg[k].ids_at, (size_t)pg[k].g.len * 8);
            at += pg[k].g.len;
        }
        out->n_groups = n;
        lm_free(pg);
    }
    lm_free(all);
    lm_free(ids);
    timer_stop("fof.gather");
}

/* ---- execute ---------------------------------------------------------------------------- */

/** The x window of this rank's slab widened by reach on both sides. */
static struct fof_domain slab_domain(const struct fof_plan *p, double reach)
{
    const struct decomp *d = &p->d;
    double h = p->box / d->n[0];
    double x0 = (double)d->split[0][d->coords[0]] * h;
    double w = (double)(d->split[0][d->coords[0] + 1] - d->split[0][d->coords[0]]) * h;
    struct fof_domain dom = {.box = p->box, .link = p->o.link};
    dom.x_origin = x0 - 2 * reach;
    dom.x_width = w + 4 * reach;
    if (dom.x_width >= p->box || d->n_ranks == 1)
        dom.x_width = p->box;
    if (dom.x_origin < 0)
        dom.x_origin += p->box;
    return dom;
}

void fof_plan_execute(struct fof_plan *p, struct particles *parts, struct fof_catalogue *out)
{
    CHECK((parts->fields & (PARTICLES_POS | PARTICLES_ID)) == (PARTICLES_POS | PARTICLES_ID),
          "fof: the particles need positions and ParticleIDs");
    memset(out, 0, sizeof *out);
    timer_start("fof.migrate");
    migrate_particles(&p->d, parts, p->box);
    timer_stop("fof.migrate");
    int64_t n_own = parts->n;
    out->n_particles = fof_exchange_sum(p->comm, n_own);
    double reach = p->o.link * (1 + FOF_GHOST_SLACK);

    timer_start("fof.ghosts");
    struct copies c = {0};
    if (p->d.n_ranks > 1)
        ghost_destinations(p, parts, reach, &c);
    struct fof_exchange *x = fof_exchange_create(p->comm, c.n, c.idx, c.dest);
    int64_t ng = fof_exchange_n_ghosts(x);
    out->n_ghosts = fof_exchange_sum(p->comm, ng);
    particles_resize(parts, n_own + ng);
    timer_stop("fof.ghosts");
    fof_exchange_fill(x, parts, parts, n_own);

    timer_start("fof.link");
    int64_t n_loc = n_own + ng;
    int32_t *root = lm_malloc("fof.root", (size_t)(n_loc > 0 ? n_loc : 1) * sizeof *root);
    struct fof_domain dom = slab_domain(p, reach);
    fof_link((const float *const *)parts->x, n_loc, &dom, root);
    uint64_t *label = lm_malloc("fof.label", (size_t)(n_loc > 0 ? n_loc : 1) * sizeof *label);
    fof_labels(n_loc, root, parts->id, label);
    timer_stop("fof.link");

    out->n_rounds = merge_labels(x, n_own, root, label, p->comm);

    timer_start("fof.groups");
    uint8_t *shared = lm_calloc("fof.shared", (size_t)(n_loc > 0 ? n_loc : 1), 1);
    for (int64_t g = 0; g < ng; g++)
        shared[root[n_own + g]] = 1;
    for (int64_t k = 0; k < c.n; k++)
        shared[root[c.idx[k]]] = 1;
    lm_free(c.idx);
    lm_free(c.dest);
    fof_exchange_destroy(&x);
    parts->n = n_own;
    struct group_list l = {0};
    local_groups(p, parts, n_own, root, label, shared, &l);
    shared_groups(p, parts, n_own, root, label, shared, &l);
    lm_free(shared);
    lm_free(label);
    lm_free(root);
    timer_stop("fof.groups");
    gather_catalogue(p, &l, out);
    lm_free(l.g);
    lm_free(l.ids);
}
