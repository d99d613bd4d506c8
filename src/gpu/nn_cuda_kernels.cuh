/*
 * nn_cuda_kernels (tier: gpu) — the elementwise kernels of the CUDA NN backend and their host
 * launchers.
 *
 * Every kernel reads and writes views of the workspace (nn_cuda_internal.cuh) in the storage type
 * of the plan and computes in fp32. A thread handles one cell and V consecutive channels (16-byte
 * accesses when every channel count, offset and stride of the call is a multiple of V, else
 * V = 1), in a grid-stride loop with 64-bit indices. Launchers check the launch at once. The work
 * of one item is a host-and-device function (nn_cuda_items.cuh), so a CPU emulation of the
 * launchers (tools/gpu/emu) runs exactly the arithmetic and indexing of the kernels.
 */
#ifndef LEMUR_NN_CUDA_KERNELS_CUH
#define LEMUR_NN_CUDA_KERNELS_CUH

#include "gpu/nn_cuda_internal.cuh"

/** Storage types of the kernels. */
enum kstore { KSTORE_F32, KSTORE_BF16, KSTORE_F16 };
/** The storage type of a precision. */
enum kstore kstore_of(enum nn_cuda_precision p);

/** Epilogue of a convolution: y = act(z + bias [+ r]); with tangents
 *  dy = act'(pre) (zt - c z [+ dr]) [+ y nr]. For a CONV, z and zt are the cells of src (same
 *  spatial shape as out; src may equal out: in place). For a TCONV, src is the GEMM result
 *  G [input cell][k^3][cout] and each output cell sums the kernel taps that reach it. */
struct epi_args {
    struct gview out;
    struct gview src;   /**< CONV: raw conv output (slots z, zt) */
    long long g_off;    /**< TCONV: element offset of G */
    long long g_ts;     /**< TCONV: offset of G's tangent (zt) relative to g_off */
    int tconv, tk, tsd; /**< TCONV: flag, kernel and stride */
    int in_n[3];        /**< TCONV: input spatial shape */
    struct gview resid; /**< a fused residual (ADD) operand */
    int has_resid, act, tangent;
    const float *bias, *c, *nr; /**< c, nr may be NULL */
};
void k_epilogue(enum kstore ks, char *ws, const struct epi_args *a, cudaStream_t s);

/** out = act(a + b) (equal shapes); with tangents dout = act'(a + b) (da + db) [+ out nr]. */
struct add_args {
    struct gview out, a, b;
    int act, tangent;
    const float *nr;
};
void k_add(enum kstore ks, char *ws, const struct add_args *a, cudaStream_t s);

/** Copy view src into view dst (equal channels and spatial shape), `slots` slots. */
void k_copy(enum kstore ks, char *ws, const struct gview *dst, const struct gview *src, int slots,
            cudaStream_t s);

/** Prepare convolution inputs from view src (channels c): writes, at the cells of dst (strides of
 *  dst, channels dst.c >= src.c, channels beyond src.c set to 0), x at element offset ox (when
 *  ox >= 0) and the tangent side at ot (when ot >= 0): dx + x ratio when ratio != NULL, else dx.
 *  ot may be src's own tangent slot (in place). */
struct prep_args {
    struct gview src, dst;
    long long ox, ot;
    const float *ratio;
};
void k_prep(enum kstore ks, char *ws, const struct prep_args *a, cudaStream_t s);

/** Graph input: from fp32 staging x[c][n0][n1][n2] (dx after it when has_dx) to view out:
 *  value x_scale x; tangent dx_scale (dx or x) [+ value nr] when tangent. */
struct in_args {
    struct gview out;
    const float *x;
    int has_dx, tangent;
    float x_scale, dx_scale;
    const float *nr;
};
void k_input(enum kstore ks, char *ws, const struct in_args *a, cudaStream_t s);

/** Graph output: view src to fp32 staging y[c][n0][n1][n2] (dy after it when tangent), scaled. */
void k_output(enum kstore ks, const char *ws, const struct gview *src, float *y, int tangent,
              float scale, cudaStream_t s);

/** Activation node (values only): out = act(in), LeakyReLU with slope, ReLU or GELU (erf form). */
struct act_args {
    struct gview out, in;
    int act; /**< enum nn_act */
    float slope;
};
void k_act(enum kstore ks, char *ws, const struct act_args *a, cudaStream_t s);

/** x2 upsampling node (values only): nearest (out n = 2 in n) or valid trilinear (2 in n - 2;
 *  cell j = 2m + r reads cells m, m + 1 with weights 3/4, 1/4 (r = 0) or 1/4, 3/4). */
struct up_args {
    struct gview out, in;
    int trilinear;
};
void k_upsample(enum kstore ks, char *ws, const struct up_args *a, cudaStream_t s);

/** Premodulation of one convolution slot (see nn_cuda_premod.cu): for every output channel o,
 *  the demodulation sums in double, then W'' and dW'' in the device layout (CONV
 *  [cout][k^3][cin_p], TCONV [cin][k^3][cout]) and c[o]. */
struct premod_args {
    const float *w;       /**< raw weight, the slot's PyTorch layout */
    const double *u, *du; /**< modulation and its tangent, [cin] */
    int cin, cout, k3, transposed, cin_p;
    void *wo, *dwo; /**< outputs in the device layout (dwo may be NULL) */
    float *c;       /**< [cout] */
};
void k_premod(enum kstore ks, const struct premod_args *a, cudaStream_t s);

#endif
