/* test_tiling — the tiles of a block cover it, stay inside tiling.out, have one shape and are
 * anchored on the global 8-cell lattice; the tile chooser (tiling_choose) returns the largest side
 * whose memory fits, against a brute force over created plans (the reference and CPU backends),
 * and refuses with the figures of the smallest side. */
#include "harness.h"
#include "tiling.h"

#include <stdint.h>
#include <string.h>

#include "nn.h"

/* Count how many tiles cover every cell of out; check the block is covered and tiles are legal. */
static void check_cover(const struct box3 *block, int tile)
{
    struct tiling t;
    tiling_init(&t, block, tile, 48);
    int64_t e[3], n = 1;
    for (int a = 0; a < 3; a++) {
        e[a] = box3_extent(&t.out, a);
        n *= e[a];
        T_CHECK(t.shape[a] % TILING_QUANTUM == 0 && t.shape[a] <= tile, "shape %d", t.shape[a]);
        T_CHECK(t.out.hi[a] - block->hi[a] < TILING_QUANTUM &&
                    block->lo[a] - t.out.lo[a] < TILING_QUANTUM,
                "out exceeds the block by %lld, %lld", (long long)(block->lo[a] - t.out.lo[a]),
                (long long)(t.out.hi[a] - block->hi[a]));
        T_CHECK(t.in.lo[a] == t.out.lo[a] - 48 && t.in.hi[a] == t.out.hi[a] + 48, "in box");
    }
    unsigned char cover[64 * 64 * 64];
    memset(cover, 0, sizeof cover);
    for (int i = 0; i < t.n_tiles; i++) {
        struct box3 b = tiling_tile(&t, i);
        T_CHECK(box3_contains(&t.out, &b), "tile %d outside out", i);
        for (int a = 0; a < 3; a++)
            T_CHECK(box3_wrap(b.lo[a], TILING_QUANTUM) == 0, "tile %d anchor %lld off the lattice",
                    i, (long long)b.lo[a]);
        for (int64_t x = b.lo[0]; x < b.hi[0]; x++)
            for (int64_t y = b.lo[1]; y < b.hi[1]; y++)
                for (int64_t z = b.lo[2]; z < b.hi[2]; z++)
                    cover[box3_offset(&t.out, e, x, y, z)]++;
    }
    int64_t holes = 0;
    for (int64_t x = block->lo[0]; x < block->hi[0]; x++)
        for (int64_t y = block->lo[1]; y < block->hi[1]; y++)
            for (int64_t z = block->lo[2]; z < block->hi[2]; z++)
                holes += cover[box3_offset(&t.out, e, x, y, z)] == 0;
    T_CHECK(holes == 0, "%lld cells of the block not covered (tile %d)", (long long)holes, tile);
    T_CHECK(n <= 64 * 64 * 64, "test box too large");
}

static void test_cover_many_blocks(void)
{
    const int ext[] = {1, 5, 8, 13, 16, 20, 24, 31, 40, 48};
    int n_ext = (int)(sizeof ext / sizeof ext[0]);
    for (int i = 0; i < n_ext; i++)
        for (int j = 0; j < n_ext; j += 3)
            for (int tile = 8; tile <= 32; tile += 8) {
                struct box3 b = {{3, 100, -7}, {3 + ext[i], 100 + ext[j], -7 + ext[(i + j) % 10]}};
                check_cover(&b, tile);
            }
}

static void test_shapes_and_counts(void)
{
    struct box3 b = {{0, 0, 0}, {40, 16, 5}};
    struct tiling t;
    tiling_init(&t, &b, 16, 48);
    T_CHECK(t.shape[0] == 16 && t.shape[1] == 16 && t.shape[2] == 8, "shape %d %d %d", t.shape[0],
            t.shape[1], t.shape[2]);
    T_CHECK(t.n_axis[0] == 3 && t.n_axis[1] == 1 && t.n_axis[2] == 1 && t.n_tiles == 3,
            "n_axis %d %d %d", t.n_axis[0], t.n_axis[1], t.n_axis[2]);
    struct box3 last = tiling_tile(&t, 2);
    T_CHECK(last.lo[0] == 24 && last.hi[0] == 40, "last tile shifted back: %lld..%lld",
            (long long)last.lo[0], (long long)last.hi[0]);
    T_CHECK(t.out.hi[2] == 8, "out reaches past a small block: %lld", (long long)t.out.hi[2]);
    struct box3 in = tiling_tile_input(&t, 0);
    T_CHECK(in.lo[0] == -48 && in.hi[0] == 64, "input box %lld..%lld", (long long)in.lo[0],
            (long long)in.hi[0]);
    struct box3 odd = {{20, 0, 0}, {40, 8, 8}};
    tiling_init(&t, &odd, 32, 48);
    struct box3 c = tiling_cover(&odd);
    T_CHECK(t.out.lo[0] == 16 && t.out.hi[0] == 40 && box3_equal(&c, &t.out),
            "cover of [20, 40): %lld..%lld", (long long)t.out.lo[0], (long long)t.out.hi[0]);
    T_CHECK(t.shape[0] == 24 && t.n_tiles == 1, "one 24-cell tile, got %d of %d", t.n_tiles,
            t.shape[0]);
    struct box3 empty = {{4, 0, 0}, {4, 8, 8}};
    tiling_init(&t, &empty, 16, 48);
    T_CHECK(t.n_tiles == 0 && box3_empty(&t.in), "empty block gives %d tiles", t.n_tiles);
}

static void test_valid_side(void)
{
    T_CHECK(tiling_valid_side(8) && tiling_valid_side(128), "multiples of 8 are valid");
    T_CHECK(!tiling_valid_side(0) && !tiling_valid_side(12) && !tiling_valid_side(-8),
            "0, 12 and -8 are not");
}

/* ---- the tile chooser ---------------------------------------------------------------------- */

/* What the test's graph builder does: a small network per side (conv k3 3 -> 5 channels, conv k3
 * 5 -> 3, an output of side^3 cells), the caller's other bytes, and sides it refuses. */
struct fake {
    size_t other[NN_MEM_N_SPACES];
    int refuse_above; /* sides above it have no graph (error) */
    bool no_plan;     /* no plan needed at any side */
};

static struct nn_graph *fake_graph(int side)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc a = {3, 5, 3, 1, false, "a"}, b = {5, 3, 3, 1, false, "b"};
    int sa = nn_graph_add_conv(g, &a), sb = nn_graph_add_conv(g, &b);
    int x = nn_graph_input(g, (struct nn_shape){3, {side + 4, side + 4, side + 4}}, "x");
    int y = nn_graph_conv(g, x, sa, NN_ACT_LRELU, "y");
    nn_graph_set_output(g, nn_graph_conv(g, y, sb, NN_ACT_NONE, "z"));
    return g;
}

static struct nn_graph *fake_build(int side, void *ctx, size_t other[NN_MEM_N_SPACES],
                                   struct lm_err *err)
{
    const struct fake *f = ctx;
    memcpy(other, f->other, sizeof f->other);
    if (side > f->refuse_above) {
        lm_err_set(err, "no graph of side %d", side);
        return NULL;
    }
    return f->no_plan ? NULL : fake_graph(side);
}

/* Bytes of a created plan of side (workspace + plan memory): the brute-force reference. */
static size_t created_need(const struct nn_backend *be, int side, bool tangents)
{
    struct lm_err err = {{0}};
    struct nn_graph *g = fake_graph(side);
    struct nn_plan *p = nn_plan_create(be, g, tangents, &err);
    T_CHECK(p, "plan of side %d: %s", side, err.msg);
    size_t n = p ? nn_plan_workspace(p) + nn_plan_memory(p) : 0;
    nn_plan_destroy(&p);
    nn_graph_destroy(&g);
    return n;
}

/* For budgets around the created plans' needs, the chosen side is the largest whose created plan
 * fits with the caller's bytes. */
static void check_largest(const struct nn_backend *be, bool tangents)
{
    enum { LO = 8, HI = 64, N = HI / 8 + 1 };
    size_t need[N], other = 4096;
    for (int s = LO; s <= HI; s += 8)
        need[s / 8] = created_need(be, s, tangents) + other;
    size_t budgets[] = {need[2],     need[2] + 1, need[3] - 1, need[5],
                        need[6] - 1, need[7],     need[8] * 4, need[1]};
    struct fake f = {{other, 0}, 1 << 30, false};
    for (int k = 0; k < (int)(sizeof budgets / sizeof budgets[0]); k++) {
        int want = 0;
        for (int s = LO; s <= HI; s += 8)
            want = need[s / 8] <= budgets[k] ? s : want;
        struct tiling_request rq = {.backend = be,
                                    .tangents = tangents,
                                    .min_side = LO,
                                    .max_side = HI,
                                    .budget = {[NN_MEM_HOST] = budgets[k]},
                                    .build = fake_build,
                                    .ctx = &f};
        struct tiling_choice c;
        struct lm_err err = {{0}};
        bool ok = tiling_choose(&rq, &c, &err);
        T_CHECK(ok && c.fits && c.side == want, "%s budget %zu: side %d (%s), brute force %d",
                be->name, budgets[k], c.side, err.msg, want);
        T_CHECK(c.need[NN_MEM_HOST] == need[c.side / 8] &&
                    c.need[NN_MEM_HOST] == other + c.plan.workspace + c.plan.plan &&
                    c.need[NN_MEM_DEVICE] == 0 && c.plan.space == NN_MEM_HOST,
                "%s side %d: needs %zu (created plan %zu)", be->name, c.side, c.need[NN_MEM_HOST],
                need[c.side / 8]);
    }
}

static void test_choose_largest(void)
{
    check_largest(nn_backend_ref(), true);
    check_largest(nn_backend_ref(), false);
    check_largest(nn_backend_cpu(), true);
}

/* Nothing fits: false, the smallest side's figures, a message naming the side and the space. */
static void test_choose_refusals(void)
{
    const struct nn_backend *be = nn_backend_ref();
    size_t need8 = created_need(be, 8, true);
    struct fake f = {{100, 0}, 1 << 30, false};
    struct tiling_request rq = {.backend = be,
                                .tangents = true,
                                .min_side = 8,
                                .max_side = 32,
                                .budget = {[NN_MEM_HOST] = need8 + 99},
                                .build = fake_build,
                                .ctx = &f};
    struct tiling_choice c;
    struct lm_err err = {{0}};
    T_CHECK(!tiling_choose(&rq, &c, &err) && c.side == 8 && !c.fits &&
                c.need[NN_MEM_HOST] == need8 + 100 && strstr(err.msg, "side 8") &&
                strstr(err.msg, "host memory"),
            "one byte short: side %d, '%s'", c.side, err.msg);
    f.other[NN_MEM_DEVICE] = 1000;
    rq.budget[NN_MEM_HOST] = 0;
    rq.budget[NN_MEM_DEVICE] = 999;
    memset(&err, 0, sizeof err);
    T_CHECK(!tiling_choose(&rq, &c, &err) && c.side == 8 && strstr(err.msg, "device memory"),
            "the caller's device bytes over the device budget: '%s'", err.msg);
    rq.budget[NN_MEM_DEVICE] = 1000;
    memset(&err, 0, sizeof err);
    T_CHECK(tiling_choose(&rq, &c, &err) && c.side == 32, "they fit exactly: side %d (%s)", c.side,
            err.msg);
    rq.min_side = 9, rq.max_side = 15;
    memset(&err, 0, sizeof err);
    T_CHECK(!tiling_choose(&rq, &c, &err) && strstr(err.msg, "no multiple of 8"),
            "sides [9, 15]: '%s'", err.msg);
}

/* Sides without a graph are skipped; none at all gives the builder's reason; no plan needed
 * gives the largest side. */
static void test_choose_builder(void)
{
    struct fake f = {{0, 0}, 16, false};
    struct tiling_request rq = {.backend = nn_backend_ref(),
                                .tangents = false,
                                .min_side = 8,
                                .max_side = 48,
                                .build = fake_build,
                                .ctx = &f};
    struct tiling_choice c;
    struct lm_err err = {{0}};
    T_CHECK(tiling_choose(&rq, &c, &err) && c.side == 16, "sides above 16 refused: side %d (%s)",
            c.side, err.msg);
    f.refuse_above = 0;
    memset(&err, 0, sizeof err);
    T_CHECK(!tiling_choose(&rq, &c, &err) && c.side == 0 && strstr(err.msg, "no graph of side 8"),
            "no side has a graph: side %d, '%s'", c.side, err.msg);
    f.refuse_above = 1 << 30;
    f.no_plan = true;
    rq.budget[NN_MEM_HOST] = 1;
    memset(&err, 0, sizeof err);
    T_CHECK(tiling_choose(&rq, &c, &err) && c.side == 48 && c.plan.workspace == 0 &&
                c.plan.plan == 0,
            "no plan needed: side %d (%s)", c.side, err.msg);
}

int main(void)
{
    T_RUN(test_cover_many_blocks);
    T_RUN(test_shapes_and_counts);
    T_RUN(test_valid_side);
    T_RUN(test_choose_largest);
    T_RUN(test_choose_refusals);
    T_RUN(test_choose_builder);
    return t_finish();
}
