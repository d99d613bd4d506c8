/* nn_cuda_kernels — the elementwise kernels of the CUDA NN backend: grid-stride loops over the
 * items of nn_cuda_items.cuh, and their launchers (see nn_cuda_kernels.cuh). */
#include "gpu/nn_cuda_items.cuh"

#define GRID_STRIDE(e, total)                                                                      \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < (total);              \
         e += (long long)gridDim.x * blockDim.x)

/* ---- kernels ------------------------------------------------------------------------------- */

template <class T, int V> __global__ void epilogue_kernel(T *ws, epi_args a, long long n)
{
    GRID_STRIDE(e, n)
    epilogue_item<T, V>(ws, a, e);
}

template <class T, int V> __global__ void add_kernel(T *ws, add_args a, long long n)
{
    GRID_STRIDE(e, n)
    add_item<T, V>(ws, a, e);
}

template <class T, int V>
__global__ void copy_kernel(T *ws, gview dst, gview src, int slots, long long n)
{
    GRID_STRIDE(e, n)
    copy_item<T, V>(ws, dst, src, slots, e);
}

template <class T, int V> __global__ void prep_kernel(T *ws, prep_args a, long long n)
{
    GRID_STRIDE(e, n)
    prep_item<T, V>(ws, a, e);
}

template <class T, int V> __global__ void act_kernel(T *ws, act_args a, long long n)
{
    GRID_STRIDE(e, n)
    act_item<T, V>(ws, a, e);
}

template <class T> __global__ void upsample_kernel(T *ws, up_args a, long long n)
{
    GRID_STRIDE(e, n)
    upsample_item<T>(ws, a, e);
}

template <class T> __global__ void input_kernel(T *ws, in_args a, long long n)
{
    GRID_STRIDE(e, n)
    input_item<T>(ws, a, e);
}

template <class T>
__global__ void output_kernel(const T *ws, gview src, float *y, int tangent, float scale,
                              long long n)
{
    GRID_STRIDE(e, n)
    output_item<T>(ws, src, y, tangent, scale, e);
}

/* Sum a double over the block (blockDim.x = 256). */
__device__ double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* One block per output channel: the demodulation sums, then W'' and dW''. */
template <class T> __global__ void premod_kernel(premod_args a)
{
    __shared__ double sh[256];
    int o = blockIdx.x;
    double ss, sd;
    premod_sums(a, o, threadIdx.x, blockDim.x, &ss, &sd);
    ss = block_sum(ss, sh);
    sd = block_sum(sd, sh);
    double norm = sqrt(ss + NN_DEMOD_EPS);
    premod_write<T>(a, o, threadIdx.x, blockDim.x, norm, sd / (norm * norm));
    if (threadIdx.x == 0)
        a.c[o] = (float)(sd / (norm * norm));
}

/* ---- launchers ----------------------------------------------------------------------------- */

static int grid_for(long long items)
{
    long long b = (items + 255) / 256;
    return (int)(b < 1 ? 1 : b > (1 << 20) ? (1 << 20) : b);
}

template <class T, int V> static void launch_epilogue(char *ws, const epi_args *a, cudaStream_t s)
{
    long long n = walk_items(a->out, V);
    epilogue_kernel<T, V><<<grid_for(n), 256, 0, s>>>((T *)ws, *a, n);
    CUDA_LAUNCH_CHECK();
}

void k_epilogue(enum kstore ks, char *ws, const struct epi_args *a, cudaStream_t s)
{
    NN_DISPATCH(ks, epilogue_vec(ks, a), launch_epilogue, ws, a, s);
}

template <class T, int V> static void launch_add(char *ws, const add_args *a, cudaStream_t s)
{
    long long n = walk_items(a->out, V);
    add_kernel<T, V><<<grid_for(n), 256, 0, s>>>((T *)ws, *a, n);
    CUDA_LAUNCH_CHECK();
}

void k_add(enum kstore ks, char *ws, const struct add_args *a, cudaStream_t s)
{
    NN_DISPATCH(ks, add_vec(ks, a), launch_add, ws, a, s);
}

template <class T, int V>
static void launch_copy(char *ws, const gview *dst, const gview *src, int slots, cudaStream_t s)
{
    long long n = walk_items(*dst, V);
    copy_kernel<T, V><<<grid_for(n), 256, 0, s>>>((T *)ws, *dst, *src, slots, n);
    CUDA_LAUNCH_CHECK();
}

void k_copy(enum kstore ks, char *ws, const struct gview *dst, const struct gview *src, int slots,
            cudaStream_t s)
{
    NN_DISPATCH(ks, copy_vec(ks, dst, src), launch_copy, ws, dst, src, slots, s);
}

template <class T, int V> static void launch_prep(char *ws, const prep_args *a, cudaStream_t s)
{
    long long n = walk_items(a->dst, V);
    prep_kernel<T, V><<<grid_for(n), 256, 0, s>>>((T *)ws, *a, n);
    CUDA_LAUNCH_CHECK();
}

void k_prep(enum kstore ks, char *ws, const struct prep_args *a, cudaStream_t s)
{
    NN_DISPATCH(ks, prep_vec(ks, a), launch_prep, ws, a, s);
}

template <class T, int V> static void launch_act(char *ws, const act_args *a, cudaStream_t s)
{
    long long n = walk_items(a->out, V);
    act_kernel<T, V><<<grid_for(n), 256, 0, s>>>((T *)ws, *a, n);
    CUDA_LAUNCH_CHECK();
}

void k_act(enum kstore ks, char *ws, const struct act_args *a, cudaStream_t s)
{
    NN_DISPATCH(ks, copy_vec(ks, &a->out, &a->in), launch_act, ws, a, s);
}

template <class T> static void launch_upsample(char *ws, const up_args *a, cudaStream_t s)
{
    long long n = io_items(a->out);
    upsample_kernel<T><<<grid_for(n), 256, 0, s>>>((T *)ws, *a, n);
    CUDA_LAUNCH_CHECK();
}

void k_upsample(enum kstore ks, char *ws, const struct up_args *a, cudaStream_t s)
{
    NN_DISPATCH_T(ks, launch_upsample, ws, a, s);
}

template <class T> static void launch_input(char *ws, const in_args *a, cudaStream_t s)
{
    long long n = io_items(a->out);
    input_kernel<T><<<grid_for(n), 256, 0, s>>>((T *)ws, *a, n);
    CUDA_LAUNCH_CHECK();
}

void k_input(enum kstore ks, char *ws, const struct in_args *a, cudaStream_t s)
{
    NN_DISPATCH_T(ks, launch_input, ws, a, s);
}

template <class T>
static void launch_output(const char *ws, const gview *src, float *y, int tangent, float scale,
                          cudaStream_t s)
{
    long long n = io_items(*src);
    output_kernel<T><<<grid_for(n), 256, 0, s>>>((const T *)ws, *src, y, tangent, scale, n);
    CUDA_LAUNCH_CHECK();
}

void k_output(enum kstore ks, const char *ws, const struct gview *src, float *y, int tangent,
              float scale, cudaStream_t s)
{
    NN_DISPATCH_T(ks, launch_output, ws, src, y, tangent, scale, s);
}

template <class T> static void launch_premod(const premod_args *a, cudaStream_t s)
{
    premod_kernel<T><<<a->cout, 256, 0, s>>>(*a);
    CUDA_LAUNCH_CHECK();
}

void k_premod(enum kstore ks, const struct premod_args *a, cudaStream_t s)
{
    NN_DISPATCH_T(ks, launch_premod, a, s);
}
