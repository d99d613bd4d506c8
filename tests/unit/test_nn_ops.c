/* Conformance of the NN engine: every op of every backend (CPU; CUDA fp32 where a GPU is present)
 * against the plain loop-nest reference backend (nn_ref.c), values and tangents, on odd sizes; the
 * reference itself against finite differences; premodulation properties; the liveness-based memory
 * plan.
 *
 * Tolerances (max |backend - ref| / max |ref| over the output): values 2e-6 relative, tangents
 * 1e-5 relative (float32 oneDNN with its own summation order against double accumulation; the
 * tangent goes through the one-convolution identity z = dx + x du/u, whose rounding is a few
 * float ulps of |x du/u|). Reference against central differences in D: 2e-3 of the maximum at
 * 99% of the points (LeakyReLU kinks crossed within the difference step spoil a few). */
#include "harness.h"

#include <string.h>

#include "alloc.h"
#include "gpu/gpu.h"
#include "gpu/nn_cuda.h"
#include "nn.h"

/* ---- deterministic random numbers ---------------------------------------------------------- */

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;

static double rnd(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

/* ---- random styled parameters for every slot of a graph ------------------------------------ */

struct params {
    int n;
    float **store;
    struct nn_styled_params *p;
};

static struct params params_random(const struct nn_graph *g, int zero_u_slot)
{
    struct params P = {g->n_convs, NULL, NULL};
    P.store = calloc(g->n_convs, sizeof *P.store);
    P.p = calloc(g->n_convs, sizeof *P.p);
    for (int c = 0; c < g->n_convs; c++) {
        const struct nn_conv_desc *d = &g->convs[c];
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        float *a = P.store[c] = malloc((3 * (size_t)d->cin + nw + d->cout) * sizeof(float));
        float *sw = a, *sb = a + 2 * d->cin, *w = sb + d->cin, *b = w + nw;
        for (int i = 0; i < d->cin; i++) {
            sw[2 * i] = 0.5 * rnd();
            sw[2 * i + 1] = 0.5 * rnd();
            sb[i] = 1.0 + 0.3 * rnd();
        }
        if (c == zero_u_slot) { /* u[1] = 0 exactly at s = (0.4, 0) */
            sw[2] = 0.5f, sw[3] = 0.7f, sb[1] = -0.2f;
        }
        for (size_t k = 0; k < nw; k++)
            w[k] = rnd();
        for (int o = 0; o < d->cout; o++)
            b[o] = 0.2 * rnd();
        P.p[c] = (struct nn_styled_params){2, sw, sb, w, b};
    }
    return P;
}

static void params_free(struct params *P)
{
    for (int c = 0; c < P->n; c++)
        free(P->store[c]);
    free(P->store);
    free(P->p);
}

static struct nn_weights *weights_for(const struct nn_graph *g, const struct params *P,
                                      const double s[2])
{
    static const double ds[2] = {0.0, 1.0};
    struct nn_weights *w = nn_weights_create(g);
    for (int c = 0; c < g->n_convs; c++)
        nn_conv_premodulate(&g->convs[c], &P->p[c], s, ds, &w->conv[c]);
    nn_weights_touch(w);
    return w;
}

/* ---- running a graph on a backend ---------------------------------------------------------- */

/* Run g on be; y and dy (may be NULL: no tangents) receive plain arrays of the output shape. */
static bool run_graph(const struct nn_backend *be, const struct nn_graph *g,
                      const struct nn_weights *w, float *x, float *dx, float *y, float *dy)
{
    struct lm_err err = {{0}};
    struct nn_plan *plan = nn_plan_create(be, g, dy != NULL, &err);
    T_CHECK(plan, "%s: %s", be->name, err.msg);
    if (!plan)
        return false;
    nn_plan_set_weights(plan, w);
    void *ws = nn_plan_workspace_alloc(plan, nn_plan_workspace(plan));
    struct nn_tensor tx = nn_tensor_plain(x, g->nodes[g->input].shape);
    struct nn_tensor tdx = nn_tensor_plain(dx, g->nodes[g->input].shape);
    struct nn_tensor ty = nn_tensor_plain(y, g->nodes[g->output].shape);
    struct nn_tensor tdy = nn_tensor_plain(dy, g->nodes[g->output].shape);
    struct nn_io io = {.x = &tx,
                       .dx = dx ? &tdx : NULL,
                       .x_scale = 1.0f,
                       .dx_scale = 1.0f,
                       .y = &ty,
                       .dy = dy ? &tdy : NULL,
                       .y_scale = 1.0f};
    nn_plan_execute(plan, &io, ws);
    nn_plan_workspace_free(plan, ws);
    nn_plan_destroy(&plan);
    return true;
}

/* max |a - b| / max |b| */
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

/* Compare backend be with the reference on graph g (values and tangents, and values of a plan
 * without tangents), weights from random parameters (zero_u_slot: a slot given u[1] = 0). */
static void check_graph(const struct nn_backend *be, struct nn_graph *g, int zero_u_slot,
                        const char *label)
{
    T_CHECK(nn_graph_ok(g), "%s: %s", label, g->err.msg);
    if (!nn_graph_ok(g))
        return;
    struct params P = params_random(g, zero_u_slot);
    double s[2] = {zero_u_slot >= 0 ? 0.4 : 0.25, zero_u_slot >= 0 ? 0.0 : -0.35};
    struct nn_weights *w = weights_for(g, &P, s);
    size_t nx = nn_shape_count(g->nodes[g->input].shape);
    size_t ny = nn_shape_count(g->nodes[g->output].shape);
    float *x = malloc(2 * nx * sizeof(float)), *dx = x + nx;
    float *y = malloc(5 * ny * sizeof(float)), *dy = y + ny, *ry = dy + ny, *rdy = ry + ny;
    float *y0 = rdy + ny;
    for (size_t i = 0; i < 2 * nx; i++)
        x[i] = rnd();
    if (run_graph(nn_backend_ref(), g, w, x, dx, ry, rdy) && run_graph(be, g, w, x, dx, y, dy) &&
        run_graph(be, g, w, x, NULL, y0, NULL)) {
        double ev = rel_err(y, ry, ny), et = rel_err(dy, rdy, ny), e0 = rel_err(y0, ry, ny);
        T_CHECK(ev <= 2e-6 && e0 <= 2e-6,
                "%s: %s values differ from ref by %.3g (%.3g without "
                "tangents)",
                label, be->name, ev, e0);
        T_CHECK(et <= 1e-5, "%s: %s tangents differ from ref by %.3g", label, be->name, et);
        printf("  %-34s %s: value err %.2e (no-tangent plan %.2e), tangent err %.2e\n", label,
               be->name, ev, e0, et);
    }
    free(x);
    free(y);
    nn_weights_destroy(&w);
    params_free(&P);
}

/* ---- single-op graphs ---------------------------------------------------------------------- */

static struct nn_graph *graph_conv(int cin, int cout, int k, int s, bool tr, enum nn_act act,
                                   int n0, int n1, int n2)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d = {cin, cout, k, s, tr, "op"};
    int slot = nn_graph_add_conv(g, &d);
    int x = nn_graph_input(g, (struct nn_shape){cin, {n0, n1, n2}}, "x");
    nn_graph_set_output(g, nn_graph_conv(g, x, slot, act, "y"));
    return g;
}

static const struct nn_backend *backends[4]; /* filled in main: the backends under test */
static int n_backends = 0;

static void check_all(struct nn_graph *g, int zero_u_slot, const char *label)
{
    for (int b = 0; b < n_backends; b++)
        check_graph(backends[b], g, zero_u_slot, label);
    nn_graph_destroy(&g);
}

static void test_conv_k3(void)
{
    check_all(graph_conv(5, 7, 3, 1, false, NN_ACT_LRELU, 11, 9, 10), -1, "conv k3 5->7 lrelu");
    check_all(graph_conv(16, 32, 3, 1, false, NN_ACT_NONE, 9, 8, 7), -1, "conv k3 16->32");
    check_all(graph_conv(32, 3, 3, 1, false, NN_ACT_NONE, 7, 9, 8), -1, "conv k3 32->3 (padded)");
}

static void test_conv_k1_k2(void)
{
    check_all(graph_conv(6, 5, 1, 1, false, NN_ACT_LRELU, 7, 8, 9), -1, "conv k1 6->5 lrelu");
    check_all(graph_conv(8, 12, 2, 2, false, NN_ACT_LRELU, 10, 8, 12), -1, "conv k2 s2 8->12");
    check_all(graph_conv(4, 6, 3, 2, false, NN_ACT_NONE, 11, 9, 13), -1, "conv k3 s2 4->6");
}

static void test_tconv(void)
{
    check_all(graph_conv(9, 5, 2, 2, true, NN_ACT_LRELU, 5, 6, 7), -1, "tconv k2 s2 9->5 lrelu");
    check_all(graph_conv(16, 16, 2, 2, true, NN_ACT_NONE, 3, 5, 4), -1, "tconv k2 s2 16->16");
    check_all(graph_conv(4, 3, 3, 2, true, NN_ACT_LRELU, 5, 4, 6), -1, "tconv k3 s2 4->3");
}

/* crop as graph output, concat of a crop view and a convolution, a conv reading a crop view */
static void test_crop_concat(void)
{
    struct nn_graph *g = nn_graph_create();
    int x = nn_graph_input(g, (struct nn_shape){3, {9, 8, 11}}, "x");
    nn_graph_set_output(g, nn_graph_crop(g, x, 2, "crop"));
    check_all(g, -1, "crop 2");

    g = nn_graph_create();
    struct nn_conv_desc d = {5, 6, 3, 1, false, "c3"}, e = {6, 4, 1, 1, false, "c1"};
    int s0 = nn_graph_add_conv(g, &d), s1 = nn_graph_add_conv(g, &e);
    x = nn_graph_input(g, (struct nn_shape){5, {9, 10, 7}}, "x");
    int a = nn_graph_conv(g, x, s0, NN_ACT_LRELU, "a");
    int cat = nn_graph_concat(g, nn_graph_crop(g, x, 1, "xc"), a, "cat");
    int b = nn_graph_conv(g, nn_graph_crop(g, a, 1, "ac"), s1, NN_ACT_NONE, "b");
    nn_graph_set_output(g, nn_graph_concat(g, nn_graph_crop(g, cat, 1, "catc"), b, "out"));
    check_all(g, -1, "concat, crop views, packed conv input");
}

/* the residual pattern: conv3 -> lrelu -> conv3, + crop(conv1 skip), lrelu (in-place add), and
 * an add whose first input lives on (not in place) */
static void test_add(void)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d0 = {4, 8, 3, 1, false, "c0"}, d1 = {8, 8, 3, 1, false, "c1"};
    struct nn_conv_desc d2 = {4, 8, 1, 1, false, "skip"};
    int s0 = nn_graph_add_conv(g, &d0), s1 = nn_graph_add_conv(g, &d1);
    int s2 = nn_graph_add_conv(g, &d2);
    int x = nn_graph_input(g, (struct nn_shape){4, {11, 10, 9}}, "x");
    int h = nn_graph_conv(g, x, s0, NN_ACT_LRELU, "h");
    int r = nn_graph_conv(g, h, s1, NN_ACT_NONE, "r");
    int k = nn_graph_conv(g, x, s2, NN_ACT_NONE, "k");
    int sum = nn_graph_add(g, r, nn_graph_crop(g, k, 2, "kc"), NN_ACT_LRELU, "sum");
    int again = nn_graph_add(g, nn_graph_crop(g, h, 1, "hc"), sum, NN_ACT_NONE, "again");
    nn_graph_set_output(g, nn_graph_add(g, again, sum, NN_ACT_LRELU, "out"));
    check_all(g, -1, "residual add (in place and not)");
}

/* a layer whose modulation has an exact zero: the two-convolution tangent fallback */
static void test_tangent_fallback(void)
{
    check_all(graph_conv(5, 6, 3, 1, false, NN_ACT_LRELU, 8, 9, 7), 0, "conv with u[1] = 0");
    check_all(graph_conv(5, 6, 2, 2, true, NN_ACT_NONE, 4, 3, 5), 0, "tconv with u[1] = 0");
}

/* ---- the reference itself ------------------------------------------------------------------ */

/* The reference's tangent against central differences of its own value in D (s1 = D - 1). */
static void test_ref_finite_difference(void)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d0 = {3, 6, 3, 1, false, "c0"}, d1 = {6, 6, 2, 2, true, "up"};
    int s0 = nn_graph_add_conv(g, &d0), s1 = nn_graph_add_conv(g, &d1);
    int x = nn_graph_input(g, (struct nn_shape){3, {7, 6, 8}}, "x");
    int h = nn_graph_conv(g, x, s0, NN_ACT_LRELU, "h");
    nn_graph_set_output(g, nn_graph_conv(g, h, s1, NN_ACT_LRELU, "y"));
    struct params P = params_random(g, -1);
    size_t nx = nn_shape_count(g->nodes[x].shape), ny = nn_shape_count(g->nodes[g->output].shape);
    float *in = malloc(nx * sizeof(float)), *y = malloc(4 * ny * sizeof(float));
    float *dy = y + ny, *yp = dy + ny, *ym = yp + ny;
    for (size_t i = 0; i < nx; i++)
        in[i] = rnd();
    double h0 = 1e-3, base[2] = {0.1, -0.2}, sp[2] = {0.1, -0.2 + h0}, sm[2] = {0.1, -0.2 - h0};
    struct nn_weights *w = weights_for(g, &P, base), *wp = weights_for(g, &P, sp);
    struct nn_weights *wm = weights_for(g, &P, sm);
    float *zero = calloc(nx, sizeof(float)); /* dx = 0: the style is the only dependence */
    run_graph(nn_backend_ref(), g, w, in, zero, y, dy);
    run_graph(nn_backend_ref(), g, wp, in, NULL, yp, NULL);
    run_graph(nn_backend_ref(), g, wm, in, NULL, ym, NULL);
    /* a LeakyReLU kink crossed inside [D - h, D + h] spoils the difference at a few points:
     * require agreement at all but 1% of them (a wrong tangent fails almost everywhere) */
    double fmax_ = 0;
    for (size_t i = 0; i < ny; i++) {
        yp[i] = (yp[i] - ym[i]) / (float)(2 * h0);
        fmax_ = fmax(fmax_, fabs(yp[i]));
    }
    size_t bad = 0;
    for (size_t i = 0; i < ny; i++)
        bad += fabs(dy[i] - yp[i]) > 2e-3 * fmax_;
    T_CHECK(bad <= ny / 100,
            "reference tangent vs central difference: %zu of %zu points off by "
            "more than 2e-3 of the maximum",
            bad, ny);
    printf("  reference tangent vs central difference in D: %zu of %zu points beyond 2e-3 "
           "(max error %.2e)\n",
           bad, ny, rel_err(dy, yp, ny));
    free(in), free(y), free(zero);
    nn_weights_destroy(&w), nn_weights_destroy(&wp), nn_weights_destroy(&wm);
    params_free(&P);
    nn_graph_destroy(&g);
}

/* A hand-computed case: 1 -> 1 channel, k = 2, input 2x2x2 of ones, W = 1: W'' = 1/sqrt(8 + eps)
 * (u = 1), y = 8 / sqrt(8) + b. Checks the reference's arithmetic can fail. */
static void test_ref_hand_case(void)
{
    struct nn_graph *g = graph_conv(1, 1, 2, 1, false, NN_ACT_NONE, 2, 2, 2);
    float sw[2] = {0, 0}, sb[1] = {1}, w[8] = {1, 1, 1, 1, 1, 1, 1, 1}, b[1] = {0.5f};
    struct nn_styled_params p = {2, sw, sb, w, b};
    double s[2] = {0, 0}, ds[2] = {0, 1};
    struct nn_weights *ww = nn_weights_create(g);
    nn_conv_premodulate(&g->convs[0], &p, s, ds, &ww->conv[0]);
    nn_weights_touch(ww);
    float x[8] = {1, 1, 1, 1, 1, 1, 1, 1}, y[1];
    run_graph(nn_backend_ref(), g, ww, x, NULL, y, NULL);
    T_CLOSE(y[0], 8.0 / sqrt(8.0 + 1e-8) + 0.5, 1e-6);
    nn_weights_destroy(&ww);
    nn_graph_destroy(&g);
}

/* Premodulation: unit norm per output channel; dw against a central difference of w in s1;
 * c and ratio against their definitions. */
static void test_premodulate(void)
{
    struct nn_graph *g = graph_conv(6, 4, 3, 1, false, NN_ACT_NONE, 5, 5, 5);
    struct params P = params_random(g, -1);
    double s[2] = {0.3, 0.1}, h = 1e-3, sp[2] = {0.3, 0.1 + h}, sm[2] = {0.3, 0.1 - h};
    struct nn_weights *w = weights_for(g, &P, s), *wp = weights_for(g, &P, sp);
    struct nn_weights *wm = weights_for(g, &P, sm);
    const struct nn_conv_weights *c = &w->conv[0];
    int nk = 6 * 27;
    double max_dev = 0, max_fd = 0;
    for (int o = 0; o < 4; o++) {
        double ss = 0;
        for (int k = 0; k < nk; k++) {
            ss += (double)c->w[o * nk + k] * c->w[o * nk + k];
            double fd = (wp->conv[0].w[o * nk + k] - wm->conv[0].w[o * nk + k]) / (2 * h);
            max_fd = fmax(max_fd, fabs(fd - c->dw[o * nk + k]));
        }
        max_dev = fmax(max_dev, fabs(ss - 1));
    }
    T_CHECK(max_dev < 1e-5, "demodulated norm deviates from 1 by %.3g", max_dev);
    T_CHECK(max_fd < 2e-3, "dW'' differs from the central difference by %.3g", max_fd);
    T_CHECK(c->ratio_ok, "ratio_ok is false for a nonzero modulation");
    for (int i = 0; i < 6; i++) {
        double u = P.p[0].style_weight[2 * i] * s[0] + P.p[0].style_weight[2 * i + 1] * s[1] +
                   P.p[0].style_bias[i];
        T_CLOSE(c->ratio[i], P.p[0].style_weight[2 * i + 1] / u, 1e-6);
    }
    nn_weights_destroy(&w), nn_weights_destroy(&wp), nn_weights_destroy(&wm);
    params_free(&P);
    nn_graph_destroy(&g);
}

/* The memory plan: buffers alive together never overlap; dead ones are reused. */
static void test_memplan(void)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d = {4, 4, 1, 1, false, "c"};
    int s0 = nn_graph_add_conv(g, &d);
    int t = nn_graph_input(g, (struct nn_shape){4, {8, 8, 8}}, "x");
    for (int i = 0; i < 6; i++)
        t = nn_graph_conv(g, t, s0, NN_ACT_NONE, "c");
    nn_graph_set_output(g, t);
    struct nn_buf buf[7];
    for (int i = 0; i < 7; i++)
        buf[i] = (struct nn_buf){1000, -1, 0, 0, 0};
    size_t total = nn_memplan(g, buf, 64);
    T_CHECK(total == 2 * 1024,
            "a chain of 7 buffers of 1000 bytes needs %zu bytes, expected %d"
            " (two alternating)",
            total, 2 * 1024);
    for (int i = 1; i < 7; i++)
        T_CHECK(buf[i].offset != buf[i - 1].offset, "node %d overlaps its input", i);
    nn_graph_destroy(&g);
}

/* Graph builders refuse shapes that do not fit, naming the node. */
static void test_graph_errors(void)
{
    struct nn_graph *g = graph_conv(3, 4, 2, 2, false, NN_ACT_NONE, 5, 6, 6);
    T_CHECK(!nn_graph_ok(g) && strstr(g->err.msg, "'y'"), "odd input to a stride-2 conv: %s",
            g->err.msg);
    nn_graph_destroy(&g);
    g = nn_graph_create();
    int a = nn_graph_input(g, (struct nn_shape){3, {5, 5, 5}}, "x");
    nn_graph_concat(g, a, nn_graph_crop(g, a, 1, "c"), "cat");
    T_CHECK(!nn_graph_ok(g) && strstr(g->err.msg, "cat"), "concat shape mismatch: %s", g->err.msg);
    struct lm_err err = {{0}};
    T_CHECK(!nn_plan_create(nn_backend_cpu(), g, false, &err) && strstr(err.msg, "cat"),
            "a plan of a failed graph is refused: %s", err.msg);
    nn_graph_destroy(&g);
}

int main(void)
{
    backends[n_backends++] = nn_backend_cpu();
    struct gpu_info info;
    char why[256];
    if (nn_backend_cuda() && gpu_query(0, &info, why, sizeof why))
        backends[n_backends++] = nn_backend_cuda(); /* fp32: the same tolerances */
    else
        printf("  CUDA backend not tested here: %s\n",
               nn_backend_cuda() ? why : "lemur was built without CUDA");
    T_RUN(test_ref_hand_case);
    T_RUN(test_ref_finite_difference);
    T_RUN(test_premodulate);
    T_RUN(test_memplan);
    T_RUN(test_graph_errors);
    T_RUN(test_conv_k3);
    T_RUN(test_conv_k1_k2);
    T_RUN(test_tconv);
    T_RUN(test_crop_concat);
    T_RUN(test_add);
    T_RUN(test_tangent_fallback);
    return t_finish();
}
