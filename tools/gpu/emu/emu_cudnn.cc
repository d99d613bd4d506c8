/* emu_cudnn — a CPU emulation of the cuDNN convolution calls lemur's CUDA backend makes (see
 * emu_cuda.cc): NDHWC tensors and KTRSC filters of 5 dimensions (CUDNN_TENSOR_NHWC), unpadded,
 * undilated cross-correlation, fp32 accumulation, y = alpha conv + beta y. The heuristics offer an
 * unsupported algorithm first and the workspace query asks for 1 MiB, which the forward call
 * overwrites, so the backend's algorithm filter and workspace placement are exercised too. */
#include <cstring>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudnn.h>

struct cudnnContext {
    int unused;
};
struct cudnnTensorStruct {
    cudnnDataType_t dt;
    int dim[5];
    long stride[5];
};
struct cudnnFilterStruct {
    cudnnDataType_t dt;
    int dim[5];
};
struct cudnnConvolutionStruct {
    int stride[3];
    cudnnMathType_t math;
};

static const size_t emu_ws = (size_t)1 << 20;

static float to_f(float v) { return v; }
static float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
static float to_f(__half v) { return __half2float(v); }
template <class T> static T from_f(float v);
template <> float from_f<float>(float v) { return v; }
template <> __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __half from_f<__half>(float v) { return __float2half_rn(v); }

/* The forward convolution itself (NDHWC x, KTRSC w, NDHWC y) in storage type T. */
template <class T>
static void conv(const cudnnTensorStruct *xd, const T *x, const cudnnFilterStruct *wd, const T *w,
                 const cudnnConvolutionStruct *cd, float alpha, float beta,
                 const cudnnTensorStruct *yd, T *y)
{
    int C = xd->dim[1], K = wd->dim[0], T3 = wd->dim[2], R = wd->dim[3], S = wd->dim[4];
    const int *m = yd->dim + 2;
#pragma omp parallel for collapse(2)
    for (int a = 0; a < m[0]; a++)
        for (int b = 0; b < m[1]; b++) {
            float *xf = new float[(size_t)T3 * R * S * C];
            for (int e = 0; e < m[2]; e++) {
                float *q = xf;
                for (int t = 0; t < T3; t++)
                    for (int r = 0; r < R; r++)
                        for (int s = 0; s < S; s++) {
                            long xo = (a * cd->stride[0] + t) * xd->stride[2] +
                                      (b * cd->stride[1] + r) * xd->stride[3] +
                                      (e * cd->stride[2] + s) * xd->stride[4];
                            for (int c = 0; c < C; c++)
                                *q++ = to_f(x[xo + c]);
                        }
                long n = (long)T3 * R * S * C;
                for (int k = 0; k < K; k++) {
                    const T *wk = w + (long)k * n;
                    float acc = 0;
                    for (long i = 0; i < n; i++)
                        acc += to_f(wk[i]) * xf[i];
                    long yo = a * yd->stride[2] + b * yd->stride[3] + e * yd->stride[4] + k;
                    float old = beta != 0 ? to_f(y[yo]) : 0.0f;
                    y[yo] = from_f<T>(alpha * acc + beta * old);
                }
            }
            delete[] xf;
        }
}

static void conv_any(const cudnnTensorStruct *xd, const void *x, const cudnnFilterStruct *wd,
                     const void *w, const cudnnConvolutionStruct *cd, float alpha, float beta,
                     const cudnnTensorStruct *yd, void *y)
{
    switch (xd->dt) {
    case CUDNN_DATA_BFLOAT16:
        conv(xd, (const __nv_bfloat16 *)x, wd, (const __nv_bfloat16 *)w, cd, alpha, beta, yd,
             (__nv_bfloat16 *)y);
        break;
    case CUDNN_DATA_HALF:
        conv(xd, (const __half *)x, wd, (const __half *)w, cd, alpha, beta, yd, (__half *)y);
        break;
    default:
        conv(xd, (const float *)x, wd, (const float *)w, cd, alpha, beta, yd, (float *)y);
    }
}

extern "C" {

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    *h = new cudnnContext();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
    delete h;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    return s == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "emulated cuDNN error";
}

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d)
{
    *d = new cudnnTensorStruct();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                           cudnnDataType_t dt, int nb, const int dim[])
{
    if (nb != 5 || f != CUDNN_TENSOR_NHWC)
        return CUDNN_STATUS_NOT_SUPPORTED;
    d->dt = dt;
    memcpy(d->dim, dim, sizeof d->dim);
    d->stride[1] = 1;
    d->stride[4] = dim[1];
    d->stride[3] = (long)dim[4] * dim[1];
    d->stride[2] = (long)dim[3] * d->stride[3];
    d->stride[0] = (long)dim[2] * d->stride[2];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
    *d = new cudnnFilterStruct();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dt,
                                         cudnnTensorFormat_t f, int nb, const int dim[])
{
    if (nb != 5 || f != CUDNN_TENSOR_NHWC)
        return CUDNN_STATUS_NOT_SUPPORTED;
    d->dt = dt;
    memcpy(d->dim, dim, sizeof d->dim);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    *d = new cudnnConvolutionStruct();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int n,
                                              const int pad[], const int stride[], const int dil[],
                                              cudnnConvolutionMode_t mode, cudnnDataType_t ct)
{
    if (n != 3 || mode != CUDNN_CROSS_CORRELATION || ct != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_NOT_SUPPORTED;
    for (int a = 0; a < 3; a++) {
        if (pad[a] != 0 || dil[a] != 1)
            return CUDNN_STATUS_NOT_SUPPORTED;
        d->stride[a] = stride[a];
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m)
{
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
                                                    const cudnnTensorDescriptor_t xd,
                                                    const cudnnFilterDescriptor_t wd, int nb,
                                                    int out[])
{
    if (nb != 5 || xd->dim[1] != wd->dim[1])
        return CUDNN_STATUS_BAD_PARAM;
    out[0] = xd->dim[0];
    out[1] = wd->dim[0];
    for (int a = 0; a < 3; a++)
        out[2 + a] = (xd->dim[2 + a] - wd->dim[2 + a]) / cd->stride[a] + 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                     const cudnnFilterDescriptor_t,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t, const int req,
                                                     int *n, cudnnConvolutionFwdAlgoPerf_t *perf)
{
    memset(perf, 0, 2 * sizeof *perf);
    perf[0].algo = CUDNN_CONVOLUTION_FWD_ALGO_FFT;
    perf[0].status = CUDNN_STATUS_NOT_SUPPORTED;
    perf[1].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    perf[1].status = CUDNN_STATUS_SUCCESS;
    perf[1].memory = emu_ws;
    perf[1].mathType = cd->math;
    *n = req < 2 ? req : 2;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                      const cudnnFilterDescriptor_t,
                                                      const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t *b)
{
    *b = emu_ws;
    return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ? CUDNN_STATUS_SUCCESS
                                                                    : CUDNN_STATUS_NOT_SUPPORTED;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void *alpha,
                                      const cudnnTensorDescriptor_t xd, const void *x,
                                      const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t wsb,
                                      const void *beta, const cudnnTensorDescriptor_t yd, void *y)
{
    if (algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM || !ws || wsb < emu_ws ||
        xd->dt != wd->dt || yd->dt != xd->dt)
        return CUDNN_STATUS_BAD_PARAM;
    memset(ws, 0x5a, emu_ws);
    conv_any(xd, x, wd, w, cd, *(const float *)alpha, *(const float *)beta, yd, y);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t h, const cudnnTensorDescriptor_t xd, const void *x,
    const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,
    const cudnnTensorDescriptor_t yd, void *y, const int req, int *n,
    cudnnConvolutionFwdAlgoPerf_t *perf, void *ws, size_t wsb)
{
    float one = 1, zero = 0;
    cudnnStatus_t st = cudnnConvolutionForward(h, &one, xd, x, wd, w, cd,
                                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, ws,
                                               wsb, &zero, yd, y);
    memset(perf, 0, sizeof *perf);
    perf[0].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    perf[0].status = st;
    perf[0].memory = emu_ws;
    perf[0].mathType = cd->math;
    *n = req < 1 ? req : 1;
    return CUDNN_STATUS_SUCCESS;
}
}
