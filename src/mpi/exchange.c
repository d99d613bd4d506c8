/*
 * exchange — plan construction (piece lists from box intersections) and the three wrappers.
 * Execution (packing, copying, summing) is in exchange_execute.c.
 */
#include "mpi/exchange_impl.h"

#include "alloc.h"
#include "mpi/comm.h"

#include <string.h>

/* ---- geometry of local arrays ---------------------------------------------------------------- */

static void geom_init(struct xgeom *g, const struct exchange_array *a,
                      const struct exchange_field *f)
{
    int64_t dims[3];
    bool compact = a->dims[0] == 0 && a->dims[1] == 0 && a->dims[2] == 0;
    for (int k = 0; k < 3; k++) {
        dims[k] = compact ? box3_extent(&a->box, k) : a->dims[k];
        CHECK(dims[k] >= box3_extent(&a->box, k),
              "exchange: array dims[%d] = %lld is smaller than its box extent %lld", k,
              (long long)dims[k], (long long)box3_extent(&a->box, k));
    }
    bool planar = f->order == EXCHANGE_COMP_MAJOR && f->n_comp > 1;
    size_t cell = planar ? f->elem_size : f->elem_size * (size_t)f->n_comp;
    g->box = a->box;
    g->stride[2] = (int64_t)cell;
    g->stride[1] = dims[2] * g->stride[2];
    g->stride[0] = dims[1] * g->stride[1];
    g->n_planes = planar ? f->n_comp : 1;
    g->plane = planar ? dims[0] * g->stride[0] : 0;
    g->row_cell = cell;
}

/* ---- per-axis segments: a wanted interval cut at owner boundaries and periodic images ----------
 */

struct seg {
    int coord;   /* owner grid coordinate on the axis */
    int64_t x;   /* first wanted global index (wanted frame) */
    int64_t u;   /* the same cell in [0, n) */
    int64_t len; /* cells */
};

/* Segments of [lo, hi) on axis a owned by grid coordinate only (or any when only < 0), ascending
 * in x. Writes at most cap, returns the total. */
static int axis_segments(const struct decomp *d, int a, int64_t lo, int64_t hi, int only,
                         struct seg *out, int cap)
{
    int count = 0;
    for (int64_t x = lo; x < hi;) {
        int64_t u = box3_wrap(x, d->n[a]);
        int c = d->owner[a][u];
        int64_t len = d->split[a][c + 1] - u;
        if (len > hi - x)
            len = hi - x;
        if (only < 0 || c == only) {
            if (count < cap)
                out[count] = (struct seg){c, x, u, len};
            count++;
        }
        x += len;
    }
    return count;
}

/* Segments of box b on all three axes (lm_malloc'd into s[a], counts in n[a]). */
static void box_segments(const struct decomp *d, const struct box3 *b, const int only[3],
                         struct seg *s[3], int n[3])
{
    for (int a = 0; a < 3; a++) {
        n[a] = box3_empty(b) ? 0 : axis_segments(d, a, b->lo[a], b->hi[a], only[a], NULL, 0);
        s[a] = lm_malloc("exchange.tmp", (size_t)(n[a] > 0 ? n[a] : 1) * sizeof(struct seg));
        if (n[a] > 0)
            axis_segments(d, a, b->lo[a], b->hi[a], only[a], s[a], n[a]);
    }
}

/* ---- growable piece lists -------------------------------------------------------------------- */

struct plist {
    struct xpiece *v;
    int64_t n, cap;
    int *rank; /* source or destination rank of each piece (for grouping) */
};

static void plist_push(struct plist *l, const struct xpiece *pc, int rank)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = l->v ? lm_realloc(l->v, (size_t)l->cap * sizeof *l->v)
                    : lm_malloc("exchange.tmp", (size_t)l->cap * sizeof *l->v);
        l->rank = l->rank ? lm_realloc(l->rank, (size_t)l->cap * sizeof(int))
                          : lm_malloc("exchange.tmp", (size_t)l->cap * sizeof(int));
    }
    l->v[l->n] = *pc;
    l->rank[l->n++] = rank;
}

/* Every piece of region b (cells of wanted array want, whose memory origin is origin) in canonical
 * order (x, then y, then z segments). only: coordinates to keep (sender side) or all -1. */
static void pieces_of_box(const struct decomp *d, const struct box3 *b, int want,
                          const int64_t origin[3], const int only[3], const struct box3 *src_box,
                          struct plist *out)
{
    struct seg *s[3];
    int n[3];
    box_segments(d, b, only, s, n);
    for (int i = 0; i < n[0]; i++)
        for (int j = 0; j < n[1]; j++)
            for (int k = 0; k < n[2]; k++) {
                const struct seg *g[3] = {&s[0][i], &s[1][j], &s[2][k]};
                struct xpiece pc = {.want = want};
                for (int a = 0; a < 3; a++) {
                    pc.src[a] = g[a]->u - src_box->lo[a];
                    pc.dst[a] = g[a]->x - origin[a];
                    pc.ext[a] = g[a]->len;
                }
                const int c[3] = {g[0]->coord, g[1]->coord, g[2]->coord};
                plist_push(out, &pc, decomp_rank_of_coords(d, c));
            }
    for (int a = 0; a < 3; a++)
        lm_free(s[a]);
}

/* Stable grouping of l by rank into pieces and first index per rank. */
static void group_by_rank(const struct plist *l, int n_ranks, struct xpiece **pieces, int64_t **p0)
{
    int64_t *start = lm_calloc("exchange.plan", (size_t)n_ranks + 1, sizeof(int64_t));
    for (int64_t q = 0; q < l->n; q++)
        start[l->rank[q] + 1]++;
    for (int r = 0; r < n_ranks; r++)
        start[r + 1] += start[r];
    *pieces = lm_malloc("exchange.plan", (size_t)(l->n + 1) * sizeof(struct xpiece));
    int64_t *fill = lm_malloc("exchange.tmp", (size_t)n_ranks * sizeof(int64_t));
    memcpy(fill, start, (size_t)n_ranks * sizeof(int64_t));
    for (int64_t q = 0; q < l->n; q++)
        (*pieces)[fill[l->rank[q]]++] = l->v[q];
    lm_free(fill);
    *p0 = start;
}

static void plist_free(struct plist *l)
{
    lm_free(l->v);
    lm_free(l->rank);
    memset(l, 0, sizeof *l);
}

/* ---- plan construction ----------------------------------------------------------------------- */

/* Every rank's wanted regions: rank r's are (*all)[(*first)[r] .. (*first)[r+1]). */
static void gather_wants(const struct exchange_plan *p, struct box3 **all, int **first)
{
    int size = p->n_ranks;
    int *cnt = lm_malloc("exchange.tmp", 3 * (size_t)size * sizeof(int)), *disp = cnt + size;
    int *cnt6 = disp + size, *f = lm_malloc("exchange.tmp", (size_t)(size + 1) * sizeof(int));
    MPI_CHECK(MPI_Allgather(&p->n_reg, 1, MPI_INT, cnt, 1, MPI_INT, p->comm));
    f[0] = 0;
    for (int r = 0; r < size; r++) {
        f[r + 1] = f[r] + cnt[r];
        disp[r] = 6 * f[r];
        cnt6[r] = 6 * cnt[r];
    }
    struct box3 *mine = lm_malloc("exchange.tmp", (size_t)(p->n_reg + 1) * sizeof(struct box3));
    for (int b = 0; b < p->n_reg; b++)
        mine[b] = p->reg[b].box;
    *all = lm_malloc("exchange.tmp", (size_t)(f[size] + 1) * sizeof(struct box3));
    MPI_CHECK(
        MPI_Allgatherv(mine, 6 * p->n_reg, MPI_INT64_T, *all, cnt6, disp, MPI_INT64_T, p->comm));
    lm_free(mine);
    lm_free(cnt);
    *first = f;
}

/* Pieces this rank sends: for every other rank's wanted regions, the parts this rank owns, grouped
 * by destination in rank order (the receivers' canonical order restricted to this source). */
static void build_send(struct exchange_plan *p, const struct decomp *d)
{
    struct box3 *all;
    int *first;
    gather_wants(p, &all, &first);
    struct plist l = {0};
    p->send_p0 = lm_calloc("exchange.plan", (size_t)p->n_ranks + 1, sizeof(int64_t));
    for (int r = 0; r < p->n_ranks; r++) {
        if (r != p->rank && !box3_empty(&d->box))
            for (int b = first[r]; b < first[r + 1]; b++)
                pieces_of_box(d, &all[b], 0, all[b].lo, d->coords, &p->src.box, &l);
        p->send_p0[r + 1] = l.n;
    }
    p->send = lm_malloc("exchange.plan", (size_t)(l.n + 1) * sizeof(struct xpiece));
    if (l.n > 0)
        memcpy(p->send, l.v, (size_t)l.n * sizeof(struct xpiece));
    plist_free(&l);
    lm_free(all);
    lm_free(first);
}

/* Pieces this rank receives, grouped by source rank (its own slot: the self copies). */
static void build_recv(struct exchange_plan *p, const struct decomp *d)
{
    const int any[3] = {-1, -1, -1};
    struct plist l = {0};
    for (int b = 0; b < p->n_reg; b++) {
        int w = p->reg[b].array;
        pieces_of_box(d, &p->reg[b].box, w, p->want_arr[w].box.lo, any, &p->src.box, &l);
    }
    group_by_rank(&l, p->n_ranks, &p->recv, &p->recv_p0);
    plist_free(&l);
}

size_t xpiece_bytes(const struct exchange_plan *p, const struct xpiece *pc)
{
    return (size_t)(pc->ext[0] * pc->ext[1] * pc->ext[2]) * p->field.elem_size *
           (size_t)p->field.n_comp;
}

/* Per-peer byte counts, transfers and buffers (self pieces are copied, not sent). */
static void build_transfers(struct exchange_plan *p)
{
    size_t *sb = lm_calloc("exchange.tmp", 2 * (size_t)p->n_ranks, sizeof(size_t));
    size_t *rb = sb + p->n_ranks;
    for (int r = 0; r < p->n_ranks; r++) {
        if (r == p->rank)
            continue;
        for (int64_t q = p->send_p0[r]; q < p->send_p0[r + 1]; q++)
            sb[r] += xpiece_bytes(p, &p->send[q]);
        for (int64_t q = p->recv_p0[r]; q < p->recv_p0[r + 1]; q++)
            rb[r] += xpiece_bytes(p, &p->recv[q]);
    }
    transfer_init(&p->fwd, p->comm, sb, rb, 1);
    transfer_init_reverse(&p->rev, &p->fwd);
    p->send_buf = lm_malloc("exchange.buffers", transfer_send_total(&p->fwd));
    p->recv_buf = lm_malloc("exchange.buffers", transfer_recv_total(&p->fwd));
    lm_free(sb);
}

static void check_field(const struct exchange_field *f)
{
    CHECK(f != NULL && f->elem_size > 0 && f->n_comp >= 1,
          "exchange: field needs elem_size > 0 and n_comp >= 1 (got %zu and %d)",
          f ? f->elem_size : 0, f ? f->n_comp : 0);
    CHECK(f->order == EXCHANGE_CELL_MAJOR || f->order == EXCHANGE_COMP_MAJOR,
          "exchange: unknown component order %d", (int)f->order);
}

/* Plan fields that do not need communication: communicator, field, arrays. Regions are set by
 * the caller. */
static struct exchange_plan *plan_alloc(const struct decomp *src,
                                        const struct exchange_array *src_arr, int n_want,
                                        const struct exchange_array *want,
                                        const struct exchange_field *field)
{
    check_field(field);
    CHECK(n_want >= 0, "exchange: n_want = %d, expected >= 0", n_want);
    struct exchange_plan *p = lm_calloc("exchange.plan", 1, sizeof *p);
    MPI_CHECK(MPI_Comm_dup(src->comm, &p->comm));
    p->rank = comm_rank(p->comm);
    p->n_ranks = comm_size(p->comm);
    p->field = *field;
    p->owned = src->box;
    const struct exchange_array compact = {.box = src->box};
    geom_init(&p->src, src_arr ? src_arr : &compact, field);
    CHECK(box3_contains(&p->src.box, &src->box),
          "exchange: the source array does not cover this rank's owned box");
    p->n_want = n_want;
    p->want_arr = lm_malloc("exchange.plan", (size_t)(n_want + 1) * sizeof *p->want_arr);
    p->want = lm_malloc("exchange.plan", (size_t)(n_want + 1) * sizeof *p->want);
    for (int b = 0; b < n_want; b++) {
        p->want_arr[b] = want[b];
        geom_init(&p->want[b], &want[b], field);
    }
    return p;
}

/* Pieces, transfers and buffers once the regions are set. Collective. */
static struct exchange_plan *plan_build(struct exchange_plan *p, const struct decomp *src)
{
    for (int q = 0; q < p->n_reg; q++)
        CHECK(box3_contains(&p->want_arr[p->reg[q].array].box, &p->reg[q].box),
              "exchange: wanted region %d lies outside its array", q);
    build_send(p, src);
    build_recv(p, src);
    build_transfers(p);
    return p;
}

struct exchange_plan *exchange_plan_create(const struct decomp *src,
                                           const struct exchange_array *src_arr, int n_want,
                                           const struct exchange_array *want,
                                           const struct exchange_field *field)
{
    struct exchange_plan *p = plan_alloc(src, src_arr, n_want, want, field);
    p->n_reg = n_want;
    p->reg = lm_malloc("exchange.plan", (size_t)(n_want + 1) * sizeof *p->reg);
    for (int b = 0; b < n_want; b++)
        p->reg[b] = (struct xregion){want[b].box, b};
    return plan_build(p, src);
}

void exchange_plan_destroy(struct exchange_plan **pp)
{
    if (!pp || !*pp)
        return;
    struct exchange_plan *p = *pp;
    transfer_free(&p->fwd);
    transfer_free(&p->rev);
    lm_free(p->send_buf);
    lm_free(p->recv_buf);
    lm_free(p->send);
    lm_free(p->send_p0);
    lm_free(p->recv);
    lm_free(p->recv_p0);
    lm_free(p->want);
    lm_free(p->want_arr);
    lm_free(p->reg);
    MPI_CHECK(MPI_Comm_free(&p->comm));
    lm_free(p);
    *pp = NULL;
}

/* ---- redistribution ------------------------------------------------------------------------ */

struct exchange_plan *exchange_plan_redistribute(const struct decomp *from,
                                                 const struct exchange_array *from_arr,
                                                 const struct decomp *to,
                                                 const struct exchange_array *to_arr,
                                                 const struct exchange_field *field)
{
    int cmp;
    MPI_CHECK(MPI_Comm_compare(from->comm, to->comm, &cmp));
    CHECK(cmp == MPI_IDENT || cmp == MPI_CONGRUENT,
          "exchange: redistribution between decompositions over different process groups");
    CHECK(from->n[0] == to->n[0] && from->n[1] == to->n[1] && from->n[2] == to->n[2],
          "exchange: redistribution between meshes %dx%dx%d and %dx%dx%d", from->n[0], from->n[1],
          from->n[2], to->n[0], to->n[1], to->n[2]);
    const struct exchange_array compact = {.box = to->box};
    return exchange_plan_create(from, from_arr, 1, to_arr ? to_arr : &compact, field);
}

void exchange_redistribute(struct exchange_plan *p, const void *in, void *out)
{
    exchange_fill(p, in, &out);
}
