/* fof_massfn — binned halo mass function and the Sheth & Tormen 1999 curve (see fof.h). */
#include "fof.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "linear_power.h"

/* Critical density today in 1e10 Msun/h per (Mpc/h)^3 (3 H0^2 / 8 pi G). */
#define FOF_RHO_CRIT 27.7536627

double fof_mean_density(double omega_m) { return omega_m * FOF_RHO_CRIT; }

struct fof_mass_function *fof_mass_function_measure(const struct fof_group *g, int64_t n,
                                                    double volume, double dlogm)
{
    struct fof_mass_function *mf = lm_calloc("fof.massfn", 1, sizeof *mf);
    mf->dlogm = dlogm;
    mf->volume = volume;
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (int64_t k = 0; k < n; k++) {
        double l = log10(g[k].mass);
        lo = fmin(lo, l);
        hi = fmax(hi, l);
    }
    int64_t i0 = n ? (int64_t)floor(lo / dlogm) : 0;
    mf->n_bins = n ? (int)((int64_t)floor(hi / dlogm) - i0 + 1) : 0;
    int nb = mf->n_bins;
    double *b = lm_calloc("fof.massfn", 7 * (size_t)(nb > 0 ? nb : 1), sizeof *b);
    double **cols[7] = {&mf->log10m, &mf->mass,  &mf->mean_mass, &mf->count,
                        &mf->dndlnm, &mf->error, &mf->st};
    for (int c = 0; c < 7; c++)
        *cols[c] = b + (size_t)c * (nb > 0 ? nb : 1);
    for (int64_t k = 0; k < n; k++) {
        int64_t i = (int64_t)floor(log10(g[k].mass) / dlogm) - i0;
        i = i < 0 ? 0 : i >= nb ? nb - 1 : i;
        mf->count[i] += 1;
        mf->mean_mass[i] += g[k].mass;
    }
    double norm = volume * dlogm * log(10.0);
    for (int i = 0; i < nb; i++) {
        mf->log10m[i] = ((double)(i0 + i) + 0.5) * dlogm;
        mf->mass[i] = pow(10.0, mf->log10m[i]);
        mf->mean_mass[i] = mf->count[i] > 0 ? mf->mean_mass[i] / mf->count[i] : mf->mass[i];
        mf->dndlnm[i] = mf->count[i] / norm;
        mf->error[i] = sqrt(mf->count[i]) / norm;
    }
    return mf;
}

void fof_mass_function_destroy(struct fof_mass_function **pmf)
{
    struct fof_mass_function *mf = pmf ? *pmf : NULL;
    if (!mf)
        return;
    lm_free(mf->log10m);
    lm_free(mf);
    *pmf = NULL;
}

/** σ(M) at z: D times the top-hat rms of the sphere holding mass M at the mean density. */
static double sigma_of_mass(const struct linear_power *lp, double rho, double growth, double M)
{
    double R = cbrt(3.0 * M / (4.0 * M_PI * rho));
    return growth * linear_power_sigma(lp, R);
}

double fof_sheth_tormen(const struct linear_power *lp, double omega_m, double growth, double M)
{
    const double A = 0.3222, a = 0.707, p = 0.3, delta_c = 1.686, eps = 0.01;
    double rho = fof_mean_density(omega_m);
    double s = sigma_of_mass(lp, rho, growth, M);
    /* dlnσ/dlnM by a central difference in ln M */
    double s_hi = sigma_of_mass(lp, rho, growth, M * exp(eps));
    double s_lo = sigma_of_mass(lp, rho, growth, M * exp(-eps));
    double dlns = (log(s_hi) - log(s_lo)) / (2 * eps);
    double nu2 = a * (delta_c / s) * (delta_c / s);
    double nu_f = A * sqrt(2.0 * nu2 / M_PI) * (1.0 + pow(nu2, -p)) * exp(-0.5 * nu2);
    return rho / M * nu_f * fabs(dlns);
}
