/* ic_plan — the linear density, Zel'dovich and 2LPT displacement fields on x-slabs (ic_plan.h). */
#include "ic_plan.h"
#include "mpi/fft.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "timer.h"

#include <math.h>

/* sqrt(P(k)/V) by integer |m|² (see fill_delta_k). */
struct power_scale {
    double *amp; /**< amp[m2], m2 = 0 ... 3 (n/2)² */
    int n;
};

struct ic_plan {
    struct ic_setup setup;
    struct power_scale scale;
    struct ic_noise *noise;
    struct fft_plan *fft;
    struct ic_fields fields;
    float complex *delta_k; /**< δ_k, kept through the whole execution */
    float *work;            /**< scratch mesh (becomes psi2[0] with 2LPT) */
    float *source;          /**< 2LPT source S (becomes psi2[2]) */
};

void ic_k_range(int n, double box_size, double *kmin, double *kmax)
{
    double kf = 2 * M_PI / box_size;
    *kmin = kf;
    *kmax = kf * sqrt(3.0) * (n / 2 - 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* k-space kernels (local) */

/* sqrt(P(k)/V) of mode (ix, iy, kz), k = 2π |m| / L, from the table of integer |m|² = mx² +
 * my² + mz²: one evaluation of P per distinct |k| instead of one per mode. */
static double power_scale_fn(const void *ctx, int ix, int iy, int kz)
{
    const struct power_scale *s = ctx;
    int64_t mx = fft_signed_index(ix, s->n), my = fft_signed_index(iy, s->n);
    return s->amp[mx * mx + my * my + (int64_t)kz * kz];
}

static void power_scale_init(struct power_scale *s, const struct ic_setup *setup)
{
    int64_t h = setup->n / 2, n_m2 = 3 * h * h + 1;
    double kf = 2 * M_PI / setup->box_size, inv_volume = 1.0 / pow(setup->box_size, 3);
    s->n = setup->n;
    s->amp = lm_malloc("ic.power_table", (size_t)n_m2 * sizeof *s->amp);
    s->amp[0] = 0;
#pragma omp parallel for schedule(static)
    for (int64_t m2 = 1; m2 < n_m2; m2++)
        s->amp[m2] = sqrt(linear_power_eval(setup->power, kf * sqrt((double)m2)) * inv_volume);
}

/* δ_k = sqrt(P(k)/V) w_k on the local modes, in the FFT's complex layout. */
static void fill_delta_k(struct ic_plan *p)
{
    const struct fft_layout *l = &p->fields.layout;
    struct ic_mode_scale scale = {.fn = power_scale_fn, .ctx = &p->scale};
    int n = p->setup.n, k0 = (int)l->k0, k1 = (int)(l->k0 + l->nk);
    if (l->transposed)
        ic_noise_fill(p->noise, 0, n, k0, k1, p->delta_k, l->nkz, (int64_t)n * l->nkz, &scale);
    else
        ic_noise_fill(p->noise, k0, k1, 0, n, p->delta_k, (int64_t)n * l->nkz, l->nkz, &scale);
}

/* True on the Nyquist planes, where a derivative has no sign. */
static bool is_nyquist(const struct fft_kiter *it, int n)
{
    return it->i[0] == n / 2 || it->i[1] == n / 2 || it->i[2] == n / 2;
}

/* out_k = factor · i k_axis / k² · in_k (0 at k = 0 and on the Nyquist planes). */
static void gradient_k(const struct fft_layout *l, const float complex *in, int axis, double factor,
                       float complex *out)
{
    const ptrdiff_t n_rows = fft_kiter_n_rows(l);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it)) {
            double g = it.k2 > 0 && !is_nyquist(&it, l->n[0]) ? factor * it.k[axis] / it.k2 : 0.0;
            float complex v = in[it.index];
            out[it.index] = (float)(-g * cimagf(v)) + I * (float)(g * crealf(v));
        }
    }
}

/* out_k = k_a k_b / k² · in_k: the Hessian φ_ab of the potential with ∇²φ = δ. */
static void hessian_k(const struct fft_layout *l, const float complex *in, int a, int b,
                      float complex *out)
{
    const ptrdiff_t n_rows = fft_kiter_n_rows(l);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it)) {
            double h = it.k2 > 0 && !is_nyquist(&it, l->n[0]) ? it.k[a] * it.k[b] / it.k2 : 0.0;
            float complex v = in[it.index];
            out[it.index] = (float)(h * crealf(v)) + I * (float)(h * cimagf(v));
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* real-space kernels (local): loops over the owned nodes of a padded slab */

/* s = c · w² + (accumulate ? s : 0) over the owned nodes. */
static void square_into(const struct fft_layout *l, const float *w, double c, bool accumulate,
                        float *s)
{
    int64_t rows = (int64_t)l->rnx * l->n[1];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * l->row;
        float *sr = s + r * l->row;
        for (int k = 0; k < l->n[2]; k++)
            sr[k] = (float)(c * (double)wr[k] * wr[k] + (accumulate ? sr[k] : 0.0));
    }
}

/* Number of local complex modes. */
static int64_t complex_count(const struct fft_layout *l)
{
    return (int64_t)l->nk * (l->transposed ? l->n[0] : l->n[1]) * l->nkz;
}

/* Scale the complex array by f. */
static void scale_k(const struct fft_layout *l, float complex *a, double f)
{
    int64_t n = complex_count(l);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        a[i] = (float)(f * crealf(a[i])) + I * (float)(f * cimagf(a[i]));
}

/* dst = src over the local modes (threads take contiguous ranges, as in the other kernels). */
static void copy_k(const struct fft_layout *l, float complex *dst, const float complex *src)
{
    int64_t n = complex_count(l);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i];
}

/* ---------------------------------------------------------------------------------------------- */
/* phases */

static void make_delta(struct ic_plan *p)
{
    const struct fft_layout *l = &p->fields.layout;
    copy_k(l, (float complex *)p->fields.delta, p->delta_k);
    fft_c2r(p->fft, p->fields.delta);
}

static void make_psi(struct ic_plan *p)
{
    for (int d = 0; d < 3; d++) {
        gradient_k(&p->fields.layout, p->delta_k, d, 1.0, (float complex *)p->fields.psi[d]);
        fft_c2r(p->fft, p->fields.psi[d]);
    }
}

/* S = Σ_{i<j} (φ_ii φ_jj − φ_ij²) = (δ² − Σ_i φ_ii²)/2 − Σ_{i<j} φ_ij², in real space. */
static void make_source(struct ic_plan *p)
{
    const struct fft_layout *l = &p->fields.layout;
    copy_k(l, (float complex *)p->work, p->delta_k);
    fft_c2r(p->fft, p->work);
    square_into(l, p->work, 0.5, false, p->source);
    for (int a = 0; a < 3; a++)
        for (int b = a; b < 3; b++) {
            hessian_k(l, p->delta_k, a, b, (float complex *)p->work);
            fft_c2r(p->fft, p->work);
            square_into(l, p->work, a == b ? -0.5 : -1.0, true, p->source);
        }
}

/* psi2 = (3/7) i k / k² S_k, the 2LPT displacement at D = 1 (D2 = −3/7 D², ∇·psi2 = −3/7 S). */
static void make_psi2(struct ic_plan *p)
{
    const struct fft_layout *l = &p->fields.layout;
    int n = p->setup.n;
    fft_r2c(p->fft, p->source);
    scale_k(l, (float complex *)p->source, 1.0 / ((double)n * n * n));
    float **psi2 = p->fields.psi2;
    gradient_k(l, (float complex *)p->source, 0, 3.0 / 7.0, (float complex *)psi2[0]);
    gradient_k(l, (float complex *)p->source, 1, 3.0 / 7.0, (float complex *)psi2[1]);
    gradient_k(l, (float complex *)p->source, 2, 3.0 / 7.0, (float complex *)psi2[2]);
    for (int d = 0; d < 3; d++)
        fft_c2r(p->fft, psi2[d]);
}

void ic_plan_execute(struct ic_plan *p)
{
    timer_start("ic.noise");
    fill_delta_k(p);
    timer_stop("ic.noise");
    timer_start("ic.fft");
    if (p->fields.delta)
        make_delta(p);
    make_psi(p);
    timer_stop("ic.fft");
    if (p->setup.lpt_order == 2) {
        timer_start("ic.2lpt");
        make_source(p);
        make_psi2(p);
        timer_stop("ic.2lpt");
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* creation */

static bool check_setup(const struct ic_setup *s, struct lm_err *err)
{
    if (!(s->box_size > 0))
        return lm_err_set(err, "ic: box.size = %g must be positive", s->box_size);
    if (s->lpt_order != 1 && s->lpt_order != 2)
        return lm_err_set(err, "ic: ic.lpt_order = %d is not supported: expected 1 or 2",
                          s->lpt_order);
    if (!s->power)
        return lm_err_set(err, "ic: no linear power spectrum given");
    double kmin, kmax;
    ic_k_range(s->n, s->box_size, &kmin, &kmax);
    return s->n < 4 || linear_power_check_range(s->power, kmin, kmax, err);
}

static void alloc_fields(struct ic_plan *p)
{
    struct ic_fields *f = &p->fields;
    p->delta_k = fft_alloc(p->fft, "ic.delta_k");
    for (int d = 0; d < 3; d++)
        f->psi[d] = fft_alloc(p->fft, "ic.psi");
    if (p->setup.keep_delta)
        f->delta = fft_alloc(p->fft, "ic.delta");
    if (p->setup.lpt_order == 2) {
        p->work = fft_alloc(p->fft, "ic.2lpt");
        p->source = fft_alloc(p->fft, "ic.2lpt");
        f->psi2[0] = p->work;
        f->psi2[1] = fft_alloc(p->fft, "ic.2lpt");
        f->psi2[2] = p->source;
    } else {
        p->work = NULL;
    }
}

struct ic_plan *ic_plan_create(const struct ic_setup *setup, MPI_Comm comm, struct lm_err *err)
{
    struct ic_noise *noise = NULL;
    if (check_setup(setup, err))
        noise = ic_noise_create(setup->n, setup->seed, setup->amplitude, setup->paired, err);
    if (!comm_agree_soft(comm, err)) {
        ic_noise_destroy(&noise);
        return NULL;
    }
    struct ic_plan *p = lm_calloc("ic.plan", 1, sizeof *p);
    p->setup = *setup;
    p->noise = noise;
    int n[3] = {setup->n, setup->n, setup->n};
    double box[3] = {setup->box_size, setup->box_size, setup->box_size};
    p->fft = fft_plan_create(n, box, FFT_PRECISION_FLOAT, FFT_ESTIMATE, NULL, comm);
    p->fields.layout = *fft_layout(p->fft);
    alloc_fields(p);
    power_scale_init(&p->scale, setup);
    return p;
}

const struct ic_fields *ic_plan_fields(const struct ic_plan *plan) { return &plan->fields; }

void ic_plan_take_fields(struct ic_plan *plan, struct ic_fields *out)
{
    struct ic_fields *f = &plan->fields;
    *out = (struct ic_fields){.layout = f->layout, .delta = f->delta};
    f->delta = NULL;
    for (int d = 0; d < 3; d++) {
        out->psi[d] = f->psi[d];
        f->psi[d] = NULL;
    }
}

const float complex *ic_plan_delta_k(const struct ic_plan *plan) { return plan->delta_k; }

const struct fft_plan *ic_plan_fft(const struct ic_plan *plan) { return plan->fft; }

void ic_plan_destroy(struct ic_plan **plan)
{
    struct ic_plan *p = plan ? *plan : NULL;
    if (!p)
        return;
    lm_free(p->scale.amp);
    lm_free(p->delta_k);
    lm_free(p->fields.delta);
    for (int d = 0; d < 3; d++)
        lm_free(p->fields.psi[d]);
    if (p->setup.lpt_order == 2) {
        lm_free(p->work);
        lm_free(p->fields.psi2[1]);
        lm_free(p->source);
    }
    fft_plan_destroy(&p->fft);
    ic_noise_destroy(&p->noise);
    lm_free(p);
    *plan = NULL;
}
