/* The generic network engine (net.h) and the ops it added to the NN engine (nn.h): the reference
 * backend's activations and upsamplings against their definitions on hand cases; the CPU backend
 * against the reference on graphs of every op (odd and even kernels, odd sizes, several inputs on
 * two grids) at 2e-6 relative (float32 oneDNN against double accumulation); the halo derived from
 * the description of Kodi Ramanah et al. 2020's generator; shape and reference errors naming the
 * node; tile-size invariance of a periodic field on the CPU backend. Also a driver mode for
 * tests/python/check_graph.py:
 *   test_net --apply DESC.yml WEIGHTS.f32 OUT.f32 M IN1.f32 [IN2.f32 ...]
 * (weights: every conv3d's weight then bias, in node order; inputs C-order of their tile shapes).
 */
#include "harness.h"

#include <string.h>

#include "alloc.h"
#include "mpi/net_file.h"
#include "net.h"
#include "nn.h"

static unsigned long long rng_state = 0x2545F4914F6CDD1Dull;

static double rnd(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

/* Run g on be with inputs xs (plain arrays in graph input order) into y; false on failure. */
static bool run_on(const struct nn_backend *be, const struct nn_graph *g,
                   const struct nn_weights *w, float *const *xs, float *y)
{
    struct lm_err err = {{0}};
    struct nn_plan *plan = nn_plan_create(be, g, false, &err);
    T_CHECK(plan, "%s: %s", be->name, err.msg);
    if (!plan)
        return false;
    nn_plan_set_weights(plan, w);
    void *ws = nn_plan_workspace_alloc(plan, nn_plan_workspace(plan));
    struct nn_tensor tx[NN_MAX_INPUTS], ty = nn_tensor_plain(y, g->nodes[g->output].shape);
    struct nn_io io = {.x = &tx[0], .x_scale = 1.0f, .dx_scale = 1.0f, .y = &ty, .y_scale = 1.0f};
    for (int k = 0; k < g->n_inputs; k++) {
        tx[k] = nn_tensor_plain(xs[k], g->nodes[g->inputs[k]].shape);
        if (k > 0)
            io.more[k - 1] = &tx[k];
    }
    nn_plan_execute(plan, &io, ws);
    nn_plan_workspace_free(plan, ws);
    nn_plan_destroy(&plan);
    return true;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        num = e > num || isnan(e) ? e : num;
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    }
    return den > 0 ? num / den : num;
}

/* CPU against the reference on the tile `out` of description yaml with random weights. */
static void check_desc(const char *yaml, const int out[3], const char *label)
{
    struct lm_err err = {{0}};
    struct net *n = net_parse(yaml, label, &err);
    T_CHECK(n, "%s: %s", label, err.msg);
    if (!n)
        return;
    net_fill_random(n, 7);
    struct nn_graph *g = net_graph(n, out, &err);
    T_CHECK(g, "%s: %s", label, err.msg);
    if (!g) {
        net_destroy(&n);
        return;
    }
    struct nn_weights *w = net_weights(n, g);
    float *xs[NN_MAX_INPUTS];
    for (int k = 0; k < g->n_inputs; k++) {
        size_t nx = nn_shape_count(g->nodes[g->inputs[k]].shape);
        xs[k] = malloc(nx * sizeof(float));
        for (size_t i = 0; i < nx; i++)
            xs[k][i] = rnd();
    }
    size_t ny = nn_shape_count(g->nodes[g->output].shape);
    float *y = malloc(2 * ny * sizeof(float)), *ry = y + ny;
    if (run_on(nn_backend_ref(), g, w, xs, ry) && run_on(nn_backend_cpu(), g, w, xs, y)) {
        double e = rel_err(y, ry, ny);
        T_CHECK(e <= 2e-6, "%s: cpu against ref %.3g (tolerance 2e-6)", label, e);
    }
    for (int k = 0; k < g->n_inputs; k++)
        free(xs[k]);
    free(y);
    nn_weights_destroy(&w);
    nn_graph_destroy(&g);
    net_destroy(&n);
}

static void test_ops_cpu_vs_ref(void)
{
    static const char *desc = "name: ops\n"
                              "inputs:\n"
                              "  - {name: a, channels: 3, scale: 1}\n"
                              "  - {name: b, channels: 2, scale: 2}\n"
                              "  - {name: c, channels: 2, scale: 2}\n"
                              "nodes:\n"
                              "  - {name: bu, op: upsample, inputs: [b], mode: trilinear}\n"
                              "  - {name: cu, op: upsample, inputs: [c], mode: nearest}\n"
                              "  - {name: bk, op: crop, inputs: [bu], like: a}\n"
                              "  - {name: ck, op: crop, inputs: [cu], like: a}\n"
                              "  - {name: x, op: concat, inputs: [a, bk, ck]}\n"
                              "  - {name: c2, op: conv3d, inputs: [x], kernel: 2, channels: 5}\n"
                              "  - {name: c4, op: conv3d, inputs: [c2], kernel: 4, channels: 4}\n"
                              "  - {name: g, op: gelu, inputs: [c4]}\n"
                              "  - {name: c5, op: conv3d, inputs: [x], kernel: 5, channels: 4}\n"
                              "  - {name: l, op: leaky_relu, inputs: [c5], slope: 0.2}\n"
                              "  - {name: s, op: add, inputs: [g, l, l]}\n"
                              "  - {name: r, op: relu, inputs: [s]}\n"
                              "  - {name: k1, op: crop, inputs: [r], cells: 1}\n"
                              "  - {name: c3, op: conv3d, inputs: [r], kernel: 3, channels: 3}\n"
                              "  - {name: y, op: concat, inputs: [k1, c3]}\n"
                              "output: y\n";
    int t1[3] = {6, 4, 8}, t2[3] = {2, 2, 2};
    check_desc(desc, t1, "ops 6x4x8");
    check_desc(desc, t2, "ops 2x2x2");
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(n + 1, 1);
    size_t got = fread(s, 1, n, f);
    fclose(f);
    s[got] = 0;
    return s;
}

static const char *paper_path(void)
{
    const char *p = getenv("LEMUR_SUPERRES_NET");
    return p ? p : "config/networks/superres-ramanah2020.yml";
}

static void test_paper_halo(void)
{
    char *text = read_text(paper_path());
    T_CHECK(text, "cannot read %s", paper_path());
    if (!text)
        return;
    struct lm_err err = {{0}};
    struct net *n = net_parse(text, paper_path(), &err);
    T_CHECK(n, "%s", err.msg);
    if (n) {
        T_CHECK(n->n_inputs == 2 && n->halo[0] == 12 && n->halo[1] == 7,
                "halos %d %d (expected 12 HR cells, 7 LR cells)", n->halo[0], n->halo[1]);
        T_CHECK(n->n_convs == 14, "%d convolutions (expected 14)", n->n_convs);
        int out[3] = {4, 2, 6}, in[3];
        net_input_extent(n, 1, out, in);
        T_CHECK(in[0] == 16 && in[1] == 15 && in[2] == 17, "lr extent %d %d %d", in[0], in[1],
                in[2]);
        check_desc(text, out, "ramanah2020 4x2x6");
    }
    net_destroy(&n);
    free(text);
}

/* description with one node replaced, expecting an error containing `want` */
static void expect_error(const char *yaml, const char *want)
{
    struct lm_err err = {{0}};
    struct net *n = net_parse(yaml, "bad", &err);
    T_CHECK(!n && strstr(err.msg, want), "expected an error with \"%s\", got \"%s\"", want,
            n ? "(none)" : err.msg);
    net_destroy(&n);
}

static void test_errors(void)
{
    const char *head = "name: e\ninputs:\n  - {name: a, channels: 2}\nnodes:\n";
    char buf[1024];
#define BAD(nodes, out, want)                                                                      \
    do {                                                                                           \
        snprintf(buf, sizeof buf, "%s%soutput: %s\n", head, nodes, out);                           \
        expect_error(buf, want);                                                                   \
    } while (0)
    BAD("  - {name: c, op: conv3d, inputs: [a], kernel: 3, channels: 2}\n"
        "  - {name: s, op: add, inputs: [a, c]}\n",
        "s", "add 's'");
    BAD("  - {name: c, op: conv3d, inputs: [a], kernel: 3, channels: 4}\n"
        "  - {name: s, op: concat, inputs: [a, c]}\n",
        "s", "concat 's'");
    BAD("  - {name: c, op: conv3d, inputs: [z], kernel: 3, channels: 4}\n", "c", "reads 'z'");
    BAD("  - {name: c, op: relu, inputs: [a], kernel: 3}\n", "c", "takes no key 'kernel'");
    BAD("  - {name: c, op: relu, inputs: [a]}\n  - {name: d, op: relu, inputs: [a]}\n", "d",
        "'c' does not contribute");
    BAD("  - {name: c, op: conv3d, inputs: [a], kernel: 3}\n", "c", "conv3d 'c' needs");
    BAD("  - {name: c, op: crop, inputs: [a]}\n", "c", "crop 'c' needs exactly one");
    BAD("  - {name: c, op: softmax, inputs: [a]}\n", "c", "softmax");
    BAD("  - {name: a, op: relu, inputs: [a]}\n", "a", "two nodes are called 'a'");
    BAD("  - {name: c, op: relu, inputs: [a]}\n", "zz", "output 'zz'");
    expect_error("name: e\ninputs:\n  - {name: a, channels: 1, scale: 2}\n"
                 "nodes:\n  - {name: c, op: relu, inputs: [a]}\noutput: c\n",
                 "declared with scale 2");
#undef BAD
}

/* Reference upsampling and activations against their definitions. */
static void test_ref_hand(void)
{
    struct nn_graph *g = nn_graph_create();
    int x = nn_graph_input(g, (struct nn_shape){1, {4, 3, 5}}, "x");
    int t = nn_graph_upsample(g, x, NN_UPSAMPLE_TRILINEAR, "t");
    nn_graph_set_output(g, t);
    struct nn_weights *w = nn_weights_create(g);
    float in[60], out[6 * 4 * 8];
    for (int i = 0; i < 60; i++) /* f = 2 i0 - i1 + 0.5 i2: linear, so trilinear is exact */
        in[i] = 2.0f * (i / 15) - (i / 5 % 3) + 0.5f * (i % 5);
    float *xs[1] = {in};
    if (run_on(nn_backend_ref(), g, w, xs, out)) {
        double worst = 0; /* HR cell j sits at LR coordinate j / 2 + 1/4 */
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 4; b++)
                for (int e = 0; e < 8; e++) {
                    double f = 2 * (a / 2.0 + 0.25) - (b / 2.0 + 0.25) + 0.5 * (e / 2.0 + 0.25);
                    double d = fabs(out[(a * 4 + b) * 8 + e] - f);
                    worst = d > worst ? d : worst;
                }
        T_CHECK(worst < 1e-6, "trilinear of a linear field off by %g", worst);
    }
    nn_weights_destroy(&w);
    nn_graph_destroy(&g);
    g = nn_graph_create();
    x = nn_graph_input(g, (struct nn_shape){1, {1, 1, 4}}, "x");
    int u = nn_graph_upsample(g, x, NN_UPSAMPLE_NEAREST, "u");
    int ge = nn_graph_act(g, u, NN_ACT_GELU, 0.0f, "g");
    nn_graph_set_output(g, ge);
    w = nn_weights_create(g);
    float v[4] = {1.0f, -1.0f, 2.0f, 0.0f}, r[32];
    xs[0] = v;
    if (run_on(nn_backend_ref(), g, w, xs, r)) { /* (1, 1, 4) -> (2, 2, 8), nearest */
        T_CLOSE(r[0], 0.8413447460685429, 1e-6);
        T_CLOSE(r[1], 0.8413447460685429, 1e-6);
        T_CLOSE(r[2], -0.15865525393145707, 1e-6);
        T_CLOSE(r[4 + 8 * 3], 1.9544997361036416, 1e-6);
        T_CHECK(r[7] == 0.0f, "gelu(0) = %g", r[7]);
    }
    struct lm_err err = {{0}};
    struct nn_plan *p = nn_plan_create(nn_backend_cpu(), g, true, &err);
    T_CHECK(!p && strstr(err.msg, "tangents"), "a tangent plan of a GELU graph: %s", err.msg);
    nn_plan_destroy(&p);
    nn_weights_destroy(&w);
    nn_graph_destroy(&g);
}

/* A periodic field on a 16^3 output grid (LR 8^3) run as one tile and as 8 tiles of 8^3, inputs
 * cut from the periodic fields with the derived halos: the same output, bit for bit. */
static void test_tile_invariance(void)
{
    char *text = read_text(paper_path());
    struct lm_err err = {{0}};
    struct net *n = text ? net_parse(text, paper_path(), &err) : NULL;
    T_CHECK(n, "%s", err.msg);
    free(text);
    if (!n)
        return;
    net_fill_random(n, 3);
    enum { N = 16 };
    float *hr = malloc(N * N * N * sizeof(float)), *lr = malloc(N * N * N / 8 * sizeof(float));
    for (int i = 0; i < N * N * N; i++)
        hr[i] = rnd();
    for (int i = 0; i < N * N * N / 8; i++)
        lr[i] = 1 + rnd();
    float *y[2] = {calloc(N * N * N, sizeof(float)), calloc(N * N * N, sizeof(float))};
    for (int pass = 0; pass < 2; pass++) {
        int M = pass ? 8 : 16, out[3] = {M, M, M};
        struct nn_graph *g = net_graph(n, out, &err);
        struct nn_weights *w = net_weights(n, g);
        for (int t = 0; t < (N / M) * (N / M) * (N / M); t++) {
            int anchor[3] = {t / 4 % 2 * M, t / 2 % 2 * M, t % 2 * M};
            float *xs[2];
            for (int k = 0; k < 2; k++) {
                int s = n->nodes[k].scale, h = n->halo[k], ng = N / s, ext[3];
                net_input_extent(n, k, out, ext);
                xs[k] = malloc((size_t)ext[0] * ext[1] * ext[2] * sizeof(float));
                for (int a = 0; a < ext[0]; a++)
                    for (int b = 0; b < ext[1]; b++)
                        for (int e = 0; e < ext[2]; e++) {
                            int q[3] = {a, b, e};
                            for (int d = 0; d < 3; d++)
                                q[d] = ((anchor[d] / s - h + q[d]) % ng + ng) % ng;
                            xs[k][(a * ext[1] + b) * ext[2] + e] =
                                (k ? lr : hr)[(q[0] * ng + q[1]) * ng + q[2]];
                        }
            }
            float *yt = malloc(M * M * M * sizeof(float));
            run_on(nn_backend_cpu(), g, w, xs, yt);
            for (int a = 0; a < M; a++)
                for (int b = 0; b < M; b++)
                    for (int e = 0; e < M; e++)
                        y[pass][((anchor[0] + a) * N + anchor[1] + b) * N + anchor[2] + e] =
                            yt[(a * M + b) * M + e];
            free(yt);
            free(xs[0]);
            free(xs[1]);
        }
        nn_weights_destroy(&w);
        nn_graph_destroy(&g);
    }
    int diff = 0;
    for (int i = 0; i < N * N * N; i++)
        diff += memcmp(&y[0][i], &y[1][i], sizeof(float)) != 0;
    T_CHECK(diff == 0, "%d of %d cells differ between tiles of 16^3 and 8^3", diff, N * N * N);
    free(y[0]);
    free(y[1]);
    free(hr);
    free(lr);
    net_destroy(&n);
}

/* ---- driver mode ---------------------------------------------------------------------------- */

static float *read_floats(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f, "cannot open %s", path);
    float *a = malloc(n * sizeof(float));
    CHECK(fread(a, sizeof(float), n, f) == n, "%s holds fewer than %zu floats", path, n);
    fclose(f);
    return a;
}

static int driver(int argc, char **argv)
{
    struct lm_err err = {{0}};
    struct net *n = net_file_read(argv[2], &err);
    if (!n) {
        fprintf(stderr, "lemur: error: %s\n", err.msg);
        return 1;
    }
    printf("halo");
    for (int k = 0; k < n->n_inputs; k++)
        printf(" %d", n->halo[k]);
    printf("\n");
    int M = atoi(argv[4]), out[3] = {M, M, M};
    if (M == 0) /* the halos only */
        return 0;
    CHECK(argc == 5 + n->n_inputs, "expected %d input files", n->n_inputs);
    struct nn_graph *g = net_graph(n, out, &err);
    CHECK(g, "%s", err.msg);
    struct nn_weights *w = net_weights(n, g);
    float *xs[NN_MAX_INPUTS];
    for (int k = 0; k < n->n_inputs; k++)
        xs[k] = read_floats(argv[5 + k], nn_shape_count(g->nodes[g->inputs[k]].shape));
    size_t ny = nn_shape_count(g->nodes[g->output].shape);
    float *y = malloc(ny * sizeof(float));
    run_on(nn_backend_cpu(), g, w, xs, y);
    FILE *f = fopen(argv[3], "wb");
    CHECK(f && fwrite(y, sizeof(float), ny, f) == ny, "cannot write %s", argv[3]);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "--apply") == 0)
        return driver(argc, argv);
    T_RUN(test_ref_hand);
    T_RUN(test_errors);
    T_RUN(test_ops_cpu_vs_ref);
    T_RUN(test_paper_halo);
    T_RUN(test_tile_invariance);
    return t_finish();
}
