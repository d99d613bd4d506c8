/* bias_plan — features of the linear field, their covariance and the site weights (see
 * bias_plan.h). */
#include "bias_plan.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/fft.h"
#include "timer.h"

/* Copy a padded float slab of layout l into the double real view of buf (same layout). */
static void copy_real(const struct fft_layout *l, const float *src, double *dst)
{
    int64_t n_rows = l->rnx * l->n[1];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_rows; r++)
        for (int k = 0; k < l->n[2]; k++)
            dst[r * l->row + k] = src[r * l->row + k];
}

/* δ_k = FFT(δ)/n³ into dk, from f->delta or from Ψ (δ_k = −i k·Ψ_k); work is a second buffer. */
static void load_delta_k(const struct ic_fields *f, const struct fft_plan *fp, double *dk,
                         double *work)
{
    const struct fft_layout *l = fft_layout(fp);
    double norm = 1.0 / ((double)l->n[0] * l->n[1] * l->n[2]);
    ptrdiff_t n_rows = fft_kiter_n_rows(l);
    if (f->delta) {
        copy_real(l, f->delta, dk);
        fft_r2c(fp, dk);
#pragma omp parallel for schedule(static)
        for (ptrdiff_t e = 0; e < 2 * n_rows * l->nkz; e++)
            dk[e] *= norm;
        return;
    }
    memset(dk, 0, (size_t)2 * n_rows * l->nkz * sizeof *dk);
    for (int d = 0; d < 3; d++) {
        copy_real(l, f->psi[d], work);
        fft_r2c(fp, work);
#pragma omp parallel for schedule(static)
        for (ptrdiff_t r = 0; r < n_rows; r++) {
            struct fft_kiter it;
            for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it)) {
                ptrdiff_t j = 2 * it.index;
                double kd = it.k[d] * norm, re = work[j], im = work[j + 1];
                dk[j] += kd * im;
                dk[j + 1] -= kd * re;
            }
        }
    }
}

/* out = filter · dk, filter = k_a k_b / k² W(k) (a >= 0) or −k² W(k) (a < 0); k = 0 gives 0. */
static void filter(const struct fft_layout *l, const double *dk, double *out, int a, int b,
                   double R)
{
    ptrdiff_t n_rows = fft_kiter_n_rows(l);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            double w = 0;
            if (it.k2 > 0) {
                double W = exp(-0.5 * it.k2 * R * R);
                w = a >= 0 ? it.k[a] * it.k[b] / it.k2 * W : -it.k2 * W;
            }
            out[j] = w * dk[j];
            out[j + 1] = w * dk[j + 1];
        }
    }
}

/* The three features of scale s (double, [n_sites][3]) into raw. */
static void scale_features(const struct fft_plan *fp, const double *dk, double *work, double R,
                           double *raw)
{
    const struct fft_layout *l = fft_layout(fp);
    int n1 = l->n[1], n2 = l->n[2];
    int64_t n_rows = l->rnx * n1;
    static const int ij[6][2] = {{0, 0}, {1, 1}, {2, 2}, {0, 1}, {0, 2}, {1, 2}};
    for (int c = 0; c < 7; c++) {
        filter(l, dk, work, c < 6 ? ij[c][0] : -1, c < 6 ? ij[c][1] : -1, R);
        fft_c2r(fp, work);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < n_rows; r++)
            for (int k = 0; k < n2; k++) {
                double v = work[r * l->row + k], *t = raw + 3 * (r * n2 + k);
                if (c == 0)
                    t[0] = t[2] = 0;
                if (c < 3) {
                    t[0] += v;
                    t[2] += v * v;
                } else if (c < 6) {
                    t[2] += 2 * v * v;
                } else {
                    t[1] = v;
                    t[2] -= t[0] * t[0]; /* G2 = Σ φ_ij² − δ_R² */
                }
            }
    }
}

/* Plane sums of v and v² of the 3 features of raw into sums[plane][feature f0 + c][2]. */
static void plane_sums(const struct fft_layout *l, const double *raw, int nf, int f0, double *sums)
{
    int64_t per = (int64_t)l->n[1] * l->n[2];
#pragma omp parallel for schedule(static)
    for (ptrdiff_t p = 0; p < l->rnx; p++) {
        double *s = sums + ((l->rx0 + p) * nf + f0) * 2;
        for (int64_t e = 0; e < per; e++)
            for (int c = 0; c < 3; c++) {
                double v = raw[3 * (p * per + e) + c];
                s[2 * c] += v;
                s[2 * c + 1] += v * v;
            }
    }
}

struct bias_features *bias_features_create(const struct ic_fields *f, int n_scales,
                                           const double *scales, MPI_Comm comm)
{
    timer_start("bias.features");
    struct bias_features *bf = lm_calloc("bias.features", 1, sizeof *bf);
    const struct fft_layout *fl = &f->layout;
    struct fft_plan *fp =
        fft_plan_create(fl->n, fl->box, FFT_PRECISION_DOUBLE, FFT_ESTIMATE, NULL, comm);
    const struct fft_layout *l = fft_layout(fp);
    CHECK(l->rx0 == fl->rx0 && l->rnx == fl->rnx && l->row == fl->row,
          "bias: the double FFT's slabs differ from the linear field's");
    bf->layout = *l;
    bf->n_scales = n_scales;
    bf->n_feat = 3 * n_scales;
    int64_t per = (int64_t)l->n[1] * l->n[2], n = l->n[0];
    bf->n_sites = l->rnx * per;
    bf->feat = lm_malloc("bias.features",
                         (size_t)(bf->n_sites ? bf->n_sites : 1) * bf->n_feat * sizeof(float));
    double *dk = fft_alloc(fp, "bias.fft"), *work = fft_alloc(fp, "bias.fft");
    double *raw = lm_malloc("bias.raw", (size_t)(bf->n_sites ? bf->n_sites : 1) * 3 * sizeof *raw);
    double *sums = lm_calloc("bias.sums", (size_t)n * bf->n_feat * 2, sizeof *sums);
    load_delta_k(f, fp, dk, work);
    for (int s = 0; s < n_scales; s++) {
        scale_features(fp, dk, work, scales[s], raw);
        plane_sums(l, raw, bf->n_feat, 3 * s, sums);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < bf->n_sites; i++)
            for (int c = 0; c < 3; c++)
                bf->feat[i * bf->n_feat + 3 * s + c] = (float)raw[3 * i + c];
    }
    /* each plane is nonzero on one rank only: the sum over ranks is exact */
    comm_sum_double(comm, sums, (int)(n * bf->n_feat * 2));
    double N = (double)n * per;
    for (int c = 0; c < bf->n_feat; c++) {
        double s1 = 0, s2 = 0;
        for (int64_t p = 0; p < n; p++) {
            s1 += sums[(p * bf->n_feat + c) * 2];
            s2 += sums[(p * bf->n_feat + c) * 2 + 1];
        }
        double var = s2 / N - (s1 / N) * (s1 / N);
        bf->std[c] = var > 0 ? sqrt(var) : 1.0;
    }
    /* the float values are rescaled from their double originals: raw holds the last scale only,
     * so every feature is divided in float after one rounding (relative error ~1e-7) */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < bf->n_sites; i++)
        for (int c = 0; c < bf->n_feat; c++)
            bf->feat[i * bf->n_feat + c] = (float)(bf->feat[i * bf->n_feat + c] / bf->std[c]);
    lm_free(sums);
    lm_free(raw);
    lm_free(work);
    lm_free(dk);
    fft_plan_destroy(&fp);
    timer_stop("bias.features");
    return bf;
}

void bias_features_destroy(struct bias_features **bfp)
{
    if (!bfp || !*bfp)
        return;
    lm_free((*bfp)->feat);
    lm_free(*bfp);
    *bfp = NULL;
}

void bias_features_cov(const struct bias_features *bf, double *cov, MPI_Comm comm)
{
    const struct fft_layout *l = &bf->layout;
    int nf = bf->n_feat, n = l->n[0];
    int64_t per = (int64_t)l->n[1] * l->n[2];
    double *sums = lm_calloc("bias.sums", (size_t)n * nf * nf, sizeof *sums);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t p = 0; p < l->rnx; p++) {
        double *s = sums + (size_t)(l->rx0 + p) * nf * nf;
        for (int64_t e = 0; e < per; e++) {
            const float *t = bf->feat + (p * per + e) * nf;
            for (int a = 0; a < nf; a++)
                for (int b = a; b < nf; b++)
                    s[a * nf + b] += (double)t[a] * t[b];
        }
    }
    comm_sum_double(comm, sums, n * nf * nf); /* exact: one rank per plane */
    double N = (double)n * per;
    for (int a = 0; a < nf; a++)
        for (int b = a; b < nf; b++) {
            double s = 0;
            for (int p = 0; p < n; p++)
                s += sums[(size_t)p * nf * nf + a * nf + b];
            cov[a * nf + b] = cov[b * nf + a] = s / N;
        }
    lm_free(sums);
}

float *bias_features_input(const struct bias_features *bf, const struct bias_model *m)
{
    CHECK(m->n_feat == bf->n_feat, "bias: the model has %d features, the field %d", m->n_feat,
          bf->n_feat);
    float *in =
        lm_malloc("bias.input", (size_t)(bf->n_sites ? bf->n_sites : 1) * m->n_in * sizeof(float));
    bias_orth_apply(m, bf->n_sites, bf->feat, in);
    return in;
}

float *bias_site_weights(const struct bias_features *bf, const struct bias_model *m)
{
    timer_start("bias.mlp");
    float *in = bias_features_input(bf, m);
    float *f = lm_malloc("bias.f", (size_t)(bf->n_sites ? bf->n_sites : 1) * sizeof(float));
    bias_forward(m, bf->layout.rx0 * bf->layout.n[1] * bf->layout.n[2], bf->n_sites, in, f);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < bf->n_sites; i++)
        f[i] = (float)pow(10.0, (double)f[i]);
    lm_free(in);
    timer_stop("bias.mlp");
    return f;
}

/* ---- the halo field ------------------------------------------------------------------ */

/* NGP density (N_cells / N_part) Σ f − 1 of the migrated particles into mesh (real view), then
 * δ_k (FFT / N³, divided by the NGP window when compensate). */
static void ngp_density(struct power_plan *pp, const struct particles *h, double n_part,
                        bool compensate, float *mesh)
{
    const struct fft_plan *fp = power_plan_fft(pp);
    const struct fft_layout *l = fft_layout(fp);
    int n = l->n[0];
    int64_t per = (int64_t)n * n, n_loc = l->rnx * per;
    double *acc = lm_calloc("bias.ngp", (size_t)(n_loc ? n_loc : 1), sizeof *acc);
    double box = l->box[0];
    for (int64_t i = 0; i < h->n; i++) {
        int64_t c[3];
        for (int d = 0; d < 3; d++)
            c[d] = decomp_cell_index(h->x[d][i], n, box);
        int64_t at = (c[0] - l->rx0) * per + c[1] * n + c[2];
        CHECK(at >= 0 && at < n_loc, "bias: a particle outside this rank's slab after migration");
        acc[at] += h->w[i];
    }
    double scale = (double)n * per / n_part;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < l->rnx * n; r++)
        for (int k = 0; k < l->row; k++)
            mesh[r * l->row + k] = k < n ? (float)(scale * acc[r * n + k] - 1) : 0.0f;
    lm_free(acc);
    fft_r2c(fp, mesh);
    double norm = 1.0 / ((double)n * per), hh = box / n;
    ptrdiff_t n_rows = fft_kiter_n_rows(l);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it)) {
            double w = norm;
            for (int d = 0; compensate && d < 3; d++) {
                double x = 0.5 * it.k[d] * hh;
                w /= x != 0 ? sin(x) / x : 1.0;
            }
            mesh[2 * it.index] = (float)(mesh[2 * it.index] * w);
            mesh[2 * it.index + 1] = (float)(mesh[2 * it.index + 1] * w);
        }
    }
}

void bias_halo_density(struct power_plan *pp, const struct particles *h, double n_part,
                       double sum_f, bool ngp, bool compensate, float *mesh)
{
    if (ngp) {
        ngp_density(pp, h, n_part, compensate, mesh);
        return;
    }
    power_density(pp, h, mesh, NULL); /* normalised by Σ f: rescale to (N_cells / N_part) Σ f */
    const struct fft_layout *l = fft_layout(power_plan_fft(pp));
    float c = (float)(sum_f / n_part);
    ptrdiff_t count = 2 * fft_kiter_n_rows(l) * l->nkz;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t e = 0; e < count; e++)
        mesh[e] *= c;
}
