/* ic_noise — N-GenIC-compatible white noise (see ic.h for the construction). */
#include "ic.h"

#include "alloc.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define TWO_PI 6.283185307179586476925286766559

/* One seed from the master stream, as N-GenIC stores it: 0x7fffffff u truncated to unsigned. */
static uint32_t next_seed(gsl_rng *r) { return (uint32_t)(0x7fffffff * gsl_rng_uniform(r)); }

/* Shell s of the seed table, corner (flip_x, flip_y): first the entries (s, j) for j < s, then
 * (j, s) for j <= s, with a flipped axis counting from the far end (n − 1 − index). This is the
 * order in which N-GenIC draws its table, so a column's seed depends only on its shell. */
static void fill_shell_corner(uint32_t *table, int n, int s, bool flip_x, bool flip_y, gsl_rng *r)
{
    for (int j = 0; j < s; j++) {
        int ix = flip_x ? n - 1 - s : s, iy = flip_y ? n - 1 - j : j;
        table[(int64_t)ix * n + iy] = next_seed(r);
    }
    for (int j = 0; j <= s; j++) {
        int ix = flip_x ? n - 1 - j : j, iy = flip_y ? n - 1 - s : s;
        table[(int64_t)ix * n + iy] = next_seed(r);
    }
}

static void fill_table(uint32_t *table, int n, long seed)
{
    static const bool corner[4][2] = {{false, false}, {true, false}, {false, true}, {true, true}};
    gsl_rng *r = gsl_rng_alloc(gsl_rng_ranlxd1);
    gsl_rng_set(r, (unsigned long)seed);
    for (int s = 0; s < n / 2; s++)
        for (int c = 0; c < 4; c++)
            fill_shell_corner(table, n, s, corner[c][0], corner[c][1], r);
    gsl_rng_free(r);
}

bool ic_noise_check_size(int n, struct lm_err *err)
{
    if (n >= 2 && n <= 65536 && n % 2 == 0)
        return true;
    return lm_err_set(err,
                      "ic: mesh size box.n = %d is not usable for the white noise: expected an "
                      "even number in [2, 65536]",
                      n);
}

struct ic_noise *ic_noise_create(int n, long seed, enum ic_amplitude amplitude, bool paired,
                                 struct lm_err *err)
{
    if (!ic_noise_check_size(n, err))
        return NULL;
    if (seed < 1 || seed > IC_SEED_MAX) {
        lm_err_set(err, "ic: seed ic.seed = %ld is out of range: expected 1 ... %ld", seed,
                   IC_SEED_MAX);
        return NULL;
    }
    struct ic_noise *nz = lm_malloc("ic.noise", sizeof *nz);
    *nz = (struct ic_noise){.n = n, .seed = seed, .amplitude = amplitude, .paired = paired};
    nz->table = lm_malloc("ic.noise", (size_t)n * (size_t)n * sizeof *nz->table);
    fill_table(nz->table, n, seed);
    return nz;
}

void ic_noise_destroy(struct ic_noise **nz)
{
    if (!nz || !*nz)
        return;
    lm_free((*nz)->table);
    lm_free(*nz);
    *nz = NULL;
}

void *ic_noise_rng_alloc(void) { return gsl_rng_alloc(gsl_rng_ranlxd1); }

void ic_noise_rng_free(void *rng)
{
    if (rng)
        gsl_rng_free(rng);
}

/* One (phase, amplitude) draw in N-GenIC's order: phase first, then the amplitude variate,
 * redrawn while it is exactly 0. */
static double complex draw_mode(const struct ic_noise *nz, gsl_rng *r)
{
    double phase = gsl_rng_uniform(r) * TWO_PI;
    double u;
    do
        u = gsl_rng_uniform(r);
    while (u == 0);
    double amp = nz->amplitude == IC_AMPLITUDE_RAYLEIGH ? sqrt(-log(u)) : 1.0;
    double complex w = amp * cos(phase) + I * (amp * sin(phase));
    return nz->paired ? -w : w;
}

/* True when the kz = 0 mode of column (ix, iy) takes its own draw; otherwise it is the conjugate
 * of the mirror column's. */
static bool owns_kz0(int n, int ix, int iy)
{
    return (ix > 0 && ix < n / 2) || (ix == 0 && iy > 0 && iy < n / 2);
}

void ic_noise_column(const struct ic_noise *nz, void *rng, int ix, int iy, double complex *w)
{
    int n = nz->n, h = n / 2;
    gsl_rng *r = rng;
    for (int k = 0; k <= h; k++)
        w[k] = 0;
    if (ix == h || iy == h)
        return;
    gsl_rng_set(r, nz->table[(int64_t)ix * n + iy]);
    for (int k = 0; k < h; k++)
        w[k] = draw_mode(nz, r);
    if (ix == 0 && iy == 0) {
        w[0] = 0;
    } else if (!owns_kz0(n, ix, iy)) {
        int mx = (n - ix) % n, my = (n - iy) % n;
        gsl_rng_set(r, nz->table[(int64_t)mx * n + my]);
        w[0] = conj(draw_mode(nz, r));
    }
}

void ic_noise_fill(const struct ic_noise *nz, int ix0, int ix1, int iy0, int iy1,
                   float complex *out, int64_t stride_x, int64_t stride_y,
                   const struct ic_mode_scale *scale)
{
    int n_threads = 1;
#ifdef _OPENMP
    n_threads = omp_get_max_threads();
#endif
    int h = nz->n / 2, nx = ix1 - ix0, ny = iy1 - iy0;
    if (nx <= 0 || ny <= 0)
        return;
    gsl_rng **rngs = lm_malloc("ic.noise", (size_t)n_threads * sizeof *rngs);
    double complex *cols = lm_malloc("ic.noise", (size_t)n_threads * (h + 1) * sizeof *cols);
    for (int t = 0; t < n_threads; t++)
        rngs[t] = ic_noise_rng_alloc();
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t c = 0; c < (int64_t)nx * ny; c++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        int ix = ix0 + (int)(c / ny), iy = iy0 + (int)(c % ny);
        double complex *w = cols + (size_t)t * (h + 1);
        ic_noise_column(nz, rngs[t], ix, iy, w);
        float complex *o = out + (ix - ix0) * stride_x + (iy - iy0) * stride_y;
        for (int k = 0; k <= h; k++) {
            double f = scale ? scale->fn(scale->ctx, ix, iy, k) : 1.0;
            o[k] = (float)(f * creal(w[k])) + I * (float)(f * cimag(w[k]));
        }
    }
    for (int t = 0; t < n_threads; t++)
        ic_noise_rng_free(rngs[t]);
    lm_free(cols);
    lm_free(rngs);
}

bool ic_amplitude_parse(const char *name, enum ic_amplitude *out)
{
    if (strcmp(name, "rayleigh") == 0)
        *out = IC_AMPLITUDE_RAYLEIGH;
    else if (strcmp(name, "fixed") == 0)
        *out = IC_AMPLITUDE_FIXED;
    else
        return false;
    return true;
}
