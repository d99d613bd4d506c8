/* tiling — the emulator tiles of one block, anchored on the global 8-cell lattice, and the one
 * tile chooser (see tiling.h). */
#include "tiling.h"

#include <string.h>

bool tiling_valid_side(long tile) { return tile > 0 && tile % TILING_QUANTUM == 0; }

/* floor(i / q) q and ceil(i / q) q for i >= 0 or i < 0. */
static int64_t floor_quantum(int64_t i)
{
    int64_t q = TILING_QUANTUM, r = i % q;
    return r < 0 ? i - r - q : i - r;
}

static int64_t ceil_quantum(int64_t i) { return -floor_quantum(-i); }

struct box3 tiling_cover(const struct box3 *block)
{
    struct box3 c = {{0, 0, 0}, {0, 0, 0}};
    if (box3_empty(block))
        return c;
    for (int a = 0; a < 3; a++) {
        c.lo[a] = floor_quantum(block->lo[a]);
        c.hi[a] = ceil_quantum(block->hi[a]);
    }
    return c;
}

void tiling_init(struct tiling *t, const struct box3 *block, int tile, int halo)
{
    memset(t, 0, sizeof *t);
    t->block = *block;
    t->halo = halo;
    if (box3_empty(block))
        return;
    t->out = tiling_cover(block);
    t->n_tiles = 1;
    for (int a = 0; a < 3; a++) {
        int64_t e = box3_extent(&t->out, a);
        t->shape[a] = (int)(e < tile ? e : tile);
        t->n_axis[a] = (int)((e + t->shape[a] - 1) / t->shape[a]);
        t->n_tiles *= t->n_axis[a];
    }
    t->in = box3_pad(&t->out, halo);
}

/* Anchor of tile c along axis a: cover.lo + c s, the last one shifted back inside the cover. */
static int64_t tile_anchor(const struct tiling *t, int a, int c)
{
    int64_t last = box3_extent(&t->out, a) - t->shape[a];
    int64_t off = (int64_t)c * t->shape[a];
    return t->out.lo[a] + (off < last ? off : last);
}

struct box3 tiling_tile(const struct tiling *t, int i)
{
    int c[3] = {i / (t->n_axis[1] * t->n_axis[2]), (i / t->n_axis[2]) % t->n_axis[1],
                i % t->n_axis[2]};
    struct box3 b;
    for (int a = 0; a < 3; a++) {
        b.lo[a] = tile_anchor(t, a, c[a]);
        b.hi[a] = b.lo[a] + t->shape[a];
    }
    return b;
}

struct box3 tiling_tile_input(const struct tiling *t, int i)
{
    struct box3 b = tiling_tile(t, i);
    return box3_pad(&b, t->halo);
}

const char *tiling_space_name(enum nn_mem_space s)
{
    return s == NN_MEM_DEVICE ? "device" : "host";
}

/* The budgets of rq, the backend's own space bounded by its free memory where none is stated. */
static bool choice_budgets(const struct tiling_request *rq, size_t budget[NN_MEM_N_SPACES],
                           struct lm_err *err)
{
    memcpy(budget, rq->budget, sizeof rq->budget);
    enum nn_mem_space s = rq->backend->space;
    return budget[s] != 0 || nn_backend_mem_available(rq->backend, &budget[s], err);
}

/* Size side into c (figures cleared, budgets kept): true when it fits every budget; false when
 * it does not (c->side set) or when no graph or no plan exists for it (c->side 0, why says why). */
static bool choice_try(const struct tiling_request *rq, int side, struct tiling_choice *c,
                       struct lm_err *why)
{
    size_t other[NN_MEM_N_SPACES] = {0};
    struct lm_err e = {{0}};
    c->side = 0;
    c->fits = false;
    memset(c->need, 0, sizeof c->need);
    memset(&c->plan, 0, sizeof c->plan);
    c->plan.space = rq->backend->space;
    struct nn_graph *g = rq->build(side, rq->ctx, other, &e);
    bool ok = lm_err_ok(&e) && (!g || nn_plan_size(rq->backend, g, rq->tangents, &c->plan, &e));
    nn_graph_destroy(&g);
    if (!ok) {
        *why = e;
        return false;
    }
    c->side = side;
    c->fits = true;
    for (int s = 0; s < NN_MEM_N_SPACES; s++) {
        c->need[s] = other[s] + (s == (int)c->plan.space ? c->plan.workspace + c->plan.plan : 0);
        c->fits = c->fits && (c->budget[s] == 0 || c->need[s] <= c->budget[s]);
    }
    return c->fits;
}

/* The refusal of the smallest side sized, c: which space it overflows, by how much. */
static bool choice_refuse(const struct tiling_request *rq, const struct tiling_choice *c,
                          struct lm_err *err)
{
    int s = 0;
    while (s < NN_MEM_N_SPACES - 1 && (c->budget[s] == 0 || c->need[s] <= c->budget[s]))
        s++;
    return lm_err_set(err,
                      "no tile fits: a tile of side %d needs %.1f MiB of %s memory (plan of "
                      "backend %s: workspace %.1f MiB, plan %.1f MiB, %s tangents) but %.1f MiB "
                      "are available",
                      c->side, c->need[s] / 1048576.0, tiling_space_name((enum nn_mem_space)s),
                      rq->backend->name, c->plan.workspace / 1048576.0, c->plan.plan / 1048576.0,
                      rq->tangents ? "with" : "without", c->budget[s] / 1048576.0);
}

/* Nothing fits: the figures of the smallest side c when it was sized, else the reason it was not.
 */
static bool choice_none(const struct tiling_request *rq, const struct tiling_choice *c,
                        const struct lm_err *why, struct tiling_choice *out, struct lm_err *err)
{
    *out = *c;
    return c->side > 0 ? choice_refuse(rq, c, err) : lm_err_set(err, "%s", why->msg);
}

/* The needs grow with the side (the activations scale with the tile's volume), so the search is a
 * bisection on the lattice: the largest side first (the usual answer), then the smallest, then
 * halving the interval between a side that fits and one that does not (a side without a graph
 * counts as not fitting). A handful of sizings whatever the range: each may cost the backend's
 * full set-up without allocation (oneDNN primitive descriptors, cuDNN queries). */
bool tiling_choose(const struct tiling_request *rq, struct tiling_choice *out, struct lm_err *err)
{
    memset(out, 0, sizeof *out);
    const int q = TILING_QUANTUM;
    int lo = (rq->min_side + q - 1) / q * q, hi = rq->max_side / q * q;
    lo = lo < q ? q : lo;
    if (hi < lo)
        return lm_err_set(err, "no multiple of %d in the tile sides [%d, %d]", q, rq->min_side,
                          rq->max_side);
    if (!choice_budgets(rq, out->budget, err))
        return false;
    struct lm_err why = {{0}};
    struct tiling_choice c = *out, fit;
    if (choice_try(rq, hi, &c, &why)) {
        *out = c;
        return true;
    }
    if (hi == lo || !choice_try(rq, lo, &c, &why))
        return choice_none(rq, &c, &why, out, err);
    fit = c;
    for (int good = lo, bad = hi; bad - good > q;) {
        int mid = (good / q + bad / q) / 2 * q;
        if (choice_try(rq, mid, &c, &why))
            good = mid, fit = c;
        else
            bad = mid;
    }
    *out = fit;
    return true;
}
