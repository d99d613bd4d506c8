/*
 * mpitest_ic — the linear IC fields at any rank count (run.sh: 1-4 ranks).
 * Properties: bitwise identical to a one-rank run; measured P(k) of δ equals the input (fixed
 * amplitudes: to 1e-3 per bin; Rayleigh, 20 seeds: within cosmic variance); ∇·Ψ = −δ
 * (spectral, 1e-5); paired δ = −δ exactly; δ_k of |k_i| < k_Nyq(64) identical for n = 64 and
 * 128; 2LPT term against the source rebuilt from Ψ; particles; bad table range and seed; δ, Ψ and
 * Ψ2 bitwise the same at 1, 2 and 4 OpenMP threads.
 */
#define T_USE_MPI
#include "harness.h"

#include <complex.h>
#include <omp.h>
#include <string.h>

#include "alloc.h"
#include "ic_plan.h"
#include "mpi/fft.h"
#include "mpi/comm.h"

static struct linear_power *g_power;
static struct cosmology g_cosmo;

static struct ic_plan *run_plan(int n, double box, long seed, enum ic_amplitude amp, bool paired,
                                int lpt, MPI_Comm comm)
{
    struct ic_setup s = {.n = n,
                         .box_size = box,
                         .seed = seed,
                         .amplitude = amp,
                         .paired = paired,
                         .lpt_order = lpt,
                         .keep_delta = true,
                         .power = g_power};
    struct lm_err err = {0};
    struct ic_plan *p = ic_plan_create(&s, comm, &err);
    T_CHECK(p != NULL, "ic_plan_create: %s", err.msg);
    if (p)
        ic_plan_execute(p);
    return p;
}

/* Number of owned nodes of f whose value differs bitwise from g's at the same global node. */
static long count_diff(const struct fft_layout *lf, const float *f, const struct fft_layout *lg,
                       const float *g, bool negate)
{
    long bad = 0;
    for (ptrdiff_t i = lf->rx0; i < lf->rx0 + lf->rnx; i++)
        for (int j = 0; j < lf->n[1]; j++)
            for (int k = 0; k < lf->n[2]; k++) {
                float a = f[fft_real_index(lf, i, j, k)], b = g[fft_real_index(lg, i, j, k)];
                bad += negate ? a != -b : memcmp(&a, &b, sizeof a) != 0;
            }
    return bad;
}

static void test_rank_invariance(void)
{
    struct ic_plan *par =
        run_plan(32, 100.0, 4242, IC_AMPLITUDE_RAYLEIGH, false, 2, MPI_COMM_WORLD);
    struct ic_plan *ser = run_plan(32, 100.0, 4242, IC_AMPLITUDE_RAYLEIGH, false, 2, MPI_COMM_SELF);
    if (!par || !ser)
        return;
    const struct ic_fields *a = ic_plan_fields(par), *b = ic_plan_fields(ser);
    long bad = count_diff(&a->layout, a->delta, &b->layout, b->delta, false);
    for (int d = 0; d < 3; d++) {
        bad += count_diff(&a->layout, a->psi[d], &b->layout, b->psi[d], false);
        bad += count_diff(&a->layout, a->psi2[d], &b->layout, b->psi2[d], false);
    }
    T_CHECK(bad == 0, "%ld values differ from the one-rank fields", bad);
    ic_plan_destroy(&par);
    ic_plan_destroy(&ser);
    T_CHECK(par == NULL, "destroy did not clear the plan");
}

/* δ, ψ and ψ2 are bitwise the same at 1, 2 and 4 OpenMP threads (noise by columns, k-space loops
 * by rows, threaded FFTs); the compared fields are checked to be non-trivial. */
static void test_thread_invariance(void)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    struct ic_plan *ref =
        run_plan(32, 100.0, 4242, IC_AMPLITUDE_RAYLEIGH, false, 2, MPI_COMM_WORLD);
    for (int nt = 2; nt <= 4 && ref; nt *= 2) {
        omp_set_num_threads(nt);
        struct ic_plan *got =
            run_plan(32, 100.0, 4242, IC_AMPLITUDE_RAYLEIGH, false, 2, MPI_COMM_WORLD);
        if (!got)
            break;
        const struct ic_fields *a = ic_plan_fields(got), *b = ic_plan_fields(ref);
        long bad = count_diff(&a->layout, a->delta, &b->layout, b->delta, false);
        for (int d = 0; d < 3; d++) {
            bad += count_diff(&a->layout, a->psi[d], &b->layout, b->psi[d], false);
            bad += count_diff(&a->layout, a->psi2[d], &b->layout, b->psi2[d], false);
        }
        long nonzero = 0;
        const struct fft_layout *l = &b->layout;
        for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
            for (int j = 0; j < l->n[1]; j++)
                nonzero += b->psi2[0][fft_real_index(l, i, j, 1)] != 0;
        T_CHECK(nonzero > l->rnx * l->n[1] / 2, "psi2 is mostly zero (%ld nodes set)", nonzero);
        T_CHECK(bad == 0, "%ld values differ between 1 and %d threads", bad, nt);
        ic_plan_destroy(&got);
    }
    ic_plan_destroy(&ref);
    omp_set_num_threads(saved);
}

/* Bin sums of a measured spectrum: V |FFT(δ)/n^3|^2 against the mode average of P(k). */
struct bins {
    int n_bins;
    double meas[128], model[128], modes[128];
};

static void measure(struct ic_plan *p, struct bins *b, double box)
{
    const struct fft_layout *l = &ic_plan_fields(p)->layout;
    const struct fft_plan *fft = ic_plan_fft(p);
    int n = l->n[0];
    float *buf = fft_alloc(fft, "test.buffer");
    memcpy(buf, ic_plan_fields(p)->delta, fft_alloc_bytes(fft));
    fft_r2c(fft, buf);
    const float complex *c = (const float complex *)buf;
    double kf = 2 * M_PI / box, norm = 1.0 / ((double)n * n * n), V = box * box * box;
    struct fft_kiter it;
    for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
        int bin = (int)floor(sqrt(it.k2) / kf + 0.5);
        if (bin < 1 || bin >= n / 2 || it.i[0] == n / 2 || it.i[1] == n / 2)
            continue;
        double complex d = c[it.index] * norm;
        b->meas[bin] += it.weight * V * creal(d * conj(d));
        b->model[bin] += it.weight * linear_power_eval(g_power, sqrt(it.k2));
        b->modes[bin] += it.weight;
    }
    b->n_bins = n / 2;
    lm_free(buf);
}

static void reduce_bins(struct bins *b)
{
    comm_sum_double(MPI_COMM_WORLD, b->meas, 128);
    comm_sum_double(MPI_COMM_WORLD, b->model, 128);
    comm_sum_double(MPI_COMM_WORLD, b->modes, 128);
}

static void test_power_fixed_amplitude(void)
{
    struct ic_plan *p = run_plan(128, 250.0, 17, IC_AMPLITUDE_FIXED, false, 1, MPI_COMM_WORLD);
    if (!p)
        return;
    struct bins b = {0};
    measure(p, &b, 250.0);
    reduce_bins(&b);
    double worst = 0;
    for (int i = 1; i < b.n_bins; i++)
        worst = fmax(worst, fabs(b.meas[i] / b.model[i] - 1));
    T_CHECK(worst < 1e-3, "worst bin deviates by %.3g from the input P(k)", worst);
    if (t_rank == 0)
        printf("  fixed amplitude, n = 128: worst |P_meas/P_in - 1| over %d bins = %.2e\n",
               b.n_bins - 1, worst);
    ic_plan_destroy(&p);
}

static void test_power_rayleigh_20_seeds(void)
{
    struct bins b = {0};
    for (long seed = 1; seed <= 20; seed++) {
        struct ic_plan *p =
            run_plan(64, 250.0, seed * 1009, IC_AMPLITUDE_RAYLEIGH, false, 1, MPI_COMM_WORLD);
        if (p)
            measure(p, &b, 250.0);
        ic_plan_destroy(&p);
    }
    reduce_bins(&b);
    double chi2 = 0, worst = 0;
    for (int i = 1; i < b.n_bins; i++) {
        /* modes/2 independent complex modes per bin, each |δ|^2 exponential: σ/P = 1/sqrt(N) */
        double sigma = 1.0 / sqrt(b.modes[i] / 2);
        double z = (b.meas[i] / b.model[i] - 1) / sigma;
        chi2 += z * z;
        worst = fmax(worst, fabs(z));
    }
    int dof = b.n_bins - 1;
    if (t_rank == 0)
        printf("  Rayleigh, 20 seeds, n = 64: chi2 = %.1f for %d bins, worst %.2f sigma\n", chi2,
               dof, worst);
    T_CHECK(worst < 4.5, "a bin deviates by %.2f sigma", worst);
    T_CHECK(chi2 < dof + 5 * sqrt(2.0 * dof), "chi2 = %.1f for %d bins", chi2, dof);
}

/* Relative L2 norm of FFT(∇·v) + FFT(s) (spectral divergence) over FFT(s); factor scales v.
 * Nyquist planes are left out (a derivative there has no sign; the fields carry none). */
static double divergence_mismatch(struct ic_plan *p, float *const v[3], const float *s,
                                  double factor)
{
    const struct fft_plan *fft = ic_plan_fft(p);
    const struct fft_layout *l = fft_layout(fft);
    size_t bytes = fft_alloc_bytes(fft);
    float *vk[3], *sk = fft_alloc(fft, "test.buffer");
    memcpy(sk, s, bytes);
    fft_r2c(fft, sk);
    for (int d = 0; d < 3; d++) {
        vk[d] = fft_alloc(fft, "test.buffer");
        memcpy(vk[d], v[d], bytes);
        fft_r2c(fft, vk[d]);
    }
    double num = 0, den = 0;
    struct fft_kiter it;
    for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
        int h = l->n[0] / 2;
        if (it.i[0] == h || it.i[1] == h || it.i[2] == h)
            continue;
        double complex div = 0;
        for (int d = 0; d < 3; d++)
            div += I * it.k[d] * ((const float complex *)vk[d])[it.index];
        double complex e = factor * div + ((const float complex *)sk)[it.index];
        num += it.weight * creal(e * conj(e));
        den += it.weight * creal(((const float complex *)sk)[it.index] *
                                 conj(((const float complex *)sk)[it.index]));
    }
    comm_sum_double(MPI_COMM_WORLD, &num, 1);
    comm_sum_double(MPI_COMM_WORLD, &den, 1);
    for (int d = 0; d < 3; d++)
        lm_free(vk[d]);
    lm_free(sk);
    return sqrt(num / den);
}

static void test_divergence_is_minus_delta(void)
{
    struct ic_plan *p = run_plan(64, 250.0, 8, IC_AMPLITUDE_RAYLEIGH, false, 1, MPI_COMM_WORLD);
    if (!p)
        return;
    const struct ic_fields *f = ic_plan_fields(p);
    double e = divergence_mismatch(p, f->psi, f->delta, 1.0);
    T_CHECK(e < 1e-5, "|div psi + delta| / |delta| = %.3g", e);
    if (t_rank == 0)
        printf("  |div psi + delta| / |delta| = %.2e\n", e);
    /* a wrong sign must fail */
    double wrong = divergence_mismatch(p, f->psi, f->delta, -1.0);
    T_CHECK(wrong > 1, "the check cannot fail: %.3g", wrong);
    ic_plan_destroy(&p);
}

static void test_paired_is_minus(void)
{
    struct ic_plan *a = run_plan(32, 250.0, 5, IC_AMPLITUDE_RAYLEIGH, false, 1, MPI_COMM_WORLD);
    struct ic_plan *b = run_plan(32, 250.0, 5, IC_AMPLITUDE_RAYLEIGH, true, 1, MPI_COMM_WORLD);
    if (!a || !b)
        return;
    const struct ic_fields *fa = ic_plan_fields(a), *fb = ic_plan_fields(b);
    long bad = count_diff(&fa->layout, fa->delta, &fb->layout, fb->delta, true);
    for (int d = 0; d < 3; d++)
        bad += count_diff(&fa->layout, fa->psi[d], &fb->layout, fb->psi[d], true);
    T_CHECK(bad == 0, "%ld paired values are not exactly the negatives", bad);
    ic_plan_destroy(&a);
    ic_plan_destroy(&b);
}

/* δ_k of the one-rank plans at n = 64 and 128 (same seed and box) on the shared modes. */
static void test_large_scales_survive_n_change(void)
{
    if (t_rank != 0)
        return;
    struct ic_plan *a = run_plan(64, 250.0, 31337, IC_AMPLITUDE_RAYLEIGH, false, 1, MPI_COMM_SELF);
    struct ic_plan *b = run_plan(128, 250.0, 31337, IC_AMPLITUDE_RAYLEIGH, false, 1, MPI_COMM_SELF);
    if (!a || !b)
        return;
    const struct fft_layout *la = &ic_plan_fields(a)->layout, *lb = &ic_plan_fields(b)->layout;
    const float complex *da = ic_plan_delta_k(a), *db = ic_plan_delta_k(b);
    long bad = 0, compared = 0;
    struct fft_kiter it;
    for (fft_kiter_begin(&it, la); !it.done; fft_kiter_next(&it)) {
        if (abs(it.m[0]) >= 32 || abs(it.m[1]) >= 32 || it.m[2] >= 32)
            continue;
        int ib = it.m[0] < 0 ? 128 + it.m[0] : it.m[0], jb = it.m[1] < 0 ? 128 + it.m[1] : it.m[1];
        ptrdiff_t index = ((ptrdiff_t)jb * lb->n[0] + ib) * lb->nkz + it.m[2];
        bad += memcmp(&da[it.index], &db[index], sizeof da[0]) != 0;
        compared++;
    }
    T_CHECK(lb->transposed && la->transposed, "expected transposed layouts");
    T_CHECK(bad == 0 && compared > 100000, "%ld of %ld shared modes differ", bad, compared);
    ic_plan_destroy(&a);
    ic_plan_destroy(&b);
}

/* −(7/3) ∇·psi2 must equal S = Σ_{i<j} (φ_ii φ_jj − φ_ij²) with φ_ij = −∂_j Ψ_i rebuilt here. */
static void test_2lpt_source(void)
{
    struct ic_plan *p = run_plan(32, 100.0, 11, IC_AMPLITUDE_RAYLEIGH, false, 2, MPI_COMM_WORLD);
    if (!p)
        return;
    const struct fft_plan *fft = ic_plan_fft(p);
    const struct fft_layout *l = fft_layout(fft);
    const struct ic_fields *f = ic_plan_fields(p);
    size_t bytes = fft_alloc_bytes(fft);
    float *phi[3][3], *s = fft_alloc(fft, "test.buffer"), *tmp = fft_alloc(fft, "test.buffer");
    double norm = 1.0 / (32.0 * 32 * 32);
    for (int a = 0; a < 3; a++) {
        memcpy(tmp, f->psi[a], bytes);
        fft_r2c(fft, tmp);
        for (int b = 0; b < 3; b++) {
            phi[a][b] = fft_alloc(fft, "test.buffer");
            struct fft_kiter it;
            for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
                bool nyq = it.i[0] == 16 || it.i[1] == 16 || it.i[2] == 16;
                ((float complex *)phi[a][b])[it.index] =
                    nyq ? 0 : -I * it.k[b] * norm * ((float complex *)tmp)[it.index];
            }
            fft_c2r(fft, phi[a][b]);
        }
    }
    for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
        for (int j = 0; j < 32; j++)
            for (int k = 0; k < 32; k++) {
                ptrdiff_t o = fft_real_index(l, i, j, k);
                double v = 0;
                for (int a = 0; a < 3; a++)
                    for (int b = a + 1; b < 3; b++)
                        v += phi[a][a][o] * phi[b][b][o] - phi[a][b][o] * phi[b][a][o];
                s[o] = (float)v;
            }
    double e = divergence_mismatch(p, f->psi2, s, 7.0 / 3.0);
    T_CHECK(e < 1e-4, "|(7/3) div psi2 + S| / |S| = %.3g", e);
    if (t_rank == 0)
        printf("  |(7/3) div psi2 + S| / |S| = %.2e\n", e);
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            lm_free(phi[a][b]);
    lm_free(s);
    lm_free(tmp);
    ic_plan_destroy(&p);
}

static void test_particles(void)
{
    struct ic_plan *p = run_plan(16, 64.0, 9, IC_AMPLITUDE_RAYLEIGH, false, 1, MPI_COMM_WORLD);
    if (!p)
        return;
    const struct ic_fields *f = ic_plan_fields(p);
    const struct fft_layout *l = &f->layout;
    double z = 1.0, a = 0.5, D = cosmo_growth_D(&g_cosmo, a),
           vf = cosmo_velocity_factor(&g_cosmo, a);
    struct particles *q = ic_particles_create(f, &g_cosmo, 64.0, z);
    T_CHECK(q->n == (int64_t)l->rnx * 256, "%lld particles", (long long)q->n);
    long bad = 0;
    for (int64_t m = 0; m < q->n; m++) {
        uint64_t id = q->id[m];
        int i = (int)(id / 256), j = (int)(id / 16 % 16), k = (int)(id % 16);
        ptrdiff_t o = fft_real_index(l, i, j, k);
        const int qi[3] = {i, j, k};
        for (int d = 0; d < 3; d++) {
            double x = fmod(qi[d] * 4.0 + D * f->psi[d][o] + 64.0, 64.0);
            double dx = fabs(q->x[d][m] - x);
            bad += fmin(dx, 64.0 - dx) > 1e-4 || q->x[d][m] < 0 || q->x[d][m] >= 64.0f;
            bad += fabs(q->v[d][m] - vf * D * f->psi[d][o]) >
                   1e-4 * fabs(vf * D * f->psi[d][o]) + 1e-6;
        }
        bad += i < l->rx0 || i >= l->rx0 + l->rnx;
    }
    T_CHECK(bad == 0, "%ld particle values wrong", bad);
    particles_destroy(&q);
    ic_plan_destroy(&p);
}

static void expect_create_error(struct ic_setup s, const char *want)
{
    struct lm_err err = {0};
    struct ic_plan *p = ic_plan_create(&s, MPI_COMM_WORLD, &err);
    T_CHECK(p == NULL, "setup accepted");
    T_CHECK(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    ic_plan_destroy(&p);
}

static void test_bad_setup(void)
{
    struct lm_err err = {0};
    struct linear_power_params lp = {
        .source = LINEAR_POWER_TABLE_POWER, .table = "short.txt", .normalise = false};
    struct linear_power *tab =
        linear_power_create_from_text(&g_cosmo, &lp, "0.01 1000\n0.1 5000\n1.0 300\n", &err);
    T_CHECK(tab != NULL, "table: %s", err.msg);
    struct ic_setup s = {.n = 128, .box_size = 250.0, .seed = 1, .lpt_order = 1, .power = tab};
    expect_create_error(s, "short.txt");
    s.power = g_power;
    s.seed = 0;
    expect_create_error(s, "ic.seed = 0");
    s.seed = 1;
    s.lpt_order = 3;
    expect_create_error(s, "ic.lpt_order = 3");
    linear_power_destroy(&tab);
}

static size_t g_bytes_at_start;

/* Every plan, store and buffer made by the cases was freed (labelled allocator). */
static void test_no_leaks(void)
{
    T_CHECK(alloc_current() == g_bytes_at_start, "%zu bytes still held (%zu at start)",
            alloc_current(), g_bytes_at_start);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    g_cosmo = cosmo_quijote_fiducial();
    struct lm_err err = {0};
    struct linear_power_params lp = {.source = LINEAR_POWER_EH};
    g_power = linear_power_create(&g_cosmo, &lp, &err);
    if (!g_power) {
        fprintf(stderr, "linear_power_create: %s\n", err.msg);
        return 1;
    }
    g_bytes_at_start = alloc_current();
    T_RUN(test_rank_invariance);
    T_RUN(test_thread_invariance);
    T_RUN(test_power_fixed_amplitude);
    T_RUN(test_power_rayleigh_20_seeds);
    T_RUN(test_divergence_is_minus_delta);
    T_RUN(test_paired_is_minus);
    T_RUN(test_large_scales_survive_n_change);
    T_RUN(test_2lpt_source);
    T_RUN(test_particles);
    T_RUN(test_bad_setup);
    T_RUN(test_no_leaks);
    linear_power_destroy(&g_power);
    return t_finish();
}
