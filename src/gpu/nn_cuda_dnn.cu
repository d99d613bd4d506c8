/* nn_cuda_dnn — cuDNN convolutions of the CUDA NN backend: NDHWC descriptors, slabs that keep
 * every tensor under cuDNN's 32-bit element limit, algorithm choice (heuristic or measured) and
 * the forward call. Uses cuDNN's convolution API (cudnn_cnn.h), all return codes checked. */
#include "gpu/nn_cuda_dnn.cuh"

/* Workspace allowed to one convolution: a quarter of its output slab, at least 64 MiB. */
static size_t dnn_ws_cap(size_t out_slab_bytes)
{
    size_t floor_bytes = (size_t)64 << 20;
    return out_slab_bytes / 4 > floor_bytes ? out_slab_bytes / 4 : floor_bytes;
}

cudnnDataType_t dnn_dtype(enum nn_cuda_precision p)
{
    return p == NN_CUDA_BF16   ? CUDNN_DATA_BFLOAT16
           : p == NN_CUDA_FP16 ? CUDNN_DATA_HALF
                               : CUDNN_DATA_FLOAT;
}

/* The math type requested from cuDNN: exact FMA for fp32, tensor cores otherwise. */
static cudnnMathType_t dnn_math(enum nn_cuda_precision p)
{
    return p == NN_CUDA_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

/* The math type to run an offered algorithm with: fp32 always FMA (cuDNN's default math type
 * allows tf32 on Ampere and later); otherwise the offered one, never with down-conversion. */
static bool dnn_math_for(enum nn_cuda_precision p, cudnnMathType_t offered, cudnnMathType_t *m)
{
    *m = p == NN_CUDA_FP32 ? CUDNN_FMA_MATH : offered;
    return offered != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

/* Output rows per slab so that the input and output slabs stay under NN_CUDA_MAX_ELEMS. */
static int dnn_slab_rows(const struct dnn_geom *g)
{
    long long in_plane = (long long)g->n[1] * g->n[2] * g->cin_p;
    long long out_plane = (long long)g->m[1] * g->m[2] * g->cout_p;
    long long r_out = NN_CUDA_MAX_ELEMS / out_plane;
    long long r_in = (NN_CUDA_MAX_ELEMS / in_plane - g->k) / g->s + 1;
    long long r = g->m[0];
    if (r_out < r)
        r = r_out;
    if (r_in < r)
        r = r_in;
    return (int)r;
}

/* Set descriptors of slab kind c (rows output rows) and check cuDNN's output shape. */
static bool dnn_slab_desc(struct cn_cudnn *d, const struct dnn_geom *g, int c, int rows,
                          struct lm_err *err)
{
    cudnnDataType_t dt = dnn_dtype(g->prec);
    int xdim[5] = {1, g->cin_p, (rows - 1) * g->s + g->k, g->n[1], g->n[2]};
    int ydim[5] = {1, g->cout_p, rows, g->m[1], g->m[2]};
    int pad[3] = {0, 0, 0}, stride[3] = {g->s, g->s, g->s}, dil[3] = {1, 1, 1};
    CUDNN_TRY(err, cudnnSetTensorNdDescriptorEx(d->xd[c], CUDNN_TENSOR_NHWC, dt, 5, xdim));
    CUDNN_TRY(err, cudnnSetTensorNdDescriptorEx(d->yd[c], CUDNN_TENSOR_NHWC, dt, 5, ydim));
    CUDNN_TRY(err, cudnnSetConvolutionNdDescriptor(d->cdesc[c], 3, pad, stride, dil,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_TRY(err, cudnnSetConvolutionMathType(d->cdesc[c], dnn_math(g->prec)));
    int odim[5];
    CUDNN_TRY(err, cudnnGetConvolutionNdForwardOutputDim(d->cdesc[c], d->xd[c], d->wdesc, 5, odim));
    for (int a = 0; a < 5; a++)
        if (odim[a] != ydim[a])
            return lm_err_set(err,
                              "nn cuda: cuDNN output shape of a %d-slab of '%s' differs from "
                              "the graph's (axis %d: %d, expected %d)",
                              rows, g->name, a, odim[a], ydim[a]);
    return true;
}

/* Accept perf entry e (status, math type, workspace cap) and fix the math type on cdesc; the
 * workspace query under that math type confirms the combination. */
static bool dnn_accept(cudnnHandle_t h, struct cn_cudnn *d, int c, const struct dnn_geom *g,
                       const cudnnConvolutionFwdAlgoPerf_t *e, size_t cap, size_t *ws)
{
    cudnnMathType_t math;
    if (e->status != CUDNN_STATUS_SUCCESS || !dnn_math_for(g->prec, e->mathType, &math) ||
        e->memory > cap)
        return false;
    if (cudnnSetConvolutionMathType(d->cdesc[c], math) != CUDNN_STATUS_SUCCESS)
        return false;
    if (cudnnGetConvolutionForwardWorkspaceSize(h, d->xd[c], d->wdesc, d->cdesc[c], d->yd[c],
                                                e->algo, ws) != CUDNN_STATUS_SUCCESS ||
        *ws > cap) {
        cudnnSetConvolutionMathType(d->cdesc[c], dnn_math(g->prec));
        return false;
    }
    d->algo[c] = e->algo;
    return true;
}

/* Time the candidates of slab kind c on the device with temporary buffers (patterned, finite
 * data). Fills perf/n; false (err) when the buffers cannot be allocated or cuDNN fails. */
static bool dnn_measure(cudnnHandle_t h, struct cn_cudnn *d, int c, const struct dnn_geom *g,
                        int rows, size_t cap, cudnnConvolutionFwdAlgoPerf_t *perf, int *n,
                        struct lm_err *err)
{
    size_t e = g->elem;
    size_t xb = (size_t)((rows - 1) * g->s + g->k) * g->n[1] * g->n[2] * g->cin_p * e;
    size_t yb = (size_t)rows * g->m[1] * g->m[2] * g->cout_p * e;
    size_t wb = (size_t)g->cout_p * g->cin_p * g->k * g->k * g->k * e;
    void *x = NULL, *y = NULL, *w = NULL, *ws = NULL;
    bool ok = cudaMalloc(&x, xb) == cudaSuccess && cudaMalloc(&y, yb) == cudaSuccess &&
              cudaMalloc(&w, wb) == cudaSuccess && cudaMalloc(&ws, cap) == cudaSuccess &&
              cudaMemset(x, 0x3c, xb) == cudaSuccess && cudaMemset(w, 0x3c, wb) == cudaSuccess;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (ok)
        st = cudnnFindConvolutionForwardAlgorithmEx(h, d->xd[c], x, d->wdesc, w, d->cdesc[c],
                                                    d->yd[c], y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    n, perf, ws, cap);
    cudaError_t rc = cudaGetLastError();
    cudaFree(x);
    cudaFree(y);
    cudaFree(w);
    cudaFree(ws);
    if (!ok)
        return lm_err_set(err,
                          "nn cuda: cannot allocate %.1f MiB to time the algorithms of '%s': "
                          "%s",
                          (xb + yb + wb + cap) / 1048576.0, g->name, cudaGetErrorString(rc));
    if (st != CUDNN_STATUS_SUCCESS)
        return lm_err_set(err, "nn cuda: cudnnFindConvolutionForwardAlgorithmEx for '%s': %s",
                          g->name, cudnnGetErrorString(st));
    return true;
}

/* Choose the algorithm of slab kind c; its workspace goes to *ws. */
static bool dnn_choose(cudnnHandle_t h, struct cn_cudnn *d, int c, const struct dnn_geom *g,
                       int rows, enum dnn_mode mode, size_t *ws, struct lm_err *err)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    size_t cap = dnn_ws_cap((size_t)rows * g->m[1] * g->m[2] * g->cout_p * g->elem);
    if (mode == DNN_MEASURE) {
        if (!dnn_measure(h, d, c, g, rows, cap, perf, &n, err))
            return false;
    } else {
        CUDNN_TRY(err, cudnnGetConvolutionForwardAlgorithm_v7(
                           h, d->xd[c], d->wdesc, d->cdesc[c], d->yd[c],
                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    }
    for (int i = 0; i < n; i++)
        if (dnn_accept(h, d, c, g, &perf[i], cap, ws)) {
            if (mode == DNN_RESERVE)
                *ws = cap;
            return true;
        }
    return lm_err_set(err,
                      "nn cuda: cuDNN offers no %s convolution algorithm for '%s' (%d -> %d "
                      "channels, kernel %d, stride %d, %d-row slab of %dx%d) within %.0f MiB of "
                      "workspace",
                      nn_cuda_precision_name(g->prec), g->name, g->cin_p, g->cout_p, g->k, g->s,
                      rows, g->m[1], g->m[2], cap / 1048576.0);
}

bool dnn_setup(struct cn_cudnn *d, const struct dnn_geom *g, cudnnHandle_t h, enum dnn_mode mode,
               struct lm_err *err)
{
    d->rows = dnn_slab_rows(g);
    if (d->rows < 1)
        return lm_err_set(err, "nn cuda: one plane of '%s' exceeds cuDNN's element limit", g->name);
    d->n_chunks = (g->m[0] + d->rows - 1) / d->rows;
    int last = g->m[0] - (d->n_chunks - 1) * d->rows;
    CUDNN_TRY(err, cudnnCreateFilterDescriptor(&d->wdesc));
    int wdim[5] = {g->cout_p, g->cin_p, g->k, g->k, g->k};
    CUDNN_TRY(err,
              cudnnSetFilterNdDescriptor(d->wdesc, dnn_dtype(g->prec), CUDNN_TENSOR_NHWC, 5, wdim));
    d->ws_bytes = 0;
    for (int c = 0; c < 2; c++) {
        CUDNN_TRY(err, cudnnCreateTensorDescriptor(&d->xd[c]));
        CUDNN_TRY(err, cudnnCreateTensorDescriptor(&d->yd[c]));
        CUDNN_TRY(err, cudnnCreateConvolutionDescriptor(&d->cdesc[c]));
        int rows = c == 0 ? d->rows : last;
        size_t ws = 0;
        if (!dnn_slab_desc(d, g, c, rows, err) || !dnn_choose(h, d, c, g, rows, mode, &ws, err))
            return false;
        if (ws > d->ws_bytes)
            d->ws_bytes = ws;
    }
    return true;
}

void dnn_release(struct cn_cudnn *d)
{
    for (int c = 0; c < 2; c++) {
        if (d->xd[c])
            cudnnDestroyTensorDescriptor(d->xd[c]);
        if (d->yd[c])
            cudnnDestroyTensorDescriptor(d->yd[c]);
        if (d->cdesc[c])
            cudnnDestroyConvolutionDescriptor(d->cdesc[c]);
        d->xd[c] = d->yd[c] = NULL;
        d->cdesc[c] = NULL;
    }
    if (d->wdesc)
        cudnnDestroyFilterDescriptor(d->wdesc);
    d->wdesc = NULL;
}

void dnn_forward(cudnnHandle_t h, const struct cn_cudnn *d, const struct dnn_geom *g, char *ws,
                 long long x_off, long long y_off, const void *w, float beta, void *scratch)
{
    float alpha = 1.0f;
    long long in_row = (long long)g->n[1] * g->n[2] * g->cin_p;
    long long out_row = (long long)g->m[1] * g->m[2] * g->cout_p;
    for (int r = 0; r < d->n_chunks; r++) {
        int c = r == d->n_chunks - 1 ? 1 : 0;
        long long row0 = (long long)r * d->rows;
        const char *x = ws + (x_off + row0 * g->s * in_row) * g->elem;
        char *y = ws + (y_off + row0 * out_row) * g->elem;
        CUDNN_CHECK(cudnnConvolutionForward(h, &alpha, d->xd[c], x, d->wdesc, w, d->cdesc[c],
                                            d->algo[c], scratch, d->ws_bytes, &beta, d->yd[c], y));
    }
}
