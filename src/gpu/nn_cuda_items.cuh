/*
 * nn_cuda_items (tier: gpu) — the work of one item of each elementwise kernel of the CUDA NN
 * backend, as host-and-device functions, with the item counts and the choice of vector width. The
 * CUDA launchers (nn_cuda_kernels.cu) run items in grid-stride loops; the CPU emulation of the
 * launchers (tools/gpu/emu) runs the same functions in plain loops.
 *
 * An item is one cell and V consecutive channels; item e of a walk over a view with cg = c / V
 * channel groups is cell e / cg (C order over the three axes), channels (e % cg) V ...
 */
#ifndef LEMUR_NN_CUDA_ITEMS_CUH
#define LEMUR_NN_CUDA_ITEMS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gpu/nn_cuda_kernels.cuh"

#define NN_HD __host__ __device__ __forceinline__
/* Unroll the fixed-width channel loops in device code (host compilers do without). */
#ifdef __CUDA_ARCH__
#define NN_UNROLL _Pragma("unroll")
#else
#define NN_UNROLL
#endif

/* ---- element access ------------------------------------------------------------------------ */

NN_HD float to_f(float v) { return v; }
NN_HD float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
NN_HD float to_f(__half v) { return __half2float(v); }

template <class T> NN_HD T from_f(float v);
template <> NN_HD float from_f<float>(float v) { return v; }
template <> NN_HD __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> NN_HD __half from_f<__half>(float v) { return __float2half_rn(v); }

/* V consecutive elements, aligned to their size (16 bytes for the vector paths). */
template <class T, int V> struct alignas(sizeof(T) * V) tvec {
    T v[V];
};

template <class T, int V> NN_HD void vload(const T *p, float *f)
{
    tvec<T, V> x = *reinterpret_cast<const tvec<T, V> *>(p);
    NN_UNROLL
    for (int i = 0; i < V; i++)
        f[i] = to_f(x.v[i]);
}

template <class T, int V> NN_HD void vstore(T *p, const float *f)
{
    tvec<T, V> x;
    NN_UNROLL
    for (int i = 0; i < V; i++)
        x.v[i] = from_f<T>(f[i]);
    *reinterpret_cast<tvec<T, V> *>(p) = x;
}

/* Element offset of cell (i, j, k), channel 0, slot 0 of view v. */
NN_HD long long cell_off(const gview &v, long long i, long long j, long long k)
{
    return v.off + i * v.st[0] + j * v.st[1] + k * v.st[2];
}

/* Cell and first channel of item e (cg channel groups of V per cell, spatial shape n). */
struct item {
    long long i, j, k;
    int ch;
};
NN_HD item item_of(long long e, int cg, int V, const int *n)
{
    item it;
    it.ch = (int)(e % cg) * V;
    long long cell = e / cg;
    it.k = cell % n[2];
    cell /= n[2];
    it.j = cell % n[1];
    it.i = cell / n[1];
    return it;
}

/* Items of a walk over view v with V channels per item, and of a walk over every element. */
NN_HD long long walk_items(const gview &v, int V) { return gview_cells(&v) * (v.c / V); }
NN_HD long long io_items(const gview &v) { return gview_cells(&v) * v.c; }

NN_HD float lrelu(float x) { return x > 0.0f ? x : NN_LEAKY_SLOPE * x; }
NN_HD float lrelu_grad(float pre, float t) { return pre > 0.0f ? t : NN_LEAKY_SLOPE * t; }

/* ---- convolution epilogue ------------------------------------------------------------------ */

/* Sum the transposed-convolution taps of G (at goff) that reach output cell it, channels ch.. */
template <class T, int V>
NN_HD void tconv_gather(const T *ws, const epi_args &a, long long goff, const item &it, float *acc)
{
    int k = a.tk, s = a.tsd, cout = a.out.c;
    long long o[3] = {it.i, it.j, it.k};
    NN_UNROLL
    for (int v = 0; v < V; v++)
        acc[v] = 0.0f;
    for (int kd = (int)(o[0] % s); kd < k && kd <= o[0]; kd += s) {
        long long ii = (o[0] - kd) / s;
        if (ii >= a.in_n[0])
            continue;
        for (int kh = (int)(o[1] % s); kh < k && kh <= o[1]; kh += s) {
            long long jj = (o[1] - kh) / s;
            if (jj >= a.in_n[1])
                continue;
            for (int kw = (int)(o[2] % s); kw < k && kw <= o[2]; kw += s) {
                long long kk = (o[2] - kw) / s;
                if (kk >= a.in_n[2])
                    continue;
                long long cell = (ii * a.in_n[1] + jj) * a.in_n[2] + kk;
                int tap = (kd * k + kh) * k + kw;
                float g[V];
                vload<T, V>(ws + goff + (cell * k * k * k + tap) * cout + it.ch, g);
                NN_UNROLL
                for (int v = 0; v < V; v++)
                    acc[v] += g[v];
            }
        }
    }
}

template <class T, int V> NN_HD void epilogue_item(T *ws, const epi_args &a, long long e)
{
    item it = item_of(e, a.out.c / V, V, a.out.n);
    float z[V], zt[V], pre[V], y[V], r[V], dr[V];
    if (a.tconv) {
        tconv_gather<T, V>(ws, a, a.g_off, it, z);
        if (a.tangent)
            tconv_gather<T, V>(ws, a, a.g_off + a.g_ts, it, zt);
    } else {
        long long so = cell_off(a.src, it.i, it.j, it.k) + it.ch;
        vload<T, V>(ws + so, z);
        if (a.tangent)
            vload<T, V>(ws + so + a.src.ts, zt);
    }
    if (a.has_resid) {
        long long ro = cell_off(a.resid, it.i, it.j, it.k) + it.ch;
        vload<T, V>(ws + ro, r);
        if (a.tangent)
            vload<T, V>(ws + ro + a.resid.ts, dr);
    }
    NN_UNROLL
    for (int v = 0; v < V; v++) {
        pre[v] = z[v] + a.bias[it.ch + v];
        if (a.has_resid)
            pre[v] += r[v];
        y[v] = a.act ? lrelu(pre[v]) : pre[v];
    }
    long long oo = cell_off(a.out, it.i, it.j, it.k) + it.ch;
    vstore<T, V>(ws + oo, y);
    if (!a.tangent)
        return;
    NN_UNROLL
    for (int v = 0; v < V; v++) {
        float t = zt[v];
        if (a.c)
            t -= a.c[it.ch + v] * z[v];
        if (a.has_resid)
            t += dr[v];
        zt[v] = a.act ? lrelu_grad(pre[v], t) : t;
        if (a.nr)
            zt[v] += y[v] * a.nr[it.ch + v];
    }
    vstore<T, V>(ws + oo + a.out.ts, zt);
}

/* ---- add, copy, prepare -------------------------------------------------------------------- */

template <class T, int V> NN_HD void add_item(T *ws, const add_args &a, long long e)
{
    item it = item_of(e, a.out.c / V, V, a.out.n);
    long long ao = cell_off(a.a, it.i, it.j, it.k) + it.ch;
    long long bo = cell_off(a.b, it.i, it.j, it.k) + it.ch;
    long long oo = cell_off(a.out, it.i, it.j, it.k) + it.ch;
    float x[V], w[V], pre[V];
    vload<T, V>(ws + ao, x);
    vload<T, V>(ws + bo, w);
    NN_UNROLL
    for (int v = 0; v < V; v++) {
        pre[v] = x[v] + w[v];
        x[v] = a.act ? lrelu(pre[v]) : pre[v];
    }
    vstore<T, V>(ws + oo, x);
    if (!a.tangent)
        return;
    float dx[V], dw[V];
    vload<T, V>(ws + ao + a.a.ts, dx);
    vload<T, V>(ws + bo + a.b.ts, dw);
    NN_UNROLL
    for (int v = 0; v < V; v++) {
        float t = dx[v] + dw[v];
        dx[v] = a.act ? lrelu_grad(pre[v], t) : t;
        if (a.nr)
            dx[v] += x[v] * a.nr[it.ch + v];
    }
    vstore<T, V>(ws + oo + a.out.ts, dx);
}

template <class T, int V>
NN_HD void copy_item(T *ws, const gview &dst, const gview &src, int slots, long long e)
{
    item it = item_of(e, dst.c / V, V, dst.n);
    long long so = cell_off(src, it.i, it.j, it.k) + it.ch;
    long long d = cell_off(dst, it.i, it.j, it.k) + it.ch;
    for (int t = 0; t < slots; t++) {
        float x[V];
        vload<T, V>(ws + so + t * src.ts, x);
        vstore<T, V>(ws + d + t * dst.ts, x);
    }
}

/* ---- activation and upsampling nodes (generic networks) -------------------------------------- */

NN_HD float act_one(int act, float slope, float x)
{
    if (act == NN_ACT_GELU)
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    return x > 0.0f ? x : act == NN_ACT_LRELU ? slope * x : 0.0f;
}

template <class T, int V> NN_HD void act_item(T *ws, const act_args &a, long long e)
{
    item it = item_of(e, a.out.c / V, V, a.out.n);
    float x[V];
    vload<T, V>(ws + cell_off(a.in, it.i, it.j, it.k) + it.ch, x);
    NN_UNROLL
    for (int v = 0; v < V; v++)
        x[v] = act_one(a.act, a.slope, x[v]);
    vstore<T, V>(ws + cell_off(a.out, it.i, it.j, it.k) + it.ch, x);
}

/* Source cell m and weight w0 of cell m (w1 = 1 - w0 of m + 1) for output cell j of one axis. */
NN_HD void up_tap(int trilinear, long long j, long long *m, float *w0)
{
    *m = j / 2;
    *w0 = !trilinear ? 1.0f : j % 2 ? 0.25f : 0.75f;
}

template <class T> NN_HD void upsample_item(T *ws, const up_args &a, long long e)
{
    item it = item_of(e, a.out.c, 1, a.out.n);
    long long mi, mj, mk;
    float wi, wj, wk, acc = 0.0f;
    up_tap(a.trilinear, it.i, &mi, &wi);
    up_tap(a.trilinear, it.j, &mj, &wj);
    up_tap(a.trilinear, it.k, &mk, &wk);
    int taps = a.trilinear ? 2 : 1;
    for (int u = 0; u < taps; u++)
        for (int v = 0; v < taps; v++) {
            long long o = cell_off(a.in, mi + u, mj + v, mk) + it.ch;
            float w = (u ? 1.0f - wi : wi) * (v ? 1.0f - wj : wj);
            float r = wk * to_f(ws[o]);
            if (taps == 2)
                r += (1.0f - wk) * to_f(ws[o + a.in.st[2]]);
            acc += w * r;
        }
    ws[cell_off(a.out, it.i, it.j, it.k) + it.ch] = from_f<T>(acc);
}

template <class T, int V> NN_HD void prep_item(T *ws, const prep_args &a, long long e)
{
    item it = item_of(e, a.dst.c / V, V, a.dst.n);
    float x[V], t[V];
    if (it.ch < a.src.c) {
        long long so = cell_off(a.src, it.i, it.j, it.k) + it.ch;
        vload<T, V>(ws + so, x);
        if (a.ot >= 0) {
            vload<T, V>(ws + so + a.src.ts, t);
            NN_UNROLL
            for (int v = 0; v < V; v++)
                if (a.ratio)
                    t[v] += x[v] * a.ratio[it.ch + v];
        }
    } else {
        NN_UNROLL
        for (int v = 0; v < V; v++)
            x[v] = t[v] = 0.0f;
    }
    long long d = it.i * a.dst.st[0] + it.j * a.dst.st[1] + it.k * a.dst.st[2] + it.ch;
    if (a.ox >= 0)
        vstore<T, V>(ws + a.ox + d, x);
    if (a.ot >= 0)
        vstore<T, V>(ws + a.ot + d, t);
}

/* ---- graph input and output (items over [channel][cell]: the fp32 staging side coalesced) --- */

template <class T> NN_HD void input_item(T *ws, const in_args &a, long long e)
{
    long long cells = gview_cells(&a.out), total = cells * a.out.c;
    int ch = (int)(e / cells);
    long long cell = e % cells;
    long long k = cell % a.out.n[2], j = cell / a.out.n[2] % a.out.n[1],
              i = cell / a.out.n[2] / a.out.n[1];
    long long o = cell_off(a.out, i, j, k) + ch;
    float x = a.x[e];
    float y = a.x_scale * x;
    ws[o] = from_f<T>(y);
    if (a.tangent) {
        float t = a.dx_scale * (a.has_dx ? a.x[total + e] : x);
        if (a.nr)
            t += y * a.nr[ch];
        ws[o + a.out.ts] = from_f<T>(t);
    }
}

template <class T>
NN_HD void output_item(const T *ws, const gview &src, float *y, int tangent, float scale,
                       long long e)
{
    long long cells = gview_cells(&src), total = cells * src.c;
    int ch = (int)(e / cells);
    long long cell = e % cells;
    long long k = cell % src.n[2], j = cell / src.n[2] % src.n[1], i = cell / src.n[2] / src.n[1];
    long long o = cell_off(src, i, j, k) + ch;
    y[e] = scale * to_f(ws[o]);
    if (tangent)
        y[total + e] = scale * to_f(ws[o + src.ts]);
}

/* ---- premodulation (one output channel per block; threads stride over (cin, k^3)) ----------- */

NN_HD long long premod_src(const premod_args &a, int o, int i, int k)
{
    return a.transposed ? ((long long)i * a.cout + o) * a.k3 + k
                        : ((long long)o * a.cin + i) * a.k3 + k;
}

/* Partial demodulation sums of output channel o over items start, start + step, ... */
NN_HD void premod_sums(const premod_args &a, int o, long long start, long long step, double *ss,
                       double *sd)
{
    long long n = (long long)a.cin * a.k3;
    *ss = *sd = 0;
    for (long long e = start; e < n; e += step) {
        int i = (int)(e / a.k3), k = (int)(e % a.k3);
        double wv = a.w[premod_src(a, o, i, k)];
        *ss += wv * a.u[i] * wv * a.u[i];
        *sd += wv * a.u[i] * wv * a.du[i];
    }
}

/* W'' and dW'' of output channel o (norm and c from the full sums) over items start, step... */
template <class T>
NN_HD void premod_write(const premod_args &a, int o, long long start, long long step, double norm,
                        double c)
{
    long long n = (long long)a.cin * a.k3;
    for (long long e = start; e < n; e += step) {
        int i = (int)(e / a.k3), k = (int)(e % a.k3);
        long long to = a.transposed ? ((long long)i * a.k3 + k) * a.cout + o
                                    : ((long long)o * a.k3 + k) * a.cin_p + i;
        double wv = a.w[premod_src(a, o, i, k)], w2 = wv * a.u[i] / norm;
        ((T *)a.wo)[to] = from_f<T>((float)w2);
        if (a.dwo)
            ((T *)a.dwo)[to] = from_f<T>((float)(wv * a.du[i] / norm - c * w2));
    }
}

/* ---- vector width -------------------------------------------------------------------------- */

/* Widest vector (16 bytes) for storage type ks. */
static inline int vec_max(enum kstore ks) { return ks == KSTORE_F32 ? 4 : 8; }

/* True when every offset and stride of view v and its channel count are multiples of V. */
static inline bool view_aligned(const struct gview *v, int V)
{
    return v->c % V == 0 && v->off % V == 0 && v->st[0] % V == 0 && v->st[1] % V == 0 &&
           v->st[2] % V == 0 && v->ts % V == 0;
}

static inline bool epilogue_vec(enum kstore ks, const epi_args *a)
{
    int V = vec_max(ks);
    bool vec = view_aligned(&a->out, V) && (!a->has_resid || view_aligned(&a->resid, V));
    return vec && (a->tconv ? a->g_off % V == 0 && a->g_ts % V == 0 : view_aligned(&a->src, V));
}

static inline bool add_vec(enum kstore ks, const add_args *a)
{
    int V = vec_max(ks);
    return view_aligned(&a->out, V) && view_aligned(&a->a, V) && view_aligned(&a->b, V);
}

static inline bool copy_vec(enum kstore ks, const gview *dst, const gview *src)
{
    return view_aligned(dst, vec_max(ks)) && view_aligned(src, vec_max(ks));
}

static inline bool prep_vec(enum kstore ks, const prep_args *a)
{
    int V = vec_max(ks);
    gview d = a->dst;
    d.off = 0;
    return view_aligned(&a->src, V) && view_aligned(&d, V) && (a->ox < 0 || a->ox % V == 0) &&
           (a->ot < 0 || a->ot % V == 0);
}

/* Call L<T, V>(args) for storage type ks, vector width (16 bytes when vec, else 1). */
#define NN_DISPATCH(ks, vec, L, ...)                                                               \
    do {                                                                                           \
        switch (ks) {                                                                              \
        case KSTORE_F32:                                                                           \
            if (vec)                                                                               \
                L<float, 4>(__VA_ARGS__);                                                          \
            else                                                                                   \
                L<float, 1>(__VA_ARGS__);                                                          \
            break;                                                                                 \
        case KSTORE_BF16:                                                                          \
            if (vec)                                                                               \
                L<__nv_bfloat16, 8>(__VA_ARGS__);                                                  \
            else                                                                                   \
                L<__nv_bfloat16, 1>(__VA_ARGS__);                                                  \
            break;                                                                                 \
        case KSTORE_F16:                                                                           \
            if (vec)                                                                               \
                L<__half, 8>(__VA_ARGS__);                                                         \
            else                                                                                   \
                L<__half, 1>(__VA_ARGS__);                                                         \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* Call L<T>(args) for storage type ks. */
#define NN_DISPATCH_T(ks, L, ...)                                                                  \
    do {                                                                                           \
        switch (ks) {                                                                              \
        case KSTORE_F32:                                                                           \
            L<float>(__VA_ARGS__);                                                                 \
            break;                                                                                 \
        case KSTORE_BF16:                                                                          \
            L<__nv_bfloat16>(__VA_ARGS__);                                                         \
            break;                                                                                 \
        case KSTORE_F16:                                                                           \
            L<__half>(__VA_ARGS__);                                                                \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

#endif
