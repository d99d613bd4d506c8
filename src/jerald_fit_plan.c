/* jerald_fit_plan — losses and reverse-mode gradients of JERALD maps (jerald_fit_plan.h). */
#include "jerald_fit_plan.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "jerald_adjoint.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/paint.h"
#include "mpi/readout_grad.h"
#include "mpi/route.h"
#include "timer.h"

/** Radial tables by m² = m_x² + m_y² + m_z²: per term G, ∂G/∂kh, ∂G/∂kl, ∂G/∂ν; the depletion
 *  filter and its 4 derivatives; the smoothing operator. */
enum { TAB_TERM0 = 0, TAB_TERM1 = 4, TAB_DEPL = 8, TAB_SMOOTH = 13, TAB_N = 14 };

/** Parameter sums of the k-space reductions of one evaluation. */
enum { SUM_TERMS = 8, SUM_DEPL = 4 };

struct jerald_fit_plan {
    struct jerald_plan *fwd;
    const struct fft_plan *fft;
    const struct fft_layout *layout;
    MPI_Comm comm;
    struct paint_plan *paint;
    struct readout_grad_plan *rgrad;
    int n;
    double box, kf, n3;
    double *dk[3];  /**< D(k_d) by global index per axis */
    int64_t n_m2;   /**< radial table length */
    double *tab;    /**< [n_m2][TAB_N] radial values of the running evaluation */
    double *rowsum; /**< [k rows or planes][SUM_TERMS] partial sums */
    float *rho, *map, *a1, *a2, *g[3], *gb[3], *target;
    struct jerald_loss loss;
    bool has_target;
    struct particles *work;                     /**< positions + origin tags */
    struct particles *saved[JERALD_MAX_LAYERS]; /**< inputs of the trained layers */
    uint64_t *route[JERALD_MAX_LAYERS];         /**< origins after each trained layer */
    int64_t n_route[JERALD_MAX_LAYERS], cap_route[JERALD_MAX_LAYERS];
    float *xbar[3], *xtmp[3]; /**< position cotangents and scratch */
    int64_t cap_bar;
    float stellar_inv; /**< 1 / ⟨max(M*, 1e-12)⟩ (HI) */
};

/* ---- set-up ---------------------------------------------------------------------------------- */

struct jerald_fit_plan *jerald_fit_plan_create(int n_mesh, double box_size, int gradient_order,
                                               const struct power_options *power, MPI_Comm comm)
{
    struct jerald_fit_plan *p = lm_calloc("jerald_fit.plan", 1, sizeof *p);
    p->fwd = jerald_plan_create(n_mesh, box_size, gradient_order, power, comm);
    p->fft = jerald_plan_fft(p->fwd);
    p->layout = fft_layout(p->fft);
    p->comm = fft_comm(p->fft);
    p->paint = paint_plan_create(p->fft, 3, comm);
    p->rgrad = readout_grad_plan_create(p->fft, 4, comm);
    p->n = n_mesh;
    p->box = box_size;
    p->kf = 2 * M_PI / box_size;
    p->n3 = (double)n_mesh * n_mesh * n_mesh;
    double h = box_size / n_mesh;
    for (int d = 0; d < 3; d++) {
        int len = d == 2 ? (int)p->layout->nkz : n_mesh;
        p->dk[d] = lm_malloc("jerald_fit.tables", (size_t)len * sizeof(double));
        for (int i = 0; i < len; i++)
            p->dk[d][i] = jerald_gradient_kernel(
                gradient_order, p->kf * (d == 2 ? i : fft_signed_index(i, n_mesh)), h);
    }
    int64_t half = n_mesh / 2;
    p->n_m2 = 3 * half * half + 1;
    p->tab = lm_calloc("jerald_fit.tables", (size_t)p->n_m2 * TAB_N, sizeof(double));
    ptrdiff_t rows = fft_kiter_n_rows(p->layout);
    ptrdiff_t n_sum = rows > p->layout->rnx ? rows : p->layout->rnx;
    p->rowsum =
        lm_calloc("jerald_fit.sums", (size_t)(n_sum > 0 ? n_sum : 1) * SUM_TERMS, sizeof(double));
    float **meshes[] = {&p->rho, &p->map, &p->a1, &p->gb[0], &p->gb[1], &p->gb[2], &p->target};
    for (int d = 0; d < 3; d++) /* idle while the fit's own passes run */
        p->g[d] = jerald_plan_scratch(p->fwd, d);
    for (size_t i = 0; i < sizeof meshes / sizeof *meshes; i++)
        *meshes[i] = fft_alloc(p->fft, "jerald_fit.mesh");
    p->work = particles_create(PARTICLES_POS | PARTICLES_ID, 0);
    p->loss = (struct jerald_loss){.p = 2};
    return p;
}

void jerald_fit_plan_destroy(struct jerald_fit_plan **plan)
{
    struct jerald_fit_plan *p = *plan;
    if (!p)
        return;
    float *meshes[] = {p->rho, p->map, p->a1, p->a2, p->gb[0], p->gb[1], p->gb[2], p->target};
    for (size_t i = 0; i < sizeof meshes / sizeof *meshes; i++)
        lm_free(meshes[i]);
    for (int d = 0; d < 3; d++) {
        lm_free(p->dk[d]);
        lm_free(p->xbar[d]);
        lm_free(p->xtmp[d]);
    }
    for (int l = 0; l < JERALD_MAX_LAYERS; l++) {
        particles_destroy(&p->saved[l]);
        lm_free(p->route[l]);
    }
    lm_free(p->tab);
    lm_free(p->rowsum);
    particles_destroy(&p->work);
    readout_grad_plan_destroy(&p->rgrad);
    paint_plan_destroy(&p->paint);
    jerald_plan_destroy(&p->fwd);
    lm_free(p);
    *plan = NULL;
}

struct jerald_plan *jerald_fit_plan_forward(struct jerald_fit_plan *plan) { return plan->fwd; }

/** Floats of the local real slab, row padding included. */
static size_t slab_floats(const struct jerald_fit_plan *p)
{
    return (size_t)p->layout->rnx * (size_t)p->layout->n[1] * (size_t)p->layout->row;
}

/** The smoothing operator Õ_s(k) = 1 + k^−n (k = 0: 1). */
static double smoothing(double n, double k) { return k == 0 ? 1.0 : 1 + pow(k, -n); }

void jerald_fit_set_target(struct jerald_fit_plan *p, const float *target,
                           const struct jerald_loss *loss)
{
    memcpy(p->target, target, slab_floats(p) * sizeof(float));
    p->loss = *loss;
    p->has_target = true;
#pragma omp parallel for schedule(static)
    for (int64_t m2 = 0; m2 < p->n_m2; m2++)
        p->tab[m2 * TAB_N + TAB_SMOOTH] = smoothing(loss->smoothing_n, p->kf * sqrt((double)m2));
}

/* ---- regions --------------------------------------------------------------------------------- */

static int test_side(int n) { return (int)lround(0.43 * n); }

static inline int cell_region(int n, int t, int64_t ix, int iy, int iz)
{
    if (ix < n / 2)
        return JERALD_REGION_TRAIN;
    if (ix >= n - t && iy < t && iz < t)
        return JERALD_REGION_TEST;
    return JERALD_REGION_VALID;
}

void jerald_fit_region_sizes(const struct jerald_fit_plan *p, int64_t out[JERALD_N_REGIONS])
{
    int64_t n = p->n, t = test_side(p->n), n2 = n * n;
    out[JERALD_REGION_TRAIN] = (n / 2) * n2;
    out[JERALD_REGION_TEST] = t * t * t;
    out[JERALD_REGION_VALID] = n * n2 - out[JERALD_REGION_TRAIN] - out[JERALD_REGION_TEST];
}

/* ---- k space --------------------------------------------------------------------------------- */

static inline int64_t mode_m2(const struct fft_kiter *it)
{
    return (int64_t)it->m[0] * it->m[0] + (int64_t)it->m[1] * it->m[1] +
           (int64_t)it->m[2] * it->m[2];
}

/** Fill the radial tables of term slot s (TAB_TERM0 or TAB_TERM1) for term t of form g. */
static void table_term(struct jerald_fit_plan *p, int s, enum jerald_green g,
                       const struct jerald_term *t)
{
#pragma omp parallel for schedule(static)
    for (int64_t m2 = 0; m2 < p->n_m2; m2++)
        jerald_green_grad(g, t, p->kf * sqrt((double)m2), &p->tab[m2 * TAB_N + s]);
}

static void table_depletion(struct jerald_fit_plan *p, const struct jerald_depletion *d)
{
#pragma omp parallel for schedule(static)
    for (int64_t m2 = 0; m2 < p->n_m2; m2++)
        jerald_depletion_filter_grad(d, p->kf * sqrt((double)m2), &p->tab[m2 * TAB_N + TAB_DEPL]);
}

/** Add the row sums (n_rows x n_sum, row-major) in row order into out, then over the ranks. */
static void sum_rows(struct jerald_fit_plan *p, ptrdiff_t n_rows, int n_sum, double *out)
{
    double s[SUM_TERMS] = {0};
    for (ptrdiff_t r = 0; r < n_rows; r++)
        for (int j = 0; j < n_sum; j++)
            s[j] += p->rowsum[r * SUM_TERMS + j];
    comm_sum_double(p->comm, s, n_sum);
    for (int j = 0; j < n_sum; j++)
        out[j] = s[j];
}

/* Compute kernel: a *= f(|k|) / N^3 with f the smoothing operator (slot TAB_SMOOTH) or the
 * depletion filter (TAB_DEPL). */
static void kspace_radial(struct jerald_fit_plan *p, float *a, int slot)
{
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
    double inv = 1 / p->n3;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            double f = p->tab[mode_m2(&it) * TAB_N + slot] * inv;
            a[j] = (float)(f * a[j]);
            a[j + 1] = (float)(f * a[j + 1]);
        }
    }
}

/* Compute kernel: g_d = −i D(k_d) φ_k, φ = r0 A1 (+ r1 A2), r = σ s α G / N^3. */
static void kspace_gradient(struct jerald_fit_plan *p, const double r_scale[2], bool two)
{
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
    const float *a = p->a1, *b = p->a2;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            const double *t = &p->tab[mode_m2(&it) * TAB_N];
            double f0 = r_scale[0] * t[TAB_TERM0];
            double re = f0 * a[j], im = f0 * a[j + 1];
            if (two) {
                double f1 = r_scale[1] * t[TAB_TERM1];
                re += f1 * b[j];
                im += f1 * b[j + 1];
            }
            for (int d = 0; d < 3; d++) {
                double D = p->dk[d][it.i[d]];
                p->g[d][j] = (float)(D * im);
                p->g[d][j + 1] = (float)(-D * re);
            }
        }
    }
}

/* Compute kernel: P = i Σ_d D(k_d) Ḡ_d; the parameter sums Σ w Re(P* A) ∂r/∂θ per term (α, kh,
 * kl, ν with r = unit α G, unit = σ s / N^3); then gb[1] = r0 P and (HI) gb[2] = r1 P, the
 * cotangents of the two sources' transforms. */
static void kspace_adjoint(struct jerald_fit_plan *p, const double unit[2], const double alpha[2],
                           bool two, double sums[SUM_TERMS])
{
    const double r_scale[2] = {unit[0] * alpha[0], unit[1] * alpha[1]};
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
    float *g0 = p->gb[0], *g1 = p->gb[1], *g2 = p->gb[2];
    const float *a = p->a1, *b = p->a2;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        double s[SUM_TERMS] = {0};
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            double dx = p->dk[0][it.i[0]], dy = p->dk[1][it.i[1]], dz = p->dk[2][it.i[2]];
            double pre = -(dx * g0[j + 1] + dy * g1[j + 1] + dz * g2[j + 1]);
            double pim = dx * g0[j] + dy * g1[j] + dz * g2[j];
            const double *t = &p->tab[mode_m2(&it) * TAB_N];
            double x0 = it.weight * (pre * a[j] + pim * a[j + 1]);
            s[0] += x0 * unit[0] * t[TAB_TERM0];
            for (int q = 1; q < 4; q++)
                s[q] += x0 * r_scale[0] * t[TAB_TERM0 + q];
            double f0 = r_scale[0] * t[TAB_TERM0];
            g1[j] = (float)(f0 * pre);
            g1[j + 1] = (float)(f0 * pim);
            if (two) {
                double x1 = it.weight * (pre * b[j] + pim * b[j + 1]);
                s[4] += x1 * unit[1] * t[TAB_TERM1];
                for (int q = 1; q < 4; q++)
                    s[4 + q] += x1 * r_scale[1] * t[TAB_TERM1 + q];
                double f1 = r_scale[1] * t[TAB_TERM1];
                g2[j] = (float)(f1 * pre);
                g2[j + 1] = (float)(f1 * pim);
            }
        }
        memcpy(&p->rowsum[r * SUM_TERMS], s, sizeof s);
    }
    sum_rows(p, n_rows, SUM_TERMS, sums);
}

/* Compute kernel: the depletion-filter sums Σ w Re(F̄* M̂_k) ∂F/∂θ / N^3 (kh, kl, ν, ξ), F̄ in
 * fb, M̂_k in mh (both unnormalised transforms). */
static void kspace_depletion(struct jerald_fit_plan *p, const float *fb, const float *mh,
                             double sums[SUM_DEPL])
{
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
    double inv = 1 / p->n3;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        double s[SUM_DEPL] = {0};
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            double x = it.weight * ((double)fb[j] * mh[j] + (double)fb[j + 1] * mh[j + 1]) * inv;
            const double *t = &p->tab[mode_m2(&it) * TAB_N + TAB_DEPL];
            for (int q = 0; q < SUM_DEPL; q++)
                s[q] += x * t[1 + q];
        }
        memcpy(&p->rowsum[r * SUM_TERMS], s, sizeof s);
    }
    sum_rows(p, n_rows, SUM_DEPL, sums);
}

static void fft_forward(struct jerald_fit_plan *p, float *m)
{
    timer_start("jerald_fit.fft");
    fft_r2c(p->fft, m);
    timer_stop("jerald_fit.fft");
}

static void fft_backward(struct jerald_fit_plan *p, float *m)
{
    timer_start("jerald_fit.fft");
    fft_c2r(p->fft, m);
    timer_stop("jerald_fit.fft");
}

/* ---- real space ------------------------------------------------------------------------------ */

static struct cic_points points_of(const struct particles *parts)
{
    struct cic_points pts = {.n = parts->n};
    for (int d = 0; d < 3; d++)
        pts.x[d] = parts->x[d];
    return pts;
}

/** N^3 / N_part: the density normalisation of a paint. */
static double density_norm(struct jerald_fit_plan *p, const struct particles *parts)
{
    int64_t n = parts->n;
    comm_sum_int64(p->comm, &n, 1);
    return p->n3 / (double)n;
}

/** out = CIC paint of the particles (unit mass) · N^3 / N_part. */
static void paint_density(struct jerald_fit_plan *p, const struct particles *parts, float *out)
{
    float norm = (float)density_norm(p, parts);
    struct cic_points pts = points_of(parts);
    timer_start("jerald_fit.paint");
    paint_execute(p->paint, 1, &out, &pts, 0.0);
    size_t n = slab_floats(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        out[i] *= norm;
    timer_stop("jerald_fit.paint");
}

/** Sum the plane sums (rnx x n_sum) in plane order, then over the ranks. */
static void sum_planes(struct jerald_fit_plan *p, int n_sum, double *out)
{
    sum_rows(p, p->layout->rnx, n_sum, out);
}

/** Global mean of a real mesh (plane sums in order). */
static double mesh_mean(struct jerald_fit_plan *p, const float *a)
{
    const struct fft_layout *l = p->layout;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        double s = 0;
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++)
                s += a[(i * l->n[1] + j) * l->row + k];
        p->rowsum[i * SUM_TERMS] = s;
    }
    double s;
    sum_planes(p, 1, &s);
    return s / p->n3;
}

/** Apply Õ_s to a real mesh when the loss smooths (it is symmetric: its own adjoint). */
static void smooth(struct jerald_fit_plan *p, float *a)
{
    if (p->loss.smoothing_n == 0)
        return;
    fft_forward(p, a);
    kspace_radial(p, a, TAB_SMOOTH);
    fft_backward(p, a);
}

/* Compute kernel: e = Õ_s(F − T) into g[0], the region losses, and (grad) the cotangent of F,
 * Õ_s of p |e|^(p−1) sign(e) / N_train on the training cells, into g[0]. */
static void loss_execute(struct jerald_fit_plan *p, double loss[JERALD_N_REGIONS], bool grad)
{
    const struct fft_layout *l = p->layout;
    size_t n = slab_floats(p);
    float *e = p->g[0];
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        e[i] = p->map[i] - p->target[i];
    smooth(p, e);
    int t = test_side(p->n), pw = p->loss.p;
    int64_t size[JERALD_N_REGIONS];
    jerald_fit_region_sizes(p, size);
    double scale = (double)pw / (double)size[JERALD_REGION_TRAIN];
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        double s[JERALD_N_REGIONS] = {0};
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++) {
                ptrdiff_t c = (i * l->n[1] + j) * l->row + k;
                double v = e[c];
                int r = cell_region(p->n, t, l->rx0 + i, j, k);
                s[r] += pw == 1 ? fabs(v) : v * v;
                if (grad) {
                    double d = pw == 1 ? (v > 0) - (v < 0) : v;
                    e[c] = r == JERALD_REGION_TRAIN ? (float)(scale * d) : 0.0f;
                }
            }
        memcpy(&p->rowsum[i * SUM_TERMS], s, sizeof s);
    }
    sum_planes(p, JERALD_N_REGIONS, loss);
    for (int r = 0; r < JERALD_N_REGIONS; r++)
        loss[r] = size[r] > 0 ? loss[r] / (double)size[r] : 0.0;
    if (grad)
        smooth(p, e);
}

/* ---- final maps ------------------------------------------------------------------------------ */

/** M̂ = max(M*, 1e-12) / ⟨max(M*, 1e-12)⟩ into a2 (returns 1 / the mean). */
static float stellar_normalised(struct jerald_fit_plan *p, const float *stellar)
{
    size_t n = slab_floats(p);
    float *a = p->a2, fl = (float)JERALD_FLOOR;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        a[i] = stellar[i] > fl ? stellar[i] : fl;
    double mean = mesh_mean(p, a);
    CHECK(mean > 0, "jerald-fit: the stellar map feeding the HI map has mean %g", mean);
    float inv = (float)(1.0 / mean);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        a[i] *= inv;
    return inv;
}

/* map = F(ρ_out) with ρ_out in rho. HI: a2 = FFT[M̂] (kept for the gradient), a1 = the filtered
 * M̂ (real). */
static void final_forward(struct jerald_fit_plan *p, const struct jerald_map *m,
                          const float *stellar)
{
    size_t n = slab_floats(p);
    const float *rho = p->rho;
    float *F = p->map;
    if (m->model == JERALD_MODEL_DM) {
        memcpy(F, rho, n * sizeof(float));
        return;
    }
    if (m->model == JERALD_MODEL_STELLAR) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            F[i] = jerald_stellar_value(&m->final, rho[i]);
        return;
    }
    float inv = stellar_normalised(p, stellar);
    p->stellar_inv = inv;
    fft_forward(p, p->a2);
    table_depletion(p, &m->depletion);
    memcpy(p->a1, p->a2, fft_alloc_bytes(p->fft));
    kspace_radial(p, p->a1, TAB_DEPL);
    fft_backward(p, p->a1);
    float fl = (float)JERALD_FLOOR;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float s = stellar[i] > fl ? stellar[i] : fl;
        F[i] = jerald_hi_value(&m->final, &m->depletion, rho[i], p->a1[i], s * inv);
    }
}

/* Compute kernel (stellar): F̄ in g[0] → ρ̄ · norm in g[1]; sums w̄, μ̄, b̄ per plane. */
static void final_stellar_adjoint(struct jerald_fit_plan *p, const struct jerald_final *f,
                                  double norm)
{
    const struct fft_layout *l = p->layout;
    const float *fb = p->g[0], *rho = p->rho;
    float *rb = p->g[1];
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        double s[3] = {0};
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++) {
                ptrdiff_t c = (i * l->n[1] + j) * l->row + k;
                float x = rho[c] + (float)JERALD_RHO_EPS;
                double q = jerald_powf(x, f->mu), v = f->w * q + f->b, g = fb[c];
                rb[c] = 0;
                if (!(v > JERALD_FLOOR) || g == 0)
                    continue;
                s[0] += g * q;
                s[1] += g * f->w * q * log(x);
                s[2] += g;
                rb[c] = (float)(norm * g * f->w * f->mu * pow(x, f->mu - 1));
            }
        memcpy(&p->rowsum[i * SUM_TERMS], s, sizeof s);
    }
}

/* Compute kernel (HI): F̄ in g[0] → ρ̄ · norm in g[1], f̄ (cotangent of the filtered M̂) in g[2];
 * sums w̄, μ̄, b̄, z̄_s, β̄1, β̄2, γ̄3, η̄ per plane. */
static void final_hi_adjoint(struct jerald_fit_plan *p, const struct jerald_map *m,
                             const float *stellar, float inv, double norm)
{
    const struct fft_layout *l = p->layout;
    const struct jerald_final *f = &m->final;
    const struct jerald_depletion *d = &m->depletion;
    const float *fb = p->g[0], *rho = p->rho, *filt = p->a1, fl = (float)JERALD_FLOOR;
    float *rb = p->g[1], *ff = p->g[2];
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        double s[8] = {0};
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++) {
                ptrdiff_t c = (i * l->n[1] + j) * l->row + k;
                double g = fb[c], r = (double)rho[c] + f->z_s;
                float mh = (stellar[c] > fl ? stellar[c] : fl) * inv;
                double q = jerald_powf((float)(r > 0 ? r : 0), f->mu);
                double dd = d->beta1 * filt[c] + d->eta, mg = jerald_powf(mh, d->gamma3);
                double v = f->w * q - ((dd > 0 ? dd : 0) + d->beta2 * mg) + f->b;
                rb[c] = ff[c] = 0;
                if (!(v > 0) || g == 0)
                    continue;
                s[0] += g * q;
                s[2] += g;
                if (r > 0) {
                    s[1] += g * f->w * q * log(r);
                    double rbar = g * f->w * f->mu * pow(r, f->mu - 1);
                    s[3] += rbar;
                    rb[c] = (float)(norm * rbar);
                }
                s[5] -= g * mg;
                s[6] -= g * d->beta2 * mg * log(mh);
                if (dd > 0) {
                    s[4] -= g * filt[c];
                    s[7] -= g;
                    ff[c] = (float)(-g * d->beta1);
                }
            }
        memcpy(&p->rowsum[i * SUM_TERMS], s, sizeof s);
    }
}

/** The final map's adjoint: parameter derivatives into grad, ρ̄ · N^3/N_part into g[1]. */
static void final_backward(struct jerald_fit_plan *p, const struct jerald_map *m,
                           const float *stellar, double norm, struct jerald_map *grad)
{
    size_t n = slab_floats(p);
    if (m->model == JERALD_MODEL_DM) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            p->g[1][i] = (float)(norm * p->g[0][i]);
        return;
    }
    if (m->model == JERALD_MODEL_STELLAR) {
        final_stellar_adjoint(p, &m->final, norm);
        double s[3];
        sum_planes(p, 3, s);
        grad->final.w = s[0];
        grad->final.mu = s[1];
        grad->final.b = s[2];
        return;
    }
    final_hi_adjoint(p, m, stellar, p->stellar_inv, norm); /* a1, a2 of final_forward */
    double s[8];
    sum_planes(p, 8, s);
    grad->final = (struct jerald_final){.w = s[0], .mu = s[1], .b = s[2], .z_s = s[3]};
    grad->depletion.beta1 = s[4];
    grad->depletion.beta2 = s[5];
    grad->depletion.gamma3 = s[6];
    grad->depletion.eta = s[7];
    fft_forward(p, p->g[2]);
    double t[SUM_DEPL];
    kspace_depletion(p, p->g[2], p->a2, t);
    grad->depletion.kh = t[0];
    grad->depletion.kl = t[1];
    grad->depletion.nu = t[2];
    grad->depletion.xi = t[3];
}

/* ---- layers ---------------------------------------------------------------------------------- */

/* Compute kernel: out = (in + eps)^γ as the forward pass computes it. */
static void source_power(struct jerald_fit_plan *p, const float *in, float *out, double gamma,
                         float eps)
{
    size_t n = slab_floats(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        out[i] = jerald_powf(in[i] + eps, gamma);
}

/* Compute kernel: with s̄1 in gb[1] (and s̄2 in gb[2]): γ̄1 = Σ s̄1 s1 ln(ρ + ε), ρ̄ · norm =
 * norm s̄1 γ1 (ρ + ε)^(γ1 − 1) into rho; HI: γ̄2 = Σ s̄2 M*^γ2 ln M*. */
static void source_adjoint(struct jerald_fit_plan *p, const struct jerald_layer *ly, bool hi,
                           const float *stellar, double norm, double gam[2])
{
    const struct fft_layout *l = p->layout;
    const double g1 = ly->density.gamma, g2 = ly->repel.gamma;
    float *rho = p->rho;
    const float *sb1 = p->gb[1], *sb2 = p->gb[2];
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        double s[2] = {0};
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++) {
                ptrdiff_t c = (i * l->n[1] + j) * l->row + k;
                float x = rho[c] + (float)JERALD_RHO_EPS;
                double sx = jerald_powf(x, g1);
                s[0] += sb1[c] * sx * logf(x);
                rho[c] = (float)(norm * sb1[c] * g1 * sx / x); /* (ρ + ε)^(γ − 1) */
                if (hi)
                    s[1] += sb2[c] * jerald_powf(stellar[c], g2) * log(stellar[c]);
            }
        memcpy(&p->rowsum[i * SUM_TERMS], s, sizeof s);
    }
    sum_planes(p, 2, gam);
}

static void reserve_bar(struct jerald_fit_plan *p, int64_t n)
{
    if (n <= p->cap_bar)
        return;
    p->cap_bar = n + n / 8 + 1;
    for (int d = 0; d < 3; d++) {
        float *a = lm_calloc("jerald_fit.cotangents", (size_t)p->cap_bar, sizeof(float));
        if (p->xbar[d])
            memcpy(a, p->xbar[d], sizeof(float) * (size_t)(n < p->cap_bar ? n : p->cap_bar));
        lm_free(p->xbar[d]);
        lm_free(p->xtmp[d]);
        p->xbar[d] = a;
        p->xtmp[d] = lm_calloc("jerald_fit.cotangents", (size_t)p->cap_bar, sizeof(float));
    }
}

/** Reverse pass of layer l: the position cotangents of its output (xbar, in the order of its
 *  saved input) become those of its input when need_x; the parameter derivatives go to grad. */
static void layer_reverse(struct jerald_fit_plan *p, const struct jerald_map *m, int l,
                          const float *stellar, bool need_x, struct jerald_map *grad)
{
    const struct jerald_layer *ly = &m->layer[l];
    const struct particles *in = p->saved[l];
    bool hi = m->model == JERALD_MODEL_HI;
    double norm = density_norm(p, in);
    paint_density(p, in, p->rho);
    timer_start("jerald_fit.kspace");
    source_power(p, p->rho, p->a1, ly->density.gamma, (float)JERALD_RHO_EPS);
    if (hi)
        source_power(p, stellar, p->a2, ly->repel.gamma, 0.0f);
    timer_stop("jerald_fit.kspace");
    fft_forward(p, p->a1);
    if (hi)
        fft_forward(p, p->a2);
    double s = hi ? JERALD_SCALE_HI : JERALD_SCALE;
    double unit[2] = {s / p->n3, -s / p->n3}, alpha[2] = {ly->density.alpha, ly->repel.alpha};
    double r_scale[2] = {unit[0] * alpha[0], unit[1] * alpha[1]};
    table_term(p, TAB_TERM0, hi ? JERALD_GREEN_SM : m->green, &ly->density);
    if (hi)
        table_term(p, TAB_TERM1, JERALD_GREEN_SM, &ly->repel);
    timer_start("jerald_fit.kspace");
    kspace_gradient(p, r_scale, hi);
    timer_stop("jerald_fit.kspace");
    for (int d = 0; d < 3 && need_x; d++)
        fft_backward(p, p->g[d]);
    struct cic_points pts = points_of(in);
    for (int d = 0; d < 3; d++)
        pts.fw[d] = p->xbar[d];
    timer_start("jerald_fit.paint");
    paint_execute(p->paint, 3, p->gb, &pts, 0.0);
    timer_stop("jerald_fit.paint");
    for (int d = 0; d < 3; d++)
        fft_forward(p, p->gb[d]);
    double sums[SUM_TERMS];
    timer_start("jerald_fit.kspace");
    kspace_adjoint(p, unit, alpha, hi, sums);
    timer_stop("jerald_fit.kspace");
    fft_backward(p, p->gb[1]);
    if (hi)
        fft_backward(p, p->gb[2]);
    double gam[2];
    source_adjoint(p, ly, hi, stellar, norm, gam);
    struct jerald_term *gd = &grad->layer[l].density, *gr = &grad->layer[l].repel;
    *gd = (struct jerald_term){sums[0], gam[0], sums[1], sums[2], sums[3]};
    if (hi)
        *gr = (struct jerald_term){sums[4], gam[1], sums[5], sums[6], sums[7]};
    if (!need_x)
        return;
    float *fields[4] = {p->g[0], p->g[1], p->g[2], p->rho};
    const float *coef[4] = {p->xbar[0], p->xbar[1], p->xbar[2], NULL};
    pts = points_of(in);
    timer_start("jerald_fit.readout");
    readout_grad_execute(p->rgrad, 4, fields, coef, &pts, p->xtmp);
    timer_stop("jerald_fit.readout");
    for (int d = 0; d < 3; d++) {
        float *a = p->xbar[d];
        const float *b = p->xtmp[d];
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < in->n; i++)
            a[i] += b[i];
    }
}

/* ---- evaluation ------------------------------------------------------------------------------ */

static void copy_positions(struct particles *dst, const struct particles *src)
{
    particles_resize(dst, src->n);
    for (int d = 0; d < 3; d++)
        memcpy(dst->x[d], src->x[d], (size_t)src->n * sizeof(float));
}

/** Keep the input of layer l and tag the working particles with their origin. */
static void save_input(struct jerald_fit_plan *p, int l)
{
    if (!p->saved[l])
        p->saved[l] = particles_create(PARTICLES_POS, p->work->n);
    copy_positions(p->saved[l], p->work);
    int rank = comm_rank(p->comm);
    for (int64_t i = 0; i < p->work->n; i++)
        p->work->id[i] = route_origin(rank, i);
}

/** Keep the origins of the working particles after layer l. */
static void save_route(struct jerald_fit_plan *p, int l)
{
    int64_t n = p->work->n;
    if (n > p->cap_route[l]) {
        lm_free(p->route[l]);
        p->cap_route[l] = n + n / 8 + 1;
        p->route[l] = lm_malloc("jerald_fit.route", (size_t)p->cap_route[l] * sizeof(uint64_t));
    }
    memcpy(p->route[l], p->work->id, (size_t)n * sizeof(uint64_t));
    p->n_route[l] = n;
}

/** Route the cotangents xbar (in the order after layer l) back to the order of its input. */
static void route_cotangents(struct jerald_fit_plan *p, int l)
{
    int64_t n_in = p->saved[l]->n;
    reserve_bar(p, n_in > p->n_route[l] ? n_in : p->n_route[l]);
    const float *val[3] = {p->xbar[0], p->xbar[1], p->xbar[2]};
    route_back(p->comm, p->n_route[l], p->route[l], 3, val, n_in, p->xtmp);
    for (int d = 0; d < 3; d++) {
        float *t = p->xbar[d];
        p->xbar[d] = p->xtmp[d];
        p->xtmp[d] = t;
    }
}

const float *jerald_fit_evaluate(struct jerald_fit_plan *p, const struct jerald_map *m, int first,
                                 const struct particles *x0, const float *stellar,
                                 double loss[JERALD_N_REGIONS], struct jerald_map *grad)
{
    CHECK(p->has_target, "jerald-fit: no target set");
    bool hi = m->model == JERALD_MODEL_HI;
    CHECK(!hi || stellar, "jerald-fit: the hi map '%s' needs its stellar map", m->name);
    if (hi && !p->a2)
        p->a2 = fft_alloc(p->fft, "jerald_fit.mesh");
    copy_positions(p->work, x0);
    for (int l = 0; l < m->n_layers; l++) {
        bool rev = grad && l >= first;
        if (rev)
            save_input(p, l);
        timer_start("jerald_fit.forward");
        jerald_layer_execute(p->fwd, m, l, p->work, stellar);
        timer_stop("jerald_fit.forward");
        if (rev)
            save_route(p, l);
    }
    paint_density(p, p->work, p->rho);
    timer_start("jerald_fit.loss");
    final_forward(p, m, stellar);
    loss_execute(p, loss, grad != NULL);
    timer_stop("jerald_fit.loss");
    if (!grad)
        return p->map;
    memset(grad, 0, sizeof *grad);
    grad->model = m->model;
    grad->n_layers = m->n_layers;
    double norm = density_norm(p, p->work);
    timer_start("jerald_fit.final");
    final_backward(p, m, stellar, norm, grad);
    timer_stop("jerald_fit.final");
    if (first >= m->n_layers)
        return p->map;
    reserve_bar(p, p->work->n);
    struct cic_points pts = points_of(p->work);
    float *rb = p->g[1];
    const float *coef[1] = {NULL};
    readout_grad_execute(p->rgrad, 1, &rb, coef, &pts, p->xbar);
    for (int l = m->n_layers - 1; l >= first; l--) {
        route_cotangents(p, l);
        timer_start("jerald_fit.reverse");
        layer_reverse(p, m, l, stellar, l > first, grad);
        timer_stop("jerald_fit.reverse");
    }
    return p->map;
}
