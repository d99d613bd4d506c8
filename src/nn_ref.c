/* nn_ref — the plain loop-nest reference backend of the NN engine (see nn.h).
 *
 * Written to be obviously right, not fast: planar C-order activations [c][i][j][k], double
 * accumulators, every op computed straight from its definition, tangents in the two-convolution
 * form dy = conv(x, dW'') + conv(dx, W'') (so that it also checks the one-convolution identity
 * other backends use), crops materialised. The conformance tests compare every backend with it. */
#include "nn.h"

#include <math.h>
#include <string.h>

#include "alloc.h"

struct ref_conv {
    struct nn_conv_desc d;
    float *w, *dw, *bias; /* copies of the premodulated weights */
};

struct nn_backend_plan {
    int n_nodes;
    struct nn_node *nodes;
    int input, output, n_inputs;
    int inputs[NN_MAX_INPUTS];
    bool tangents;
    int n_convs;
    struct ref_conv *convs;
    struct nn_buf *buf;
    size_t workspace;
};

/* Value (t = 0) or tangent (t = 1) array of node i in workspace ws. */
static float *ref_data(const struct nn_backend_plan *p, void *ws, int i, int t)
{
    size_t n = nn_shape_count(p->nodes[i].shape);
    return (float *)((char *)ws + p->buf[i].offset) + (size_t)t * n;
}

/* Bytes of the copies of one slot's premodulated weights (w, dw, bias). */
static size_t ref_conv_bytes(const struct nn_conv_desc *d)
{
    return (2 * (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel + d->cout) *
           sizeof(float);
}

/* Every node in its own planar buffer (value, then tangent): placements into buf, returns the
 * workspace bytes. */
static size_t ref_layout(const struct nn_graph *g, bool tangents, struct nn_buf *buf)
{
    for (int i = 0; i < g->n_nodes; i++) {
        buf[i].alias = -1;
        buf[i].bytes = nn_shape_count(g->nodes[i].shape) * sizeof(float) * (tangents ? 2 : 1);
    }
    return nn_memplan(g, buf, 64);
}

static struct nn_backend_plan *ref_plan_create(const struct nn_graph *g, bool tangents,
                                               struct lm_err *err)
{
    struct nn_backend_plan *p = lm_calloc("nn.ref.plan", 1, sizeof *p);
    p->n_nodes = g->n_nodes;
    p->nodes = lm_malloc("nn.ref.plan", g->n_nodes * sizeof *p->nodes);
    memcpy(p->nodes, g->nodes, g->n_nodes * sizeof *p->nodes);
    p->input = g->input;
    p->output = g->output;
    p->n_inputs = g->n_inputs;
    memcpy(p->inputs, g->inputs, sizeof p->inputs);
    p->tangents = tangents;
    p->n_convs = g->n_convs;
    p->convs = lm_calloc("nn.ref.plan", g->n_convs > 0 ? g->n_convs : 1, sizeof *p->convs);
    for (int c = 0; c < g->n_convs; c++) {
        const struct nn_conv_desc *d = &g->convs[c];
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        p->convs[c].d = *d;
        p->convs[c].w = lm_calloc("nn.ref.weights", 2 * nw + d->cout, sizeof(float));
        p->convs[c].dw = p->convs[c].w + nw;
        p->convs[c].bias = p->convs[c].dw + nw;
    }
    p->buf = lm_calloc("nn.ref.plan", g->n_nodes, sizeof *p->buf);
    p->workspace = ref_layout(g, tangents, p->buf);
    return p;
}

static size_t ref_plan_workspace(const struct nn_backend_plan *p) { return p->workspace; }

static size_t ref_plan_memory(const struct nn_backend_plan *p)
{
    size_t b = 0;
    for (int c = 0; c < p->n_convs; c++)
        b += ref_conv_bytes(&p->convs[c].d);
    return b;
}

static bool ref_plan_size(const struct nn_graph *g, bool tangents, size_t *workspace,
                          size_t *memory, struct lm_err *err)
{
    struct nn_buf *buf = lm_calloc("nn.ref.plan", g->n_nodes, sizeof *buf);
    *workspace = ref_layout(g, tangents, buf);
    lm_free(buf);
    *memory = 0;
    for (int c = 0; c < g->n_convs; c++)
        *memory += ref_conv_bytes(&g->convs[c]);
    return true;
}

static void ref_plan_set_weights(struct nn_backend_plan *p, const struct nn_weights *w)
{
    CHECK(w->n_convs == p->n_convs, "nn ref: weights for %d convolutions, the plan has %d",
          w->n_convs, p->n_convs);
    for (int c = 0; c < p->n_convs; c++) {
        const struct nn_conv_desc *d = &p->convs[c].d;
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        memcpy(p->convs[c].w, w->conv[c].w, nw * sizeof(float));
        memcpy(p->convs[c].dw, w->conv[c].dw, nw * sizeof(float));
        memcpy(p->convs[c].bias, w->conv[c].bias, d->cout * sizeof(float));
    }
}

/* Documented compute kernel: one output element of a direct or transposed convolution of the
 * planar input x (shape s) with weights w (slot layout), at output channel o, position q. */
static double ref_conv_point(const struct nn_conv_desc *d, const float *x, struct nn_shape s,
                             const float *w, int o, const int q[3])
{
    int k = d->kernel, st = d->stride, k3 = k * k * k;
    double acc = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++)
            for (int e = 0; e < k; e++) {
                int off[3] = {a, b, e}, src[3];
                bool inside = true;
                for (int ax = 0; ax < 3; ax++) {
                    if (d->transposed) { /* q = src * stride + off */
                        int r = q[ax] - off[ax];
                        inside = inside && r >= 0 && r % st == 0 && r / st < s.n[ax];
                        src[ax] = r / st;
                    } else {
                        src[ax] = q[ax] * st + off[ax];
                    }
                }
                if (!inside)
                    continue;
                int kk = (a * k + b) * k + e;
                for (int i = 0; i < d->cin; i++) {
                    size_t wi = d->transposed ? ((size_t)i * d->cout + o) * k3 + kk
                                              : ((size_t)o * d->cin + i) * k3 + kk;
                    size_t xi = (((size_t)i * s.n[0] + src[0]) * s.n[1] + src[1]) * s.n[2] + src[2];
                    acc += (double)w[wi] * x[xi];
                }
            }
    return acc;
}

static void ref_conv(const struct nn_backend_plan *p, const struct nn_node *nd, void *ws, int i)
{
    const struct ref_conv *cv = &p->convs[nd->conv];
    struct nn_shape s = p->nodes[nd->in[0]].shape, o = nd->shape;
    const float *x = ref_data(p, ws, nd->in[0], 0);
    const float *dx = p->tangents ? ref_data(p, ws, nd->in[0], 1) : NULL;
    float *y = ref_data(p, ws, i, 0), *dy = p->tangents ? ref_data(p, ws, i, 1) : NULL;
    size_t idx = 0;
    for (int c = 0; c < o.c; c++)
        for (int q0 = 0; q0 < o.n[0]; q0++)
            for (int q1 = 0; q1 < o.n[1]; q1++)
                for (int q2 = 0; q2 < o.n[2]; q2++, idx++) {
                    int q[3] = {q0, q1, q2};
                    double pre = ref_conv_point(&cv->d, x, s, cv->w, c, q) + cv->bias[c];
                    double slope = (nd->act == NN_ACT_LRELU && !(pre > 0)) ? NN_LEAKY_SLOPE : 1.0;
                    y[idx] = (float)(pre * slope);
                    if (dy)
                        dy[idx] = (float)(slope * (ref_conv_point(&cv->d, x, s, cv->dw, c, q) +
                                                   ref_conv_point(&cv->d, dx, s, cv->w, c, q)));
                }
}

/* Copy the window of planar src (shape s) starting at cell off on every axis into planar dst
 * (spatial shape o.n): src channels [0, o.c) go to dst channels [c0, c0 + o.c). */
static void ref_copy_window(const float *src, struct nn_shape s, int off, float *dst,
                            struct nn_shape o, int c0)
{
    for (int c = 0; c < o.c; c++)
        for (int a = 0; a < o.n[0]; a++)
            for (int b = 0; b < o.n[1]; b++)
                for (int e = 0; e < o.n[2]; e++)
                    dst[((((size_t)c0 + c) * o.n[0] + a) * o.n[1] + b) * o.n[2] + e] =
                        src[(((size_t)c * s.n[0] + a + off) * s.n[1] + b + off) * s.n[2] + e + off];
}

/* Documented compute kernel: an activation from its definition (GELU in its erf form). */
static double ref_act(enum nn_act act, double slope, double x)
{
    if (act == NN_ACT_GELU)
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    if (x > 0)
        return x;
    return act == NN_ACT_LRELU ? slope * x : 0.0;
}

/* The two input cells and weights of output cell j of a x2 upsampling along one axis: nearest
 * reads cell j / 2; valid trilinear (align_corners=False without the edge cells) reads cells m
 * and m + 1, j = 2m + r, with weights 3/4, 1/4 (r = 0) or 1/4, 3/4 (r = 1). */
static void ref_upsample_taps(enum nn_upsample mode, int j, int src[2], double w[2])
{
    if (mode == NN_UPSAMPLE_NEAREST) {
        src[0] = src[1] = j / 2;
        w[0] = 1.0, w[1] = 0.0;
        return;
    }
    src[0] = j / 2, src[1] = j / 2 + 1;
    w[0] = j % 2 ? 0.25 : 0.75;
    w[1] = 1.0 - w[0];
}

static void ref_upsample(const struct nn_node *nd, const float *x, struct nn_shape s, float *y)
{
    struct nn_shape o = nd->shape;
    size_t idx = 0;
    for (int c = 0; c < o.c; c++)
        for (int a = 0; a < o.n[0]; a++)
            for (int b = 0; b < o.n[1]; b++)
                for (int e = 0; e < o.n[2]; e++) {
                    int sa[2], sb[2], se[2];
                    double wa[2], wb[2], we[2], acc = 0;
                    ref_upsample_taps(nd->mode, a, sa, wa);
                    ref_upsample_taps(nd->mode, b, sb, wb);
                    ref_upsample_taps(nd->mode, e, se, we);
                    for (int u = 0; u < 2; u++)
                        for (int v = 0; v < 2; v++)
                            for (int t = 0; t < 2; t++)
                                acc += wa[u] * wb[v] * we[t] *
                                       x[(((size_t)c * s.n[0] + sa[u]) * s.n[1] + sb[v]) * s.n[2] +
                                         se[t]];
                    y[idx++] = (float)acc;
                }
}

static void ref_elementwise(const struct nn_backend_plan *p, const struct nn_node *nd, void *ws,
                            int i, int t)
{
    struct nn_shape o = nd->shape;
    float *y = ref_data(p, ws, i, t);
    if (nd->op == NN_OP_CROP) {
        struct nn_shape s = p->nodes[nd->in[0]].shape;
        ref_copy_window(ref_data(p, ws, nd->in[0], t), s, nd->crop, y, o, 0);
    } else if (nd->op == NN_OP_CONCAT) {
        int c0 = 0;
        for (int k = 0; k < 2; k++) {
            struct nn_shape s = p->nodes[nd->in[k]].shape;
            struct nn_shape part = {s.c, {o.n[0], o.n[1], o.n[2]}};
            ref_copy_window(ref_data(p, ws, nd->in[k], t), s, 0, y, part, c0);
            c0 += s.c;
        }
    } else if (nd->op == NN_OP_ACT) {
        const float *x = ref_data(p, ws, nd->in[0], t);
        size_t n = nn_shape_count(o);
        for (size_t e = 0; e < n; e++)
            y[e] = (float)ref_act(nd->act, nd->slope, x[e]);
    } else if (nd->op == NN_OP_UPSAMPLE) {
        ref_upsample(nd, ref_data(p, ws, nd->in[0], t), p->nodes[nd->in[0]].shape, y);
    } else { /* ADD: value pass (t = 0) computes the activation slope for both */
        const float *a = ref_data(p, ws, nd->in[0], t), *b = ref_data(p, ws, nd->in[1], t);
        const float *va = ref_data(p, ws, nd->in[0], 0), *vb = ref_data(p, ws, nd->in[1], 0);
        size_t n = nn_shape_count(o);
        for (size_t e = 0; e < n; e++) {
            double pre = (double)va[e] + vb[e];
            double slope = (nd->act == NN_ACT_LRELU && !(pre > 0)) ? NN_LEAKY_SLOPE : 1.0;
            y[e] = (float)(((double)a[e] + b[e]) * slope);
        }
    }
}

/* Read host view v (scale f) into the planar array dst. */
static void ref_load(float *dst, const struct nn_tensor *v, float f)
{
    struct nn_shape s = v->shape;
    size_t idx = 0;
    for (int c = 0; c < s.c; c++)
        for (int a = 0; a < s.n[0]; a++)
            for (int b = 0; b < s.n[1]; b++)
                for (int e = 0; e < s.n[2]; e++)
                    dst[idx++] = f * v->data[c * v->stride[0] + a * v->stride[1] +
                                             b * v->stride[2] + e * v->stride[3]];
}

static void ref_store(const float *src, const struct nn_tensor *v, float f)
{
    struct nn_shape s = v->shape;
    size_t idx = 0;
    for (int c = 0; c < s.c; c++)
        for (int a = 0; a < s.n[0]; a++)
            for (int b = 0; b < s.n[1]; b++)
                for (int e = 0; e < s.n[2]; e++)
                    v->data[c * v->stride[0] + a * v->stride[1] + b * v->stride[2] +
                            e * v->stride[3]] = f * src[idx++];
}

static void ref_plan_execute(struct nn_backend_plan *p, const struct nn_io *io, void *ws)
{
    ref_load(ref_data(p, ws, p->input, 0), io->x, io->x_scale);
    for (int k = 1; k < p->n_inputs; k++) {
        CHECK(io->more[k - 1], "nn ref: input '%s' was not given", p->nodes[p->inputs[k]].name);
        ref_load(ref_data(p, ws, p->inputs[k], 0), io->more[k - 1], io->x_scale);
    }
    if (p->tangents)
        ref_load(ref_data(p, ws, p->input, 1), io->dx ? io->dx : io->x, io->dx_scale);
    /* the ADD tangent pass reads the values of its inputs: run tangents before values there */
    for (int i = 0; i < p->n_nodes; i++) {
        const struct nn_node *nd = &p->nodes[i];
        if (nd->op == NN_OP_CONV || nd->op == NN_OP_TCONV)
            ref_conv(p, nd, ws, i);
        else if (nd->op != NN_OP_INPUT) {
            if (p->tangents)
                ref_elementwise(p, nd, ws, i, 1);
            ref_elementwise(p, nd, ws, i, 0);
        }
    }
    ref_store(ref_data(p, ws, p->output, 0), io->y, io->y_scale);
    if (p->tangents && io->dy)
        ref_store(ref_data(p, ws, p->output, 1), io->dy, io->y_scale);
}

static void ref_plan_destroy(struct nn_backend_plan **p)
{
    if (!p || !*p)
        return;
    for (int c = 0; c < (*p)->n_convs; c++)
        lm_free((*p)->convs[c].w);
    lm_free((*p)->convs);
    lm_free((*p)->nodes);
    lm_free((*p)->buf);
    lm_free(*p);
    *p = NULL;
}

static void *ref_workspace_alloc(size_t bytes) { return lm_malloc("nn.workspace", bytes); }

static const struct nn_backend ref_backend = {
    .name = "ref",
    .plan_create = ref_plan_create,
    .plan_workspace = ref_plan_workspace,
    .plan_memory = ref_plan_memory,
    .plan_set_weights = ref_plan_set_weights,
    .plan_execute = ref_plan_execute,
    .plan_destroy = ref_plan_destroy,
    .workspace_alloc = ref_workspace_alloc,
    .workspace_free = lm_free,
    .space = NN_MEM_HOST,
    .plan_size = ref_plan_size,
    .mem_available = NULL,
};

const struct nn_backend *nn_backend_ref(void) { return &ref_backend; }
