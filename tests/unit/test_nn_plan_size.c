/* test_nn_plan_size — the memory queries of the NN backend table (nn.h): nn_plan_size, computed
 * without creating a plan, against the plan then created (nn_plan_workspace, nn_plan_memory) for
 * single ops, a crop / concat / in-place add graph and V-Net tiles of several shapes, with and
 * without tangents, on every host backend (exactly) and on the CUDA backend where a GPU is present
 * (exact with heuristic algorithm choice, at least the plan's figures with measured choice). The
 * query allocates no plan memory (the labelled allocator's weight labels do not move), reports
 * the backend's memory space, and refuses what plan creation refuses. */
#include "harness.h"

#include <string.h>

#include "alloc.h"
#include "emunet.h"
#include "gpu/gpu.h"
#include "gpu/nn_cuda.h"
#include "model.h"
#include "nn.h"

static const struct nn_backend *backends[4]; /* filled in main */
static bool exact[4];                        /* the query must equal the plan's figures */
static int n_backends = 0;

/* One query against one created plan. */
static void check_one(const struct nn_backend *be, bool is_exact, const struct nn_graph *g,
                      bool tangents, const char *label)
{
    struct lm_err err = {{0}};
    struct nn_plan_mem m;
    size_t w0 = alloc_label_peak("nn.cpu.weights"), w1 = alloc_label_peak("nn.ref.weights");
    size_t cur = alloc_current();
    bool ok = nn_plan_size(be, g, tangents, &m, &err);
    T_CHECK(ok, "%s on %s: %s", label, be->name, err.msg);
    T_CHECK(alloc_label_peak("nn.cpu.weights") == w0 && alloc_label_peak("nn.ref.weights") == w1 &&
                alloc_current() == cur,
            "%s on %s: the query allocated plan memory", label, be->name);
    struct nn_plan *p = nn_plan_create(be, g, tangents, &err);
    T_CHECK(p, "%s on %s: %s", label, be->name, err.msg);
    if (!ok || !p) {
        nn_plan_destroy(&p);
        return;
    }
    size_t ws = nn_plan_workspace(p), mem = nn_plan_memory(p);
    T_CHECK(m.space == be->space, "%s on %s: space %d, backend %d", label, be->name, (int)m.space,
            (int)be->space);
    if (is_exact)
        T_CHECK(m.workspace == ws && m.plan == mem,
                "%s on %s (%s tangents): sized workspace %zu + plan %zu, the plan has %zu + %zu",
                label, be->name, tangents ? "with" : "without", m.workspace, m.plan, ws, mem);
    else
        T_CHECK(m.workspace >= ws && m.plan >= mem,
                "%s on %s (%s tangents): bound %zu + %zu below the plan's %zu + %zu", label,
                be->name, tangents ? "with" : "without", m.workspace, m.plan, ws, mem);
    T_CHECK(ws > 0 && mem > 0, "%s on %s: empty plan (%zu, %zu)", label, be->name, ws, mem);
    nn_plan_destroy(&p);
}

/* Every backend, with and without tangents; destroys g. */
static void check_all(struct nn_graph *g, const char *label)
{
    T_CHECK(nn_graph_ok(g), "%s: %s", label, g->err.msg);
    for (int b = 0; b < n_backends; b++)
        for (int t = 0; t < 2; t++)
            check_one(backends[b], exact[b], g, t, label);
    nn_graph_destroy(&g);
}

static struct nn_graph *graph_conv(int cin, int cout, int k, int s, bool tr, int n0, int n1, int n2)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d = {cin, cout, k, s, tr, "op"};
    int slot = nn_graph_add_conv(g, &d);
    int x = nn_graph_input(g, (struct nn_shape){cin, {n0, n1, n2}}, "x");
    nn_graph_set_output(g, nn_graph_conv(g, x, slot, NN_ACT_LRELU, "y"));
    return g;
}

/* conv → crop, concat with a cropped input, conv, add in place with the crop, conv to 3. */
static struct nn_graph *graph_mixed(int n)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc a = {3, 6, 3, 1, false, "a"}, b = {9, 6, 3, 1, false, "b"};
    struct nn_conv_desc c = {6, 3, 1, 1, false, "c"};
    int sa = nn_graph_add_conv(g, &a), sb = nn_graph_add_conv(g, &b), sc = nn_graph_add_conv(g, &c);
    int x = nn_graph_input(g, (struct nn_shape){3, {n, n + 1, n + 2}}, "x");
    int y = nn_graph_conv(g, x, sa, NN_ACT_LRELU, "ya");
    int xc = nn_graph_crop(g, x, 1, "xc");
    int cat = nn_graph_concat(g, y, xc, "cat");
    int z = nn_graph_conv(g, cat, sb, NN_ACT_LRELU, "yb");
    int yc = nn_graph_crop(g, y, 1, "yc");
    int s = nn_graph_add(g, z, yc, NN_ACT_LRELU, "sum");
    nn_graph_set_output(g, nn_graph_conv(g, s, sc, NN_ACT_NONE, "out"));
    return g;
}

static void test_single_ops(void)
{
    check_all(graph_conv(5, 7, 3, 1, false, 11, 9, 10), "conv k3 5->7");
    check_all(graph_conv(4, 16, 2, 2, false, 12, 10, 8), "conv k2 s2 4->16");
    check_all(graph_conv(6, 5, 1, 1, false, 7, 5, 9), "conv k1 6->5");
    check_all(graph_conv(8, 4, 2, 2, true, 5, 6, 7), "tconv k2 s2 8->4");
    check_all(graph_conv(3, 5, 3, 2, true, 5, 4, 6), "tconv k3 s2 3->5");
}

static void test_mixed(void)
{
    check_all(graph_mixed(9), "crop/concat/add 9");
    check_all(graph_mixed(14), "crop/concat/add 14");
}

/* V-Net tiles: cubic 8 and 16, non-cubic 8x16x24, and a wider net; sizes grow with the tile. */
static void test_vnet_tiles(void)
{
    const int out[4][3] = {{8, 8, 8}, {16, 16, 16}, {8, 16, 24}, {16, 8, 8}};
    const int width[4] = {4, 4, 4, 8};
    struct lm_err err = {{0}};
    size_t ws_prev = 0;
    for (int k = 0; k < 4; k++) {
        struct model *m = model_create_styled_vnet(width[k], 3, 3, 2);
        struct nn_graph *g = emunet_graph_create(m, out[k], &err);
        T_CHECK(g, "%s", err.msg);
        char label[64];
        snprintf(label, sizeof label, "V-Net width %d tile %dx%dx%d", width[k], out[k][0],
                 out[k][1], out[k][2]);
        struct nn_plan_mem mm;
        if (g && k < 2 && nn_plan_size(nn_backend_ref(), g, true, &mm, &err)) {
            T_CHECK(mm.workspace > ws_prev, "%s: workspace %zu not above the smaller tile's %zu",
                    label, mm.workspace, ws_prev);
            ws_prev = mm.workspace;
        }
        if (g)
            check_all(g, label);
        model_destroy(&m);
    }
}

/* Sizing refuses what planning refuses; host backends cannot tell their free memory. */
static void test_refusals_and_available(void)
{
    for (int b = 0; b < n_backends; b++) {
        struct nn_graph *g = nn_graph_create();
        nn_graph_input(g, (struct nn_shape){3, {8, 8, 8}}, "x");
        struct lm_err err = {{0}};
        struct nn_plan_mem m;
        T_CHECK(!nn_plan_size(backends[b], g, false, &m, &err) && strstr(err.msg, "no output"),
                "a graph without output on %s: '%s'", backends[b]->name, err.msg);
        nn_graph_destroy(&g);
        size_t avail = 1;
        memset(&err, 0, sizeof err);
        T_CHECK(nn_backend_mem_available(backends[b], &avail, &err), "%s: %s", backends[b]->name,
                err.msg);
        if (backends[b]->space == NN_MEM_HOST)
            T_CHECK(avail == 0, "host backend %s claims %zu bytes free", backends[b]->name, avail);
        else
            T_CHECK(avail > 0, "device backend %s reports no free memory", backends[b]->name);
    }
}

int main(void)
{
    backends[n_backends] = nn_backend_ref();
    exact[n_backends++] = true;
    backends[n_backends] = nn_backend_cpu();
    exact[n_backends++] = true;
    struct gpu_info info;
    char why[256];
    if (nn_backend_cuda() && gpu_query(0, &info, why, sizeof why)) {
        backends[n_backends] = nn_backend_cuda();
        exact[n_backends++] = true;
        struct nn_cuda_options o = {NN_CUDA_FP32, NN_CUDA_ALGO_MEASURE};
        backends[n_backends] = nn_backend_cuda_with(&o);
        exact[n_backends++] = false;
    } else {
        printf("  CUDA backend not tested here: %s\n",
               nn_backend_cuda() ? why : "lemur was built without CUDA");
    }
    T_RUN(test_single_ops);
    T_RUN(test_mixed);
    T_RUN(test_vnet_tiles);
    T_RUN(test_refusals_and_available);
    return t_finish();
}
