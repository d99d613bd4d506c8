/* gemm_rate — measured cuBLAS GEMM rate per precision (see gemm_rate.h). */
#include <algorithm>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <vector>

#include "gemm_rate.h"

/* Fill n elements with uniform values in [-1, 1) from a hash of the index. */
template <class T> __global__ void fill_kernel(T *a, size_t n, unsigned seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        a[i] = (T)((float)(h & 0xffffff) / 8388608.0f - 1.0f);
    }
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        if (!(call)) {                                                                             \
            snprintf(why, n_why, "%s failed", what);                                               \
            ok = false;                                                                            \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

template <class T>
static double rate(cudaDataType_t t, cublasComputeType_t ct, int n, int reps, char *why,
                   size_t n_why)
{
    size_t e = (size_t)n * n;
    T *a = NULL, *b = NULL, *c = NULL;
    cublasHandle_t h = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    std::vector<float> ms;
    float alpha = 1.0f, beta = 0.0f;
    bool ok = true;
    TRY(cudaMalloc(&a, e * sizeof(T)) == cudaSuccess, "cudaMalloc");
    TRY(cudaMalloc(&b, e * sizeof(T)) == cudaSuccess, "cudaMalloc");
    TRY(cudaMalloc(&c, e * sizeof(T)) == cudaSuccess, "cudaMalloc");
    fill_kernel<T><<<1024, 256>>>(a, e, 1u);
    fill_kernel<T><<<1024, 256>>>(b, e, 2u);
    TRY(cudaGetLastError() == cudaSuccess, "fill kernel");
    TRY(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    TRY(cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess, "events");
    for (int r = -2; r < reps; r++) {
        TRY(cudaEventRecord(e0) == cudaSuccess, "cudaEventRecord");
        TRY(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, t, n, b, t, n, &beta, c,
                         t, n, ct, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS,
            "cublasGemmEx");
        TRY(cudaEventRecord(e1) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess,
            "GEMM timing");
        float m = 0;
        TRY(cudaEventElapsedTime(&m, e0, e1) == cudaSuccess, "cudaEventElapsedTime");
        if (r >= 0)
            ms.push_back(m);
    }
done:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    if (h)
        cublasDestroy(h);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    if (!ok || ms.empty())
        return 0.0;
    std::sort(ms.begin(), ms.end());
    return 2.0 * n * (double)n * n / (ms[ms.size() / 2] * 1e-3) / 1e12;
}

extern "C" double gemm_rate_tflops(enum nn_cuda_precision p, int n, int reps, char *why,
                                   size_t n_why)
{
    switch (p) {
    case NN_CUDA_FP32:
        return rate<float>(CUDA_R_32F, CUBLAS_COMPUTE_32F, n, reps, why, n_why);
    case NN_CUDA_TF32:
        return rate<float>(CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, n, reps, why, n_why);
    case NN_CUDA_BF16:
        return rate<__nv_bfloat16>(CUDA_R_16BF, CUBLAS_COMPUTE_32F, n, reps, why, n_why);
    case NN_CUDA_FP16:
        return rate<__half>(CUDA_R_16F, CUBLAS_COMPUTE_32F, n, reps, why, n_why);
    default:
        snprintf(why, n_why, "invalid precision %d", (int)p);
        return 0.0;
    }
}
