/* emu_cublas — a CPU emulation of cublasGemmEx and the handle calls lemur's CUDA backend makes
 * (see emu_cuda.cc): column-major C = alpha op(A) op(B) + beta C in fp32, bf16 or fp16 storage
 * with fp32 accumulation. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

struct cublasContext {
    int unused;
};

static float load(const void *p, long i, cudaDataType_t t)
{
    switch (t) {
    case CUDA_R_16BF:
        return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case CUDA_R_16F:
        return __half2float(((const __half *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

static void store(void *p, long i, float v, cudaDataType_t t)
{
    switch (t) {
    case CUDA_R_16BF:
        ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
        break;
    case CUDA_R_16F:
        ((__half *)p)[i] = __float2half_rn(v);
        break;
    default:
        ((float *)p)[i] = v;
    }
}

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new cublasContext();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }

const char *cublasGetStatusString(cublasStatus_t s)
{
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "emulated cuBLAS error";
}

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t at,
                            int lda, const void *B, cudaDataType_t bt, int ldb, const void *beta,
                            void *C, cudaDataType_t ct, int ldc, cublasComputeType_t,
                            cublasGemmAlgo_t)
{
    float al = *(const float *)alpha, be = *(const float *)beta;
#pragma omp parallel for
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0;
            for (int l = 0; l < k; l++) {
                long ai = ta == CUBLAS_OP_N ? i + (long)l * lda : l + (long)i * lda;
                long bi = tb == CUBLAS_OP_N ? l + (long)j * ldb : j + (long)l * ldb;
                acc += load(A, ai, at) * load(B, bi, bt);
            }
            long ci = i + (long)j * ldc;
            store(C, ci, al * acc + (be != 0 ? be * load(C, ci, ct) : 0.0f), ct);
        }
    return CUBLAS_STATUS_SUCCESS;
}
}
