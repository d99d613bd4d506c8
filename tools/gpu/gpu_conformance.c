/*
 * gpu_conformance — lemur's CUDA NN backend against the CPU reference, op by op and on the full
 * network, in every precision (run on a GPU machine: make gpu-bench;
 * build-gpu-bench/gpu-conformance).
 *
 * Each case runs a graph on the CUDA backend and on the reference (nn_ref.c for single ops and
 * small graphs; for networks, cpu_net.c, itself first checked against nn_ref) with random inputs
 * and random styled parameters, and compares values and tangents by max |gpu - ref| / max |ref|.
 * The device workspace is filled with NaN before every run (a read of memory that nothing wrote
 * shows up as NaN), host outputs are strided views inside canary-filled buffers (every cell of
 * the view must be written, nothing outside it), inputs are strided views too, and the scales of
 * nn_io are not 1. Metrics and tolerances per precision are in check_errs(). Also checked: the
 * asynchronous pipeline against synchronous runs, on-device premodulation against the host's, plan
 * sizing against created plans, the tile chooser, timed algorithm choice, and profiling.
 *
 * Usage: gpu-conformance [--precisions fp32,bf16,...] [--skip-full] [--skip-nets]
 *                        [--net-width 16] [--net-tile 16]
 * (--skip-full: no full-width network; --skip-nets: no network at all; --net-width/--net-tile: the
 * small network.)
 * Prints one line per case and ends with "cases: passed=N failed=M".
 */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "alloc.h"
#include "cpu_net.h"
#include "gpu/gpu.h"
#include "gpu/nn_cuda.h"
#include "nn.h"
#include "tiling.h"
#include "timer.h"
#include "vnet.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static double rnd(void) { return vnet_rand(&rng); }

/* ---- host views with canaries -------------------------------------------------------------- */

#define CANARY (-7777.25f)
#define GUARD  64

/* A tensor view inside a larger canary-filled buffer. layout 0: plain; 1: padded strides;
 * 2: padded strides and an innermost stride of 2. */
struct hview {
    float *buf;
    size_t n;
    struct nn_tensor t;
};

static struct hview hview_make(struct nn_shape s, int layout)
{
    struct hview h;
    ptrdiff_t s3 = layout == 2 ? 2 : 1, pad = layout ? 1 : 0;
    ptrdiff_t s2 = s3 * s.n[2] + 3 * pad, s1 = s2 * (s.n[1] + pad), s0 = s1 * (s.n[0] + 2 * pad);
    h.n = 2 * GUARD + (size_t)(s0 * s.c);
    h.buf = lm_malloc("conformance.view", h.n * sizeof(float));
    for (size_t i = 0; i < h.n; i++)
        h.buf[i] = CANARY;
    h.t.data = h.buf + GUARD;
    h.t.shape = s;
    h.t.stride[0] = s0;
    h.t.stride[1] = s1;
    h.t.stride[2] = s2;
    h.t.stride[3] = s3;
    return h;
}

static size_t view_index(const struct hview *h, int c, int a, int b, int e)
{
    const ptrdiff_t *st = h->t.stride;
    return GUARD + (size_t)(c * st[0] + a * st[1] + b * st[2] + e * st[3]);
}

/* Plain C-order copy of the view's contents (to) or into the view (from). */
static void hview_copy(struct hview *h, float *plain, bool to_plain)
{
    struct nn_shape s = h->t.shape;
    size_t k = 0;
    for (int c = 0; c < s.c; c++)
        for (int a = 0; a < s.n[0]; a++)
            for (int b = 0; b < s.n[1]; b++)
                for (int e = 0; e < s.n[2]; e++, k++) {
                    float *v = &h->buf[view_index(h, c, a, b, e)];
                    if (to_plain)
                        plain[k] = *v;
                    else
                        *v = plain[k];
                }
}

/* Cells outside the view that changed plus cells inside it that still hold the canary. */
static long hview_canary_errors(const struct hview *h)
{
    struct nn_shape s = h->t.shape;
    unsigned char *in = calloc(h->n, 1);
    long bad = 0;
    for (int c = 0; c < s.c; c++)
        for (int a = 0; a < s.n[0]; a++)
            for (int b = 0; b < s.n[1]; b++)
                for (int e = 0; e < s.n[2]; e++) {
                    size_t i = view_index(h, c, a, b, e);
                    in[i] = 1;
                    bad += h->buf[i] == CANARY;
                }
    for (size_t i = 0; i < h->n; i++)
        bad += !in[i] && h->buf[i] != CANARY;
    free(in);
    return bad;
}

static void hview_free(struct hview *h) { lm_free(h->buf); }

/* ---- running graphs ------------------------------------------------------------------------ */

/* How a run is fed: tangents, an explicit dx, the scales, the host layout. */
struct run_opts {
    bool tangents, with_dx;
    float xs, dxs, ys;
    int layout;
};

static const struct run_opts PLAIN = {true, true, 1.0f, 1.0f, 1.0f, 0};

/* Run g on be with weights w; x, dx plain inputs; y, dy plain outputs (dy NULL: no tangent
 * returned). Returns the number of canary violations, or -1 when the plan could not be made. */
static long run_on(const struct nn_backend *be, const struct nn_graph *g,
                   const struct nn_weights *w, const float *x, const float *dx, float *y, float *dy,
                   const struct run_opts *o)
{
    struct lm_err err = {{0}};
    struct nn_plan *plan = nn_plan_create(be, g, o->tangents, &err);
    T_CHECK(plan, "%s: plan: %s", be->name, err.msg);
    if (!plan)
        return -1;
    nn_plan_set_weights(plan, w);
    size_t wsb = nn_plan_workspace(plan);
    void *ws = nn_plan_workspace_alloc(plan, wsb);
    if (nn_backend_is_cuda(be))
        T_CHECK(cudaMemset(ws, 0xFF, wsb) == cudaSuccess, "poisoning the workspace");
    struct nn_shape si = g->nodes[g->input].shape, so = g->nodes[g->output].shape;
    struct hview hx = hview_make(si, o->layout), hdx = hview_make(si, o->layout);
    struct hview hy = hview_make(so, o->layout), hdy = hview_make(so, o->layout);
    hview_copy(&hx, (float *)x, false);
    hview_copy(&hdx, (float *)dx, false);
    struct nn_io io = {&hx.t, o->with_dx ? &hdx.t : NULL, o->xs, o->dxs,
                       &hy.t, dy ? &hdy.t : NULL,         o->ys, {NULL}};
    nn_plan_execute(plan, &io, ws);
    long bad = hview_canary_errors(&hy) + (dy ? hview_canary_errors(&hdy) : 0);
    hview_copy(&hy, y, true);
    if (dy)
        hview_copy(&hdy, dy, true);
    hview_free(&hx), hview_free(&hdx), hview_free(&hy), hview_free(&hdy);
    nn_plan_workspace_free(plan, ws);
    nn_plan_destroy(&plan);
    return bad;
}

/* max |a - b| / max |b| (NaN in a counts as infinite) */
static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        num = isnan(e) ? INFINITY : e > num ? e : num;
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    }
    return den > 0 ? num / den : num;
}

/* ||a - b|| / ||b|| (NaN in a counts as infinite) */
static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        num += isnan(e) ? INFINITY : e * e;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Fraction of cells where |a - b| > tol max |b| (NaN in a counts). */
static double frac_over(const float *a, const float *b, size_t n, double tol)
{
    double den = 0;
    for (size_t i = 0; i < n; i++)
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    size_t over = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        over += isnan(e) || e > tol * den;
    }
    return n ? (double)over / n : 0.0;
}

/* ---- tolerances ---------------------------------------------------------------------------- */

enum tol_kind { TOL_OP, TOL_NET };

/* Errors of one comparison: values (with and without tangents in the plan) and tangents. */
struct errs {
    double vmax, v0max, tmax, vl2, v0l2, tl2, tfrac;
};

/* The tolerances of precision p: values and tangents of single ops (max norm), of networks (L2). */
static const double tol_op_v[NN_CUDA_N_PRECISION] = {1e-5, 5e-3, 2e-2, 4e-3};
static const double tol_op_t[NN_CUDA_N_PRECISION] = {3e-5, 5e-3, 2e-2, 4e-3};
static const double tol_net_v[NN_CUDA_N_PRECISION] = {2e-5, 1e-2, 3e-2, 8e-3};
static const double tol_net_t[NN_CUDA_N_PRECISION] = {5e-5, 3e-2, 1e-1, 3e-2};

static struct errs errs_of(const float *y, const float *y0, const float *dy, const float *ry,
                           const float *rdy, size_t n, enum nn_cuda_precision p)
{
    struct errs e = {rel_err(y, ry, n),
                     rel_err(y0, ry, n),
                     rel_err(dy, rdy, n),
                     rel_l2(y, ry, n),
                     rel_l2(y0, ry, n),
                     rel_l2(dy, rdy, n),
                     frac_over(dy, rdy, n, tol_op_t[p])};
    return e;
}

/* Check e against the tolerances of precision p. Values: max norm (single ops) or L2 (networks).
 * Tangents: in fp32 as values; in the other precisions, where a pre-activation lies within
 * rounding of 0 the two sides take different LeakyReLU slopes (1 against 0.01) and such a cell
 * differs by its whole tangent (and a flip inside a graph spreads to the cells the next
 * convolution reaches), so single ops require all but 5% of the cells within the op tolerance
 * (a wrong tangent path fails nearly every cell), and networks an L2 error within the looser
 * network tolerance. */
static void check_errs(const struct errs *e, enum nn_cuda_precision p, enum tol_kind k,
                       const char *who)
{
    bool net = k == TOL_NET;
    double ev = net ? fmax(e->vl2, e->v0l2) : fmax(e->vmax, e->v0max);
    double tv = net ? tol_net_v[p] : tol_op_v[p];
    T_CHECK(ev <= tv, "values differ by %.3g (%s), tolerance %.1g", ev, net ? "L2" : "max", tv);
    if (net)
        T_CHECK(e->tl2 <= tol_net_t[p], "tangents differ by %.3g (L2), tolerance %.1g", e->tl2,
                tol_net_t[p]);
    else if (p == NN_CUDA_FP32)
        T_CHECK(e->tmax <= tol_op_t[p], "tangents differ by %.3g (max), tolerance %.1g", e->tmax,
                tol_op_t[p]);
    else
        T_CHECK(e->tfrac <= 0.05, "%.1f%% of the tangents differ by more than %.1g (max 5%%)",
                100 * e->tfrac, tol_op_t[p]);
    printf("    %s: values max %.2e L2 %.2e (forward-only plan max %.2e); tangents max %.2e L2 "
           "%.2e, %.2f%% of cells over %.0e\n",
           who, e->vmax, e->vl2, e->v0max, e->tmax, e->tl2, 100 * e->tfrac, tol_op_t[p]);
}

/* ---- cases --------------------------------------------------------------------------------- */

static enum nn_cuda_precision precs[NN_CUDA_N_PRECISION];
static int n_precs = 0;
static enum nn_cuda_precision cur; /* precision of the running case */
static struct nn_graph *cur_graph;
static int cur_zero_u;
static struct run_opts cur_opts;

/* Random parameters for g (slot zero_u: a modulation with an exact zero at s = (0.4, 0)). */
static void params_for(struct vnet_params *P, const struct nn_graph *g, int zero_u)
{
    vnet_params_random(P, g, (unsigned long long)(rnd() * 1e9) + 7);
    if (zero_u >= 0) {
        float *sw = (float *)P->p[zero_u].style_weight, *sb = (float *)P->p[zero_u].style_bias;
        sw[2] = 0.5f, sw[3] = 0.7f, sb[1] = -0.2f;
    }
}

/* Premodulated weights for style s (the fallback case uses s = (0.4, 0)). */
static struct nn_weights *weights_at(const struct nn_graph *g, const struct vnet_params *P,
                                     const double s[2])
{
    double ds[2] = {0.0, 1.0};
    struct nn_weights *w = nn_weights_create(g);
    for (int c = 0; c < g->n_convs; c++)
        nn_conv_premodulate(&g->convs[c], &P->p[c], s, ds, &w->conv[c]);
    nn_weights_touch(w);
    return w;
}

static float *random_array(size_t n, double scale)
{
    float *a = lm_malloc("conformance.data", n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(scale * rnd());
    return a;
}

/* Compare CUDA backend be (precision p) with reference backend `ref` (NULL: cpu_net) on g. */
static void compare(const struct nn_graph *g, int zero_u, const struct nn_backend *be,
                    enum nn_cuda_precision p, const struct nn_backend *ref, enum tol_kind kind,
                    const struct run_opts *o)
{
    struct vnet_params P;
    params_for(&P, g, zero_u);
    double s[2] = {zero_u >= 0 ? 0.4 : 0.25, zero_u >= 0 ? 0.0 : -0.35};
    struct nn_weights *w = weights_at(g, &P, s);
    size_t nx = nn_shape_count(g->nodes[g->input].shape);
    size_t ny = nn_shape_count(g->nodes[g->output].shape);
    float *x = random_array(nx, 1.0), *dx = random_array(nx, 1.0);
    float *y = lm_malloc("conformance.data", 5 * ny * sizeof(float));
    float *dy = y + ny, *ry = dy + ny, *rdy = ry + ny, *y0 = rdy + ny;
    struct run_opts fwd = *o, plain = *o;
    fwd.tangents = false;
    plain.layout = 0;
    if (ref) {
        run_on(ref, g, w, x, dx, ry, rdy, &plain);
    } else {
        struct nn_tensor tx = nn_tensor_plain(x, g->nodes[g->input].shape);
        struct nn_tensor tdx = nn_tensor_plain(dx, g->nodes[g->input].shape);
        struct nn_tensor ty = nn_tensor_plain(ry, g->nodes[g->output].shape);
        struct nn_tensor tdy = nn_tensor_plain(rdy, g->nodes[g->output].shape);
        struct nn_io io = {&tx, o->with_dx ? &tdx : NULL, o->xs, o->dxs, &ty, &tdy, o->ys, {NULL}};
        cpu_net_run(g, w, &io, true);
    }
    long bad = run_on(be, g, w, x, dx, y, dy, o);
    long bad0 = run_on(be, g, w, x, dx, y0, NULL, &fwd);
    if (bad >= 0 && bad0 >= 0) {
        T_CHECK(bad == 0 && bad0 == 0,
                "%ld + %ld output cells written outside the view or not "
                "at all",
                bad, bad0);
        struct errs e = errs_of(y, y0, dy, ry, rdy, ny, p);
        check_errs(&e, p, kind, be->name);
    }
    lm_free(x), lm_free(dx), lm_free(y);
    nn_weights_destroy(&w);
    vnet_params_free(&P);
}

static void case_op(void)
{
    compare(cur_graph, cur_zero_u, nn_backend_cuda_precision(cur), cur, nn_backend_ref(), TOL_OP,
            &cur_opts);
}

/* cpu_net against nn_ref (the yardstick of the networks must itself agree with the reference). */
static void case_cpu_net(void)
{
    const struct nn_graph *g = cur_graph;
    struct vnet_params P;
    params_for(&P, g, cur_zero_u);
    double s[2] = {cur_zero_u >= 0 ? 0.4 : 0.25, cur_zero_u >= 0 ? 0.0 : -0.35};
    struct nn_weights *w = weights_at(g, &P, s);
    size_t nx = nn_shape_count(g->nodes[g->input].shape);
    size_t ny = nn_shape_count(g->nodes[g->output].shape);
    float *x = random_array(nx, 1.0), *dx = random_array(nx, 1.0);
    float *y = lm_malloc("conformance.data", 4 * ny * sizeof(float));
    float *dy = y + ny, *ry = dy + ny, *rdy = ry + ny;
    run_on(nn_backend_ref(), g, w, x, dx, ry, rdy, &cur_opts);
    struct nn_tensor tx = nn_tensor_plain(x, g->nodes[g->input].shape);
    struct nn_tensor tdx = nn_tensor_plain(dx, g->nodes[g->input].shape);
    struct nn_tensor ty = nn_tensor_plain(y, g->nodes[g->output].shape);
    struct nn_tensor tdy = nn_tensor_plain(dy, g->nodes[g->output].shape);
    struct nn_io io = {
        &tx, cur_opts.with_dx ? &tdx : NULL, cur_opts.xs, cur_opts.dxs, &ty, &tdy, cur_opts.ys, {NULL}};
    cpu_net_run(g, w, &io, true);
    double ev = rel_err(y, ry, ny), et = rel_err(dy, rdy, ny);
    T_CHECK(ev <= 1e-6 && et <= 1e-6, "cpu_net vs nn_ref: values %.3g, tangents %.3g", ev, et);
    lm_free(x), lm_free(dx), lm_free(y);
    nn_weights_destroy(&w);
    vnet_params_free(&P);
}

/* ---- graphs -------------------------------------------------------------------------------- */

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

/* crop output; concat of a crop view and a conv; a conv reading a crop view (packed input) */
static struct nn_graph *graph_crop_concat(void)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d = {5, 6, 3, 1, false, "c3"}, e = {6, 4, 1, 1, false, "c1"};
    int s0 = nn_graph_add_conv(g, &d), s1 = nn_graph_add_conv(g, &e);
    int x = nn_graph_input(g, (struct nn_shape){5, {9, 10, 7}}, "x");
    int a = nn_graph_conv(g, x, s0, NN_ACT_LRELU, "a");
    int cat = nn_graph_concat(g, nn_graph_crop(g, x, 1, "xc"), a, "cat");
    int b = nn_graph_conv(g, nn_graph_crop(g, a, 1, "ac"), s1, NN_ACT_NONE, "b");
    nn_graph_set_output(g, nn_graph_concat(g, nn_graph_crop(g, cat, 1, "catc"), b, "out"));
    return g;
}

/* The residual block in both orders (skip first: the add fuses into the conv; skip last: the plan
 * hoists the skip before the conv, then fuses), plus adds that cannot fuse. */
static struct nn_graph *graph_residual(bool skip_first)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc d0 = {8, 16, 3, 1, false, "c0"}, d1 = {16, 16, 3, 1, false, "c1"};
    struct nn_conv_desc d2 = {8, 16, 1, 1, false, "skip"};
    int s0 = nn_graph_add_conv(g, &d0), s1 = nn_graph_add_conv(g, &d1);
    int s2 = nn_graph_add_conv(g, &d2);
    int x = nn_graph_input(g, (struct nn_shape){8, {11, 10, 9}}, "x");
    int k = skip_first ? nn_graph_conv(g, x, s2, NN_ACT_NONE, "k") : -1;
    int h = nn_graph_conv(g, x, s0, NN_ACT_LRELU, "h");
    int r = nn_graph_conv(g, h, s1, NN_ACT_NONE, "r");
    if (!skip_first)
        k = nn_graph_conv(g, x, s2, NN_ACT_NONE, "k");
    int sum = nn_graph_add(g, r, nn_graph_crop(g, k, 2, "kc"), NN_ACT_LRELU, "sum");
    int again = nn_graph_add(g, nn_graph_crop(g, h, 1, "hc"), sum, NN_ACT_NONE, "again");
    nn_graph_set_output(g, nn_graph_add(g, again, sum, NN_ACT_LRELU, "out"));
    return g;
}

/* Down, residual, up and concat: a producer-prepared tangent (conv read by one conv only), an
 * in-place tangent (last of two readers), a transposed conv writing its half of a concat. */
static struct nn_graph *graph_unet(void)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_conv_desc dn = {8, 8, 2, 2, false, "down"}, c0 = {8, 16, 3, 1, false, "c0"};
    struct nn_conv_desc c1 = {16, 8, 3, 1, false, "c1"}, up = {8, 8, 2, 2, true, "up"};
    struct nn_conv_desc sk = {8, 8, 1, 1, false, "sk"}, o = {16, 3, 3, 1, false, "out"};
    int sdn = nn_graph_add_conv(g, &dn), s0 = nn_graph_add_conv(g, &c0);
    int s1 = nn_graph_add_conv(g, &c1), sup = nn_graph_add_conv(g, &up);
    int ssk = nn_graph_add_conv(g, &sk), so = nn_graph_add_conv(g, &o);
    int x = nn_graph_input(g, (struct nn_shape){8, {18, 14, 16}}, "x");
    int d = nn_graph_conv(g, x, sdn, NN_ACT_LRELU, "d");
    int k = nn_graph_conv(g, d, ssk, NN_ACT_NONE, "k");
    int h = nn_graph_conv(g, d, s0, NN_ACT_LRELU, "h");
    int r = nn_graph_conv(g, h, s1, NN_ACT_NONE, "r");
    int sum = nn_graph_add(g, r, nn_graph_crop(g, k, 2, "kc"), NN_ACT_LRELU, "sum");
    int u = nn_graph_conv(g, sum, sup, NN_ACT_LRELU, "u");
    int cat = nn_graph_concat(g, nn_graph_crop(g, x, 4, "xc"), u, "cat");
    nn_graph_set_output(g, nn_graph_conv(g, cat, so, NN_ACT_NONE, "y"));
    return g;
}

/* ---- runner -------------------------------------------------------------------------------- */

static void run_case(const char *label, void (*fn)(void))
{
    char name[160];
    snprintf(name, sizeof name, "%-40s %s", label, nn_cuda_precision_name(cur));
    t_run_case(name, fn);
}

/* Compare g on every precision with nn_ref, after checking cpu_net against nn_ref on it. */
static void op_cases(struct nn_graph *g, int zero_u, const struct run_opts *o, const char *label)
{
    cur_graph = g;
    cur_zero_u = zero_u;
    cur_opts = *o;
    char name[160];
    snprintf(name, sizeof name, "%-40s cpu_net vs nn_ref", label);
    t_run_case(name, case_cpu_net);
    for (int i = 0; i < n_precs; i++) {
        cur = precs[i];
        run_case(label, case_op);
    }
    nn_graph_destroy(&g);
}

static void all_op_cases(void)
{
    struct run_opts strided = {true, true, 0.7f, 1.3f, 2.0f, 1};
    struct run_opts nodx = {true, false, 1.5f, 0.5f, 0.25f, 2};
    op_cases(graph_conv(5, 7, 3, 1, false, NN_ACT_LRELU, 11, 9, 10), -1, &strided,
             "conv k3 5->7 lrelu, strided io");
    op_cases(graph_conv(16, 32, 3, 1, false, NN_ACT_NONE, 9, 8, 7), -1, &PLAIN, "conv k3 16->32");
    op_cases(graph_conv(32, 3, 3, 1, false, NN_ACT_NONE, 7, 9, 8), -1, &nodx,
             "conv k3 32->3, no dx, stride-2 io");
    op_cases(graph_conv(6, 5, 1, 1, false, NN_ACT_LRELU, 7, 8, 9), -1, &PLAIN,
             "conv k1 6->5 lrelu");
    op_cases(graph_conv(8, 12, 2, 2, false, NN_ACT_LRELU, 10, 8, 12), -1, &strided,
             "conv k2 s2 8->12 lrelu");
    op_cases(graph_conv(4, 6, 3, 2, false, NN_ACT_NONE, 11, 9, 13), -1, &PLAIN, "conv k3 s2 4->6");
    op_cases(graph_conv(9, 5, 2, 2, true, NN_ACT_LRELU, 5, 6, 7), -1, &strided,
             "tconv k2 s2 9->5 lrelu");
    op_cases(graph_conv(16, 16, 2, 2, true, NN_ACT_NONE, 3, 5, 4), -1, &PLAIN,
             "tconv k2 s2 16->16");
    op_cases(graph_conv(4, 3, 3, 2, true, NN_ACT_LRELU, 5, 4, 6), -1, &nodx,
             "tconv k3 s2 4->3 (overlapping taps)");
    op_cases(graph_crop_concat(), -1, &strided, "crop/concat views, packed conv input");
    op_cases(graph_residual(true), -1, &strided, "residual, skip first (fused add)");
    op_cases(graph_residual(false), -1, &nodx, "residual, skip last (hoisted, fused)");
    op_cases(graph_unet(), -1, &strided, "down/up/concat (tangent modes)");
    op_cases(graph_conv(5, 6, 3, 1, false, NN_ACT_LRELU, 8, 9, 7), 0, &PLAIN,
             "conv with u[1] = 0 (two-conv tangent)");
    op_cases(graph_conv(5, 6, 2, 2, true, NN_ACT_NONE, 4, 3, 5), 0, &strided,
             "tconv with u[1] = 0 (two-conv tangent)");
}

/* ---- generic-network ops (net.h) against nn_ref: forward only ------------------------------ */

/* Run g (plain convolution weights w) on be with inputs xs (plain arrays) into y (plain), host
 * views of the given layout. Returns canary violations, or -1 when no plan could be made. */
static long run_inputs(const struct nn_backend *be, const struct nn_graph *g,
                       const struct nn_weights *w, float *const *xs, float *y, int layout)
{
    struct lm_err err = {{0}};
    struct nn_plan *plan = nn_plan_create(be, g, false, &err);
    T_CHECK(plan, "%s: plan: %s", be->name, err.msg);
    if (!plan)
        return -1;
    nn_plan_set_weights(plan, w);
    size_t wsb = nn_plan_workspace(plan);
    void *ws = nn_plan_workspace_alloc(plan, wsb);
    if (nn_backend_is_cuda(be))
        T_CHECK(cudaMemset(ws, 0xFF, wsb) == cudaSuccess, "poisoning the workspace");
    struct hview hx[NN_MAX_INPUTS], hy = hview_make(g->nodes[g->output].shape, layout);
    struct nn_io io = {.x = &hx[0].t, .x_scale = 0.75f, .dx_scale = 1.0f, .y = &hy.t, .y_scale = 1.5f};
    for (int k = 0; k < g->n_inputs; k++) {
        hx[k] = hview_make(g->nodes[g->inputs[k]].shape, layout);
        hview_copy(&hx[k], xs[k], false);
        if (k > 0)
            io.more[k - 1] = &hx[k].t;
    }
    nn_plan_execute(plan, &io, ws);
    long bad = hview_canary_errors(&hy);
    hview_copy(&hy, y, true);
    for (int k = 0; k < g->n_inputs; k++)
        hview_free(&hx[k]);
    hview_free(&hy);
    nn_plan_workspace_free(plan, ws);
    nn_plan_destroy(&plan);
    return bad;
}

static int cur_layout;

static void case_generic(void)
{
    const struct nn_graph *g = cur_graph;
    struct nn_weights *w = nn_weights_create(g);
    for (int c = 0; c < g->n_convs; c++) {
        const struct nn_conv_desc *d = &g->convs[c];
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        float *wt = random_array(nw, 1.0 / sqrt((double)nw / d->cout)), *b = random_array(d->cout, 0.2);
        nn_conv_set_plain(d, wt, b, &w->conv[c]);
        lm_free(wt), lm_free(b);
    }
    nn_weights_touch(w);
    float *xs[NN_MAX_INPUTS];
    for (int k = 0; k < g->n_inputs; k++)
        xs[k] = random_array(nn_shape_count(g->nodes[g->inputs[k]].shape), 1.0);
    size_t ny = nn_shape_count(g->nodes[g->output].shape);
    float *y = lm_malloc("conformance.data", 2 * ny * sizeof(float)), *ry = y + ny;
    long r0 = run_inputs(nn_backend_ref(), g, w, xs, ry, 0);
    long r1 = run_inputs(nn_backend_cuda_precision(cur), g, w, xs, y, cur_layout);
    if (r0 >= 0 && r1 >= 0) {
        T_CHECK(r1 == 0, "%ld output cells written outside the view or not at all", r1);
        double e = rel_err(y, ry, ny);
        T_CHECK(e <= tol_op_v[cur], "values differ by %.3g (max), tolerance %.1g", e, tol_op_v[cur]);
        printf("    values max %.2e\n", e);
    }
    for (int k = 0; k < g->n_inputs; k++)
        lm_free(xs[k]);
    lm_free(y);
    nn_weights_destroy(&w);
}

/* Three inputs on two grids: nearest and trilinear x2 upsampling, a 3-way concat, an unstyled
 * 5^3 convolution and GELU. */
static struct nn_graph *graph_upsample(void)
{
    struct nn_graph *g = nn_graph_create();
    int a = nn_graph_input(g, (struct nn_shape){3, {10, 8, 10}}, "a");
    int b = nn_graph_input(g, (struct nn_shape){2, {6, 5, 6}}, "b");
    int c = nn_graph_input(g, (struct nn_shape){2, {5, 4, 5}}, "c");
    int bu = nn_graph_upsample(g, b, NN_UPSAMPLE_TRILINEAR, "bu");
    int cu = nn_graph_upsample(g, c, NN_UPSAMPLE_NEAREST, "cu");
    int x = nn_graph_concat(g, nn_graph_concat(g, a, bu, "ab"), cu, "abc");
    struct nn_conv_desc d = {7, 6, 5, 1, false, "c5"};
    int y = nn_graph_conv(g, x, nn_graph_add_conv(g, &d), NN_ACT_NONE, "c5");
    nn_graph_set_output(g, nn_graph_act(g, y, NN_ACT_GELU, 0.0f, "gelu"));
    return g;
}

/* Even kernels and the activations: conv k4 -> LeakyReLU(0.2) -> conv k2 -> ReLU -> conv k2 ->
 * GELU, plus the first activation cropped by one cell added back. */
static struct nn_graph *graph_even_acts(void)
{
    struct nn_graph *g = nn_graph_create();
    int x = nn_graph_input(g, (struct nn_shape){5, {11, 9, 12}}, "x");
    struct nn_conv_desc d4 = {5, 4, 4, 1, false, "c4"}, d2 = {4, 4, 2, 1, false, "c2"};
    struct nn_conv_desc e2 = {4, 4, 2, 1, false, "c2b"};
    int l = nn_graph_act(g, nn_graph_conv(g, x, nn_graph_add_conv(g, &d4), NN_ACT_NONE, "c4"),
                         NN_ACT_LRELU, 0.2f, "lrelu");
    int r = nn_graph_act(g, nn_graph_conv(g, l, nn_graph_add_conv(g, &d2), NN_ACT_NONE, "c2"),
                         NN_ACT_RELU, 0.0f, "relu");
    int q = nn_graph_act(g, nn_graph_conv(g, r, nn_graph_add_conv(g, &e2), NN_ACT_NONE, "c2b"),
                         NN_ACT_GELU, 0.0f, "gelu");
    nn_graph_set_output(g, nn_graph_add(g, q, nn_graph_crop(g, l, 1, "k"), NN_ACT_NONE, "s"));
    return g;
}

static void generic_cases(void)
{
    struct nn_graph *gs[2] = {graph_upsample(), graph_even_acts()};
    const char *labels[2] = {"generic: 3 inputs, upsample, k5, gelu", "generic: k4, k2, acts, add"};
    for (int n = 0; n < 2; n++) {
        T_CHECK(nn_graph_ok(gs[n]), "%s: %s", labels[n], gs[n]->err.msg);
        cur_graph = gs[n];
        for (int i = 0; i < n_precs; i++) {
            cur = precs[i];
            cur_layout = i % 3;
            run_case(labels[n], case_generic);
        }
        nn_graph_destroy(&gs[n]);
    }
}

/* ---- networks against cpu_net -------------------------------------------------------------- */

/* One network, its weights, input and cpu_net result, shared by the precisions. */
static struct {
    struct nn_graph *g;
    struct vnet_params P;
    struct nn_weights *w;
    float *x, *ry, *rdy;
    size_t ny;
    struct run_opts o;
} net;

static void net_prepare(int side, int width)
{
    int out[3] = {side, side, side};
    net.g = vnet_graph(out, width);
    CHECK(nn_graph_ok(net.g), "V-Net graph: %s", net.g->err.msg);
    vnet_params_random(&net.P, net.g, 1234 + width);
    net.w = vnet_weights(net.g, &net.P, 0.3175, 0.8);
    size_t nx = nn_shape_count(net.g->nodes[net.g->input].shape);
    net.ny = nn_shape_count(net.g->nodes[net.g->output].shape);
    net.x = random_array(nx, 6.0);
    net.ry = lm_malloc("conformance.net", 2 * net.ny * sizeof(float));
    net.rdy = net.ry + net.ny;
    struct run_opts o = {true, false, (float)(0.8 / 6.0), (float)(1.0 / 6.0), 6.0f, 0};
    net.o = o;
    struct nn_tensor tx = nn_tensor_plain(net.x, net.g->nodes[net.g->input].shape);
    struct nn_tensor ty = nn_tensor_plain(net.ry, net.g->nodes[net.g->output].shape);
    struct nn_tensor tdy = nn_tensor_plain(net.rdy, net.g->nodes[net.g->output].shape);
    struct nn_io io = {&tx, NULL, o.xs, o.dxs, &ty, &tdy, o.ys, {NULL}};
    double t0 = timer_now();
    cpu_net_run(net.g, net.w, &io, true);
    printf("  V-Net width %d, tile %d: %.3g multiply-adds, cpu_net reference in %.1f s\n", width,
           side, nn_graph_macs(net.g), timer_now() - t0);
}

static void net_release(void)
{
    lm_free(net.x);
    lm_free(net.ry);
    nn_weights_destroy(&net.w);
    vnet_params_free(&net.P);
    nn_graph_destroy(&net.g);
}

static void case_net(void)
{
    const struct nn_backend *be = nn_backend_cuda_precision(cur);
    float *y = lm_malloc("conformance.net", 3 * net.ny * sizeof(float));
    float *dy = y + net.ny, *y0 = dy + net.ny;
    struct run_opts fwd = net.o;
    fwd.tangents = false;
    long bad = run_on(be, net.g, net.w, net.x, net.x, y, dy, &net.o);
    long bad0 = run_on(be, net.g, net.w, net.x, net.x, y0, NULL, &fwd);
    if (bad >= 0 && bad0 >= 0) {
        T_CHECK(bad == 0 && bad0 == 0, "%ld + %ld output cells written wrongly", bad, bad0);
        struct errs e = errs_of(y, y0, dy, net.ry, net.rdy, net.ny, cur);
        check_errs(&e, cur, TOL_NET, be->name);
    }
    lm_free(y);
}

/* ---- pipeline, premodulation, sizing, tile chooser ----------------------------------------- */

/* A plan of g on the current precision with weights, and a poisoned workspace. */
struct fixture {
    struct nn_graph *g;
    struct vnet_params P;
    struct nn_weights *w;
    struct nn_plan *plan;
    void *ws;
    size_t nx, ny;
};

static bool fixture_make(struct fixture *f, struct nn_graph *g, int zero_u, const double s[2])
{
    struct lm_err err = {{0}};
    memset(f, 0, sizeof *f);
    f->g = g;
    params_for(&f->P, g, zero_u);
    f->w = weights_at(g, &f->P, s);
    f->plan = nn_plan_create(nn_backend_cuda_precision(cur), g, true, &err);
    T_CHECK(f->plan, "plan: %s", err.msg);
    if (!f->plan)
        return false;
    nn_plan_set_weights(f->plan, f->w);
    size_t wsb = nn_plan_workspace(f->plan);
    f->ws = nn_plan_workspace_alloc(f->plan, wsb);
    T_CHECK(cudaMemset(f->ws, 0xFF, wsb) == cudaSuccess, "poisoning the workspace");
    f->nx = nn_shape_count(g->nodes[g->input].shape);
    f->ny = nn_shape_count(g->nodes[g->output].shape);
    return true;
}

static void fixture_free(struct fixture *f)
{
    if (f->plan)
        nn_plan_workspace_free(f->plan, f->ws);
    nn_plan_destroy(&f->plan);
    nn_weights_destroy(&f->w);
    vnet_params_free(&f->P);
    nn_graph_destroy(&f->g);
}

/* Plain io of fixture f for input x and outputs y, dy (its tensors stored in t[3]). */
static struct nn_io fixture_io(const struct fixture *f, float *x, float *y, float *dy,
                               struct nn_tensor t[3])
{
    t[0] = nn_tensor_plain(x, f->g->nodes[f->g->input].shape);
    t[1] = nn_tensor_plain(y, f->g->nodes[f->g->output].shape);
    t[2] = nn_tensor_plain(dy, f->g->nodes[f->g->output].shape);
    struct nn_io io = {&t[0], NULL, 0.9f, 1.1f, &t[1], &t[2], 1.5f, {NULL}};
    return io;
}

/* Three tiles through the driver's pattern (begin, begin, end, begin, end, end) equal three
 * synchronous executions. */
static void case_async(void)
{
    double s[2] = {0.25, -0.35};
    struct fixture f;
    if (!fixture_make(&f, graph_unet(), -1, s)) {
        fixture_free(&f);
        return;
    }
    float *x[3], *y = lm_malloc("conformance.async", 12 * f.ny * sizeof(float));
    struct nn_tensor ts[3][3], ta[3][3];
    struct nn_io sync_io[3], async_io[3];
    for (int t = 0; t < 3; t++) {
        x[t] = random_array(f.nx, 1.0);
        sync_io[t] = fixture_io(&f, x[t], y + 4 * t * f.ny, y + (4 * t + 1) * f.ny, ts[t]);
        async_io[t] = fixture_io(&f, x[t], y + (4 * t + 2) * f.ny, y + (4 * t + 3) * f.ny, ta[t]);
        nn_plan_execute(f.plan, &sync_io[t], f.ws);
    }
    nn_cuda_execute_begin(f.plan, &async_io[0], f.ws);
    nn_cuda_execute_begin(f.plan, &async_io[1], f.ws);
    T_CHECK(nn_cuda_in_flight(f.plan) == 2, "%d in flight", nn_cuda_in_flight(f.plan));
    nn_cuda_execute_end(f.plan);
    nn_cuda_execute_begin(f.plan, &async_io[2], f.ws);
    nn_cuda_execute_end(f.plan);
    nn_cuda_execute_end(f.plan);
    T_CHECK(nn_cuda_in_flight(f.plan) == 0, "%d in flight", nn_cuda_in_flight(f.plan));
    for (int t = 0; t < 3; t++) {
        double e = rel_err(y + (4 * t + 2) * f.ny, y + 4 * t * f.ny, 2 * f.ny);
        T_CHECK(e <= 1e-6, "tile %d: asynchronous result differs by %.3g", t, e);
        lm_free(x[t]);
    }
    lm_free(y);
    fixture_free(&f);
}

/* Device premodulation from raw parameters equals the host's (also for a zero modulation), and
 * host weights set afterwards are used again. */
static void case_restyle(void)
{
    double tol = cur == NN_CUDA_FP32 || cur == NN_CUDA_TF32 ? 1e-5 : 5e-3;
    for (int zero_u = -1; zero_u <= 0; zero_u++) {
        double s[2] = {zero_u >= 0 ? 0.4 : 0.25, zero_u >= 0 ? 0.0 : -0.35}, ds[2] = {0, 1};
        struct fixture f;
        if (!fixture_make(&f, graph_unet(), zero_u, s)) {
            fixture_free(&f);
            return;
        }
        float *x = random_array(f.nx, 1.0), *y = lm_malloc("conformance.restyle", 6 * f.ny * 4);
        struct nn_tensor t[3][3];
        struct nn_io host = fixture_io(&f, x, y, y + f.ny, t[0]);
        struct nn_io dev = fixture_io(&f, x, y + 2 * f.ny, y + 3 * f.ny, t[1]);
        struct nn_io again = fixture_io(&f, x, y + 4 * f.ny, y + 5 * f.ny, t[2]);
        nn_plan_execute(f.plan, &host, f.ws);
        nn_cuda_plan_set_params(f.plan, f.P.p);
        nn_cuda_plan_restyle(f.plan, s, ds);
        nn_plan_execute(f.plan, &dev, f.ws);
        nn_plan_set_weights(f.plan, f.w);
        nn_plan_execute(f.plan, &again, f.ws);
        double e = rel_err(y + 2 * f.ny, y, 2 * f.ny), e2 = rel_err(y + 4 * f.ny, y, 2 * f.ny);
        T_CHECK(e <= tol, "device premodulation (zero u: %d) differs by %.3g", zero_u >= 0, e);
        T_CHECK(e2 == 0, "host weights after a restyle differ by %.3g", e2);
        lm_free(x), lm_free(y);
        fixture_free(&f);
    }
}

/* nn_plan_size agrees with the plans it predicts (the device space, the exact figures). */
static void case_sizing(void)
{
    int out[3] = {8, 8, 8};
    struct nn_graph *gs[2] = {graph_unet(), vnet_graph(out, 64)};
    const struct nn_backend *be = nn_backend_cuda_precision(cur);
    for (int k = 0; k < 2; k++)
        for (int tan = 0; tan < 2; tan++) {
            struct lm_err err = {{0}};
            struct nn_plan_mem m;
            T_CHECK(nn_plan_size(be, gs[k], tan, &m, &err), "size: %s", err.msg);
            T_CHECK(m.space == NN_MEM_DEVICE, "space %d", (int)m.space);
            struct nn_plan *p = nn_plan_create(be, gs[k], tan, &err);
            T_CHECK(p, "plan: %s", err.msg);
            if (p)
                T_CHECK(m.workspace == nn_plan_workspace(p) && m.plan == nn_plan_memory(p),
                        "sized %zu + %zu bytes, plan has %zu + %zu", m.workspace, m.plan,
                        nn_plan_workspace(p), nn_plan_memory(p));
            nn_plan_destroy(&p);
        }
    nn_graph_destroy(&gs[0]);
    nn_graph_destroy(&gs[1]);
}

static struct nn_graph *build_vnet(int side, void *ctx, size_t other[NN_MEM_N_SPACES],
                                   struct lm_err *err)
{
    int out[3] = {side, side, side};
    return vnet_graph(out, *(const int *)ctx);
}

/* The tile chooser on the CUDA backend: the largest side that fits a device budget, a refusal
 * below the smallest side, and the device's free memory where no budget is stated. */
static void case_tiles(void)
{
    int width = 64;
    const struct nn_backend *be = nn_backend_cuda_precision(cur);
    size_t need[4] = {0};
    for (int k = 1; k <= 3; k++) {
        struct nn_graph *g = build_vnet(8 * k, &width, NULL, NULL);
        struct nn_plan_mem m;
        struct lm_err err = {{0}};
        T_CHECK(nn_plan_size(be, g, true, &m, &err), "size: %s", err.msg);
        need[k] = m.workspace + m.plan;
        nn_graph_destroy(&g);
    }
    T_CHECK(need[1] < need[2] && need[2] < need[3], "needs not increasing: %zu %zu %zu", need[1],
            need[2], need[3]);
    struct tiling_request rq = {.backend = be,
                                .tangents = true,
                                .min_side = 8,
                                .max_side = 24,
                                .build = build_vnet,
                                .ctx = &width};
    rq.budget[NN_MEM_DEVICE] = need[2];
    struct tiling_choice c;
    struct lm_err err = {{0}};
    T_CHECK(tiling_choose(&rq, &c, &err) && c.side == 16 && c.need[NN_MEM_DEVICE] == need[2],
            "budget of side 16 gave side %d (%s)", c.side, err.msg);
    rq.budget[NN_MEM_DEVICE] = need[1] - 1;
    struct lm_err e2 = {{0}};
    T_CHECK(!tiling_choose(&rq, &c, &e2) && c.side == 8 && strstr(e2.msg, "device memory"),
            "a budget below side 8 is refused: '%s'", e2.msg);
    rq.budget[NN_MEM_DEVICE] = 0;
    struct lm_err e3 = {{0}};
    size_t free_b = 0;
    T_CHECK(nn_backend_mem_available(be, &free_b, &e3) && free_b > 0, "free memory: %s", e3.msg);
    T_CHECK(tiling_choose(&rq, &c, &e3) && c.side >= 8 && c.side <= 24 &&
                c.budget[NN_MEM_DEVICE] > 0,
            "free-memory budget: side %d (%s)", c.side, e3.msg);
}

static void case_measure(void)
{
    struct nn_cuda_options o = {.precision = cur, .algo_search = NN_CUDA_ALGO_MEASURE};
    struct nn_graph *g = graph_unet();
    compare(g, -1, nn_backend_cuda_with(&o), cur, nn_backend_ref(), TOL_OP, &PLAIN);
    nn_graph_destroy(&g);
}

/* Profiling report and plan facts of a V-Net plan (its skips are built last, so the fused adds
 * need the plan's hoisting; the counts do not depend on the width). */
static void case_profile_info(void)
{
    int out[3] = {8, 8, 8};
    double s[2] = {0.1, -0.2};
    struct fixture f;
    if (!fixture_make(&f, vnet_graph(out, 8), -1, s)) {
        fixture_free(&f);
        return;
    }
    float *x = random_array(f.nx, 1.0), *y = lm_malloc("conformance.profile", 2 * f.ny * 4);
    struct nn_tensor t[3];
    struct nn_io io = fixture_io(&f, x, y, y + f.ny, t);
    nn_cuda_plan_set_profiling(f.plan, true);
    nn_plan_execute(f.plan, &io, f.ws);
    nn_plan_execute(f.plan, &io, f.ws);
    FILE *tmp = tmpfile();
    nn_cuda_plan_profile_report(f.plan, tmp);
    char text[16384] = "";
    rewind(tmp);
    size_t n = fread(text, 1, sizeof text - 1, tmp);
    text[n] = 0;
    fclose(tmp);
    T_CHECK(strstr(text, "total") && strstr(text, "conv_l00"), "profile report:\n%s", text);
    struct nn_cuda_plan_info info;
    nn_cuda_plan_get_info(f.plan, &info);
    printf("    workspace %.1f MiB, weights %.1f MiB, staging %.1f MiB, pinned %.1f MiB, largest "
           "cuDNN workspace %.1f MiB; fused adds %d, in-place concats %d, producer tangents %d\n",
           info.workspace / 1048576.0, info.weight_bytes / 1048576.0,
           info.staging_bytes / 1048576.0, info.pinned_bytes / 1048576.0,
           info.cudnn_ws_max / 1048576.0, info.n_fused_adds, info.n_hosted_concats,
           info.n_producer_tangent);
    T_CHECK(info.n_fused_adds == 9 && info.n_hosted_concats == 3 && info.n_producer_tangent >= 9,
            "fusions: %d adds, %d concats, %d producer tangents", info.n_fused_adds,
            info.n_hosted_concats, info.n_producer_tangent);
    lm_free(x), lm_free(y);
    fixture_free(&f);
}

/* Which network cases run: a small V-Net (width, tile) and the full-width one. */
struct net_opts {
    bool small, full;
    int width, tile;
};

static void extra_cases(const struct net_opts *no)
{
    for (int i = 0; i < n_precs; i++) {
        cur = precs[i];
        run_case("async pipeline (driver pattern)", case_async);
        run_case("on-device premodulation", case_restyle);
        run_case("plan sizing = created plan", case_sizing);
        run_case("measured algorithm choice", case_measure);
    }
    cur = precs[0];
    run_case("tile chooser", case_tiles);
    run_case("profiling and plan facts (V-Net)", case_profile_info);
    char label[64];
    snprintf(label, sizeof label, "V-Net width %d, tile %d", no->width, no->tile);
    if (no->small) {
        net_prepare(no->tile, no->width);
        for (int i = 0; i < n_precs; i++) {
            cur = precs[i];
            run_case(label, case_net);
        }
        net_release();
    }
    if (!no->full)
        return;
    net_prepare(8, 64);
    for (int i = 0; i < n_precs; i++) {
        cur = precs[i];
        run_case("V-Net width 64, tile 8 (full network)", case_net);
    }
    net_release();
}

int main(int argc, char **argv)
{
    struct net_opts no = {.small = true, .full = true, .width = 16, .tile = 16};
    const char *plist = "fp32,tf32,bf16,fp16";
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--precisions") == 0 && more)
            plist = argv[++i];
        else if (strcmp(argv[i], "--skip-full") == 0)
            no.full = false;
        else if (strcmp(argv[i], "--skip-nets") == 0)
            no.small = no.full = false;
        else if (strcmp(argv[i], "--net-width") == 0 && more)
            no.width = atoi(argv[++i]);
        else if (strcmp(argv[i], "--net-tile") == 0 && more)
            no.tile = atoi(argv[++i]);
        else
            CHECK(false, "gpu-conformance: unknown or incomplete option '%s'", argv[i]);
    }
    CHECK(no.width > 0 && no.tile >= 8 && no.tile % 8 == 0,
          "gpu-conformance: --net-width must be positive, --net-tile a multiple of 8");
    char buf[128];
    snprintf(buf, sizeof buf, "%s", plist);
    for (char *tok = strtok(buf, ","); tok && n_precs < NN_CUDA_N_PRECISION;
         tok = strtok(NULL, ","))
        CHECK(nn_cuda_precision_parse(tok, &precs[n_precs++]), "unknown precision '%s'", tok);
    struct gpu_info info;
    char why[256];
    if (!gpu_query(0, &info, why, sizeof why)) {
        printf("gpu-conformance: %s\ncases: passed=0 failed=1\n", why);
        return 1;
    }
    printf("device: %s (sm_%d%d), %.1f GiB, CUDA runtime %d, cuDNN %d\n", info.name, info.cc_major,
           info.cc_minor, info.mem_total / 1073741824.0, info.runtime_version, info.cudnn_version);
    all_op_cases();
    generic_cases();
    extra_cases(&no);
    return t_finish();
}
