/* nn_cpu — the CPU backend of the NN engine (see nn.h): oneDNN convolutions on channels-last
 * (NDHWC) activations, OpenMP, one caller-owned workspace.
 *
 * Choice by measurement (2-core AVX-512 machine, 64->64 channels, 3x3x3 on 100^3): oneDNN's
 * brgconv on NDHWC 106-112 GMAC/s, its jit kernel on nCdhw16c 90-100, im2col + OpenBLAS sgemm
 * 34. oneDNN's own deconvolution runs k = s = 2 at 3-4 GMAC/s, so a transposed convolution whose
 * kernel equals its stride (non-overlapping) is done as a 1x1 convolution to K^3 cout channels
 * followed by a depth-to-space shuffle (70-95 GMAC/s); other transposed convolutions use oneDNN's
 * deconvolution. Outputs with a channel count that is not a multiple of 16 are padded to one
 * (zero weights): oneDNN runs 64->16 channels 2x faster than 64->3.
 *
 * Layout: every node's value is a channels-last view (struct cpu_view); its tangent sits after the
 * value array of the same buffer. Crops are views; an ADD whose first input dies there is done in
 * place; convolution inputs that are not packed views are copied first. Buffer placement is
 * nn_memplan's; the oneDNN scratchpad (user mode, the largest any primitive needs) follows it.
 *
 * Tangents use the one-convolution identity of nn.h: z = dx + x ratio, conv(z, W'') - c conv(x,
 * W''), one extra convolution with the same weights per layer; a layer whose modulation has a zero
 * (ratio_ok false) falls back to conv(dx, W'') + conv(x, dW'') (oneDNN sum post-op). */
#include "nn.h"

#include <dnnl.h>
#include <string.h>

#include "alloc.h"
#include "nn_cpu_kernels.h"

enum cpu_conv_kind {
    CPU_CONV_DIRECT,  /* oneDNN convolution */
    CPU_CONV_SHUFFLE, /* transposed, kernel == stride: 1x1 convolution + shuffle */
    CPU_CONV_DECONV   /* transposed, oneDNN deconvolution */
};

/* One convolution node of the plan. */
struct cpu_conv {
    enum cpu_conv_kind kind;
    int node, slot, cin, cout, k, s;
    int nq;                     /* channels of the primitive's output */
    int kk;                     /* kernel of the primitive (1 for SHUFFLE) */
    dnnl_primitive_t prim, sum; /* main (fused bias + act without tangents), sum post-op */
    dnnl_memory_t m_src, m_dst, m_w, m_dw, m_bias, m_sp, m_sp_sum, m_stage_w, m_stage_dw;
    dnnl_primitive_t reorder_w, reorder_dw;
    float *bias, *c, *ratio; /* nq, nq, cin (plan memory) */
    enum nn_act act;         /* the activation after the convolution: its own or a fused ACT's */
    float slope;             /* its LeakyReLU slope */
    void *wbuf, *dwbuf;      /* the weights in the primitives' layouts */
    bool fused, ratio_ok, pack;
    size_t pack_off, z_off, tv_off, tt_off; /* float offsets of the scratch pieces */
};

struct nn_backend_plan {
    int n_nodes, input, output, n_inputs;
    int inputs[NN_MAX_INPUTS];
    struct nn_node *nodes;
    bool tangents;
    int n_slots;
    struct nn_conv_desc *descs;
    struct cpu_view *view;
    struct cpu_conv *conv; /* indexed by node; kind meaningful for CONV / TCONV nodes */
    int *root;
    bool *fused; /* ACT nodes done by the convolution before them (a view of its output) */
    float *stage, *params;
    size_t sp_off, workspace, memory;
};

static dnnl_engine_t cpu_engine;
static dnnl_stream_t cpu_stream;

static bool cpu_init(struct lm_err *err)
{
    if (cpu_engine)
        return true;
    if (dnnl_engine_create(&cpu_engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&cpu_stream, cpu_engine, dnnl_stream_default_flags) != dnnl_success)
        return lm_err_set(err, "nn cpu: cannot create the oneDNN CPU engine");
    return true;
}

/* ---- layouts ------------------------------------------------------------------------------- */

static int pad16(int c) { return c % 16 == 0 ? c : (c + 15) / 16 * 16; }

/* True when node i's first input can be overwritten by i (an in-place ADD or ACT). */
static bool cpu_in_place(const struct nn_graph *g, const int *root, int i)
{
    int a = g->nodes[i].in[0], b = g->nodes[i].in[1];
    if (root[a] != a || (b >= 0 && root[b] == a) || g->nodes[a].op == NN_OP_INPUT)
        return false;
    for (int j = 0; j < i; j++)
        if (root[j] == a && nn_graph_last_use(g, j) > i)
            return false;
    return true;
}

/* Choose every node's view (offsets relative to its root buffer) and buffer request. */
static void cpu_layout(struct nn_backend_plan *p, const struct nn_graph *g, struct nn_buf *buf)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nn_node *nd = &g->nodes[i];
        struct cpu_view *v = &p->view[i];
        buf[i].alias = -1;
        p->root[i] = i;
        int cs = nd->shape.c;
        if (nd->op == NN_OP_CROP) {
            *v = p->view[nd->in[0]];
            v->off += nd->crop * (v->st[0] + v->st[1] + v->st[2]);
            v->n[0] = nd->shape.n[0], v->n[1] = nd->shape.n[1], v->n[2] = nd->shape.n[2];
        } else if (p->fused[i] ||
                   ((nd->op == NN_OP_ADD || nd->op == NN_OP_ACT) && cpu_in_place(g, p->root, i))) {
            *v = p->view[nd->in[0]];
        } else {
            if (nd->op == NN_OP_CONV || nd->op == NN_OP_TCONV)
                cs = p->conv[i].kind == CPU_CONV_SHUFFLE ? nd->shape.c : pad16(nd->shape.c);
            struct cpu_view d = cpu_view_dense(nd->shape.c, cs, nd->shape.n, 0, 0);
            d.tan = p->tangents ? cpu_view_count(&d) : 0;
            *v = d;
            buf[i].bytes = cpu_view_count(&d) * sizeof(float) * (p->tangents ? 2 : 1);
            continue;
        }
        buf[i].alias = nd->in[0];
        p->root[i] = p->root[nd->in[0]];
    }
}

/* Scratch pieces of convolution node i (float counts, laid out one after another). */
static size_t cpu_conv_scratch(struct nn_backend_plan *p, int i)
{
    struct cpu_conv *cv = &p->conv[i];
    const struct cpu_view *in = &p->view[p->nodes[i].in[0]];
    size_t n_in = (size_t)in->n[0] * in->n[1] * in->n[2], pos = 0;
    cv->pack = !cpu_view_is_packed(in);
    cv->pack_off = pos;
    pos += cv->pack ? n_in * cv->cin : 0;
    cv->z_off = pos;
    pos += p->tangents ? n_in * cv->cin : 0;
    cv->tv_off = pos;
    pos += cv->kind == CPU_CONV_SHUFFLE ? n_in * cv->nq : 0;
    cv->tt_off = pos;
    pos += cv->kind == CPU_CONV_SHUFFLE && p->tangents ? n_in * cv->nq : 0;
    return pos;
}

/* ---- oneDNN primitives --------------------------------------------------------------------- */

/* Primitive descriptor of convolution cv from in to out grids; bias and act fused when asked,
 * a sum post-op (dst += conv) when sum. */
static dnnl_status_t cpu_conv_pd(dnnl_primitive_desc_t *pd, const struct cpu_conv *cv,
                                 const int nin[3], const int nout[3], bool bias, enum nn_act act,
                                 float slope, bool sum)
{
    dnnl_memory_desc_t src, wei, bmd, dst;
    dnnl_dims_t sd = {1, cv->cin, nin[0], nin[1], nin[2]};
    dnnl_dims_t dd = {1, cv->nq, nout[0], nout[1], nout[2]};
    dnnl_dims_t wd = {cv->nq, cv->cin, cv->kk, cv->kk, cv->kk}, bd = {cv->nq};
    int st = cv->kind == CPU_CONV_SHUFFLE ? 1 : cv->s;
    dnnl_dims_t strides = {st, st, st}, pad = {0, 0, 0};
    dnnl_memory_desc_init_by_tag(&src, 5, sd, dnnl_f32, dnnl_ndhwc);
    dnnl_memory_desc_init_by_tag(&dst, 5, dd, dnnl_f32, dnnl_ndhwc);
    dnnl_memory_desc_init_by_tag(&wei, 5, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_post_ops_create(&po);
    if (sum)
        dnnl_post_ops_append_sum(po, 1.0f);
    if (act == NN_ACT_LRELU || act == NN_ACT_RELU)
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu,
                                     act == NN_ACT_LRELU ? slope : 0.0f, 0.0f);
    else if (act == NN_ACT_GELU)
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
    dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_status_t rc;
    if (cv->kind == CPU_CONV_DECONV) {
        dnnl_deconvolution_desc_t d;
        rc = dnnl_deconvolution_forward_desc_init(&d, dnnl_forward_inference,
                                                  dnnl_deconvolution_direct, &src, &wei,
                                                  bias ? &bmd : NULL, &dst, strides, pad, pad);
        if (rc == dnnl_success)
            rc = dnnl_primitive_desc_create(pd, &d, attr, cpu_engine, NULL);
    } else {
        dnnl_convolution_desc_t d;
        rc = dnnl_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct,
                                                &src, &wei, bias ? &bmd : NULL, &dst, strides, pad,
                                                pad);
        if (rc == dnnl_success)
            rc = dnnl_primitive_desc_create(pd, &d, attr, cpu_engine, NULL);
    }
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* Bytes of the memory of pd's argument `what` (weights, scratchpad). */
static size_t cpu_pd_bytes(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, what, 0));
}

/* Create primitive, weights memory (the primitive's layout), staging memory and weights reorder
 * from pd. Returns the scratchpad bytes of the primitive. */
static size_t cpu_make_prim(struct nn_backend_plan *p, struct cpu_conv *cv,
                            dnnl_primitive_desc_t pd, dnnl_primitive_t *prim, dnnl_memory_t *m_w,
                            void **wbuf, dnnl_memory_t *m_stage, dnnl_primitive_t *reorder,
                            dnnl_memory_t *m_sp)
{
    dnnl_primitive_create(prim, pd);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t wbytes = cpu_pd_bytes(pd, dnnl_query_weights_md);
    *wbuf = lm_calloc("nn.cpu.weights", 1, wbytes);
    p->memory += wbytes;
    dnnl_memory_create(m_w, wmd, cpu_engine, *wbuf);
    dnnl_memory_create(m_sp, spmd, cpu_engine, DNNL_MEMORY_NONE);
    dnnl_memory_desc_t plain;
    dnnl_dims_t wd = {cv->nq, cv->cin, cv->kk, cv->kk, cv->kk};
    dnnl_memory_desc_init_by_tag(&plain, 5, wd, dnnl_f32, dnnl_oidhw);
    dnnl_memory_create(m_stage, &plain, cpu_engine, p->stage);
    dnnl_primitive_desc_t rpd;
    dnnl_reorder_primitive_desc_create(&rpd, &plain, cpu_engine, wmd, cpu_engine, NULL);
    dnnl_primitive_create(reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (strncmp(impl, "ref", 3) == 0)
        msg_warn("nn cpu: convolution '%s' runs on oneDNN's slow reference kernel (%s)",
                 p->descs[cv->slot].name, impl);
    msg_debug("nn cpu: '%s' -> %s", p->descs[cv->slot].name, impl);
    return cpu_pd_bytes(pd, dnnl_query_scratchpad_md);
}

/* The primitive descriptors of convolution node i: pd[0] the main one, pd[1] the tangent's sum
 * post-op one (NULL without tangents). False (err says why) when oneDNN cannot build one. */
static bool cpu_conv_pds(struct nn_backend_plan *p, int i, dnnl_primitive_desc_t pd[2],
                         struct lm_err *err)
{
    struct cpu_conv *cv = &p->conv[i];
    const struct nn_node *nd = &p->nodes[i];
    const int *nin = p->nodes[nd->in[0]].shape.n;
    const int *nout = cv->kind == CPU_CONV_SHUFFLE ? nin : nd->shape.n;
    bool fused = cv->fused = !p->tangents && cv->kind != CPU_CONV_SHUFFLE;
    pd[0] = pd[1] = NULL;
    if (cpu_conv_pd(&pd[0], cv, nin, nout, fused, fused ? cv->act : NN_ACT_NONE, cv->slope,
                    false) != dnnl_success)
        return lm_err_set(err,
                          "nn cpu: oneDNN cannot build convolution '%s' (%d -> %d channels, "
                          "kernel %d, stride %d)",
                          p->descs[cv->slot].name, cv->cin, cv->cout, cv->k, cv->s);
    if (p->tangents &&
        cpu_conv_pd(&pd[1], cv, nin, nout, false, NN_ACT_NONE, 0.0f, true) != dnnl_success) {
        dnnl_primitive_desc_destroy(pd[0]);
        pd[0] = NULL;
        return lm_err_set(err, "nn cpu: oneDNN cannot build the tangent convolution '%s'",
                          p->descs[cv->slot].name);
    }
    return true;
}

/* The sizes of convolution node i without creating it: adds its weights bytes to *weights and
 * raises *sp to its largest scratchpad (as cpu_conv_create would). */
static bool cpu_conv_size(struct nn_backend_plan *p, int i, size_t *weights, size_t *sp,
                          struct lm_err *err)
{
    dnnl_primitive_desc_t pd[2];
    if (!cpu_conv_pds(p, i, pd, err))
        return false;
    for (int k = 0; k < 2 && pd[k]; k++) {
        *weights += cpu_pd_bytes(pd[k], dnnl_query_weights_md);
        size_t s = cpu_pd_bytes(pd[k], dnnl_query_scratchpad_md);
        *sp = s > *sp ? s : *sp;
        dnnl_primitive_desc_destroy(pd[k]);
    }
    return true;
}

/* Create the primitives of convolution node i; raises *sp to the largest scratchpad in bytes. */
static bool cpu_conv_create(struct nn_backend_plan *p, int i, size_t *sp, struct lm_err *err)
{
    struct cpu_conv *cv = &p->conv[i];
    const struct nn_node *nd = &p->nodes[i];
    const int *nin = p->nodes[nd->in[0]].shape.n;
    const int *nout = cv->kind == CPU_CONV_SHUFFLE ? nin : nd->shape.n;
    dnnl_primitive_desc_t pd[2];
    if (!cpu_conv_pds(p, i, pd, err))
        return false;
    size_t s0 = cpu_make_prim(p, cv, pd[0], &cv->prim, &cv->m_w, &cv->wbuf, &cv->m_stage_w,
                              &cv->reorder_w, &cv->m_sp);
    dnnl_primitive_desc_destroy(pd[0]);
    if (pd[1]) {
        size_t s1 = cpu_make_prim(p, cv, pd[1], &cv->sum, &cv->m_dw, &cv->dwbuf, &cv->m_stage_dw,
                                  &cv->reorder_dw, &cv->m_sp_sum);
        dnnl_primitive_desc_destroy(pd[1]);
        s0 = s1 > s0 ? s1 : s0;
    }
    dnnl_memory_desc_t src, dst, bmd;
    dnnl_dims_t sd = {1, cv->cin, nin[0], nin[1], nin[2]};
    dnnl_dims_t dd = {1, cv->nq, nout[0], nout[1], nout[2]}, bd = {cv->nq};
    dnnl_memory_desc_init_by_tag(&src, 5, sd, dnnl_f32, dnnl_ndhwc);
    dnnl_memory_desc_init_by_tag(&dst, 5, dd, dnnl_f32, dnnl_ndhwc);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_create(&cv->m_src, &src, cpu_engine, DNNL_MEMORY_NONE);
    dnnl_memory_create(&cv->m_dst, &dst, cpu_engine, DNNL_MEMORY_NONE);
    dnnl_memory_create(&cv->m_bias, &bmd, cpu_engine, cv->bias);
    if (s0 > *sp)
        *sp = s0;
    return true;
}

/* Fill the static description of convolution node i; returns the floats of its parameters. */
static size_t cpu_conv_describe(struct nn_backend_plan *p, int i)
{
    struct cpu_conv *cv = &p->conv[i];
    const struct nn_node *nd = &p->nodes[i];
    const struct nn_conv_desc *d = &p->descs[nd->conv];
    cv->node = i;
    cv->slot = nd->conv;
    cv->cin = d->cin;
    cv->cout = d->cout;
    cv->k = d->kernel;
    cv->s = d->stride;
    cv->kind = !d->transposed           ? CPU_CONV_DIRECT
               : d->kernel == d->stride ? CPU_CONV_SHUFFLE
                                        : CPU_CONV_DECONV;
    cv->kk = cv->kind == CPU_CONV_SHUFFLE ? 1 : d->kernel;
    cv->act = nd->act;
    cv->slope = NN_LEAKY_SLOPE;
    cv->nq =
        cv->kind == CPU_CONV_SHUFFLE ? d->kernel * d->kernel * d->kernel * d->cout : pad16(d->cout);
    return 2 * (size_t)cv->nq + cv->cin;
}

static bool is_conv(const struct nn_node *nd)
{
    return nd->op == NN_OP_CONV || nd->op == NN_OP_TCONV;
}

/* Floats of the shared weights staging array: the largest plain weights of a convolution. */
static size_t cpu_stage_count(const struct nn_backend_plan *p)
{
    size_t n_stage = 1;
    for (int i = 0; i < p->n_nodes; i++) {
        const struct cpu_conv *cv = &p->conv[i];
        size_t st = (size_t)cv->nq * cv->cin * cv->kk * cv->kk * cv->kk;
        n_stage = is_conv(&p->nodes[i]) && st > n_stage ? st : n_stage;
    }
    return n_stage;
}

/* Give every convolution its parameter arrays (bias, c, ratio) and the shared staging array. */
static void cpu_params_alloc(struct nn_backend_plan *p, size_t n_params)
{
    size_t n_stage = cpu_stage_count(p);
    p->params = lm_calloc("nn.cpu.weights", n_params + 1, sizeof(float));
    float *q = p->params;
    for (int i = 0; i < p->n_nodes; i++) {
        struct cpu_conv *cv = &p->conv[i];
        if (!is_conv(&p->nodes[i]))
            continue;
        cv->bias = q;
        cv->c = cv->bias + cv->nq;
        cv->ratio = cv->c + cv->nq;
        q += 2 * (size_t)cv->nq + cv->cin;
    }
    p->stage = lm_calloc("nn.cpu.weights", n_stage, sizeof(float));
    p->memory += (n_params + n_stage) * sizeof(float);
}

static void cpu_plan_free(struct nn_backend_plan *p);

/* Without tangents, an ACT node whose input is a direct convolution without activation read by
 * nothing else becomes that convolution's post-op (oneDNN eltwise) and a view of its output. */
static void cpu_fuse_act(struct nn_backend_plan *p, const struct nn_graph *g, int i)
{
    const struct nn_node *nd = &g->nodes[i];
    if (nd->op != NN_OP_ACT)
        return;
    int j = nd->in[0];
    struct cpu_conv *cv = &p->conv[j];
    if (g->nodes[j].op != NN_OP_CONV || cv->kind != CPU_CONV_DIRECT || cv->act != NN_ACT_NONE ||
        nn_graph_last_use(g, j) != i)
        return;
    for (int k = j + 1; k < i; k++)
        if (g->nodes[k].in[0] == j || g->nodes[k].in[1] == j)
            return;
    cv->act = nd->act;
    cv->slope = nd->slope;
    p->fused[i] = true;
}

/* The plan's description of g without primitives or parameter memory: nodes, slots, the kind of
 * every convolution, the views and, in *buf (to free), every node's buffer and scratch request;
 * *n_params the floats of the convolutions' parameter arrays. */
static struct nn_backend_plan *cpu_plan_describe(const struct nn_graph *g, bool tangents,
                                                 struct nn_buf **buf, size_t *n_params)
{
    struct nn_backend_plan *p = lm_calloc("nn.cpu.plan", 1, sizeof *p);
    int n = p->n_nodes = g->n_nodes;
    p->input = g->input;
    p->output = g->output;
    p->tangents = tangents;
    p->n_slots = g->n_convs;
    p->nodes = lm_malloc("nn.cpu.plan", n * sizeof *p->nodes);
    memcpy(p->nodes, g->nodes, n * sizeof *p->nodes);
    p->descs = lm_malloc("nn.cpu.plan", (g->n_convs + 1) * sizeof *p->descs);
    memcpy(p->descs, g->convs, g->n_convs * sizeof *p->descs);
    p->view = lm_calloc("nn.cpu.plan", n, sizeof *p->view);
    p->conv = lm_calloc("nn.cpu.plan", n, sizeof *p->conv);
    p->root = lm_calloc("nn.cpu.plan", n, sizeof *p->root);
    p->fused = lm_calloc("nn.cpu.plan", n, sizeof *p->fused);
    p->n_inputs = g->n_inputs;
    memcpy(p->inputs, g->inputs, sizeof p->inputs);
    *n_params = 0;
    for (int i = 0; i < n; i++)
        if (is_conv(&g->nodes[i]))
            *n_params += cpu_conv_describe(p, i);
    for (int i = 0; i < n && !tangents; i++)
        cpu_fuse_act(p, g, i);
    *buf = lm_calloc("nn.cpu.plan", n, sizeof **buf);
    cpu_layout(p, g, *buf);
    for (int i = 0; i < n; i++)
        if (is_conv(&g->nodes[i]))
            (*buf)[i].scratch = cpu_conv_scratch(p, i) * sizeof(float);
    return p;
}

/* The workspace: the buffers placed by nn_memplan, then the largest oneDNN scratchpad. */
static size_t cpu_workspace_bytes(size_t buffers, size_t sp)
{
    return buffers + (sp + 63) / 64 * 64;
}

static bool cpu_plan_size(const struct nn_graph *g, bool tangents, size_t *workspace,
                          size_t *memory, struct lm_err *err)
{
    if (!cpu_init(err))
        return false;
    struct nn_buf *buf;
    size_t n_params, sp = 0, weights = 0;
    struct nn_backend_plan *p = cpu_plan_describe(g, tangents, &buf, &n_params);
    bool ok = true;
    for (int i = 0; i < p->n_nodes && ok; i++)
        if (is_conv(&p->nodes[i]))
            ok = cpu_conv_size(p, i, &weights, &sp, err);
    if (ok) {
        *workspace = cpu_workspace_bytes(nn_memplan(g, buf, 64), sp);
        *memory = weights + (n_params + cpu_stage_count(p)) * sizeof(float);
    }
    lm_free(buf);
    cpu_plan_free(p);
    return ok;
}

static struct nn_backend_plan *cpu_plan_create(const struct nn_graph *g, bool tangents,
                                               struct lm_err *err)
{
    if (!cpu_init(err))
        return NULL;
    struct nn_buf *buf;
    size_t n_params, sp = 0;
    struct nn_backend_plan *p = cpu_plan_describe(g, tangents, &buf, &n_params);
    cpu_params_alloc(p, n_params);
    for (int i = 0; i < p->n_nodes; i++)
        if (is_conv(&p->nodes[i]) && !cpu_conv_create(p, i, &sp, err)) {
            lm_free(buf);
            cpu_plan_free(p);
            return NULL;
        }
    size_t total = nn_memplan(g, buf, 64);
    for (int i = 0; i < p->n_nodes; i++) {
        p->view[i].off += buf[p->root[i]].offset / sizeof(float);
        struct cpu_conv *cv = &p->conv[i];
        size_t s0 = buf[i].scratch_offset / sizeof(float);
        cv->pack_off += s0, cv->z_off += s0, cv->tv_off += s0, cv->tt_off += s0;
    }
    lm_free(buf);
    p->sp_off = total;
    p->workspace = cpu_workspace_bytes(total, sp);
    return p;
}

static size_t cpu_plan_workspace(const struct nn_backend_plan *p) { return p->workspace; }

static size_t cpu_plan_memory(const struct nn_backend_plan *p) { return p->memory; }

/* ---- weights ------------------------------------------------------------------------------- */

/* Write slot weights src (slot layout) into the staging array in the primitive's plain oidhw
 * order {nq, cin, kk^3}, zero where padded. */
static void cpu_stage(const struct nn_backend_plan *p, const struct cpu_conv *cv, const float *src)
{
    int k3 = cv->k * cv->k * cv->k;
    size_t n = (size_t)cv->nq * cv->cin * cv->kk * cv->kk * cv->kk;
    memset(p->stage, 0, n * sizeof(float));
    for (int o = 0; o < cv->cout; o++)
        for (int i = 0; i < cv->cin; i++)
            for (int t = 0; t < k3; t++) {
                size_t from = cv->kind == CPU_CONV_DIRECT ? ((size_t)o * cv->cin + i) * k3 + t
                                                          : ((size_t)i * cv->cout + o) * k3 + t;
                size_t to = cv->kind == CPU_CONV_SHUFFLE ? ((size_t)t * cv->cout + o) * cv->cin + i
                                                         : ((size_t)o * cv->cin + i) * k3 + t;
                p->stage[to] = src[from];
            }
}

static void cpu_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    dnnl_primitive_execute(r, cpu_stream, 2, args);
    dnnl_stream_wait(cpu_stream);
}

static void cpu_plan_set_weights(struct nn_backend_plan *p, const struct nn_weights *w)
{
    CHECK(w->n_convs == p->n_slots, "nn cpu: weights for %d convolutions, the plan has %d",
          w->n_convs, p->n_slots);
    for (int i = 0; i < p->n_nodes; i++) {
        if (p->nodes[i].op != NN_OP_CONV && p->nodes[i].op != NN_OP_TCONV)
            continue;
        struct cpu_conv *cv = &p->conv[i];
        const struct nn_conv_weights *cw = &w->conv[cv->slot];
        cpu_stage(p, cv, cw->w);
        cpu_reorder(cv->reorder_w, cv->m_stage_w, cv->m_w);
        if (p->tangents) {
            cpu_stage(p, cv, cw->dw);
            cpu_reorder(cv->reorder_dw, cv->m_stage_dw, cv->m_dw);
        }
        int nb = cv->kind == CPU_CONV_SHUFFLE ? cv->cout : cv->nq;
        for (int o = 0; o < nb; o++) {
            cv->bias[o] = o < cv->cout ? cw->bias[o] : 0.0f;
            cv->c[o] = o < cv->cout ? cw->c[o] : 0.0f;
        }
        memcpy(cv->ratio, cw->ratio, cv->cin * sizeof(float));
        cv->ratio_ok = cw->ratio_ok;
    }
}

/* ---- execution ----------------------------------------------------------------------------- */

/* dst = conv(src, weights) (+= with the sum primitive), bias / act as fused at creation. */
static void cpu_run(const struct nn_backend_plan *p, const struct cpu_conv *cv, bool sum, float *ws,
                    const float *src, float *dst)
{
    dnnl_memory_set_data_handle(cv->m_src, (void *)src);
    dnnl_memory_set_data_handle(cv->m_dst, dst);
    dnnl_memory_t sp = sum ? cv->m_sp_sum : cv->m_sp;
    dnnl_memory_set_data_handle(sp, (char *)ws + p->sp_off);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, cv->m_src},
                               {DNNL_ARG_WEIGHTS, sum ? cv->m_dw : cv->m_w},
                               {DNNL_ARG_DST, cv->m_dst},
                               {DNNL_ARG_SCRATCHPAD, sp},
                               {DNNL_ARG_BIAS, cv->m_bias}};
    bool bias = cv->fused;
    dnnl_status_t rc =
        dnnl_primitive_execute(sum ? cv->sum : cv->prim, cpu_stream, bias ? 5 : 4, args);
    CHECK(rc == dnnl_success, "nn cpu: oneDNN failed on '%s' (status %d)", p->descs[cv->slot].name,
          (int)rc);
    dnnl_stream_wait(cpu_stream);
}

static void cpu_exec_conv(const struct nn_backend_plan *p, int i, float *ws)
{
    const struct cpu_conv *cv = &p->conv[i];
    const struct nn_node *nd = &p->nodes[i];
    const struct cpu_view *in = &p->view[nd->in[0]], *out = &p->view[i];
    const float *x = ws + in->off;
    if (cv->pack) {
        cpu_pack(ws, in, 0, ws + cv->pack_off);
        x = ws + cv->pack_off;
    }
    bool shuffle = cv->kind == CPU_CONV_SHUFFLE;
    float *yv = shuffle ? ws + cv->tv_off : ws + out->off;
    float *yt = !p->tangents ? NULL : shuffle ? ws + cv->tt_off : ws + out->off + out->tan;
    float *z = ws + cv->z_off;
    const float *c = NULL;
    if (p->tangents && cv->ratio_ok) { /* yt = conv(dx + x ratio, W''), then - c yv */
        cpu_tangent_input(ws, in, cv->ratio, z);
        cpu_run(p, cv, false, ws, z, yt);
        c = cv->c;
    } else if (p->tangents) { /* yt = conv(dx, W'') + conv(x, dW'') */
        const float *dx = ws + in->off + in->tan;
        if (cv->pack) {
            cpu_pack(ws, in, 1, z);
            dx = z;
        }
        cpu_run(p, cv, false, ws, dx, yt);
        cpu_run(p, cv, true, ws, x, yt);
    }
    cpu_run(p, cv, false, ws, x, yv);
    if (shuffle)
        cpu_shuffle(yv, yt, p->nodes[nd->in[0]].shape.n, cv->k, cv->cout, ws, out, cv->bias, c,
                    nd->act);
    else if (p->tangents)
        cpu_epilogue(yv, yt, cpu_view_count(out) / out->cs, out->cs, cv->bias, c, nd->act);
}

static void cpu_plan_execute(struct nn_backend_plan *p, const struct nn_io *io, void *workspace)
{
    float *ws = workspace;
    const struct cpu_view *vin = &p->view[p->input], *vout = &p->view[p->output];
    cpu_load(ws, vin, 0, io->x, io->x_scale);
    for (int k = 1; k < p->n_inputs; k++) {
        CHECK(io->more[k - 1], "nn cpu: input '%s' was not given", p->nodes[p->inputs[k]].name);
        cpu_load(ws, &p->view[p->inputs[k]], 0, io->more[k - 1], io->x_scale);
    }
    if (p->tangents)
        cpu_load(ws, vin, 1, io->dx ? io->dx : io->x, io->dx_scale);
    for (int i = 0; i < p->n_nodes; i++) {
        const struct nn_node *nd = &p->nodes[i];
        const struct cpu_view *v = &p->view[i];
        if (nd->op == NN_OP_CONV || nd->op == NN_OP_TCONV)
            cpu_exec_conv(p, i, ws);
        else if (nd->op == NN_OP_CONCAT)
            cpu_concat(ws, &p->view[nd->in[0]], &p->view[nd->in[1]], v, p->tangents);
        else if (nd->op == NN_OP_ADD)
            cpu_add(ws, &p->view[nd->in[0]], &p->view[nd->in[1]], v, nd->act, p->tangents);
        else if (nd->op == NN_OP_ACT && !p->fused[i])
            cpu_act(ws, &p->view[nd->in[0]], v, nd->act, nd->slope);
        else if (nd->op == NN_OP_UPSAMPLE)
            cpu_upsample(ws, &p->view[nd->in[0]], v, nd->mode);
    }
    cpu_store(ws, vout, 0, io->y, io->y_scale);
    if (p->tangents && io->dy)
        cpu_store(ws, vout, 1, io->dy, io->y_scale);
}

/* ---- teardown ------------------------------------------------------------------------------ */

static void cpu_conv_free(struct cpu_conv *cv)
{
    dnnl_primitive_t prims[4] = {cv->prim, cv->sum, cv->reorder_w, cv->reorder_dw};
    dnnl_memory_t mems[9] = {cv->m_src, cv->m_dst,    cv->m_w,       cv->m_dw,      cv->m_bias,
                             cv->m_sp,  cv->m_sp_sum, cv->m_stage_w, cv->m_stage_dw};
    for (int k = 0; k < 4; k++)
        if (prims[k])
            dnnl_primitive_destroy(prims[k]);
    for (int k = 0; k < 9; k++)
        if (mems[k])
            dnnl_memory_destroy(mems[k]);
    lm_free(cv->wbuf);
    lm_free(cv->dwbuf);
}

static void cpu_plan_free(struct nn_backend_plan *p)
{
    for (int i = 0; i < p->n_nodes; i++)
        cpu_conv_free(&p->conv[i]);
    lm_free(p->nodes);
    lm_free(p->descs);
    lm_free(p->view);
    lm_free(p->conv);
    lm_free(p->root);
    lm_free(p->fused);
    lm_free(p->params);
    lm_free(p->stage);
    lm_free(p);
}

static void cpu_plan_destroy(struct nn_backend_plan **p)
{
    if (!p || !*p)
        return;
    cpu_plan_free(*p);
    *p = NULL;
}

static void *cpu_workspace_alloc(size_t bytes) { return lm_malloc("nn.workspace", bytes); }

static const struct nn_backend cpu_backend = {
    .name = "cpu",
    .plan_create = cpu_plan_create,
    .plan_workspace = cpu_plan_workspace,
    .plan_memory = cpu_plan_memory,
    .plan_set_weights = cpu_plan_set_weights,
    .plan_execute = cpu_plan_execute,
    .plan_destroy = cpu_plan_destroy,
    .workspace_alloc = cpu_workspace_alloc,
    .workspace_free = lm_free,
    .space = NN_MEM_HOST,
    .plan_size = cpu_plan_size,
    .mem_available = NULL,
};

const struct nn_backend *nn_backend_cpu(void) { return &cpu_backend; }
