/* cpu_net — parallel CPU evaluation of an nn graph (see cpu_net.h). Activations are channels-last
 * arrays [cell][channel], value and tangent apart, freed after their last use. */
#include "cpu_net.h"

#include <string.h>

#include "alloc.h"

struct act {
    float *v, *t; /* value, tangent (NULL without tangents) */
};

/* Weights of slot d reordered to [tap][cin][cout] in double. */
static double *reorder(const struct nn_conv_desc *d, const float *w)
{
    int k3 = d->kernel * d->kernel * d->kernel;
    double *r = lm_malloc("cpu_net.w", (size_t)k3 * d->cin * d->cout * sizeof *r);
    for (int o = 0; o < d->cout; o++)
        for (int i = 0; i < d->cin; i++)
            for (int t = 0; t < k3; t++) {
                size_t from = d->transposed ? ((size_t)i * d->cout + o) * k3 + t
                                            : ((size_t)o * d->cin + i) * k3 + t;
                r[((size_t)t * d->cin + i) * d->cout + o] = w[from];
            }
    return r;
}

/* Input cell feeding output cell q through tap off on every axis, or -1 when none. */
static long src_cell(const struct nn_conv_desc *d, struct nn_shape s, const int q[3],
                     const int off[3])
{
    int src[3];
    for (int a = 0; a < 3; a++) {
        if (d->transposed) {
            int r = q[a] - off[a];
            if (r < 0 || r % d->stride != 0 || r / d->stride >= s.n[a])
                return -1;
            src[a] = r / d->stride;
        } else {
            src[a] = q[a] * d->stride + off[a];
        }
    }
    return ((long)src[0] * s.n[1] + src[1]) * s.n[2] + src[2];
}

/* Documented compute kernel: a direct or transposed styled convolution, bias and activation,
 * with its two-convolution tangent, over every output cell (OpenMP). acc holds 3 cout doubles. */
static void conv_cell(const struct nn_conv_desc *d, const double *w, const double *dw,
                      const float *bias, struct act x, struct nn_shape s, struct act y, int q[3],
                      size_t cell, enum nn_act act)
{
    int k = d->kernel, cin = d->cin, cout = d->cout;
    double acc[2 * 256], *ay = acc, *at = acc + cout;
    memset(acc, 0, 2 * (size_t)cout * sizeof *acc);
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++)
            for (int e = 0; e < k; e++) {
                int off[3] = {a, b, e}, t = (a * k + b) * k + e;
                long sc = src_cell(d, s, q, off);
                if (sc < 0)
                    continue;
                for (int i = 0; i < cin; i++) {
                    const double *wr = w + ((size_t)t * cin + i) * cout;
                    double xv = x.v[(size_t)sc * cin + i];
                    for (int o = 0; o < cout; o++)
                        ay[o] += wr[o] * xv;
                    if (!x.t)
                        continue;
                    const double *dwr = dw + ((size_t)t * cin + i) * cout;
                    double dxv = x.t[(size_t)sc * cin + i];
                    for (int o = 0; o < cout; o++)
                        at[o] += dwr[o] * xv + wr[o] * dxv;
                }
            }
    for (int o = 0; o < cout; o++) {
        double pre = ay[o] + bias[o];
        double slope = (act == NN_ACT_LRELU && !(pre > 0)) ? NN_LEAKY_SLOPE : 1.0;
        y.v[cell * cout + o] = (float)(pre * slope);
        if (y.t)
            y.t[cell * cout + o] = (float)(slope * at[o]);
    }
}

static void conv_node(const struct nn_graph *g, const struct nn_weights *wt, int i, struct act *a)
{
    const struct nn_node *nd = &g->nodes[i];
    const struct nn_conv_desc *d = &g->convs[nd->conv];
    const struct nn_conv_weights *cw = &wt->conv[nd->conv];
    struct nn_shape s = g->nodes[nd->in[0]].shape, o = nd->shape;
    CHECK(d->cout <= 256, "cpu_net: %d output channels (at most 256)", d->cout);
    double *w = reorder(d, cw->w), *dw = a[i].t ? reorder(d, cw->dw) : NULL;
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int q0 = 0; q0 < o.n[0]; q0++)
        for (int q1 = 0; q1 < o.n[1]; q1++)
            for (int q2 = 0; q2 < o.n[2]; q2++) {
                int q[3] = {q0, q1, q2};
                size_t cell = ((size_t)q0 * o.n[1] + q1) * o.n[2] + q2;
                conv_cell(d, w, dw, cw->bias, a[nd->in[0]], s, a[i], q, cell, nd->act);
            }
    lm_free(w);
    lm_free(dw);
}

/* Copy the window of src (shape s, channels-last) at offset off into dst channels [c0, c0 + s.c)
 * of a tensor with o.c channels and spatial shape o.n. */
static void copy_window(const float *src, struct nn_shape s, int off, float *dst, struct nn_shape o,
                        int c0)
{
#pragma omp parallel for collapse(2)
    for (int a = 0; a < o.n[0]; a++)
        for (int b = 0; b < o.n[1]; b++)
            for (int e = 0; e < o.n[2]; e++) {
                size_t from = (((size_t)a + off) * s.n[1] + b + off) * s.n[2] + e + off;
                size_t to = ((size_t)a * o.n[1] + b) * o.n[2] + e;
                memcpy(dst + to * o.c + c0, src + from * s.c, s.c * sizeof(float));
            }
}

static void elementwise_node(const struct nn_graph *g, int i, struct act *a, int slot)
{
    const struct nn_node *nd = &g->nodes[i];
    float *y = slot ? a[i].t : a[i].v;
    struct nn_shape o = nd->shape;
    if (nd->op == NN_OP_CROP) {
        struct act in = a[nd->in[0]];
        struct nn_shape s = g->nodes[nd->in[0]].shape;
        copy_window(slot ? in.t : in.v, s, nd->crop, y, o, 0);
    } else if (nd->op == NN_OP_CONCAT) {
        struct act p = a[nd->in[0]], q = a[nd->in[1]];
        struct nn_shape sp = g->nodes[nd->in[0]].shape, sq = g->nodes[nd->in[1]].shape;
        copy_window(slot ? p.t : p.v, sp, 0, y, o, 0);
        copy_window(slot ? q.t : q.v, sq, 0, y, o, sp.c);
    } else {
        struct act p = a[nd->in[0]], q = a[nd->in[1]];
        size_t n = nn_shape_count(o);
#pragma omp parallel for
        for (size_t e = 0; e < n; e++) {
            double pre = (double)p.v[e] + q.v[e];
            double sl = (nd->act == NN_ACT_LRELU && !(pre > 0)) ? NN_LEAKY_SLOPE : 1.0;
            double v = slot ? (double)p.t[e] + q.t[e] : pre;
            y[e] = (float)(v * sl);
        }
    }
}

/* Host view v (scale f) into the channels-last array dst, and back. */
static void load(float *dst, const struct nn_tensor *v, float f)
{
    struct nn_shape s = v->shape;
    size_t cell = 0;
    for (int a = 0; a < s.n[0]; a++)
        for (int b = 0; b < s.n[1]; b++)
            for (int e = 0; e < s.n[2]; e++, cell++)
                for (int c = 0; c < s.c; c++)
                    dst[cell * s.c + c] = f * v->data[c * v->stride[0] + a * v->stride[1] +
                                                      b * v->stride[2] + e * v->stride[3]];
}

static void store(const float *src, const struct nn_tensor *v, float f)
{
    struct nn_shape s = v->shape;
    size_t cell = 0;
    for (int a = 0; a < s.n[0]; a++)
        for (int b = 0; b < s.n[1]; b++)
            for (int e = 0; e < s.n[2]; e++, cell++)
                for (int c = 0; c < s.c; c++)
                    v->data[c * v->stride[0] + a * v->stride[1] + b * v->stride[2] +
                            e * v->stride[3]] = f * src[cell * s.c + c];
}

/* Free the activations whose last reader is node i. */
static void release(const struct nn_graph *g, struct act *a, int i)
{
    for (int j = 0; j <= i; j++)
        if (a[j].v && nn_graph_last_use(g, j) == i) {
            lm_free(a[j].v);
            a[j].v = a[j].t = NULL;
        }
}

void cpu_net_run(const struct nn_graph *g, const struct nn_weights *w, const struct nn_io *io,
                 bool tangents)
{
    struct act *a = lm_calloc("cpu_net", g->n_nodes, sizeof *a);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nn_node *nd = &g->nodes[i];
        size_t n = nn_shape_count(nd->shape);
        a[i].v = lm_malloc("cpu_net.act", (tangents ? 2 : 1) * n * sizeof(float));
        a[i].t = tangents ? a[i].v + n : NULL;
        if (nd->op == NN_OP_INPUT) {
            load(a[i].v, io->x, io->x_scale);
            if (tangents)
                load(a[i].t, io->dx ? io->dx : io->x, io->dx_scale);
        } else if (nd->op == NN_OP_CONV || nd->op == NN_OP_TCONV) {
            conv_node(g, w, i, a);
        } else {
            if (tangents)
                elementwise_node(g, i, a, 1);
            elementwise_node(g, i, a, 0);
        }
        if (i == g->output) {
            store(a[i].v, io->y, io->y_scale);
            if (tangents && io->dy)
                store(a[i].t, io->dy, io->y_scale);
        }
        release(g, a, i);
    }
    for (int i = 0; i < g->n_nodes; i++)
        lm_free(a[i].v);
    lm_free(a);
}
