/*
 * White noise of the ICs: the seed table against a literal transcription of N-GenIC's eight fill
 * loops, each column's draws against a direct transcription of N-GenIC's inner loop, Hermitian
 * kz = 0 plane, zero DC and Nyquist planes, stability of large-scale modes when n changes,
 * paired = exact sign flip, amplitude statistics, and bad arguments.
 */
#include "harness.h"

#include "alloc.h"
#include "ic.h"
#include "mpi/fft.h"

#include <gsl/gsl_rng.h>
#include <string.h>

/* N-GenIC's table fill written out loop by loop (the reference the module must match). */
static void reference_table(unsigned *t, int n, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_ranlxd1);
    gsl_rng_set(r, seed);
    for (int i = 0; i < n / 2; i++) {
        for (int j = 0; j < i; j++)
            t[i * n + j] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i + 1; j++)
            t[j * n + i] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i; j++)
            t[(n - 1 - i) * n + j] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i + 1; j++)
            t[(n - 1 - j) * n + i] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i; j++)
            t[i * n + (n - 1 - j)] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i + 1; j++)
            t[j * n + (n - 1 - i)] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i; j++)
            t[(n - 1 - i) * n + (n - 1 - j)] = 0x7fffffff * gsl_rng_uniform(r);
        for (int j = 0; j < i + 1; j++)
            t[(n - 1 - j) * n + (n - 1 - i)] = 0x7fffffff * gsl_rng_uniform(r);
    }
    gsl_rng_free(r);
}

static struct ic_noise *make(int n, long seed, enum ic_amplitude a, bool paired)
{
    struct lm_err err = {0};
    struct ic_noise *nz = ic_noise_create(n, seed, a, paired, &err);
    T_CHECK(nz != NULL, "ic_noise_create: %s", err.msg);
    return nz;
}

static void test_seed_table_matches_ngenic(void)
{
    const int sizes[] = {2, 8, 64, 130};
    for (int s = 0; s < 4; s++) {
        int n = sizes[s];
        unsigned *ref = calloc((size_t)n * n, sizeof *ref);
        reference_table(ref, n, 1234567);
        struct ic_noise *nz = make(n, 1234567, IC_AMPLITUDE_RAYLEIGH, false);
        int bad = 0;
        for (int i = 0; nz && i < n * n; i++)
            bad += nz->table[i] != ref[i];
        T_CHECK(bad == 0, "n = %d: %d table entries differ from N-GenIC's order", n, bad);
        ic_noise_destroy(&nz);
        T_CHECK(nz == NULL, "destroy did not clear the pointer");
        free(ref);
    }
}

/* N-GenIC's inner loop for one column, kz > 0 (the modes every column keeps). */
static void reference_column(unsigned seed, int n, bool rayleigh, double complex *w)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_ranlxd1);
    gsl_rng_set(r, seed);
    for (int k = 0; k < n / 2; k++) {
        double phase = gsl_rng_uniform(r) * 2 * 3.14159265358979323846, ampl;
        do
            ampl = gsl_rng_uniform(r);
        while (ampl == 0);
        double a = rayleigh ? sqrt(-log(ampl)) : 1.0;
        w[k] = a * cos(phase) + I * a * sin(phase);
    }
    gsl_rng_free(r);
}

static void test_columns_match_ngenic_draws(void)
{
    int n = 32, h = n / 2;
    struct ic_noise *nz = make(n, 77, IC_AMPLITUDE_RAYLEIGH, false);
    void *rng = ic_noise_rng_alloc();
    double complex w[17], ref[16];
    int bad = 0;
    for (int ix = 0; ix < n; ix++)
        for (int iy = 0; iy < n; iy++) {
            if (ix == h || iy == h)
                continue;
            ic_noise_column(nz, rng, ix, iy, w);
            reference_column(nz->table[ix * n + iy], n, true, ref);
            for (int k = 1; k < h; k++)
                bad += w[k] != ref[k];
            if (ix > 0 && ix < h)
                bad += w[0] != ref[0];
        }
    T_CHECK(bad == 0, "%d modes differ from the transcription of N-GenIC's draws", bad);
    ic_noise_rng_free(rng);
    ic_noise_destroy(&nz);
}

/* The whole half-complex cube w[ix][iy][kz] of a noise plan. */
static double complex *all_modes(const struct ic_noise *nz)
{
    int n = nz->n, h = n / 2;
    double complex *w = malloc(sizeof *w * (size_t)n * n * (h + 1));
    void *rng = ic_noise_rng_alloc();
    for (int ix = 0; ix < n; ix++)
        for (int iy = 0; iy < n; iy++)
            ic_noise_column(nz, rng, ix, iy, w + ((size_t)ix * n + iy) * (h + 1));
    ic_noise_rng_free(rng);
    return w;
}

static void test_hermitian_and_zero_planes(void)
{
    int n = 16, h = n / 2;
    struct ic_noise *nz = make(n, 5, IC_AMPLITUDE_RAYLEIGH, false);
    double complex *w = all_modes(nz);
    int bad_herm = 0, bad_zero = 0;
    for (int ix = 0; ix < n; ix++)
        for (int iy = 0; iy < n; iy++) {
            const double complex *c = w + ((size_t)ix * n + iy) * (h + 1);
            const double complex *m = w + ((size_t)((n - ix) % n) * n + (n - iy) % n) * (h + 1);
            bad_herm += c[0] != conj(m[0]);
            bad_zero += c[h] != 0;
            for (int k = 0; k <= h; k++)
                bad_zero += (ix == h || iy == h) && c[k] != 0;
        }
    T_CHECK(bad_herm == 0, "%d kz = 0 modes are not the conjugates of their mirrors", bad_herm);
    T_CHECK(bad_zero == 0, "%d Nyquist modes are not zero", bad_zero);
    T_CHECK(w[0] == 0, "DC mode is %g%+gi", creal(w[0]), cimag(w[0]));
    free(w);
    ic_noise_destroy(&nz);
}

static int index_of(int m, int n) { return m >= 0 ? m : n + m; }

static void test_large_scales_survive_a_change_of_n(void)
{
    struct ic_noise *a = make(16, 99, IC_AMPLITUDE_RAYLEIGH, false);
    struct ic_noise *b = make(32, 99, IC_AMPLITUDE_RAYLEIGH, false);
    double complex *wa = all_modes(a), *wb = all_modes(b);
    int bad = 0, compared = 0;
    for (int mx = -7; mx <= 7; mx++)
        for (int my = -7; my <= 7; my++)
            for (int k = 0; k < 8; k++) {
                double complex va = wa[((size_t)index_of(mx, 16) * 16 + index_of(my, 16)) * 9 + k];
                double complex vb = wb[((size_t)index_of(mx, 32) * 32 + index_of(my, 32)) * 17 + k];
                bad += va != vb;
                compared++;
            }
    T_CHECK(bad == 0, "%d of %d shared modes differ between n = 16 and n = 32", bad, compared);
    free(wa);
    free(wb);
    ic_noise_destroy(&a);
    ic_noise_destroy(&b);
}

static void test_paired_and_fixed(void)
{
    int n = 16, h = n / 2;
    struct ic_noise *r = make(n, 3, IC_AMPLITUDE_RAYLEIGH, false);
    struct ic_noise *p = make(n, 3, IC_AMPLITUDE_RAYLEIGH, true);
    struct ic_noise *f = make(n, 3, IC_AMPLITUDE_FIXED, false);
    double complex *wr = all_modes(r), *wp = all_modes(p), *wf = all_modes(f);
    int bad_pair = 0, bad_fixed = 0, bad_phase = 0;
    for (size_t i = 0; i < (size_t)n * n * (h + 1); i++) {
        bad_pair += wp[i] != -wr[i];
        if (wr[i] == 0)
            continue;
        bad_fixed += fabs(cabs(wf[i]) - 1) > 1e-15;
        bad_phase += cabs(wf[i] - wr[i] / cabs(wr[i])) > 1e-12;
    }
    T_CHECK(bad_pair == 0, "%d paired modes are not exactly -w", bad_pair);
    T_CHECK(bad_fixed == 0 && bad_phase == 0, "fixed: %d amplitudes != 1, %d phases differ",
            bad_fixed, bad_phase);
    free(wr);
    free(wp);
    free(wf);
    ic_noise_destroy(&r);
    ic_noise_destroy(&p);
    ic_noise_destroy(&f);
}

static void test_rayleigh_statistics(void)
{
    int n = 64, h = n / 2;
    struct ic_noise *nz = make(n, 2024, IC_AMPLITUDE_RAYLEIGH, false);
    double complex *w = all_modes(nz);
    double s2 = 0, s4 = 0, sre = 0;
    long m = 0;
    for (size_t i = 0; i < (size_t)n * n * (h + 1); i++) {
        if (w[i] == 0)
            continue;
        double a2 = creal(w[i] * conj(w[i]));
        s2 += a2;
        s4 += a2 * a2;
        sre += creal(w[i]);
        m++;
    }
    /* |w|^2 is exponential with mean 1: <|w|^2> = 1 (sigma 1/sqrt(m)), <|w|^4> = 2. */
    T_CLOSE_TOL(s2 / m, 1.0, 0, 5 / sqrt((double)m));
    T_CLOSE_TOL(s4 / m, 2.0, 0, 0.05);
    T_CLOSE_TOL(sre / m, 0.0, 0, 5 / sqrt((double)m));
    free(w);
    ic_noise_destroy(&nz);
}

static void expect_error(int n, long seed, const char *want)
{
    struct lm_err err = {0};
    struct ic_noise *nz = ic_noise_create(n, seed, IC_AMPLITUDE_FIXED, false, &err);
    T_CHECK(nz == NULL, "n = %d, seed = %ld accepted", n, seed);
    T_CHECK(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    ic_noise_destroy(&nz);
}

static void test_bad_arguments(void)
{
    expect_error(64, 0, "ic.seed = 0 is out of range");
    expect_error(64, -5, "ic.seed = -5 is out of range");
    expect_error(64, 2147483648L, "expected 1 ... 2147483647");
    expect_error(63, 1, "box.n = 63");
    expect_error(0, 1, "even number");
    enum ic_amplitude a;
    T_CHECK(ic_amplitude_parse("fixed", &a) && a == IC_AMPLITUDE_FIXED, "fixed");
    T_CHECK(ic_amplitude_parse("rayleigh", &a) && a == IC_AMPLITUDE_RAYLEIGH, "rayleigh");
    T_CHECK(!ic_amplitude_parse("gaussian", &a), "gaussian accepted");
}

int main(void)
{
    T_RUN(test_seed_table_matches_ngenic);
    T_RUN(test_columns_match_ngenic_draws);
    T_RUN(test_hermitian_and_zero_planes);
    T_RUN(test_large_scales_survive_a_change_of_n);
    T_RUN(test_paired_and_fixed);
    T_RUN(test_rayleigh_statistics);
    T_RUN(test_bad_arguments);
    return t_finish();
}
