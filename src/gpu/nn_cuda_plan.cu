/* nn_cuda_plan — from a graph to the CUDA backend's execution records: fusions, buffer roots,
 * readers, tangent modes, scratch layouts, cuDNN set-up, memory placement and views.
 *
 * Execution order is the graph's, except that a residual add's operand computed after the add's
 * convolution (a skip built last) is hoisted before that convolution.
 * Fusions (each only where it cannot change a result):
 *  - CROP is a view of its input (no kernel, no memory).
 *  - ADD(p, q) with p a CONV/TCONV without activation that only this ADD reads, and q computed
 *    before p: p's epilogue adds q and applies the ADD's activation; the ADD is a view of p.
 *  - CONCAT(a, b) with b a TCONV or ADD that only the CONCAT reads: b's buffer is the concat's and
 *    b writes its channels in place; only a is copied.
 *  - A convolution's tangent-side input dx + x ratio is written by the producer's epilogue when
 *    the convolution is the only reader of that buffer, in place when it is the last reader, and
 *    into scratch otherwise. */
#include <string.h>

#include "gpu/nn_cuda_dnn.cuh"

static size_t align_up(size_t x) { return (x + NN_CUDA_ALIGN - 1) / NN_CUDA_ALIGN * NN_CUDA_ALIGN; }

static int round_up(int x, int q) { return (x + q - 1) / q * q; }

/* Channel quantum of cuDNN tensors: tensor-core kernels want multiples of 8 (bf16/fp16), 4 (tf32).
 */
static int pad_quantum(enum nn_cuda_precision p)
{
    return p == NN_CUDA_FP32 ? 1 : p == NN_CUDA_TF32 ? 4 : 8;
}

static int kernel3(const struct nn_conv_desc *d) { return d->kernel * d->kernel * d->kernel; }

static long long cells(const struct nn_shape *s) { return (long long)s->n[0] * s->n[1] * s->n[2]; }

/* Number of distinct nodes reading node i directly (the graph output counts as a reader). */
static int direct_readers(const struct nn_backend_plan *p, int i)
{
    int n = i == p->output ? 1 : 0;
    for (int j = i + 1; j < p->n_nodes; j++)
        if (p->nodes[j].in[0] == i || p->nodes[j].in[1] == i)
            n++;
    return n;
}

/* Fuse ADD node a into the convolution computing one operand, when allowed (see the overview). */
static void try_fuse_add(struct nn_backend_plan *p, int a, const int *ready)
{
    const struct nn_node *nd = &p->nodes[a];
    int hi = nd->in[0] > nd->in[1] ? nd->in[0] : nd->in[1];
    int lo = nd->in[0] + nd->in[1] - hi;
    if (hi == lo)
        return;
    for (int side = 0; side < 2; side++) {
        int c = side == 0 ? hi : lo, q = side == 0 ? lo : hi;
        const struct nn_node *cv = &p->nodes[c];
        if ((cv->op != NN_OP_CONV && cv->op != NN_OP_TCONV) || cv->act != NN_ACT_NONE ||
            direct_readers(p, c) != 1 || ready[q] >= c)
            continue;
        p->cn[a].exec = false;
        p->cn[a].root = c;
        p->cn[a].fused_into = c;
        p->cn[c].cv.resid = q;
        p->cn[c].act = nd->act;
        return;
    }
}

/* Let concat node c live in the buffer of the input that can write its channels in place. */
static void try_host_concat(struct nn_backend_plan *p, int c)
{
    const struct nn_node *nd = &p->nodes[c];
    if (nd->in[0] == nd->in[1])
        return;
    for (int side = 1; side >= 0; side--) {
        int b = nd->in[side];
        const struct nn_node *bn = &p->nodes[b];
        bool writer = bn->op == NN_OP_TCONV || (bn->op == NN_OP_ADD && p->cn[b].exec);
        if (!writer || p->cn[b].root != b || direct_readers(p, b) != 1)
            continue;
        p->cn[c].root = b;
        p->cn[c].hosted_in = side;
        p->cn[b].host_of = c;
        return;
    }
}

/* Decide fusions and buffer roots in execution order. */
static void analyse_fusions(struct nn_backend_plan *p)
{
    int *ready = (int *)lm_malloc("nn.cuda.plan", p->n_nodes * sizeof *ready);
    for (int i = 0; i < p->n_nodes; i++) {
        struct cnode *c = &p->cn[i];
        const struct nn_node *nd = &p->nodes[i];
        c->root = i;
        c->exec = true;
        c->fused_into = c->host_of = c->hosted_in = c->pre_for = -1;
        c->act = nd->act;
        c->cv.resid = -1;
        ready[i] = i;
        if (nd->op == NN_OP_CROP) {
            c->exec = false;
            c->root = p->cn[nd->in[0]].root;
            ready[i] = ready[nd->in[0]];
        } else if (nd->op == NN_OP_ADD) {
            try_fuse_add(p, i, ready);
            if (!c->exec)
                ready[i] = c->fused_into;
        } else if (nd->op == NN_OP_CONCAT) {
            try_host_concat(p, i);
        }
    }
    lm_free(ready);
}

/* Views of every node from the buffer offsets in p->buf (provisional until placement). */
static void set_views(struct nn_backend_plan *p)
{
    for (int i = 0; i < p->n_nodes; i++) {
        const struct nn_node *nd = &p->nodes[i];
        struct cnode *c = &p->cn[i];
        long long base = (long long)(p->buf[c->root].offset / p->elem);
        if (nd->op == NN_OP_CROP) {
            struct gview v = p->cn[nd->in[0]].view;
            v.off += nd->crop * (v.st[0] + v.st[1] + v.st[2]);
            for (int a = 0; a < 3; a++)
                v.n[a] -= 2 * nd->crop;
            c->view = v;
        } else if (c->fused_into >= 0) {
            c->view = p->cn[c->fused_into].view;
        } else if (c->host_of >= 0) {
            const struct nn_node *cc = &p->nodes[c->host_of];
            struct gview v =
                gview_make(base, cc->shape.c, nd->shape.n, cc->shape.c * cells(&nd->shape));
            v.c = nd->shape.c;
            if (p->cn[c->host_of].hosted_in == 1)
                v.off += p->nodes[cc->in[0]].shape.c;
            c->view = v;
        } else {
            c->view = gview_make(base, nd->shape.c, nd->shape.n,
                                 (long long)nd->shape.c * cells(&nd->shape));
        }
    }
}

/* Record reader j of the buffer behind node x (each reader counted once). */
static void mark_reader(struct nn_backend_plan *p, int *count, int *last, int x, int j)
{
    int r = p->cn[x].root;
    if (last[r] == j)
        return;
    count[r]++;
    last[r] = j;
}

/* Readers of every buffer root: count and last reader (n_nodes for the graph output). */
static void find_readers(struct nn_backend_plan *p, int *count, int *last)
{
    for (int i = 0; i < p->n_nodes; i++) {
        count[i] = 0;
        last[i] = -1;
    }
    for (int j = 0; j < p->n_nodes; j++) {
        const struct nn_node *nd = &p->nodes[j];
        const struct cnode *c = &p->cn[j];
        if (!c->exec || nd->op == NN_OP_INPUT)
            continue;
        for (int s = 0; s < 2; s++)
            if (nd->in[s] >= 0 && c->hosted_in != s)
                mark_reader(p, count, last, nd->in[s], j);
        if ((nd->op == NN_OP_CONV || nd->op == NN_OP_TCONV) && c->cv.resid >= 0)
            mark_reader(p, count, last, c->cv.resid, j);
    }
    mark_reader(p, count, last, p->output, p->n_nodes);
}

/* The node whose kernel writes the whole buffer of x, or -1 (crops, concats). */
static int sole_writer(const struct nn_backend_plan *p, int x)
{
    const struct cnode *c = &p->cn[x];
    switch (p->nodes[x].op) {
    case NN_OP_INPUT:
    case NN_OP_CONV:
    case NN_OP_TCONV:
        return c->host_of < 0 ? x : -1;
    case NN_OP_ADD:
        return c->exec ? (c->host_of < 0 ? x : -1) : c->fused_into;
    default:
        return -1;
    }
}

/* Channel padding, packing and tangent mode of every convolution. */
static void conv_modes(struct nn_backend_plan *p)
{
    int *count = (int *)lm_malloc("nn.cuda.plan", 2 * (size_t)p->n_nodes * sizeof *count);
    int *last = count + p->n_nodes;
    find_readers(p, count, last);
    int q = pad_quantum(p->opt.precision);
    for (int j = 0; j < p->n_nodes; j++) {
        const struct nn_node *nd = &p->nodes[j];
        if (nd->op != NN_OP_CONV && nd->op != NN_OP_TCONV)
            continue;
        const struct nn_conv_desc *d = &p->convs[nd->conv];
        struct cn_conv *cv = &p->cn[j].cv;
        int x = nd->in[0], r = p->cn[x].root, w = sole_writer(p, x);
        cv->slot = nd->conv;
        cv->cin_p = nd->op == NN_OP_CONV ? round_up(d->cin, q) : d->cin;
        cv->cout_p = nd->op == NN_OP_CONV ? round_up(d->cout, q) : d->cout;
        cv->pack = !gview_packed(&p->cn[x].view) || cv->cin_p != d->cin;
        cv->out_scratch = nd->op == NN_OP_TCONV || cv->cout_p != d->cout;
        if (!p->tangents)
            cv->tan = CN_TAN_NONE;
        else if (cv->pack)
            cv->tan = CN_TAN_PACKED;
        else if (w >= 0 && count[r] == 1 && last[r] == j && p->cn[w].pre_for < 0)
            cv->tan = CN_TAN_PRODUCER;
        else if (last[r] == j)
            cv->tan = CN_TAN_INPLACE;
        else
            cv->tan = CN_TAN_SCRATCH;
        if (cv->tan == CN_TAN_PRODUCER)
            p->cn[w].pre_for = j;
    }
    lm_free(count);
}

/* cuDNN geometry of CONV node i. */
void nn_cuda_conv_geom(const struct nn_backend_plan *p, int i, struct dnn_geom *g)
{
    const struct nn_node *nd = &p->nodes[i];
    const struct nn_conv_desc *d = &p->convs[nd->conv];
    g->prec = p->opt.precision;
    g->elem = p->elem;
    for (int a = 0; a < 3; a++) {
        g->n[a] = p->nodes[nd->in[0]].shape.n[a];
        g->m[a] = nd->shape.n[a];
    }
    g->k = d->kernel;
    g->s = d->stride;
    g->cin_p = p->cn[i].cv.cin_p;
    g->cout_p = p->cn[i].cv.cout_p;
    g->name = nd->name;
}

/* Scratch layout of convolution node i (cuDNN set up first for a CONV). */
static bool conv_scratch(struct nn_backend_plan *p, int i, cudnnHandle_t h, int mode,
                         struct lm_err *err)
{
    const struct nn_node *nd = &p->nodes[i];
    const struct nn_conv_desc *d = &p->convs[nd->conv];
    struct cn_conv *cv = &p->cn[i].cv;
    long long cin_cells = cells(&p->nodes[nd->in[0]].shape), out_cells = cells(&nd->shape);
    size_t off = 0, e = p->elem;
    cv->scr_in = cv->scr_out = cv->scr_ws = 0;
    if (cv->pack) {
        cv->scr_in = off;
        off += align_up((size_t)p->slots * cin_cells * cv->cin_p * e);
    } else if (cv->tan == CN_TAN_SCRATCH) {
        cv->scr_in = off;
        off += align_up((size_t)cin_cells * d->cin * e);
    }
    if (cv->out_scratch) {
        cv->scr_out = off;
        size_t n = nd->op == NN_OP_TCONV ? (size_t)cin_cells * kernel3(d) * d->cout
                                         : (size_t)out_cells * cv->cout_p;
        off += align_up((size_t)p->slots * n * e);
    }
    if (nd->op == NN_OP_CONV) {
        struct dnn_geom g;
        nn_cuda_conv_geom(p, i, &g);
        if (!dnn_setup(&cv->dnn, &g, h, (enum dnn_mode)mode, err))
            return false;
        cv->scr_ws = off;
        off += align_up(cv->dnn.ws_bytes);
        if (cv->dnn.ws_bytes > p->cudnn_ws_max)
            p->cudnn_ws_max = cv->dnn.ws_bytes;
    }
    p->buf[i].scratch = off;
    return true;
}

/* Buffer sizes and aliases of every node for nn_memplan. */
static void buffer_requests(struct nn_backend_plan *p)
{
    for (int i = 0; i < p->n_nodes; i++) {
        const struct nn_node *nd = &p->nodes[i];
        const struct cnode *c = &p->cn[i];
        struct nn_buf *b = &p->buf[i];
        b->bytes = 0;
        b->alias = -1;
        b->scratch = 0;
        b->offset = b->scratch_offset = 0;
        if (nd->op == NN_OP_CROP)
            b->alias = nd->in[0];
        else if (c->fused_into >= 0)
            b->alias = c->fused_into;
        else if (c->hosted_in >= 0)
            b->alias = nd->in[c->hosted_in];
        else {
            const struct nn_shape *s = c->host_of >= 0 ? &p->nodes[c->host_of].shape : &nd->shape;
            b->bytes = (size_t)p->slots * nn_shape_count(*s) * p->elem;
        }
    }
}

/* Device weight layout of every slot (offsets into one block). */
static void weight_layout(struct nn_backend_plan *p)
{
    int q = pad_quantum(p->opt.precision);
    size_t off = 0;
    for (int s = 0; s < p->n_convs; s++) {
        const struct nn_conv_desc *d = &p->convs[s];
        struct cslot *sl = &p->slot[s];
        sl->cin_p = d->transposed ? d->cin : round_up(d->cin, q);
        sl->cout_p = d->transposed ? d->cout : round_up(d->cout, q);
        sl->n_w = (size_t)sl->cin_p * sl->cout_p * kernel3(d);
        sl->ratio_ok = false;
        sl->w = off;
        off += align_up(sl->n_w * p->elem);
        sl->dw = off;
        if (p->tangents)
            off += align_up(sl->n_w * p->elem);
        sl->bias = off;
        off += align_up((size_t)d->cout * sizeof(float));
        sl->c = off;
        off += align_up((size_t)d->cout * sizeof(float));
        sl->ratio = off;
        off += align_up((size_t)d->cin * sizeof(float));
    }
    p->weight_bytes = off;
}

/* Mark in anc every ancestor of q (q included) at a position after `after` (pos: positions). */
static void mark_late_ancestors(const struct nn_node *nodes, const int *pos, int q, int after,
                                char *anc, int *stack)
{
    int top = 0;
    stack[top++] = q;
    while (top > 0) {
        int v = stack[--top];
        if (v < 0 || anc[v] || pos[v] <= after)
            continue;
        anc[v] = 1;
        stack[top++] = nodes[v].in[0];
        stack[top++] = nodes[v].in[1];
    }
}

/* True when node c can take an add into its epilogue: a convolution without activation that only
 * the add reads. */
static bool fusable_conv(const struct nn_backend_plan *p, int c)
{
    const struct nn_node *cn = &p->nodes[c];
    return (cn->op == NN_OP_CONV || cn->op == NN_OP_TCONV) && cn->act == NN_ACT_NONE &&
           direct_readers(p, c) == 1;
}

/* If ADD node a can fuse into its convolution operand c once the other operand's late ancestors
 * run before c, move them there (at: position -> node, pos: node -> position). The later
 * operand is tried first (nothing to move when the other is already computed). */
static void hoist_for_add(const struct nn_backend_plan *p, int a, int *at, int *pos, char *anc,
                          int *stack)
{
    const struct nn_node *nd = &p->nodes[a];
    if (nd->in[0] == nd->in[1])
        return;
    int late = pos[nd->in[0]] > pos[nd->in[1]] ? nd->in[0] : nd->in[1];
    int early = nd->in[0] + nd->in[1] - late;
    int c = fusable_conv(p, late) ? late : fusable_conv(p, early) ? early : -1;
    if (c < 0 || c == late)
        return;
    memset(anc, 0, p->n_nodes);
    mark_late_ancestors(p->nodes, pos, late, pos[c], anc, stack);
    if (anc[c])
        return;
    int *moved = stack, n_moved = 0, w = pos[c];
    for (int k = pos[c]; k < pos[a]; k++)
        if (anc[at[k]])
            at[w++] = at[k];
        else
            moved[n_moved++] = at[k];
    for (int k = 0; k < n_moved; k++)
        at[w++] = moved[k];
    for (int k = 0; k < p->n_nodes; k++)
        pos[at[k]] = k;
}

/* Execution order: the graph's, except that the operand of a residual add that is computed after
 * the add's convolution (a skip built last) is hoisted before it, so that the add can fuse into
 * that convolution's epilogue. Renumbers p->nodes accordingly. */
static void schedule(struct nn_backend_plan *p)
{
    int n = p->n_nodes;
    int *at = (int *)lm_malloc("nn.cuda.plan", 4 * (size_t)n * sizeof *at);
    int *pos = at + n, *stack = pos + n;
    char *anc = (char *)lm_malloc("nn.cuda.plan", n);
    for (int i = 0; i < n; i++)
        at[i] = pos[i] = i;
    for (int a = 0; a < n; a++)
        if (p->nodes[a].op == NN_OP_ADD)
            hoist_for_add(p, a, at, pos, anc, stack);
    struct nn_node *nodes = (struct nn_node *)lm_malloc("nn.cuda.plan", n * sizeof *nodes);
    for (int k = 0; k < n; k++) {
        nodes[k] = p->nodes[at[k]];
        for (int s = 0; s < 2; s++)
            if (nodes[k].in[s] >= 0)
                nodes[k].in[s] = pos[nodes[k].in[s]];
    }
    p->input = pos[p->input];
    p->output = pos[p->output];
    for (int k = 0; k < p->n_inputs; k++)
        p->inputs[k] = pos[p->inputs[k]];
    lm_free(p->nodes);
    p->nodes = nodes;
    lm_free(anc);
    lm_free(at);
}

/* Copy the graph's nodes and slots into plan-owned arrays, in execution order. */
static void copy_graph(struct nn_backend_plan *p, const struct nn_graph *g)
{
    p->n_nodes = g->n_nodes;
    p->input = g->input;
    p->output = g->output;
    p->n_inputs = g->n_inputs;
    memcpy(p->inputs, g->inputs, sizeof p->inputs);
    p->nodes = (struct nn_node *)lm_malloc("nn.cuda.plan", g->n_nodes * sizeof *p->nodes);
    memcpy(p->nodes, g->nodes, g->n_nodes * sizeof *p->nodes);
    schedule(p);
    p->n_convs = g->n_convs;
    size_t nc = g->n_convs > 0 ? g->n_convs : 1;
    p->convs = (struct nn_conv_desc *)lm_malloc("nn.cuda.plan", nc * sizeof *p->convs);
    memcpy(p->convs, g->convs, g->n_convs * sizeof *p->convs);
    p->cn = (struct cnode *)lm_calloc("nn.cuda.plan", g->n_nodes, sizeof *p->cn);
    p->buf = (struct nn_buf *)lm_calloc("nn.cuda.plan", g->n_nodes, sizeof *p->buf);
    p->slot = (struct cslot *)lm_calloc("nn.cuda.plan", nc, sizeof *p->slot);
}

/* The plan's nodes as a graph (for nn_memplan's liveness). */
static struct nn_graph plan_graph(const struct nn_backend_plan *p)
{
    struct nn_graph g;
    memset(&g, 0, sizeof g);
    g.n_nodes = g.cap_nodes = p->n_nodes;
    g.nodes = p->nodes;
    g.n_convs = g.cap_convs = p->n_convs;
    g.convs = p->convs;
    g.input = p->input;
    g.output = p->output;
    return g;
}

bool nn_cuda_plan_layout(struct nn_backend_plan *p, const struct nn_graph *g, cudnnHandle_t h,
                         int mode, struct lm_err *err)
{
    copy_graph(p, g);
    analyse_fusions(p);
    buffer_requests(p);
    set_views(p);
    conv_modes(p);
    p->cudnn_ws_max = 0;
    for (int i = 0; i < p->n_nodes; i++) {
        enum nn_op op = p->nodes[i].op;
        if ((op == NN_OP_CONV || op == NN_OP_TCONV) && !conv_scratch(p, i, h, mode, err))
            return false;
    }
    struct nn_graph order = plan_graph(p);
    p->workspace = nn_memplan(&order, p->buf, NN_CUDA_ALIGN);
    set_views(p);
    weight_layout(p);
    p->in_elems = 0;
    for (int k = 0; k < p->n_inputs; k++) {
        p->in_off[k] = p->in_elems;
        p->in_elems += nn_shape_count(p->nodes[p->inputs[k]].shape);
    }
    p->out_elems = nn_shape_count(p->nodes[p->output].shape);
    return true;
}

bool nn_cuda_plan_has_tconv(const struct nn_backend_plan *p)
{
    for (int i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].op == NN_OP_TCONV)
            return true;
    return false;
}

size_t nn_cuda_plan_held_bytes(const struct nn_backend_plan *p)
{
    size_t in = align_up(p->in_elems * sizeof(float) * (p->tangents ? 2 : 1));
    size_t out = align_up(p->out_elems * sizeof(float) * p->slots);
    size_t cublas = nn_cuda_plan_has_tconv(p) ? NN_CUDA_CUBLAS_WS : 0;
    return p->weight_bytes + in + out + cublas;
}

void nn_cuda_plan_free_layout(struct nn_backend_plan *p)
{
    if (p->cn)
        for (int i = 0; i < p->n_nodes; i++)
            if (p->nodes[i].op == NN_OP_CONV)
                dnn_release(&p->cn[i].cv.dnn);
    lm_free(p->nodes);
    lm_free(p->convs);
    lm_free(p->cn);
    lm_free(p->buf);
    lm_free(p->slot);
    p->nodes = NULL;
    p->convs = NULL;
    p->cn = NULL;
    p->buf = NULL;
    p->slot = NULL;
}
