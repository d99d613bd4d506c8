/* nn_cpu_kernels — memory-bound kernels of the CPU backend (see nn_cpu_kernels.h). Each loops
 * over spatial rows in parallel and over (pixel, channel) inside a row, channels innermost. */
#include "nn_cpu_kernels.h"

#include <math.h>

struct cpu_view cpu_view_dense(int c, int cs, const int n[3], size_t off, size_t tan)
{
    struct cpu_view v = {c, cs, {n[0], n[1], n[2]}, {0, 0, 0}, off, tan};
    v.st[2] = cs;
    v.st[1] = (ptrdiff_t)cs * n[2];
    v.st[0] = (ptrdiff_t)cs * n[2] * n[1];
    return v;
}

bool cpu_view_is_packed(const struct cpu_view *v)
{
    return v->cs == v->c && v->st[2] == v->c && v->st[1] == (ptrdiff_t)v->c * v->n[2] &&
           v->st[0] == (ptrdiff_t)v->c * v->n[2] * v->n[1];
}

size_t cpu_view_count(const struct cpu_view *v)
{
    return (size_t)v->cs * v->n[0] * v->n[1] * v->n[2];
}

/* Pointer to the start of row (i, j) of view v (value t = 0 or tangent t = 1). */
static inline float *row(float *ws, const struct cpu_view *v, int t, int i, int j)
{
    return ws + v->off + (size_t)t * v->tan + i * v->st[0] + j * v->st[1];
}

void cpu_load(float *ws, const struct cpu_view *v, int t, const struct nn_tensor *h, float f)
{
    const ptrdiff_t *hs = h->stride;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < v->n[0]; i++)
        for (int j = 0; j < v->n[1]; j++) {
            float *d = row(ws, v, t, i, j);
            const float *s = h->data + i * hs[1] + j * hs[2];
            for (int k = 0; k < v->n[2]; k++)
                for (int c = 0; c < v->c; c++)
                    d[k * v->st[2] + c] = f * s[c * hs[0] + k * hs[3]];
        }
}

void cpu_store(const float *ws, const struct cpu_view *v, int t, const struct nn_tensor *h, float f)
{
    const ptrdiff_t *hs = h->stride;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < v->n[0]; i++)
        for (int j = 0; j < v->n[1]; j++) {
            const float *s = row((float *)ws, v, t, i, j);
            float *d = h->data + i * hs[1] + j * hs[2];
            for (int c = 0; c < v->c; c++)
                for (int k = 0; k < v->n[2]; k++)
                    d[c * hs[0] + k * hs[3]] = f * s[k * v->st[2] + c];
        }
}

void cpu_pack(const float *ws, const struct cpu_view *v, int t, float *dst)
{
    int c = v->c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < v->n[0]; i++)
        for (int j = 0; j < v->n[1]; j++) {
            const float *s = row((float *)ws, v, t, i, j);
            float *d = dst + (((size_t)i * v->n[1] + j) * v->n[2]) * c;
            for (int k = 0; k < v->n[2]; k++)
                for (int ch = 0; ch < c; ch++)
                    d[(size_t)k * c + ch] = s[k * v->st[2] + ch];
        }
}

void cpu_tangent_input(const float *ws, const struct cpu_view *v, const float *ratio, float *z)
{
    int c = v->c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < v->n[0]; i++)
        for (int j = 0; j < v->n[1]; j++) {
            const float *x = row((float *)ws, v, 0, i, j), *dx = row((float *)ws, v, 1, i, j);
            float *d = z + (((size_t)i * v->n[1] + j) * v->n[2]) * c;
            for (int k = 0; k < v->n[2]; k++)
                for (int ch = 0; ch < c; ch++)
                    d[(size_t)k * c + ch] =
                        dx[k * v->st[2] + ch] + x[k * v->st[2] + ch] * ratio[ch];
        }
}

/* The per-element epilogue shared by cpu_epilogue and cpu_shuffle. */
static inline void epi(float yv, float yt, float b, float c, bool lrelu, float *ov, float *ot)
{
    float pre = yv + b;
    float s = (lrelu && !(pre > 0.0f)) ? NN_LEAKY_SLOPE : 1.0f;
    *ov = s * pre;
    if (ot)
        *ot = s * (yt - c * yv);
}

void cpu_epilogue(float *yv, float *yt, size_t count, int cs, const float *bias, const float *c,
                  enum nn_act act)
{
    bool lrelu = act == NN_ACT_LRELU;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < count; p++)
        for (int ch = 0; ch < cs; ch++) {
            size_t e = p * cs + ch;
            float cc = c ? c[ch] : 0.0f;
            epi(yv[e], yt ? yt[e] : 0.0f, bias[ch], cc, lrelu, &yv[e], yt ? &yt[e] : NULL);
        }
}

void cpu_shuffle(const float *tv, const float *tt, const int n_in[3], int K, int cout, float *ws,
                 const struct cpu_view *o, const float *bias, const float *c, enum nn_act act)
{
    bool lrelu = act == NN_ACT_LRELU;
    size_t q = (size_t)K * K * K * cout;
#pragma omp parallel for collapse(2) schedule(static)
    for (int I = 0; I < o->n[0]; I++)
        for (int J = 0; J < o->n[1]; J++) {
            float *dv = row(ws, o, 0, I, J), *dt = tt ? row(ws, o, 1, I, J) : NULL;
            size_t base = ((size_t)(I / K) * n_in[1] + J / K) * n_in[2];
            int ab = ((I % K) * K + J % K) * K;
            for (int L = 0; L < o->n[2]; L++) {
                size_t s = (base + L / K) * q + (size_t)(ab + L % K) * cout;
                for (int ch = 0; ch < cout; ch++) {
                    size_t d = (size_t)L * o->st[2] + ch;
                    float cc = c ? c[ch] : 0.0f;
                    epi(tv[s + ch], tt ? tt[s + ch] : 0.0f, bias[ch], cc, lrelu, &dv[d],
                        dt ? &dt[d] : NULL);
                }
            }
        }
}

void cpu_concat(float *ws, const struct cpu_view *a, const struct cpu_view *b,
                const struct cpu_view *out, bool tangents)
{
    for (int t = 0; t <= (tangents ? 1 : 0); t++)
#pragma omp parallel for collapse(2) schedule(static)
        for (int i = 0; i < out->n[0]; i++)
            for (int j = 0; j < out->n[1]; j++) {
                const float *sa = row(ws, a, t, i, j), *sb = row(ws, b, t, i, j);
                float *d = row(ws, out, t, i, j);
                for (int k = 0; k < out->n[2]; k++) {
                    for (int ch = 0; ch < a->c; ch++)
                        d[k * out->st[2] + ch] = sa[k * a->st[2] + ch];
                    for (int ch = 0; ch < b->c; ch++)
                        d[k * out->st[2] + a->c + ch] = sb[k * b->st[2] + ch];
                }
            }
}

void cpu_add(float *ws, const struct cpu_view *a, const struct cpu_view *b,
             const struct cpu_view *out, enum nn_act act, bool tangents)
{
    bool lrelu = act == NN_ACT_LRELU;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < out->n[0]; i++)
        for (int j = 0; j < out->n[1]; j++) {
            const float *va = row(ws, a, 0, i, j), *vb = row(ws, b, 0, i, j);
            const float *ta = tangents ? row(ws, a, 1, i, j) : NULL;
            const float *tb = tangents ? row(ws, b, 1, i, j) : NULL;
            float *dv = row(ws, out, 0, i, j), *dt = tangents ? row(ws, out, 1, i, j) : NULL;
            for (int k = 0; k < out->n[2]; k++)
                for (int ch = 0; ch < out->c; ch++) {
                    ptrdiff_t ea = k * a->st[2] + ch, eb = k * b->st[2] + ch;
                    float pre = va[ea] + vb[eb];
                    float s = (lrelu && !(pre > 0.0f)) ? NN_LEAKY_SLOPE : 1.0f;
                    if (dt)
                        dt[k * out->st[2] + ch] = s * (ta[ea] + tb[eb]);
                    dv[k * out->st[2] + ch] = s * pre;
                }
        }
}

static inline float act_one(enum nn_act act, float slope, float x)
{
    if (act == NN_ACT_GELU)
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    return x > 0 ? x : act == NN_ACT_LRELU ? slope * x : 0.0f;
}

void cpu_act(float *ws, const struct cpu_view *in, const struct cpu_view *out, enum nn_act act,
             float slope)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < out->n[0]; i++)
        for (int j = 0; j < out->n[1]; j++) {
            const float *s = row(ws, in, 0, i, j);
            float *d = row(ws, out, 0, i, j);
            for (int k = 0; k < out->n[2]; k++)
                for (int c = 0; c < out->c; c++)
                    d[k * out->st[2] + c] = act_one(act, slope, s[k * in->st[2] + c]);
        }
}

/* Source cell and weights of output cell j along one axis of a x2 upsampling: cells m and m + 1
 * with weights w0, 1 - w0 (nearest: m = j / 2, w0 = 1; valid trilinear: j = 2m + r, w0 = 3/4
 * for r = 0 and 1/4 for r = 1). */
static inline void up_tap(enum nn_upsample mode, int j, int *m, float *w0)
{
    *m = j / 2;
    *w0 = mode == NN_UPSAMPLE_NEAREST ? 1.0f : j % 2 ? 0.25f : 0.75f;
}

void cpu_upsample(float *ws, const struct cpu_view *in, const struct cpu_view *out,
                  enum nn_upsample mode)
{
    bool near = mode == NN_UPSAMPLE_NEAREST;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < out->n[0]; i++)
        for (int j = 0; j < out->n[1]; j++) {
            int mi, mj;
            float wi, wj;
            up_tap(mode, i, &mi, &wi);
            up_tap(mode, j, &mj, &wj);
            float *d = row(ws, out, 0, i, j);
            for (int k = 0; k < out->n[2]; k++) {
                int mk;
                float wk;
                up_tap(mode, k, &mk, &wk);
                for (int c = 0; c < out->c; c++) {
                    float acc = 0;
                    for (int u = 0; u < (near ? 1 : 2); u++)
                        for (int v = 0; v < (near ? 1 : 2); v++) {
                            const float *s = row(ws, in, 0, mi + u, mj + v);
                            float w = (u ? 1 - wi : wi) * (v ? 1 - wj : wj);
                            acc += w * (wk * s[mk * in->st[2] + c] +
                                        (near ? 0.0f : (1 - wk) * s[(mk + 1) * in->st[2] + c]));
                        }
                    d[k * out->st[2] + c] = acc;
                }
            }
        }
}
