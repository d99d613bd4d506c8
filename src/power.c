/* power — the local parts of the power spectra: options and bins, spectra, shot noise,
 * redshift-space displacements (power.h). */
#include "power.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "mesh.h"

static double default_dk(const double box[3])
{
    return 2 * M_PI / fmin(box[0], fmin(box[1], box[2]));
}

static double default_kmax(const int n[3], const double box[3])
{
    double k = INFINITY;
    for (int d = 0; d < 3; d++)
        k = fmin(k, M_PI * n[d] / box[d]);
    return k;
}

/** floor((kmax - kmin) / dk) with the edge tolerance of the binning. */
static int bins_between(double kmin, double kmax, double dk)
{
    double u = (kmax - kmin) / dk;
    return (int)floor(u + 1e-12 * (fabs(u) + 1));
}

int power_bins(const struct power_options *o, const int n[3], const double box[3], double *kmin,
               double *dk, double *kmax)
{
    *dk = o->dk > 0 ? o->dk : default_dk(box);
    *kmin = o->kmin;
    *kmax = o->kmax > 0 ? o->kmax : default_kmax(n, box);
    return bins_between(*kmin, *kmax, *dk);
}

bool power_options_check(const struct power_options *o, const int n[3], const double box[3],
                         struct lm_err *err)
{
    if (!fft_check_size(n, "power.n_mesh", err))
        return false;
    if (o->los < 0 || o->los > 2)
        return lm_err_set(err, "power.los: axis %d, expected x, y or z", o->los);
    if (!(o->dk >= 0) || !(o->kmin >= 0) || !(o->kmax >= 0))
        return lm_err_set(err, "power.dk, power.kmin, power.kmax: %g, %g, %g; expected >= 0", o->dk,
                          o->kmin, o->kmax);
    double dk = o->dk > 0 ? o->dk : default_dk(box);
    double kmax = o->kmax > 0 ? o->kmax : default_kmax(n, box);
    if (bins_between(o->kmin, kmax, dk) < 1)
        return lm_err_set(err,
                          "power.kmin = %g, power.kmax = %g, power.dk = %g h/Mpc leave no bin "
                          "(kmax defaults to the Nyquist frequency %g h/Mpc)",
                          o->kmin, kmax, dk, default_kmax(n, box));
    return true;
}

struct power_spectrum *power_spectrum_create(int n_bins, int n_ell)
{
    CHECK(n_ell == 1 || n_ell == POWER_N_ELL, "power: %d multipoles, expected 1 or %d", n_ell,
          POWER_N_ELL);
    struct power_spectrum *s = lm_calloc("power.spectrum", 1, sizeof *s);
    s->n_bins = n_bins;
    s->n_ell = n_ell;
    size_t bytes = (size_t)(n_bins > 0 ? n_bins : 1) * sizeof(double);
    s->k = lm_calloc("power.spectrum", 1, bytes);
    s->n_modes = lm_calloc("power.spectrum", 1, bytes);
    for (int e = 0; e < n_ell; e++)
        s->P[e] = lm_calloc("power.spectrum", 1, bytes);
    return s;
}

void power_spectrum_destroy(struct power_spectrum **sp)
{
    struct power_spectrum *s = *sp;
    if (!s)
        return;
    lm_free(s->k);
    lm_free(s->n_modes);
    for (int e = 0; e < s->n_ell; e++)
        lm_free(s->P[e]);
    lm_free(s);
    *sp = NULL;
}

double power_shot_noise(const struct power_sums *s, double volume, bool momentum)
{
    double num = momentum ? s->sum_w2v2 : s->sum_w2;
    return volume * num / (s->sum_w * s->sum_w);
}

void power_rsd_displace(struct particles *parts, int los, double factor)
{
    CHECK(parts->fields & PARTICLES_VEL, "power: redshift-space positions need velocities");
    float *x = parts->x[los];
    const float *v = parts->v[los];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < parts->n; i++)
        x[i] = (float)(x[i] + factor * v[i]);
}

int64_t power_count_outside(const struct particles *parts, const double box[3])
{
    int64_t n = 0;
#pragma omp parallel for schedule(static) reduction(+ : n)
    for (int64_t i = 0; i < parts->n; i++) {
        bool out = false;
        for (int d = 0; d < 3; d++)
            out |= !(parts->x[d][i] >= 0 && parts->x[d][i] < box[d]);
        n += out;
    }
    return n;
}
