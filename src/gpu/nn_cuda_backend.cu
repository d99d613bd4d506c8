/* nn_cuda_backend — the nn_backend instances of the CUDA backend (one per precision and algorithm
 * search): plan creation and destruction, sizing without allocation, the device's free memory,
 * and plan facts. */
#include <string.h>

#include "gpu/nn_cuda_dnn.cuh"
#include "gpu/nn_cuda_kernels.cuh"

static const char *const precision_names[NN_CUDA_N_PRECISION] = {"fp32", "tf32", "bf16", "fp16"};

const char *nn_cuda_precision_name(enum nn_cuda_precision p)
{
    return (int)p >= 0 && p < NN_CUDA_N_PRECISION ? precision_names[p] : NULL;
}

bool nn_cuda_precision_parse(const char *name, enum nn_cuda_precision *p)
{
    for (int i = 0; i < NN_CUDA_N_PRECISION; i++)
        if (strcmp(name, precision_names[i]) == 0) {
            *p = (enum nn_cuda_precision)i;
            return true;
        }
    return false;
}

enum kstore kstore_of(enum nn_cuda_precision p)
{
    return p == NN_CUDA_BF16 ? KSTORE_BF16 : p == NN_CUDA_FP16 ? KSTORE_F16 : KSTORE_F32;
}

int nn_cuda_elem_bytes(enum nn_cuda_precision p)
{
    return p == NN_CUDA_BF16 || p == NN_CUDA_FP16 ? 2 : 4;
}

/* ---- vtable functions ---------------------------------------------------------------------- */

template <int P, int M>
static struct nn_backend_plan *plan_create_inst(const struct nn_graph *g, bool tangents,
                                                struct lm_err *err)
{
    struct nn_cuda_options o;
    o.precision = (enum nn_cuda_precision)P;
    o.algo_search = (enum nn_cuda_algo_search)M;
    return nn_cuda_plan_create(&o, g, tangents, err);
}

/* Sizes without a plan: the layout and cuDNN's workspace queries on a temporary handle. */
template <int P, int M>
static bool plan_size_inst(const struct nn_graph *g, bool tangents, size_t *workspace,
                           size_t *memory, struct lm_err *err)
{
    struct nn_cuda_options o;
    o.precision = (enum nn_cuda_precision)P;
    o.algo_search = (enum nn_cuda_algo_search)M;
    cudnnHandle_t h = NULL;
    cudnnStatus_t st = cudnnCreate(&h);
    if (st != CUDNN_STATUS_SUCCESS)
        return lm_err_set(err, "nn cuda: cudnnCreate failed: %s", cudnnGetErrorString(st));
    bool ok = nn_cuda_size_with(h, &o, g, tangents, workspace, memory, err);
    cudnnDestroy(h);
    return ok;
}

/* The current device's free memory. */
static bool mem_available(size_t *bytes, struct lm_err *err)
{
    size_t total = 0;
    CUDA_TRY(err, cudaMemGetInfo(bytes, &total));
    return true;
}

static size_t plan_workspace(const struct nn_backend_plan *p) { return p->workspace; }

static size_t plan_memory(const struct nn_backend_plan *p) { return nn_cuda_plan_held_bytes(p); }

static void *workspace_alloc(size_t bytes)
{
    void *ptr = NULL;
    size_t n = bytes > NN_CUDA_ALIGN ? bytes : NN_CUDA_ALIGN;
    cudaError_t rc = cudaMalloc(&ptr, n);
    CHECK(rc == cudaSuccess, "nn cuda: cannot allocate a device workspace of %.1f MiB: %s",
          n / 1048576.0, cudaGetErrorString(rc));
    return ptr;
}

static void workspace_free(void *ptr)
{
    if (ptr)
        CUDA_CHECK(cudaFree(ptr));
}

#define CUDA_INSTANCE(P, M, NAME)                                                                  \
    {                                                                                              \
        NAME, plan_create_inst<P, M>, plan_workspace, plan_memory, nn_cuda_set_weights,            \
            nn_cuda_execute, nn_cuda_plan_destroy, workspace_alloc, workspace_free, NN_MEM_DEVICE, \
            plan_size_inst<P, M>, mem_available                                                    \
    }

static const struct nn_backend cuda_instances[NN_CUDA_N_PRECISION][2] = {
    {CUDA_INSTANCE(0, 0, "cuda-fp32"), CUDA_INSTANCE(0, 1, "cuda-fp32-measured")},
    {CUDA_INSTANCE(1, 0, "cuda-tf32"), CUDA_INSTANCE(1, 1, "cuda-tf32-measured")},
    {CUDA_INSTANCE(2, 0, "cuda-bf16"), CUDA_INSTANCE(2, 1, "cuda-bf16-measured")},
    {CUDA_INSTANCE(3, 0, "cuda-fp16"), CUDA_INSTANCE(3, 1, "cuda-fp16-measured")},
};

const struct nn_backend *nn_backend_cuda_with(const struct nn_cuda_options *o)
{
    if ((int)o->precision < 0 || o->precision >= NN_CUDA_N_PRECISION ||
        (o->algo_search != NN_CUDA_ALGO_HEURISTIC && o->algo_search != NN_CUDA_ALGO_MEASURE))
        return NULL;
    return &cuda_instances[o->precision][o->algo_search == NN_CUDA_ALGO_MEASURE];
}

const struct nn_backend *nn_backend_cuda_precision(enum nn_cuda_precision p)
{
    struct nn_cuda_options o;
    o.precision = p;
    o.algo_search = NN_CUDA_ALGO_HEURISTIC;
    return nn_backend_cuda_with(&o);
}

const struct nn_backend *nn_backend_cuda(void) { return nn_backend_cuda_precision(NN_CUDA_FP32); }

bool nn_backend_is_cuda(const struct nn_backend *be)
{
    const struct nn_backend *first = &cuda_instances[0][0];
    return be >= first && be < first + 2 * NN_CUDA_N_PRECISION;
}

struct nn_cuda_options nn_cuda_backend_options(const struct nn_backend *be)
{
    CHECK(nn_backend_is_cuda(be), "nn cuda: backend '%s' is not a CUDA backend", be->name);
    long k = be - &cuda_instances[0][0];
    struct nn_cuda_options o;
    o.precision = (enum nn_cuda_precision)(k / 2);
    o.algo_search = k % 2 ? NN_CUDA_ALGO_MEASURE : NN_CUDA_ALGO_HEURISTIC;
    return o;
}

struct nn_backend_plan *nn_cuda_impl(const struct nn_plan *p)
{
    CHECK(nn_backend_is_cuda(p->backend), "nn cuda: plan of backend '%s' is not a CUDA plan",
          p->backend->name);
    return p->impl;
}

/* ---- creation ------------------------------------------------------------------------------ */

/* Plan fields that depend only on the options. */
static struct nn_backend_plan *plan_new(const struct nn_cuda_options *opt, bool tangents)
{
    struct nn_backend_plan *p = (struct nn_backend_plan *)lm_calloc("nn.cuda.plan", 1, sizeof *p);
    p->opt = *opt;
    p->elem = nn_cuda_elem_bytes(opt->precision);
    p->tangents = tangents;
    p->slots = tangents ? 2 : 1;
    return p;
}

/* Device, streams and library handles. */
static bool plan_init_device(struct nn_backend_plan *p, struct lm_err *err)
{
    CUDA_TRY(err, cudaGetDevice(&p->device));
    CUDA_TRY(err, cudaStreamCreateWithFlags(&p->s_comp, cudaStreamNonBlocking));
    CUDA_TRY(err, cudaStreamCreateWithFlags(&p->s_up, cudaStreamNonBlocking));
    CUDA_TRY(err, cudaStreamCreateWithFlags(&p->s_down, cudaStreamNonBlocking));
    CUDNN_TRY(err, cudnnCreate(&p->cudnn));
    CUDNN_TRY(err, cudnnSetStream(p->cudnn, p->s_comp));
    CUBLAS_TRY(err, cublasCreate(&p->cublas));
    CUBLAS_TRY(err, cublasSetStream(p->cublas, p->s_comp));
    return true;
}

/* Events of the pipeline: ordering only, no timing. */
static bool plan_events(struct nn_backend_plan *p, struct lm_err *err)
{
    unsigned fl = cudaEventDisableTiming;
    CUDA_TRY(err, cudaEventCreateWithFlags(&p->ev_in_consumed, fl));
    CUDA_TRY(err, cudaEventCreateWithFlags(&p->ev_out_ready, fl));
    for (int s = 0; s < 2; s++) {
        CUDA_TRY(err, cudaEventCreateWithFlags(&p->ev_h2d[s], fl));
        CUDA_TRY(err, cudaEventCreateWithFlags(&p->ev_d2h[s], fl));
    }
    return true;
}

/* Plan-held memory: weights, staging (device and pinned), cuBLAS workspace. */
static bool plan_alloc(struct nn_backend_plan *p, struct lm_err *err)
{
    size_t in_bytes = p->in_elems * sizeof(float) * (p->tangents ? 2 : 1);
    size_t out_bytes = p->out_elems * sizeof(float) * p->slots;
    CUDA_TRY(err, cudaMalloc(&p->d_weights, p->weight_bytes));
    CUDA_TRY(err, cudaMemset(p->d_weights, 0, p->weight_bytes));
    p->h_weights = lm_malloc("nn.cuda.weights", p->weight_bytes);
    CUDA_TRY(err, cudaMalloc((void **)&p->d_in, in_bytes));
    CUDA_TRY(err, cudaMalloc((void **)&p->d_out, out_bytes));
    for (int s = 0; s < 2; s++) {
        CUDA_TRY(err, cudaMallocHost((void **)&p->h_in[s], in_bytes));
        CUDA_TRY(err, cudaMallocHost((void **)&p->h_out[s], out_bytes));
    }
    if (nn_cuda_plan_has_tconv(p)) {
        p->cublas_ws_bytes = NN_CUDA_CUBLAS_WS;
        CUDA_TRY(err, cudaMalloc(&p->cublas_ws, p->cublas_ws_bytes));
        CUBLAS_TRY(err, cublasSetWorkspace(p->cublas, p->cublas_ws, p->cublas_ws_bytes));
    }
    return plan_events(p, err);
}

struct nn_backend_plan *nn_cuda_plan_create(const struct nn_cuda_options *opt,
                                            const struct nn_graph *g, bool tangents,
                                            struct lm_err *err)
{
    struct nn_backend_plan *p = plan_new(opt, tangents);
    int mode = opt->algo_search == NN_CUDA_ALGO_MEASURE ? DNN_MEASURE : DNN_HEURISTIC;
    if (!plan_init_device(p, err) || !nn_cuda_plan_layout(p, g, p->cudnn, mode, err) ||
        !plan_alloc(p, err)) {
        nn_cuda_plan_destroy(&p);
        return NULL;
    }
    return p;
}

void nn_cuda_plan_free_raw(struct nn_backend_plan *p)
{
    if (!p->have_raw)
        return;
    cudaFree(p->raw.d_raw);
    cudaFree(p->raw.d_u);
    lm_free(p->raw.off_w);
    lm_free(p->raw.h_style);
    lm_free(p->raw.off_style);
    lm_free(p->raw.h_u);
    lm_free(p->raw.off_u);
    memset(&p->raw, 0, sizeof p->raw);
    p->have_raw = false;
}

/* Destroy the profiling events of p. */
void nn_cuda_plan_free_profiling(struct nn_backend_plan *p)
{
    if (p->ev_node)
        for (int i = 0; i <= p->n_nodes; i++)
            if (p->ev_node[i])
                cudaEventDestroy(p->ev_node[i]);
    lm_free(p->ev_node);
    lm_free(p->node_ms);
    p->ev_node = NULL;
    p->node_ms = NULL;
    p->profiling = false;
}

/* Destroy the streams, events and handles of p (each NULL-safe). */
static void plan_free_device(struct nn_backend_plan *p)
{
    cudaEvent_t ev[6] = {p->ev_in_consumed, p->ev_out_ready, p->ev_h2d[0],
                         p->ev_h2d[1],      p->ev_d2h[0],    p->ev_d2h[1]};
    for (int i = 0; i < 6; i++)
        if (ev[i])
            cudaEventDestroy(ev[i]);
    if (p->cublas)
        cublasDestroy(p->cublas);
    if (p->cudnn)
        cudnnDestroy(p->cudnn);
    cudaStream_t st[3] = {p->s_comp, p->s_up, p->s_down};
    for (int i = 0; i < 3; i++)
        if (st[i])
            cudaStreamDestroy(st[i]);
}

void nn_cuda_plan_destroy(struct nn_backend_plan **pp)
{
    if (!pp || !*pp)
        return;
    struct nn_backend_plan *p = *pp;
    cudaStream_t st[3] = {p->s_comp, p->s_up, p->s_down};
    for (int i = 0; i < 3; i++)
        if (st[i])
            cudaStreamSynchronize(st[i]);
    nn_cuda_plan_free_profiling(p);
    nn_cuda_plan_free_raw(p);
    cudaFree(p->d_weights);
    cudaFree(p->d_in);
    cudaFree(p->d_out);
    cudaFree(p->cublas_ws);
    for (int s = 0; s < 2; s++) {
        cudaFreeHost(p->h_in[s]);
        cudaFreeHost(p->h_out[s]);
    }
    lm_free(p->h_weights);
    plan_free_device(p);
    nn_cuda_plan_free_layout(p);
    lm_free(p);
    *pp = NULL;
}

/* ---- sizing and facts ---------------------------------------------------------------------- */

bool nn_cuda_size_with(cudnnHandle_t h, const struct nn_cuda_options *opt, const struct nn_graph *g,
                       bool tangents, size_t *workspace, size_t *memory, struct lm_err *err)
{
    if (!nn_graph_ok(g))
        return lm_err_set(err, "%s", g->err.msg);
    if (g->input < 0 || g->output < 0)
        return lm_err_set(err, "nn plan: the graph has no %s node",
                          g->input < 0 ? "input" : "output");
    struct nn_backend_plan *p = plan_new(opt, tangents);
    int mode = opt->algo_search == NN_CUDA_ALGO_MEASURE ? DNN_RESERVE : DNN_HEURISTIC;
    bool ok = nn_cuda_plan_layout(p, g, h, mode, err);
    if (ok) {
        *workspace = p->workspace;
        *memory = nn_cuda_plan_held_bytes(p);
    }
    nn_cuda_plan_free_layout(p);
    lm_free(p);
    return ok;
}

void nn_cuda_plan_get_info(const struct nn_plan *pl, struct nn_cuda_plan_info *info)
{
    const struct nn_backend_plan *p = nn_cuda_impl(pl);
    memset(info, 0, sizeof *info);
    info->precision = p->opt.precision;
    info->device = p->device;
    info->workspace = p->workspace;
    info->weight_bytes = p->weight_bytes;
    info->staging_bytes = nn_cuda_plan_held_bytes(p) - p->weight_bytes - p->cublas_ws_bytes;
    info->pinned_bytes =
        2 * (p->in_elems * (p->tangents ? 2 : 1) + p->out_elems * p->slots) * sizeof(float);
    info->cudnn_ws_max = p->cudnn_ws_max;
    for (int i = 0; i < p->n_nodes; i++) {
        const struct cnode *c = &p->cn[i];
        info->n_fused_adds += c->fused_into >= 0;
        info->n_hosted_concats += c->hosted_in >= 0;
        bool conv = p->nodes[i].op == NN_OP_CONV || p->nodes[i].op == NN_OP_TCONV;
        info->n_producer_tangent += conv && c->cv.tan == CN_TAN_PRODUCER;
    }
}
