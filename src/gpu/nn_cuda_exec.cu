/* nn_cuda_exec — execution of a CUDA plan: weights upload, the node kernels, the pipelined
 * upload / compute / download of one execution, and per-node profiling.
 *
 * Streams: s_up copies inputs to the device, s_comp runs the graph, s_down copies outputs back.
 * Events order them: the upload of execution t+1 waits until execution t's input kernel has read
 * the device input staging (ev_in_consumed); execution t+1's output kernel waits until t's
 * download has left the device output staging (ev_d2h); pinned host buffers alternate between
 * two slots, so at most two executions are in flight. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <string.h>

#include "gpu/nn_cuda_dnn.cuh"
#include "gpu/nn_cuda_kernels.cuh"

static char *wptr(const struct nn_backend_plan *p, size_t off)
{
    return (char *)p->d_weights + off;
}

static const float *wfloat(const struct nn_backend_plan *p, size_t off)
{
    return (const float *)wptr(p, off);
}

/* ---- weights ------------------------------------------------------------------------------- */

/* Store v as element idx of a host array of storage type ks. */
static void put_elem(void *base, size_t idx, float v, enum kstore ks)
{
    switch (ks) {
    case KSTORE_F32:
        ((float *)base)[idx] = v;
        break;
    case KSTORE_BF16:
        ((__nv_bfloat16 *)base)[idx] = __float2bfloat16(v);
        break;
    case KSTORE_F16:
        ((__half *)base)[idx] = __float2half(v);
        break;
    }
}

/* Reorder premodulated weights src (the slot's PyTorch layout) into the device layout at byte
 * offset off of the host staging: CONV [cout_p][k^3][cin_p] (zero padding), TCONV
 * [cin][k^3][cout] (the GEMM's B matrix). */
static void stage_weights(struct nn_backend_plan *p, int s, const float *src, size_t off)
{
    const struct nn_conv_desc *d = &p->convs[s];
    const struct cslot *sl = &p->slot[s];
    enum kstore ks = kstore_of(p->opt.precision);
    int k3 = d->kernel * d->kernel * d->kernel;
    char *dst = (char *)p->h_weights + off;
    memset(dst, 0, sl->n_w * p->elem);
    for (int o = 0; o < d->cout; o++)
        for (int i = 0; i < d->cin; i++)
            for (int k = 0; k < k3; k++) {
                size_t from = d->transposed ? ((size_t)i * d->cout + o) * k3 + k
                                            : ((size_t)o * d->cin + i) * k3 + k;
                size_t to = d->transposed ? ((size_t)i * k3 + k) * d->cout + o
                                          : ((size_t)o * k3 + k) * sl->cin_p + i;
                put_elem(dst, to, src[from], ks);
            }
}

void nn_cuda_set_weights(struct nn_backend_plan *p, const struct nn_weights *w)
{
    CHECK(w->n_convs == p->n_convs, "nn cuda: weights for %d convolutions given to a plan of %d",
          w->n_convs, p->n_convs);
    CHECK(p->n_begun == p->n_ended, "nn cuda: weights set while an execution is in flight");
    CUDA_CHECK(cudaSetDevice(p->device));
    CUDA_CHECK(cudaStreamSynchronize(p->s_comp));
    for (int s = 0; s < p->n_convs; s++) {
        const struct nn_conv_desc *d = &p->convs[s];
        const struct nn_conv_weights *cw = &w->conv[s];
        struct cslot *sl = &p->slot[s];
        char *h = (char *)p->h_weights;
        stage_weights(p, s, cw->w, sl->w);
        if (p->tangents)
            stage_weights(p, s, cw->dw, sl->dw);
        memcpy(h + sl->bias, cw->bias, d->cout * sizeof(float));
        memcpy(h + sl->c, cw->c, d->cout * sizeof(float));
        memcpy(h + sl->ratio, cw->ratio, d->cin * sizeof(float));
        sl->ratio_ok = cw->ratio_ok;
    }
    CUDA_CHECK(cudaMemcpyAsync(p->d_weights, p->h_weights, p->weight_bytes, cudaMemcpyHostToDevice,
                               p->s_comp));
    CUDA_CHECK(cudaStreamSynchronize(p->s_comp));
}

/* ---- nodes --------------------------------------------------------------------------------- */

/* The ratio node i's writer applies to its tangent for its only reader, or NULL. */
static const float *next_ratio(const struct nn_backend_plan *p, int i)
{
    int j = p->cn[i].pre_for;
    if (j < 0)
        return NULL;
    const struct cslot *sl = &p->slot[p->cn[j].cv.slot];
    return sl->ratio_ok ? wfloat(p, sl->ratio) : NULL;
}

static long long scratch_elems(const struct nn_backend_plan *p, int i, size_t sub)
{
    return (long long)((p->buf[i].scratch_offset + sub) / p->elem);
}

static void exec_input(struct nn_backend_plan *p, int i, char *ws, const struct cflight *fl)
{
    struct in_args a;
    int k = 0;
    while (k + 1 < p->n_inputs && p->inputs[k] != i)
        k++;
    a.out = p->cn[i].view;
    a.x = p->d_in + p->in_off[k];
    a.has_dx = fl->has_dx;
    a.tangent = p->tangents;
    a.x_scale = fl->x_scale;
    a.dx_scale = fl->dx_scale;
    a.nr = next_ratio(p, i);
    k_input(kstore_of(p->opt.precision), ws, &a, p->s_comp);
    CUDA_CHECK(cudaEventRecord(p->ev_in_consumed, p->s_comp));
}

/* Element offsets of a convolution's value input and tangent-side input. */
struct conv_in {
    long long x, xt;
};

/* Prepare the inputs of convolution node i (packing, dx + x ratio) per its tangent mode. */
static struct conv_in conv_inputs(struct nn_backend_plan *p, int i, char *ws)
{
    const struct cn_conv *cv = &p->cn[i].cv;
    const struct cslot *sl = &p->slot[cv->slot];
    const struct gview *vx = &p->cn[p->nodes[i].in[0]].view;
    bool ratio = p->tangents && sl->ratio_ok;
    long long sin = scratch_elems(p, i, cv->scr_in);
    struct prep_args a;
    a.src = *vx;
    a.ratio = ratio ? wfloat(p, sl->ratio) : NULL;
    struct conv_in io = {vx->off, vx->off + vx->ts};
    if (cv->pack) {
        a.dst = gview_make(0, cv->cin_p, vx->n, 0);
        a.ox = sin;
        a.ot = p->tangents ? sin + gview_cells(vx) * cv->cin_p : -1;
        io.x = sin;
        io.xt = a.ot;
    } else if (ratio && cv->tan == CN_TAN_SCRATCH) {
        a.dst = gview_make(0, vx->c, vx->n, 0);
        a.ox = -1;
        a.ot = sin;
        io.xt = sin;
    } else if (ratio && cv->tan == CN_TAN_INPLACE) {
        a.dst = *vx;
        a.ox = -1;
        a.ot = vx->off + vx->ts;
    } else {
        return io;
    }
    k_prep(kstore_of(p->opt.precision), ws, &a, p->s_comp);
    return io;
}

/* The fields of an epilogue common to CONV and TCONV node i. */
static struct epi_args epilogue_base(const struct nn_backend_plan *p, int i)
{
    const struct cnode *c = &p->cn[i];
    const struct cslot *sl = &p->slot[c->cv.slot];
    struct epi_args e;
    memset(&e, 0, sizeof e);
    e.out = c->view;
    e.has_resid = c->cv.resid >= 0;
    if (e.has_resid)
        e.resid = p->cn[c->cv.resid].view;
    e.act = c->act == NN_ACT_LRELU;
    e.tangent = p->tangents;
    e.bias = wfloat(p, sl->bias);
    e.c = p->tangents && sl->ratio_ok ? wfloat(p, sl->c) : NULL;
    e.nr = next_ratio(p, i);
    return e;
}

static void exec_conv(struct nn_backend_plan *p, int i, char *ws)
{
    const struct cn_conv *cv = &p->cn[i].cv;
    const struct cslot *sl = &p->slot[cv->slot];
    struct conv_in in = conv_inputs(p, i, ws);
    struct dnn_geom g;
    nn_cuda_conv_geom(p, i, &g);
    const struct gview *out = &p->cn[i].view;
    long long z = cv->out_scratch ? scratch_elems(p, i, cv->scr_out) : out->off;
    long long zts = cv->out_scratch ? gview_cells(out) * cv->cout_p : out->ts;
    void *scr = ws + p->buf[i].scratch_offset + cv->scr_ws;
    const void *w = wptr(p, sl->w), *dw = wptr(p, sl->dw);
    dnn_forward(p->cudnn, &cv->dnn, &g, ws, in.x, z, w, 0.0f, scr);
    if (p->tangents && sl->ratio_ok) {
        dnn_forward(p->cudnn, &cv->dnn, &g, ws, in.xt, z + zts, w, 0.0f, scr);
    } else if (p->tangents) {
        dnn_forward(p->cudnn, &cv->dnn, &g, ws, in.x, z + zts, dw, 0.0f, scr);
        dnn_forward(p->cudnn, &cv->dnn, &g, ws, in.xt, z + zts, w, 1.0f, scr);
    }
    struct epi_args e = epilogue_base(p, i);
    e.src = gview_make(z, cv->cout_p, out->n, zts);
    k_epilogue(kstore_of(p->opt.precision), ws, &e, p->s_comp);
}

/* C[rows x n] = A[rows x k] B[k x n] (+ beta C), row-major, storage type, fp32 accumulation;
 * in row blocks that keep every operand under cuBLAS's 32-bit sizes. */
static void gemm_rows(struct nn_backend_plan *p, char *ws, long long a, long long rows, int k,
                      int n, const void *b, long long c, float beta)
{
    cudaDataType_t t = p->opt.precision == NN_CUDA_BF16   ? CUDA_R_16BF
                       : p->opt.precision == NN_CUDA_FP16 ? CUDA_R_16F
                                                          : CUDA_R_32F;
    cublasComputeType_t ct =
        p->opt.precision == NN_CUDA_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    long long block = NN_CUDA_MAX_ELEMS / (n > k ? n : k);
    float alpha = 1.0f;
    for (long long r = 0; r < rows; r += block) {
        int nr = (int)(rows - r < block ? rows - r : block);
        const char *ar = ws + (a + r * k) * p->elem;
        char *cr = ws + (c + r * n) * p->elem;
        /* column-major view: C^T (n x nr) = B^T (n x k) A^T (k x nr) */
        CUBLAS_CHECK(cublasGemmEx(p->cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, nr, k, &alpha, b, t, n,
                                  ar, t, k, &beta, cr, t, n, ct, CUBLAS_GEMM_DEFAULT));
    }
}

static void exec_tconv(struct nn_backend_plan *p, int i, char *ws)
{
    const struct nn_node *nd = &p->nodes[i];
    const struct nn_conv_desc *d = &p->convs[nd->conv];
    const struct cn_conv *cv = &p->cn[i].cv;
    const struct cslot *sl = &p->slot[cv->slot];
    struct conv_in in = conv_inputs(p, i, ws);
    const struct nn_shape *s_in = &p->nodes[nd->in[0]].shape;
    long long rows = (long long)s_in->n[0] * s_in->n[1] * s_in->n[2];
    int n = d->kernel * d->kernel * d->kernel * d->cout;
    long long g = scratch_elems(p, i, cv->scr_out), gts = rows * n;
    const void *w = wptr(p, sl->w), *dw = wptr(p, sl->dw);
    gemm_rows(p, ws, in.x, rows, d->cin, n, w, g, 0.0f);
    if (p->tangents && sl->ratio_ok) {
        gemm_rows(p, ws, in.xt, rows, d->cin, n, w, g + gts, 0.0f);
    } else if (p->tangents) {
        gemm_rows(p, ws, in.x, rows, d->cin, n, dw, g + gts, 0.0f);
        gemm_rows(p, ws, in.xt, rows, d->cin, n, w, g + gts, 1.0f);
    }
    struct epi_args e = epilogue_base(p, i);
    e.tconv = 1;
    e.tk = d->kernel;
    e.tsd = d->stride;
    for (int a = 0; a < 3; a++)
        e.in_n[a] = s_in->n[a];
    e.g_off = g;
    e.g_ts = gts;
    k_epilogue(kstore_of(p->opt.precision), ws, &e, p->s_comp);
}

static void exec_add(struct nn_backend_plan *p, int i, char *ws)
{
    const struct nn_node *nd = &p->nodes[i];
    struct add_args a;
    a.out = p->cn[i].view;
    a.a = p->cn[nd->in[0]].view;
    a.b = p->cn[nd->in[1]].view;
    a.act = nd->act == NN_ACT_LRELU;
    a.tangent = p->tangents;
    a.nr = next_ratio(p, i);
    k_add(kstore_of(p->opt.precision), ws, &a, p->s_comp);
}

static void exec_act(struct nn_backend_plan *p, int i, char *ws)
{
    const struct nn_node *nd = &p->nodes[i];
    struct act_args a;
    a.out = p->cn[i].view;
    a.in = p->cn[nd->in[0]].view;
    a.act = (int)nd->act;
    a.slope = nd->slope;
    k_act(kstore_of(p->opt.precision), ws, &a, p->s_comp);
}

static void exec_upsample(struct nn_backend_plan *p, int i, char *ws)
{
    const struct nn_node *nd = &p->nodes[i];
    struct up_args a;
    a.out = p->cn[i].view;
    a.in = p->cn[nd->in[0]].view;
    a.trilinear = nd->mode == NN_UPSAMPLE_TRILINEAR;
    k_upsample(kstore_of(p->opt.precision), ws, &a, p->s_comp);
}

static void exec_concat(struct nn_backend_plan *p, int i, char *ws)
{
    const struct nn_node *nd = &p->nodes[i];
    for (int s = 0; s < 2; s++) {
        if (p->cn[i].hosted_in == s)
            continue;
        struct gview dst = p->cn[i].view;
        if (s == 1)
            dst.off += p->nodes[nd->in[0]].shape.c;
        dst.c = p->nodes[nd->in[s]].shape.c;
        k_copy(kstore_of(p->opt.precision), ws, &dst, &p->cn[nd->in[s]].view, p->slots, p->s_comp);
    }
}

/* Queue every node of the graph on s_comp. */
static void run_graph(struct nn_backend_plan *p, char *ws, const struct cflight *fl)
{
    for (int i = 0; i < p->n_nodes; i++) {
        if (p->profiling)
            CUDA_CHECK(cudaEventRecord(p->ev_node[i], p->s_comp));
        if (!p->cn[i].exec)
            continue;
        switch (p->nodes[i].op) {
        case NN_OP_INPUT:
            exec_input(p, i, ws, fl);
            break;
        case NN_OP_CONV:
            exec_conv(p, i, ws);
            break;
        case NN_OP_TCONV:
            exec_tconv(p, i, ws);
            break;
        case NN_OP_ADD:
            exec_add(p, i, ws);
            break;
        case NN_OP_CONCAT:
            exec_concat(p, i, ws);
            break;
        case NN_OP_ACT:
            exec_act(p, i, ws);
            break;
        case NN_OP_UPSAMPLE:
            exec_upsample(p, i, ws);
            break;
        case NN_OP_CROP:
            break;
        }
    }
}

/* ---- host staging -------------------------------------------------------------------------- */

static bool same_shape(struct nn_shape a, struct nn_shape b)
{
    return a.c == b.c && a.n[0] == b.n[0] && a.n[1] == b.n[1] && a.n[2] == b.n[2];
}

/* Copy strided host tensor t into dense fp32 dst [c][n0][n1][n2]. */
static void pack_host(float *dst, const struct nn_tensor *t)
{
    const struct nn_shape *s = &t->shape;
    for (int c = 0; c < s->c; c++)
        for (int i = 0; i < s->n[0]; i++)
            for (int j = 0; j < s->n[1]; j++) {
                const float *src = t->data + c * t->stride[0] + i * t->stride[1] + j * t->stride[2];
                if (t->stride[3] == 1) {
                    memcpy(dst, src, s->n[2] * sizeof(float));
                } else {
                    for (int k = 0; k < s->n[2]; k++)
                        dst[k] = src[k * t->stride[3]];
                }
                dst += s->n[2];
            }
}

/* Copy dense fp32 src [c][n0][n1][n2] into strided host tensor t. */
static void unpack_host(const float *src, const struct nn_tensor *t)
{
    const struct nn_shape *s = &t->shape;
    for (int c = 0; c < s->c; c++)
        for (int i = 0; i < s->n[0]; i++)
            for (int j = 0; j < s->n[1]; j++) {
                float *dst = t->data + c * t->stride[0] + i * t->stride[1] + j * t->stride[2];
                if (t->stride[3] == 1) {
                    memcpy(dst, src, s->n[2] * sizeof(float));
                } else {
                    for (int k = 0; k < s->n[2]; k++)
                        dst[k * t->stride[3]] = src[k];
                }
                src += s->n[2];
            }
}

static void check_io(const struct nn_backend_plan *p, const struct nn_io *io)
{
    struct nn_shape si = p->nodes[p->input].shape, so = p->nodes[p->output].shape;
    CHECK(io->x && same_shape(io->x->shape, si), "nn cuda: the input must have shape %dx%dx%dx%d",
          si.c, si.n[0], si.n[1], si.n[2]);
    CHECK(!io->dx || same_shape(io->dx->shape, si), "nn cuda: dx must have the input's shape");
    for (int k = 1; k < p->n_inputs; k++) {
        struct nn_shape sk = p->nodes[p->inputs[k]].shape;
        CHECK(io->more[k - 1] && same_shape(io->more[k - 1]->shape, sk),
              "nn cuda: input %d must have shape %dx%dx%dx%d", k + 1, sk.c, sk.n[0], sk.n[1],
              sk.n[2]);
    }
    CHECK(io->y && same_shape(io->y->shape, so), "nn cuda: the output must have shape %dx%dx%dx%d",
          so.c, so.n[0], so.n[1], so.n[2]);
    CHECK(!io->dy || same_shape(io->dy->shape, so), "nn cuda: dy must have the output's shape");
}

/* ---- profiling ----------------------------------------------------------------------------- */

/* Add the per-node times of the execution whose events were recorded last. */
static void profile_collect(struct nn_backend_plan *p, struct cflight *fl)
{
    if (!fl->prof_pending)
        return;
    fl->prof_pending = false;
    CUDA_CHECK(cudaEventSynchronize(p->ev_node[p->n_nodes]));
    for (int i = 0; i < p->n_nodes; i++) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, p->ev_node[i], p->ev_node[i + 1]));
        p->node_ms[i] += ms;
    }
    p->n_profiled++;
}

void nn_cuda_plan_set_profiling(struct nn_plan *pl, bool on)
{
    struct nn_backend_plan *p = nn_cuda_impl(pl);
    CHECK(p->n_begun == p->n_ended, "nn cuda: profiling switched while an execution is in flight");
    CUDA_CHECK(cudaSetDevice(p->device));
    nn_cuda_plan_free_profiling(p);
    if (!on)
        return;
    p->ev_node = (cudaEvent_t *)lm_calloc("nn.cuda.profile", p->n_nodes + 1, sizeof *p->ev_node);
    p->node_ms = (double *)lm_calloc("nn.cuda.profile", p->n_nodes, sizeof *p->node_ms);
    for (int i = 0; i <= p->n_nodes; i++)
        CUDA_CHECK(cudaEventCreate(&p->ev_node[i]));
    p->n_profiled = 0;
    p->profiling = true;
}

void nn_cuda_plan_profile_report(const struct nn_plan *pl, FILE *f)
{
    const struct nn_backend_plan *p = nn_cuda_impl(pl);
    static const char *const ops[] = {"input", "conv", "tconv", "crop", "concat", "add"};
    if (!p->profiling || p->n_profiled == 0) {
        fprintf(f, "nn cuda: no profiled executions\n");
        return;
    }
    double total = 0;
    for (int i = 0; i < p->n_nodes; i++)
        total += p->node_ms[i];
    fprintf(f, "%-28s %-7s %-20s %10s %6s\n", "node", "op", "shape", "ms", "share");
    for (int i = 0; i < p->n_nodes; i++) {
        const struct nn_node *nd = &p->nodes[i];
        char shape[64];
        snprintf(shape, sizeof shape, "%dx%dx%dx%d", nd->shape.c, nd->shape.n[0], nd->shape.n[1],
                 nd->shape.n[2]);
        double ms = p->node_ms[i] / p->n_profiled;
        fprintf(f, "%-28s %-7s %-20s %10.3f %5.1f%%\n", nd->name, ops[nd->op], shape, ms,
                total > 0 ? 100.0 * p->node_ms[i] / total : 0.0);
    }
    fprintf(f, "%-28s %-7s %-20s %10.3f\n", "total", "", "", total / p->n_profiled);
}

/* ---- execution ----------------------------------------------------------------------------- */

/* Upload the inputs of io through pinned slot s (the slot's previous upload has finished). */
static void upload_inputs(struct nn_backend_plan *p, const struct nn_io *io, int s)
{
    CUDA_CHECK(cudaEventSynchronize(p->ev_h2d[s]));
    pack_host(p->h_in[s], io->x);
    for (int k = 1; k < p->n_inputs; k++)
        pack_host(p->h_in[s] + p->in_off[k], io->more[k - 1]);
    bool dx = p->tangents && io->dx;
    if (dx)
        pack_host(p->h_in[s] + p->in_elems, io->dx);
    size_t bytes = p->in_elems * sizeof(float) * (dx ? 2 : 1);
    CUDA_CHECK(cudaStreamWaitEvent(p->s_up, p->ev_in_consumed, 0));
    CUDA_CHECK(cudaMemcpyAsync(p->d_in, p->h_in[s], bytes, cudaMemcpyHostToDevice, p->s_up));
    CUDA_CHECK(cudaEventRecord(p->ev_h2d[s], p->s_up));
    CUDA_CHECK(cudaStreamWaitEvent(p->s_comp, p->ev_h2d[s], 0));
}

/* Convert the graph output into the device staging and queue its download into pinned slot s. */
static void download_outputs(struct nn_backend_plan *p, char *ws, int s)
{
    const struct cflight *fl = &p->flight[s];
    bool dy = p->tangents && fl->has_dy;
    CUDA_CHECK(cudaStreamWaitEvent(p->s_comp, p->ev_d2h[1 - s], 0));
    k_output(kstore_of(p->opt.precision), ws, &p->cn[p->output].view, p->d_out, dy, fl->y_scale,
             p->s_comp);
    if (p->profiling)
        CUDA_CHECK(cudaEventRecord(p->ev_node[p->n_nodes], p->s_comp));
    CUDA_CHECK(cudaEventRecord(p->ev_out_ready, p->s_comp));
    CUDA_CHECK(cudaStreamWaitEvent(p->s_down, p->ev_out_ready, 0));
    size_t bytes = p->out_elems * sizeof(float) * (dy ? 2 : 1);
    CUDA_CHECK(cudaMemcpyAsync(p->h_out[s], p->d_out, bytes, cudaMemcpyDeviceToHost, p->s_down));
    CUDA_CHECK(cudaEventRecord(p->ev_d2h[s], p->s_down));
}

void nn_cuda_execute_begin(struct nn_plan *pl, const struct nn_io *io, void *workspace)
{
    struct nn_backend_plan *p = nn_cuda_impl(pl);
    CHECK(pl->generation != 0, "nn plan: executed before any weights were set");
    CHECK(p->n_begun - p->n_ended < 2, "nn cuda: a third execution begun before the first ended");
    check_io(p, io);
    CUDA_CHECK(cudaSetDevice(p->device));
    int s = (int)(p->n_begun % 2);
    if (p->profiling && p->n_begun > p->n_ended)
        profile_collect(p, &p->flight[1 - s]);
    struct cflight *fl = &p->flight[s];
    fl->y = *io->y;
    fl->has_dy = io->dy != NULL;
    if (io->dy)
        fl->dy = *io->dy;
    fl->has_dx = io->dx != NULL;
    fl->x_scale = io->x_scale;
    fl->dx_scale = io->dx_scale;
    fl->y_scale = io->y_scale;
    upload_inputs(p, io, s);
    run_graph(p, (char *)workspace, fl);
    download_outputs(p, (char *)workspace, s);
    fl->prof_pending = p->profiling;
    p->n_begun++;
}

void nn_cuda_execute_end(struct nn_plan *pl)
{
    struct nn_backend_plan *p = nn_cuda_impl(pl);
    CHECK(p->n_ended < p->n_begun, "nn cuda: no execution in flight");
    int s = (int)(p->n_ended % 2);
    struct cflight *fl = &p->flight[s];
    CUDA_CHECK(cudaSetDevice(p->device));
    CUDA_CHECK(cudaEventSynchronize(p->ev_d2h[s]));
    CUDA_CHECK(cudaGetLastError());
    if (p->profiling)
        profile_collect(p, fl);
    unpack_host(p->h_out[s], &fl->y);
    if (p->tangents && fl->has_dy)
        unpack_host(p->h_out[s] + p->out_elems, &fl->dy);
    p->n_ended++;
}

int nn_cuda_in_flight(const struct nn_plan *pl)
{
    const struct nn_backend_plan *p = nn_cuda_impl(pl);
    return (int)(p->n_begun - p->n_ended);
}

/* The vtable's synchronous execution: the generic wrapper already checked the weights. */
void nn_cuda_execute(struct nn_backend_plan *p, const struct nn_io *io, void *workspace)
{
    CHECK(p->n_begun == p->n_ended, "nn cuda: synchronous execution while another is in flight");
    struct nn_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.backend = nn_backend_cuda_with(&p->opt);
    pl.impl = p;
    pl.tangents = p->tangents;
    pl.generation = 1;
    nn_cuda_execute_begin(&pl, io, workspace);
    nn_cuda_execute_end(&pl);
}
