/* emu_kernels — the launchers of nn_cuda_kernels.cuh on the CPU: the same item functions
 * (nn_cuda_items.cuh) and vector-width choice as the CUDA kernels, in OpenMP loops. */
#include "gpu/nn_cuda_items.cuh"

#include <cmath>

template <class T, int V> static void run_epilogue(char *ws, const epi_args *a)
{
    long long n = walk_items(a->out, V);
#pragma omp parallel for
    for (long long e = 0; e < n; e++)
        epilogue_item<T, V>((T *)ws, *a, e);
}

void k_epilogue(enum kstore ks, char *ws, const struct epi_args *a, cudaStream_t)
{
    NN_DISPATCH(ks, epilogue_vec(ks, a), run_epilogue, ws, a);
}

template <class T, int V> static void run_add(char *ws, const add_args *a)
{
    long long n = walk_items(a->out, V);
#pragma omp parallel for
    for (long long e = 0; e < n; e++)
        add_item<T, V>((T *)ws, *a, e);
}

void k_add(enum kstore ks, char *ws, const struct add_args *a, cudaStream_t)
{
    NN_DISPATCH(ks, add_vec(ks, a), run_add, ws, a);
}

template <class T, int V>
static void run_copy(char *ws, const gview *dst, const gview *src, int slots)
{
    long long n = walk_items(*dst, V);
#pragma omp parallel for
    for (long long e = 0; e < n; e++)
        copy_item<T, V>((T *)ws, *dst, *src, slots, e);
}

void k_copy(enum kstore ks, char *ws, const struct gview *dst, const struct gview *src, int slots,
            cudaStream_t)
{
    NN_DISPATCH(ks, copy_vec(ks, dst, src), run_copy, ws, dst, src, slots);
}

template <class T, int V> static void run_prep(char *ws, const prep_args *a)
{
    long long n = walk_items(a->dst, V);
#pragma omp parallel for
    for (long long e = 0; e < n; e++)
        prep_item<T, V>((T *)ws, *a, e);
}

void k_prep(enum kstore ks, char *ws, const struct prep_args *a, cudaStream_t)
{
    NN_DISPATCH(ks, prep_vec(ks, a), run_prep, ws, a);
}

template <class T, int V> static void run_act(char *ws, const act_args *a)
{
    long long n = walk_items(a->out, V);
#pragma omp parallel for
    for (long long e = 0; e < n; e++)
        act_item<T, V>((T *)ws, *a, e);
}

void k_act(enum kstore ks, char *ws, const struct act_args *a, cudaStream_t)
{
    NN_DISPATCH(ks, copy_vec(ks, &a->out, &a->in), run_act, ws, a);
}

template <class T> static void run_upsample(char *ws, const up_args *a)
{
    long long n = io_items(a->out);
#pragma omp parallel for
    for (long long e = 0; e < n; e++)
        upsample_item<T>((T *)ws, *a, e);
}

void k_upsample(enum kstore ks, char *ws, const struct up_args *a, cudaStream_t)
{
    NN_DISPATCH_T(ks, run_upsample, ws, a);
}

template <class T> static void run_input(char *ws, const in_args *a)
{
    long long n = io_items(a->out);
    for (long long e = 0; e < n; e++)
        input_item<T>((T *)ws, *a, e);
}

void k_input(enum kstore ks, char *ws, const struct in_args *a, cudaStream_t)
{
    NN_DISPATCH_T(ks, run_input, ws, a);
}

template <class T>
static void run_output(const char *ws, const gview *src, float *y, int tangent, float scale)
{
    long long n = io_items(*src);
    for (long long e = 0; e < n; e++)
        output_item<T>((const T *)ws, *src, y, tangent, scale, e);
}

void k_output(enum kstore ks, const char *ws, const struct gview *src, float *y, int tangent,
              float scale, cudaStream_t)
{
    NN_DISPATCH_T(ks, run_output, ws, src, y, tangent, scale);
}

template <class T> static void run_premod(const premod_args *a)
{
    for (int o = 0; o < a->cout; o++) {
        double ss, sd;
        premod_sums(*a, o, 0, 1, &ss, &sd);
        double norm = std::sqrt(ss + NN_DEMOD_EPS);
        premod_write<T>(*a, o, 0, 1, norm, sd / (norm * norm));
        a->c[o] = (float)(sd / (norm * norm));
    }
}

void k_premod(enum kstore ks, const struct premod_args *a, cudaStream_t)
{
    NN_DISPATCH_T(ks, run_premod, a);
}
