/* bias_mlp — the bias network: model storage, orthogonalisation, float inference, double forward
 * and backward passes, Adam (see bias.h). */
#include "bias.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* LAPACK's symmetric eigensolver (OpenBLAS ships it); the trailing lengths are gfortran's hidden
 * string arguments. */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info, size_t l_jobz,
                   size_t l_uplo);
extern void openblas_set_num_threads(int n);

int bias_layer_in(const struct bias_model *m, int l) { return l == 0 ? m->n_in : BIAS_WIDTH; }
int bias_layer_out(int l) { return l == BIAS_N_LAYERS - 1 ? 1 : BIAS_WIDTH; }

struct bias_model *bias_model_create(int n_scales, const double *scales)
{
    CHECK(n_scales >= 1 && n_scales <= BIAS_MAX_SCALES, "bias: %d smoothing scales (1 ... %d)",
          n_scales, BIAS_MAX_SCALES);
    struct bias_model *m = lm_calloc("bias.model", 1, sizeof *m);
    m->n_scales = n_scales;
    memcpy(m->scales, scales, (size_t)n_scales * sizeof *scales);
    m->n_feat = 3 * n_scales;
    m->n_in = 2 * n_scales + 1;
    m->V = lm_calloc("bias.model", (size_t)m->n_feat * m->n_in, sizeof *m->V);
    m->lambda = lm_calloc("bias.model", (size_t)m->n_in, sizeof *m->lambda);
    m->kept = lm_calloc("bias.model", (size_t)m->n_in, sizeof *m->kept);
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        int in = bias_layer_in(m, l), out = bias_layer_out(l);
        m->w[l] = lm_calloc("bias.model", (size_t)in * out, sizeof(float));
        m->b[l] = lm_calloc("bias.model", (size_t)out, sizeof(float));
    }
    return m;
}

void bias_model_destroy(struct bias_model **mp)
{
    if (!mp || !*mp)
        return;
    struct bias_model *m = *mp;
    lm_free(m->V);
    lm_free(m->lambda);
    lm_free(m->kept);
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        lm_free(m->w[l]);
        lm_free(m->b[l]);
    }
    lm_free(m->loss);
    lm_free(m);
    *mp = NULL;
}

size_t bias_n_params(const struct bias_model *m)
{
    size_t n = 0;
    for (int l = 0; l < BIAS_N_LAYERS; l++)
        n += (size_t)(bias_layer_in(m, l) + 1) * bias_layer_out(l);
    return n;
}

void bias_params_get(const struct bias_model *m, double *theta)
{
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        size_t nw = (size_t)bias_layer_in(m, l) * bias_layer_out(l);
        for (size_t i = 0; i < nw; i++)
            *theta++ = m->w[l][i];
        for (int i = 0; i < bias_layer_out(l); i++)
            *theta++ = m->b[l][i];
    }
}

void bias_params_set(struct bias_model *m, const double *theta)
{
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        size_t nw = (size_t)bias_layer_in(m, l) * bias_layer_out(l);
        for (size_t i = 0; i < nw; i++)
            m->w[l][i] = (float)*theta++;
        for (int i = 0; i < bias_layer_out(l); i++)
            m->b[l][i] = (float)*theta++;
    }
}

uint64_t bias_hash(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void bias_params_init(const struct bias_model *m, uint64_t seed, double *theta)
{
    uint64_t s = bias_hash(seed);
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        int in = bias_layer_in(m, l), out = bias_layer_out(l);
        double a = 1.0 / sqrt((double)in);
        for (int i = 0; i < (in + 1) * out; i++) {
            s = bias_hash(s);
            double u = (double)(s >> 11) * 0x1.0p-53;
            *theta++ = a * (2 * u - 1);
        }
    }
}

bool bias_model_first_bad(const struct bias_model *m, char *what, size_t cap)
{
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        int in = bias_layer_in(m, l), out = bias_layer_out(l);
        for (int i = 0; i < in * out; i++)
            if (!isfinite(m->w[l][i]))
                return snprintf(what, cap, "mlp/weight_%d[%d][%d]", l, i / in, i % in), true;
        for (int i = 0; i < out; i++)
            if (!isfinite(m->b[l][i]))
                return snprintf(what, cap, "mlp/bias_%d[%d]", l, i), true;
    }
    for (int i = 0; i < m->n_feat * m->n_in; i++)
        if (!isfinite(m->V[i]))
            return snprintf(what, cap, "orth/V[%d][%d]", i / m->n_in, i % m->n_in), true;
    for (int j = 0; j < m->n_in; j++)
        if (!isfinite(m->lambda[j]) || m->lambda[j] <= 0)
            return snprintf(what, cap, "orth/Lambda[%d] (%g; expected > 0)", j, m->lambda[j]), true;
    return false;
}

/* ---- orthogonalisation ------------------------------------------------------------------- */

/* Eigen-decompose the sub-block of cov over the features idx[0..n) and keep its k largest
 * eigenpairs as columns col0 ... col0 + k - 1 of m->V. */
static bool orth_block(struct bias_model *m, const double *cov, const int *idx, int n, int k,
                       int col0, struct lm_err *err)
{
    double a[4 * BIAS_MAX_SCALES * BIAS_MAX_SCALES], w[2 * BIAS_MAX_SCALES], work[512];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) /* column-major for LAPACK; symmetric anyway */
            a[j * n + i] = cov[idx[i] * m->n_feat + idx[j]];
    int info = 0, lwork = 512;
    dsyev_("V", "U", &n, a, &n, w, work, &lwork, &info, 1, 1);
    if (info != 0)
        return lm_err_set(err,
                          "bias: the eigen-decomposition of the feature covariance failed "
                          "(LAPACK dsyev info %d)",
                          info);
    for (int c = 0; c < k; c++) {
        int e = n - 1 - c; /* ascending eigenvalues: take them from the top */
        if (!(w[e] > 0))
            return lm_err_set(err,
                              "bias: feature covariance eigenvalue %d of %d is %g; expected > 0 "
                              "(are the features of the box degenerate?)",
                              e, n, w[e]);
        m->lambda[col0 + c] = w[e];
        m->kept[col0 + c] = c;
        for (int i = 0; i < m->n_feat; i++)
            m->V[i * m->n_in + col0 + c] = 0;
        for (int i = 0; i < n; i++)
            m->V[idx[i] * m->n_in + col0 + c] = a[e * n + i];
    }
    return true;
}

bool bias_orth_from_cov(struct bias_model *m, const double *cov, struct lm_err *err)
{
    int nr = m->n_scales, dl[2 * BIAS_MAX_SCALES], g2[BIAS_MAX_SCALES];
    for (int s = 0; s < nr; s++) {
        dl[2 * s] = 3 * s;
        dl[2 * s + 1] = 3 * s + 1;
        g2[s] = 3 * s + 2;
    }
    return orth_block(m, cov, dl, 2 * nr, nr + 1, 0, err) &&
           orth_block(m, cov, g2, nr, nr, nr + 1, err);
}

void bias_orth_apply(const struct bias_model *m, int64_t n, const float *feat, float *in)
{
    int nf = m->n_feat, ni = m->n_in;
    double T[3 * BIAS_MAX_SCALES * (2 * BIAS_MAX_SCALES + 1)];
    for (int f = 0; f < nf; f++)
        for (int j = 0; j < ni; j++)
            T[f * ni + j] = m->V[f * ni + j] / sqrt(m->lambda[j]);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < ni; j++) {
            double s = 0;
            for (int f = 0; f < nf; f++)
                s += (double)feat[i * nf + f] * T[f * ni + j];
            in[i * ni + j] = (float)s;
        }
}

/* ---- float inference --------------------------------------------------------------------- */

/* GELU x Φ(x) = x (1 + erf(x/√2)) / 2 with the exact erf. Declared SIMD-callable, the loops
 * below call glibc's vector erf, erff and exp (libmvec, within 4 ulp) on whole registers. */
#pragma omp declare simd notinbranch
extern float erff(float);
#pragma omp declare simd notinbranch
extern double erf(double);
#pragma omp declare simd notinbranch
extern double exp(double);

/* v = GELU(v) for count values. */
static void gelu_rows(float *v, size_t count)
{
#pragma omp simd
    for (size_t e = 0; e < count; e++)
        v[e] = 0.5f * v[e] * (1.0f + erff(v[e] * 0.70710678118654752f));
}

/* One block of rows: h = GELU(x Wᵀ + b) layer by layer. a, b2: rows × BIAS_WIDTH floats. */
static void forward_block(const struct bias_model *m, int rows, const float *x, float *a, float *t,
                          float *y)
{
    const float *src = x;
    for (int l = 0; l < BIAS_N_LAYERS - 1; l++) {
        int in = bias_layer_in(m, l);
        float *dst = (l % 2 == 0) ? a : t;
        for (int r = 0; r < rows; r++)
            memcpy(dst + (size_t)r * BIAS_WIDTH, m->b[l], BIAS_WIDTH * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, BIAS_WIDTH, in, 1.0f, src, in,
                    m->w[l], in, 1.0f, dst, BIAS_WIDTH);
        gelu_rows(dst, (size_t)rows * BIAS_WIDTH);
        src = dst;
    }
    const float *wl = m->w[BIAS_N_LAYERS - 1];
    float bl = m->b[BIAS_N_LAYERS - 1][0];
    for (int r = 0; r < rows; r++) {
        float s = 0;
        for (int j = 0; j < BIAS_WIDTH; j++)
            s += src[(size_t)r * BIAS_WIDTH + j] * wl[j];
        y[r] = s + bl;
    }
}

void bias_forward(const struct bias_model *m, int64_t g0, int64_t n, const float *in, float *y)
{
    openblas_set_num_threads(1);
    int64_t b0 = g0 / BIAS_BLOCK, b1 = (g0 + n + BIAS_BLOCK - 1) / BIAS_BLOCK;
    int ni = m->n_in;
#pragma omp parallel
    {
        float *a = lm_malloc("bias.forward", 2 * BIAS_BLOCK * BIAS_WIDTH * sizeof(float));
        float *pad = lm_malloc("bias.forward", (size_t)BIAS_BLOCK * (ni + 1) * sizeof(float));
        float *t = a + BIAS_BLOCK * BIAS_WIDTH, *yp = pad + (size_t)BIAS_BLOCK * ni;
#pragma omp for schedule(dynamic, 4)
        for (int64_t b = b0; b < b1; b++) {
            int64_t lo = b * BIAS_BLOCK > g0 ? b * BIAS_BLOCK : g0;
            int64_t hi = (b + 1) * BIAS_BLOCK < g0 + n ? (b + 1) * BIAS_BLOCK : g0 + n;
            if (hi - lo == BIAS_BLOCK) {
                forward_block(m, BIAS_BLOCK, in + (lo - g0) * ni, a, t, y + (lo - g0));
                continue;
            }
            /* a block cut by the ends of the range: its rows keep their places among zero rows,
             * so a row goes through the same GEMM tile as in any other split */
            int off = (int)(lo - b * BIAS_BLOCK), rows = (int)(hi - lo);
            memset(pad, 0, (size_t)BIAS_BLOCK * ni * sizeof(float));
            memcpy(pad + (size_t)off * ni, in + (lo - g0) * ni, (size_t)rows * ni * sizeof(float));
            forward_block(m, BIAS_BLOCK, pad, a, t, yp);
            memcpy(y + (lo - g0), yp + off, (size_t)rows * sizeof(float));
        }
        lm_free(pad);
        lm_free(a);
    }
}

/* ---- double training passes -------------------------------------------------------------- */

void bias_dnet_bind(struct bias_dnet *net, int n_in, const double *theta)
{
    net->n_in = n_in;
    net->theta = theta;
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        int in = l == 0 ? n_in : BIAS_WIDTH, out = bias_layer_out(l);
        net->w[l] = theta;
        net->b[l] = theta + (size_t)in * out;
        theta += (size_t)(in + 1) * out;
    }
}

/* Per row: the pre-activations z_l and the activations h_l = GELU(z_l) of the 5 hidden layers. */
size_t bias_dnet_act_size(void) { return 2 * (BIAS_N_LAYERS - 1) * BIAS_WIDTH; }

/* z of layer l (n × W) and h, in act (layer-major blocks of n × W). */
static double *act_z(double *act, int n, int l) { return act + (size_t)(2 * l) * n * BIAS_WIDTH; }
static double *act_h(double *act, int n, int l)
{
    return act + (size_t)(2 * l + 1) * n * BIAS_WIDTH;
}

void bias_dnet_forward(const struct bias_dnet *net, int n, const double *x, double *act, double *y)
{
    openblas_set_num_threads(1);
    const double *src = x;
    for (int l = 0; l < BIAS_N_LAYERS - 1; l++) {
        int in = l == 0 ? net->n_in : BIAS_WIDTH;
        double *z = act_z(act, n, l), *h = act_h(act, n, l);
        for (int r = 0; r < n; r++)
            memcpy(z + (size_t)r * BIAS_WIDTH, net->b[l], BIAS_WIDTH * sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, BIAS_WIDTH, in, 1.0, src, in,
                    net->w[l], in, 1.0, z, BIAS_WIDTH);
        size_t count = (size_t)n * BIAS_WIDTH;
#pragma omp simd
        for (size_t e = 0; e < count; e++)
            h[e] = 0.5 * z[e] * (1 + erf(z[e] * M_SQRT1_2));
        src = h;
    }
    const double *wl = net->w[BIAS_N_LAYERS - 1];
    for (int r = 0; r < n; r++) {
        double s = net->b[BIAS_N_LAYERS - 1][0];
        for (int j = 0; j < BIAS_WIDTH; j++)
            s += src[(size_t)r * BIAS_WIDTH + j] * wl[j];
        y[r] = s;
    }
}

void bias_dnet_backward(const struct bias_dnet *net, int n, const double *x, const double *act,
                        const double *dy, double *grad, double *ws)
{
    openblas_set_num_threads(1);
    double *g[BIAS_N_LAYERS], *gb[BIAS_N_LAYERS];
    double *q = grad;
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        int in = l == 0 ? net->n_in : BIAS_WIDTH, out = bias_layer_out(l);
        g[l] = q;
        gb[l] = q + (size_t)in * out;
        q += (size_t)(in + 1) * out;
    }
    double *act_m = (double *)act, *dh = ws, *dz = ws + (size_t)n * BIAS_WIDTH;
    const double *h4 = act_h(act_m, n, BIAS_N_LAYERS - 2);
    const double *wl = net->w[BIAS_N_LAYERS - 1];
    for (int r = 0; r < n; r++) { /* output layer */
        gb[BIAS_N_LAYERS - 1][0] += dy[r];
        for (int j = 0; j < BIAS_WIDTH; j++) {
            g[BIAS_N_LAYERS - 1][j] += dy[r] * h4[(size_t)r * BIAS_WIDTH + j];
            dh[(size_t)r * BIAS_WIDTH + j] = dy[r] * wl[j];
        }
    }
    for (int l = BIAS_N_LAYERS - 2; l >= 0; l--) {
        int in = l == 0 ? net->n_in : BIAS_WIDTH;
        const double *z = act_z(act_m, n, l);
        const double *src = l == 0 ? x : act_h(act_m, n, l - 1);
        size_t count = (size_t)n * BIAS_WIDTH;
#pragma omp simd
        for (size_t e = 0; e < count; e++) /* GELU' = Φ(z) + z φ(z) */
            dz[e] = dh[e] * (0.5 * (1 + erf(z[e] * M_SQRT1_2)) +
                             z[e] * exp(-0.5 * z[e] * z[e]) * 0.39894228040143267794);
        for (int r = 0; r < n; r++)
            for (int j = 0; j < BIAS_WIDTH; j++)
                gb[l][j] += dz[(size_t)r * BIAS_WIDTH + j];
        /* dW_l += dzᵀ src: [W][in] */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, BIAS_WIDTH, in, n, 1.0, dz, BIAS_WIDTH,
                    src, in, 1.0, g[l], in);
        if (l > 0) /* dh_{l-1} = dz W_l: [n][W] */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, BIAS_WIDTH, BIAS_WIDTH, 1.0,
                        dz, BIAS_WIDTH, net->w[l], BIAS_WIDTH, 0.0, dh, BIAS_WIDTH);
    }
}

double bias_epsilon(int epoch)
{
    if (epoch <= 1)
        return 0;
    double e = pow(10.0, -1.0 - 3.0 * log10((double)epoch));
    return e > 1e-4 ? e : 1e-4;
}

void bias_adam_step(int64_t n, double *theta, const double *grad, double *m, double *v, double lr,
                    int64_t t)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double c1 = 1 - pow(b1, (double)t), c2 = 1 - pow(b2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * grad[i];
        v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
        theta[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + eps);
    }
}
