/* nn — graph construction, liveness-based memory placement, premodulation of styled
 * convolutions and the backend-independent plan wrapper (see nn.h). */
#include "nn.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static _Atomic unsigned long nn_generation_counter = 0;

struct nn_graph *nn_graph_create(void)
{
    struct nn_graph *g = lm_calloc("nn.graph", 1, sizeof *g);
    g->cap_nodes = 64;
    g->nodes = lm_malloc("nn.graph", g->cap_nodes * sizeof *g->nodes);
    g->cap_convs = 16;
    g->convs = lm_malloc("nn.graph", g->cap_convs * sizeof *g->convs);
    g->input = g->output = -1;
    return g;
}

void nn_graph_destroy(struct nn_graph **g)
{
    if (!g || !*g)
        return;
    lm_free((*g)->nodes);
    lm_free((*g)->convs);
    lm_free(*g);
    *g = NULL;
}

bool nn_graph_ok(const struct nn_graph *g) { return lm_err_ok(&g->err); }

size_t nn_shape_count(struct nn_shape s) { return (size_t)s.c * s.n[0] * s.n[1] * s.n[2]; }

struct nn_tensor nn_tensor_plain(float *data, struct nn_shape s)
{
    struct nn_tensor t = {data, s, {0, 0, 0, 1}};
    t.stride[2] = s.n[2];
    t.stride[1] = (ptrdiff_t)s.n[1] * s.n[2];
    t.stride[0] = (ptrdiff_t)s.n[0] * s.n[1] * s.n[2];
    return t;
}

/* Append a node (inputs already validated); returns its index. */
static int graph_push(struct nn_graph *g, enum nn_op op, int a, int b, struct nn_shape s,
                      const char *name)
{
    if (g->n_nodes == g->cap_nodes) {
        g->cap_nodes *= 2;
        g->nodes = lm_realloc(g->nodes, g->cap_nodes * sizeof *g->nodes);
    }
    struct nn_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->in[0] = a;
    nd->in[1] = b;
    nd->shape = s;
    nd->conv = -1;
    nd->act = NN_ACT_NONE;
    snprintf(nd->name, sizeof nd->name, "%s", name ? name : "");
    return g->n_nodes++;
}

/* True when node index i can be used as an input (errors already recorded keep returning false). */
static bool graph_valid_input(struct nn_graph *g, int i, const char *name)
{
    if (!lm_err_ok(&g->err))
        return false;
    if (i < 0 || i >= g->n_nodes)
        return lm_err_set(&g->err, "nn graph: node '%s' has an invalid input index %d", name, i);
    return true;
}

int nn_graph_add_conv(struct nn_graph *g, const struct nn_conv_desc *d)
{
    if (!lm_err_ok(&g->err))
        return -1;
    if (d->cin < 1 || d->cout < 1 || d->kernel < 1 || d->stride < 1) {
        lm_err_set(&g->err,
                   "nn graph: convolution '%s' has cin %d, cout %d, kernel %d, stride %d"
                   " (expected positive values)",
                   d->name, d->cin, d->cout, d->kernel, d->stride);
        return -1;
    }
    if (g->n_convs == g->cap_convs) {
        g->cap_convs *= 2;
        g->convs = lm_realloc(g->convs, g->cap_convs * sizeof *g->convs);
    }
    g->convs[g->n_convs] = *d;
    return g->n_convs++;
}

int nn_graph_input(struct nn_graph *g, struct nn_shape s, const char *name)
{
    if (!lm_err_ok(&g->err))
        return -1;
    if (g->n_inputs == NN_MAX_INPUTS || g->n_nodes != g->n_inputs || s.c < 1 || s.n[0] < 1 ||
        s.n[1] < 1 || s.n[2] < 1) {
        lm_err_set(&g->err,
                   "nn graph: input '%s' %dx%dx%dx%d is invalid, comes after other nodes or is "
                   "beyond the %d inputs a graph may have",
                   name, s.c, s.n[0], s.n[1], s.n[2], NN_MAX_INPUTS);
        return -1;
    }
    int i = graph_push(g, NN_OP_INPUT, -1, -1, s, name);
    g->inputs[g->n_inputs++] = i;
    if (g->input < 0)
        g->input = i;
    return i;
}

int nn_graph_conv(struct nn_graph *g, int in, int conv, enum nn_act act, const char *name)
{
    if (!graph_valid_input(g, in, name))
        return -1;
    if (conv < 0 || conv >= g->n_convs) {
        lm_err_set(&g->err, "nn graph: node '%s' uses unknown convolution slot %d", name, conv);
        return -1;
    }
    const struct nn_conv_desc *d = &g->convs[conv];
    struct nn_shape s = g->nodes[in].shape, o = {d->cout, {0, 0, 0}};
    for (int a = 0; a < 3; a++)
        o.n[a] = d->transposed ? (s.n[a] - 1) * d->stride + d->kernel
                               : (s.n[a] < d->kernel ? 0 : (s.n[a] - d->kernel) / d->stride + 1);
    bool fits = s.c == d->cin && o.n[0] > 0 && o.n[1] > 0 && o.n[2] > 0;
    for (int a = 0; a < 3 && fits && !d->transposed; a++)
        fits = (s.n[a] - d->kernel) % d->stride == 0;
    if (!fits) {
        lm_err_set(&g->err,
                   "nn graph: '%s' (%s, %d -> %d channels, kernel %d, stride %d) cannot "
                   "take input '%s' of shape %dx%dx%dx%d",
                   name, d->name, d->cin, d->cout, d->kernel, d->stride, g->nodes[in].name, s.c,
                   s.n[0], s.n[1], s.n[2]);
        return -1;
    }
    int i = graph_push(g, d->transposed ? NN_OP_TCONV : NN_OP_CONV, in, -1, o, name);
    g->nodes[i].conv = conv;
    g->nodes[i].act = act;
    return i;
}

int nn_graph_crop(struct nn_graph *g, int in, int c, const char *name)
{
    if (!graph_valid_input(g, in, name))
        return -1;
    struct nn_shape s = g->nodes[in].shape;
    for (int a = 0; a < 3; a++)
        s.n[a] -= 2 * c;
    if (c < 0 || s.n[0] < 1 || s.n[1] < 1 || s.n[2] < 1) {
        lm_err_set(&g->err, "nn graph: crop '%s' of %d cells does not fit input '%s'", name, c,
                   g->nodes[in].name);
        return -1;
    }
    int i = graph_push(g, NN_OP_CROP, in, -1, s, name);
    g->nodes[i].crop = c;
    return i;
}

static bool same_spatial(struct nn_shape a, struct nn_shape b)
{
    return a.n[0] == b.n[0] && a.n[1] == b.n[1] && a.n[2] == b.n[2];
}

int nn_graph_concat(struct nn_graph *g, int a, int b, const char *name)
{
    if (!graph_valid_input(g, a, name) || !graph_valid_input(g, b, name))
        return -1;
    struct nn_shape sa = g->nodes[a].shape, sb = g->nodes[b].shape;
    if (!same_spatial(sa, sb)) {
        lm_err_set(&g->err,
                   "nn graph: concat '%s' of '%s' (%dx%dx%d) and '%s' (%dx%dx%d): "
                   "spatial shapes differ",
                   name, g->nodes[a].name, sa.n[0], sa.n[1], sa.n[2], g->nodes[b].name, sb.n[0],
                   sb.n[1], sb.n[2]);
        return -1;
    }
    sa.c += sb.c;
    return graph_push(g, NN_OP_CONCAT, a, b, sa, name);
}

int nn_graph_add(struct nn_graph *g, int a, int b, enum nn_act act, const char *name)
{
    if (!graph_valid_input(g, a, name) || !graph_valid_input(g, b, name))
        return -1;
    struct nn_shape sa = g->nodes[a].shape, sb = g->nodes[b].shape;
    if (!same_spatial(sa, sb) || sa.c != sb.c) {
        lm_err_set(&g->err,
                   "nn graph: add '%s' of '%s' (%dx%dx%dx%d) and '%s' (%dx%dx%dx%d): "
                   "shapes differ",
                   name, g->nodes[a].name, sa.c, sa.n[0], sa.n[1], sa.n[2], g->nodes[b].name, sb.c,
                   sb.n[0], sb.n[1], sb.n[2]);
        return -1;
    }
    int i = graph_push(g, NN_OP_ADD, a, b, sa, name);
    g->nodes[i].act = act;
    return i;
}

int nn_graph_act(struct nn_graph *g, int in, enum nn_act act, float slope, const char *name)
{
    if (!graph_valid_input(g, in, name))
        return -1;
    if (act == NN_ACT_NONE || !(slope == slope)) {
        lm_err_set(&g->err, "nn graph: activation '%s' needs a kind and a finite slope", name);
        return -1;
    }
    int i = graph_push(g, NN_OP_ACT, in, -1, g->nodes[in].shape, name);
    g->nodes[i].act = act;
    g->nodes[i].slope = slope;
    return i;
}

int nn_graph_upsample(struct nn_graph *g, int in, enum nn_upsample mode, const char *name)
{
    if (!graph_valid_input(g, in, name))
        return -1;
    struct nn_shape s = g->nodes[in].shape;
    int lost = mode == NN_UPSAMPLE_TRILINEAR ? 2 : 0;
    for (int a = 0; a < 3; a++)
        s.n[a] = 2 * s.n[a] - lost;
    if (s.n[0] < 1 || s.n[1] < 1 || s.n[2] < 1) {
        lm_err_set(&g->err, "nn graph: upsample '%s' of input '%s' (%dx%dx%d) has no valid cell",
                   name, g->nodes[in].name, g->nodes[in].shape.n[0], g->nodes[in].shape.n[1],
                   g->nodes[in].shape.n[2]);
        return -1;
    }
    int i = graph_push(g, NN_OP_UPSAMPLE, in, -1, s, name);
    g->nodes[i].mode = mode;
    return i;
}

bool nn_graph_has_tangents(const struct nn_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == NN_OP_ACT || g->nodes[i].op == NN_OP_UPSAMPLE)
            return false;
    return g->n_inputs <= 1;
}

bool nn_graph_set_output(struct nn_graph *g, int node)
{
    if (!graph_valid_input(g, node, "output"))
        return false;
    g->output = node;
    return true;
}

int nn_graph_last_use(const struct nn_graph *g, int i)
{
    if (i == g->output)
        return g->n_nodes;
    int last = i;
    for (int j = i + 1; j < g->n_nodes; j++)
        if (g->nodes[j].in[0] == i || g->nodes[j].in[1] == i)
            last = j;
    return last;
}

double nn_graph_macs(const struct nn_graph *g)
{
    double macs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nn_node *nd = &g->nodes[i];
        if (nd->op != NN_OP_CONV && nd->op != NN_OP_TCONV)
            continue;
        const struct nn_conv_desc *d = &g->convs[nd->conv];
        double k3 = (double)d->kernel * d->kernel * d->kernel;
        /* a transposed conv does cin*cout*k^3 multiply-adds per INPUT cell */
        struct nn_shape s = nd->op == NN_OP_CONV ? nd->shape : g->nodes[nd->in[0]].shape;
        macs += k3 * d->cin * d->cout * (double)s.n[0] * s.n[1] * s.n[2];
    }
    return macs;
}

/* ---- memory placement ---------------------------------------------------------------------- */

struct memplan_block {
    size_t offset, size;
    int owner; /* node index owning it; -1 - node for a scratch block */
};

/* Lowest offset where size bytes fit among the live blocks (best fit among the gaps). */
static size_t memplan_fit(const struct memplan_block *live, int n_live, size_t size)
{
    size_t best = (size_t)-1, best_gap = (size_t)-1, pos = 0;
    /* live is sorted by offset */
    for (int k = 0; k <= n_live; k++) {
        size_t end = k < n_live ? live[k].offset : (size_t)-1;
        if (end >= pos && end - pos >= size && (best == (size_t)-1 || end - pos < best_gap)) {
            best = pos;
            best_gap = end - pos;
        }
        if (k < n_live && live[k].offset + live[k].size > pos)
            pos = live[k].offset + live[k].size;
    }
    return best;
}

static void memplan_insert(struct memplan_block *live, int *n_live, struct memplan_block b)
{
    int k = *n_live;
    while (k > 0 && live[k - 1].offset > b.offset) {
        live[k] = live[k - 1];
        k--;
    }
    live[k] = b;
    (*n_live)++;
}

static void memplan_remove(struct memplan_block *live, int *n_live, int owner)
{
    int w = 0;
    for (int k = 0; k < *n_live; k++)
        if (live[k].owner != owner)
            live[w++] = live[k];
    *n_live = w;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

size_t nn_memplan(const struct nn_graph *g, struct nn_buf *buf, size_t align)
{
    int n = g->n_nodes;
    int *root = lm_malloc("nn.memplan", 2 * (size_t)n * sizeof *root), *last = root + n;
    for (int i = 0; i < n; i++) {
        root[i] = buf[i].alias >= 0 ? root[buf[i].alias] : i;
        last[i] = i;
    }
    for (int i = 0; i < n; i++) {
        int lu = nn_graph_last_use(g, i);
        if (lu > last[root[i]])
            last[root[i]] = lu;
    }
    struct memplan_block *live = lm_malloc("nn.memplan", (2 * (size_t)n + 1) * sizeof *live);
    int n_live = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            if (root[j] == j && last[j] == i - 1)
                memplan_remove(live, &n_live, j);
        if (root[i] == i && buf[i].bytes > 0) {
            size_t sz = align_up(buf[i].bytes, align);
            buf[i].offset = memplan_fit(live, n_live, sz);
            memplan_insert(live, &n_live, (struct memplan_block){buf[i].offset, sz, i});
            if (buf[i].offset + sz > total)
                total = buf[i].offset + sz;
        }
        if (buf[i].scratch > 0) {
            size_t sz = align_up(buf[i].scratch, align);
            buf[i].scratch_offset = memplan_fit(live, n_live, sz);
            if (buf[i].scratch_offset + sz > total)
                total = buf[i].scratch_offset + sz;
        }
    }
    for (int i = 0; i < n; i++)
        if (root[i] != i)
            buf[i].offset = buf[root[i]].offset;
    lm_free(live);
    lm_free(root);
    return total;
}

/* ---- premodulation ------------------------------------------------------------------------- */

struct nn_weights *nn_weights_create(const struct nn_graph *g)
{
    struct nn_weights *w = lm_calloc("nn.weights", 1, sizeof *w);
    w->n_convs = g->n_convs;
    w->conv = lm_calloc("nn.weights", g->n_convs > 0 ? g->n_convs : 1, sizeof *w->conv);
    for (int i = 0; i < g->n_convs; i++) {
        const struct nn_conv_desc *d = &g->convs[i];
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        struct nn_conv_weights *c = &w->conv[i];
        c->w = lm_malloc("nn.weights", (2 * nw + 2 * (size_t)d->cout + d->cin) * sizeof(float));
        c->dw = c->w + nw;
        c->bias = c->dw + nw;
        c->c = c->bias + d->cout;
        c->ratio = c->c + d->cout;
    }
    nn_weights_touch(w);
    return w;
}

void nn_weights_destroy(struct nn_weights **w)
{
    if (!w || !*w)
        return;
    for (int i = 0; i < (*w)->n_convs; i++)
        lm_free((*w)->conv[i].w);
    lm_free((*w)->conv);
    lm_free(*w);
    *w = NULL;
}

void nn_conv_set_plain(const struct nn_conv_desc *d, const float *weight, const float *bias,
                       struct nn_conv_weights *out)
{
    size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
    memcpy(out->w, weight, nw * sizeof(float));
    memset(out->dw, 0, nw * sizeof(float));
    memcpy(out->bias, bias, d->cout * sizeof(float));
    memset(out->c, 0, d->cout * sizeof(float));
    memset(out->ratio, 0, d->cin * sizeof(float));
    out->ratio_ok = true;
}

void nn_weights_touch(struct nn_weights *w) { w->generation = ++nn_generation_counter; }

/* Index of W[o][i][k] in the slot's stored layout. */
static size_t weight_index(const struct nn_conv_desc *d, int o, int i, int k3, int k)
{
    return d->transposed ? ((size_t)i * d->cout + o) * k3 + k : ((size_t)o * d->cin + i) * k3 + k;
}

void nn_conv_premodulate(const struct nn_conv_desc *d, const struct nn_styled_params *p,
                         const double *s, const double *ds, struct nn_conv_weights *out)
{
    int k3 = d->kernel * d->kernel * d->kernel;
    double *u = lm_malloc("nn.premodulate", 2 * (size_t)d->cin * sizeof *u), *du = u + d->cin;
    out->ratio_ok = true;
    for (int i = 0; i < d->cin; i++) {
        u[i] = p->style_bias[i];
        du[i] = 0;
        for (int j = 0; j < p->n_style; j++) {
            u[i] += (double)p->style_weight[i * p->n_style + j] * s[j];
            du[i] += (double)p->style_weight[i * p->n_style + j] * ds[j];
        }
        double r = u[i] != 0 ? du[i] / u[i] : INFINITY;
        out->ratio_ok = out->ratio_ok && fabs(r) <= NN_RATIO_MAX;
        out->ratio[i] = out->ratio_ok ? (float)r : 0.0f;
    }
    for (int o = 0; o < d->cout; o++) {
        double ss = 0, sd = 0;
        for (int i = 0; i < d->cin; i++)
            for (int k = 0; k < k3; k++) {
                double wv = p->weight[weight_index(d, o, i, k3, k)];
                ss += wv * u[i] * wv * u[i];
                sd += wv * u[i] * wv * du[i];
            }
        double norm = sqrt(ss + NN_DEMOD_EPS), c = sd / (norm * norm);
        for (int i = 0; i < d->cin; i++)
            for (int k = 0; k < k3; k++) {
                size_t idx = weight_index(d, o, i, k3, k);
                double w2 = p->weight[idx] * u[i] / norm;
                out->w[idx] = (float)w2;
                out->dw[idx] = (float)(p->weight[idx] * du[i] / norm - c * w2);
            }
        out->c[o] = (float)c;
        out->bias[o] = p->bias[o];
    }
    if (!out->ratio_ok)
        for (int i = 0; i < d->cin; i++)
            out->ratio[i] = 0.0f;
    lm_free(u);
}

/* ---- plan wrapper -------------------------------------------------------------------------- */

/* True when g can be planned at all (built without errors, with an input and an output). */
static bool graph_plannable(const struct nn_graph *g, bool tangents, struct lm_err *err)
{
    if (!nn_graph_ok(g))
        return lm_err_set(err, "%s", g->err.msg);
    if (g->input < 0 || g->output < 0)
        return lm_err_set(err, "nn plan: the graph has no %s node",
                          g->input < 0 ? "input" : "output");
    if (tangents && !nn_graph_has_tangents(g))
        return lm_err_set(err, "nn plan: tangents need a single-input graph without activation or "
                               "upsampling nodes");
    return true;
}

bool nn_plan_size(const struct nn_backend *be, const struct nn_graph *g, bool tangents,
                  struct nn_plan_mem *mem, struct lm_err *err)
{
    memset(mem, 0, sizeof *mem);
    mem->space = be->space;
    return graph_plannable(g, tangents, err) &&
           be->plan_size(g, tangents, &mem->workspace, &mem->plan, err);
}

bool nn_backend_mem_available(const struct nn_backend *be, size_t *bytes, struct lm_err *err)
{
    *bytes = 0;
    return !be->mem_available || be->mem_available(bytes, err);
}

struct nn_plan *nn_plan_create(const struct nn_backend *be, const struct nn_graph *g, bool tangents,
                               struct lm_err *err)
{
    if (!graph_plannable(g, tangents, err))
        return NULL;
    struct nn_backend_plan *impl = be->plan_create(g, tangents, err);
    if (!impl)
        return NULL;
    struct nn_plan *p = lm_calloc("nn.plan", 1, sizeof *p);
    p->backend = be;
    p->impl = impl;
    p->tangents = tangents;
    return p;
}

size_t nn_plan_workspace(const struct nn_plan *p) { return p->backend->plan_workspace(p->impl); }

size_t nn_plan_memory(const struct nn_plan *p) { return p->backend->plan_memory(p->impl); }

void *nn_plan_workspace_alloc(const struct nn_plan *p, size_t bytes)
{
    return p->backend->workspace_alloc(bytes);
}

void nn_plan_workspace_free(const struct nn_plan *p, void *ptr) { p->backend->workspace_free(ptr); }

void nn_plan_set_weights(struct nn_plan *p, const struct nn_weights *w)
{
    if (w->generation == p->generation)
        return;
    p->backend->plan_set_weights(p->impl, w);
    p->generation = w->generation;
}

void nn_plan_execute(struct nn_plan *p, const struct nn_io *io, void *workspace)
{
    CHECK(p->generation != 0, "nn plan: executed before any weights were set");
    p->backend->plan_execute(p->impl, io, workspace);
}

void nn_plan_destroy(struct nn_plan **p)
{
    if (!p || !*p)
        return;
    (*p)->backend->plan_destroy(&(*p)->impl);
    lm_free(*p);
    *p = NULL;
}
