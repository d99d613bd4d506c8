/*
 * nn_cpu_kernels (tier: kernels) — the memory-bound kernels of the CPU backend (nn_cpu.c): loading
 * and storing host tensors, packing, the tangent input z = dx + x ratio, the convolution epilogues
 * (bias, LeakyReLU, tangent correction, the depth-to-space shuffle of a transposed convolution done
 * as a 1x1 convolution), concatenation, addition, activations and x2 upsampling. Private to the CPU
 * backend.
 *
 * Activations are channels-last views into one workspace (struct cpu_view): element (c, i, j, k)
 * of the value is ws[off + i st[0] + j st[1] + k st[2] + c], its tangent sits `tan` floats later.
 * Every kernel is Local and OpenMP-parallel over spatial rows; none allocates.
 */
#ifndef LEMUR_NN_CPU_KERNELS_H
#define LEMUR_NN_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

#include "nn.h"

/** A channels-last view of a value (and its tangent) in the workspace. */
struct cpu_view {
    int c;           /**< logical channels */
    int cs;          /**< floats per pixel (>= c; padding channels beyond c) */
    int n[3];        /**< spatial extents */
    ptrdiff_t st[3]; /**< spatial strides in floats */
    size_t off;      /**< float offset of element (0,0,0,0) from the workspace base */
    size_t tan;      /**< float distance from a value element to its tangent */
};

/** A dense view (cs floats per pixel, C order over space) at float offset off. */
struct cpu_view cpu_view_dense(int c, int cs, const int n[3], size_t off, size_t tan);
/** True when v is dense with cs == c (what a convolution primitive reads). */
bool cpu_view_is_packed(const struct cpu_view *v);
/** Floats of a dense array of v's shape with cs floats per pixel. */
size_t cpu_view_count(const struct cpu_view *v);

/** dst (view v; value when t = 0, tangent when t = 1) = f * host tensor. */
void cpu_load(float *ws, const struct cpu_view *v, int t, const struct nn_tensor *host, float f);
/** host tensor = f * src (view v, value or tangent t). */
void cpu_store(const float *ws, const struct cpu_view *v, int t, const struct nn_tensor *host,
               float f);
/** Copy view v (value or tangent t) into the packed array dst (c floats per pixel). */
void cpu_pack(const float *ws, const struct cpu_view *v, int t, float *dst);
/** z = dx + x * ratio[channel] (z packed, c floats per pixel), x and dx from view v. */
void cpu_tangent_input(const float *ws, const struct cpu_view *v, const float *ratio, float *z);

/** Epilogue of a convolution whose outputs (pre-bias) are already in yv (value) and yt (tangent,
 *  or NULL), dense with cs floats per pixel over count pixels:
 *  pre = yv + bias; t = yt - c yv; act slope s (1, or NN_LEAKY_SLOPE where pre <= 0 with LReLU);
 *  yv = s pre; yt = s t. c may be NULL (treated as 0). */
void cpu_epilogue(float *yv, float *yt, size_t count, int cs, const float *bias, const float *c,
                  enum nn_act act);

/** Epilogue of a transposed convolution with kernel == stride == K done as a 1x1 convolution:
 *  tv / tt (tangent or NULL) hold, per input pixel of the n_in grid, K^3 cout channels
 *  (kernel offset slowest); output view o (dense) receives
 *  y(K i + a, K j + b, K l + e, ch) = epilogue of t((i, j, l), ((a K + b) K + e) cout + ch). */
void cpu_shuffle(const float *tv, const float *tt, const int n_in[3], int K, int cout, float *ws,
                 const struct cpu_view *o, const float *bias, const float *c, enum nn_act act);

/** out = [a, b] along channels (values, and tangents when tangents). */
void cpu_concat(float *ws, const struct cpu_view *a, const struct cpu_view *b,
                const struct cpu_view *out, bool tangents);
/** out = act(a + b), tangent (ta + tb) times the slope of the value; out may be a (in place). */
void cpu_add(float *ws, const struct cpu_view *a, const struct cpu_view *b,
             const struct cpu_view *out, enum nn_act act, bool tangents);

/** out = act(in) over the c channels of every pixel (LeakyReLU with slope, ReLU, GELU in its erf
 *  form); values only; out may be in (in place). */
void cpu_act(float *ws, const struct cpu_view *in, const struct cpu_view *out, enum nn_act act,
             float slope);
/** out = x2 upsampling of in (nearest: out n = 2 in n; valid trilinear: 2 in n - 2, see nn.h);
 *  values only. */
void cpu_upsample(float *ws, const struct cpu_view *in, const struct cpu_view *out,
                  enum nn_upsample mode);

#endif
