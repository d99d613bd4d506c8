/* jerald_kernels — the pointwise formulas of JERALD (Rigo, Trotta & Viel 2025, arXiv 2501.09168):
 * Green's functions, gradient kernel, depletion filter, final transformations. Local and pure. */
#include "jerald.h"

#include <math.h>

double jerald_green(enum jerald_green g, const struct jerald_term *t, double k)
{
    if (k == 0)
        k = JERALD_K_ZERO;
    double e = g == JERALD_GREEN_DM ? -k / t->kl - t->kh / k
                                    : -(k * k) / (t->kl * t->kl) - (t->kh * t->kh) / (k * k);
    double x = exp(e);
    /* exp underflowed (k -> 0 with kh > 0): G vanishes, whatever k^ν would be. */
    return x == 0 ? 0.0 : -x * pow(k, t->nu);
}

double jerald_depletion_filter(const struct jerald_depletion *d, double k)
{
    if (k == 0)
        k = JERALD_K_ZERO;
    double x = exp(-k / d->kl - d->kh / k);
    return (x == 0 ? 0.0 : x * pow(k, d->nu)) + d->xi;
}

double jerald_gradient_kernel(int order, double k, double h)
{
    double x = k * h;
    if (order == 4)
        return (8 * sin(x) - sin(2 * x)) / (6 * h);
    return (45 * sin(x) - 9 * sin(2 * x) + sin(3 * x)) / (30 * h);
}

float jerald_powf(float x, double e)
{
    if (e == 1)
        return x;
    if (e == 0.5)
        return sqrtf(x);
    return powf(x, (float)e);
}

float jerald_stellar_value(const struct jerald_final *f, float rho)
{
    double v = f->w * jerald_powf(rho + (float)JERALD_RHO_EPS, f->mu) + f->b;
    return (float)(v > JERALD_FLOOR ? v : JERALD_FLOOR);
}

float jerald_hi_value(const struct jerald_final *f, const struct jerald_depletion *d, float rho,
                      float filtered, float mhat)
{
    double r = (double)rho + f->z_s;
    double depl = d->beta1 * filtered + d->eta;
    depl = (depl > 0 ? depl : 0) + d->beta2 * jerald_powf(mhat, d->gamma3);
    double v = f->w * jerald_powf((float)(r > 0 ? r : 0), f->mu) - depl + f->b;
    return (float)(v > 0 ? v : 0);
}
