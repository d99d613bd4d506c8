#include "cosmology.h"

#include <math.h>

#include "params.h"
#include "quad.h"

/* Beyond this Pfaff argument w = x/(1+x) the series in w is replaced by the 1 − w connection
 * formula, whose series then runs in 1 − w <= 0.2 (the switch point keeps the cancellation
 * between its two terms, and so the error, near 1e-15). */
#define HYP_SWITCH 0.8
/* Relative accuracy of the growth integral. */
#define GROWTH_EPSREL 2e-14

struct cosmology cosmo_quijote_fiducial(void)
{
    return (struct cosmology){.Omega_m = 0.3175,
                              .Omega_b = 0.049,
                              .h = 0.6711,
                              .n_s = 0.9624,
                              .sigma8 = 0.834,
                              .T_cmb = 2.7255};
}

bool cosmo_check(const struct cosmology *c, struct lm_err *err)
{
    if (!(c->Omega_m > 0 && c->Omega_m <= 1))
        return lm_err_set(err, "cosmology.Omega_m = %g: expected a value in (0, 1] (flat ΛCDM)",
                          c->Omega_m);
    if (!(c->Omega_b >= 0 && c->Omega_b < c->Omega_m))
        return lm_err_set(err, "cosmology.Omega_b = %g: expected a value in [0, Omega_m = %g)",
                          c->Omega_b, c->Omega_m);
    if (!(c->h > 0 && c->h < 10))
        return lm_err_set(err, "cosmology.h = %g: expected a value in (0, 10)", c->h);
    if (!isfinite(c->n_s))
        return lm_err_set(err, "cosmology.n_s = %g: expected a finite value", c->n_s);
    if (!(c->sigma8 > 0 && isfinite(c->sigma8)))
        return lm_err_set(err, "cosmology.sigma8 = %g: expected a positive value", c->sigma8);
    if (!(c->T_cmb > 0 && isfinite(c->T_cmb)))
        return lm_err_set(err, "cosmology.T_cmb = %g K: expected a positive value", c->T_cmb);
    return true;
}

double cosmo_E(const struct cosmology *c, double a)
{
    return sqrt(c->Omega_m / (a * a * a) + (1.0 - c->Omega_m));
}

double cosmo_H(const struct cosmology *c, double z) { return 100.0 * cosmo_E(c, 1.0 / (1.0 + z)); }

/* Σ_n (p)_n (q)_n / ((r)_n n!) w^n for 0 <= w <= 0.8: stops when a term no longer changes the
 * sum. */
static double hyp2f1_series(double p, double q, double r, double w)
{
    double term = 1.0, sum = 1.0;
    for (int n = 0; n < 2000; n++) {
        term *= (p + n) * (q + n) / ((r + n) * (n + 1.0)) * w;
        sum += term;
        if (fabs(term) <= 1e-17 * fabs(sum))
            return sum;
    }
    lm_fatal("internal error: 2F1(%g, %g; %g; %g) series did not converge", p, q, r, w);
}

double cosmo_hyp2f1_neg(double p, double q, double r, double x)
{
    ASSERT(x >= 0 && p > 0 && q > 0 && r > p && r > q);
    /* Pfaff: 2F1(p, q; r; −x) = (1+x)^-p 2F1(p, r−q; r; w), w = x/(1+x) in [0, 1). */
    double s = r - q, v = 1.0 / (1.0 + x), w = x / (1.0 + x);
    if (w <= HYP_SWITCH)
        return pow(v, p) * hyp2f1_series(p, s, r, w);
    /* Connection to 1 − w = v (r − p − s = q − p is not an integer). */
    double e = r - p - s;
    double g1 = tgamma(r) * tgamma(e) / (tgamma(r - p) * tgamma(r - s));
    double g2 = tgamma(r) * tgamma(-e) / (tgamma(p) * tgamma(s));
    double t1 = g1 * hyp2f1_series(p, s, 1.0 - e, v);
    double t2 = g2 * pow(v, e) * hyp2f1_series(r - p, r - s, 1.0 + e, v);
    return pow(v, p) * (t1 + t2);
}

/* x = (1 − Ωm) a^3 / Ωm, the argument of the growth hypergeometric functions. */
static double growth_x(const struct cosmology *c, double a)
{
    return (1.0 - c->Omega_m) * a * a * a / c->Omega_m;
}

double cosmo_growth_D(const struct cosmology *c, double a)
{
    ASSERT(a > 0);
    if (c->Omega_m == 1.0)
        return a;
    double num = cosmo_hyp2f1_neg(1.0, 1.0 / 3.0, 11.0 / 6.0, growth_x(c, a));
    double den = cosmo_hyp2f1_neg(1.0, 1.0 / 3.0, 11.0 / 6.0, growth_x(c, 1.0));
    return a * num / den;
}

double cosmo_growth_f(const struct cosmology *c, double a)
{
    ASSERT(a > 0);
    if (c->Omega_m == 1.0)
        return 1.0;
    double x = growth_x(c, a);
    double f1 = cosmo_hyp2f1_neg(1.0, 1.0 / 3.0, 11.0 / 6.0, x);
    double f2 = cosmo_hyp2f1_neg(2.0, 4.0 / 3.0, 17.0 / 6.0, x);
    return 1.0 - (6.0 / 11.0) * x * f2 / f1;
}

double cosmo_growth_dDdz(const struct cosmology *c, double z)
{
    double a = 1.0 / (1.0 + z);
    return -a * cosmo_growth_f(c, a) * cosmo_growth_D(c, a);
}

/* The growth integrand in u = sqrt(a'): da'/(a'E)^3 = 2 u^4 du / (Ωm + ΩΛ u^6)^(3/2), smooth at
 * u = 0 (the integrand in a' itself behaves as a'^(3/2)). */
static double growth_integrand(double u, void *ctx)
{
    const struct cosmology *c = ctx;
    double u2 = u * u, d = c->Omega_m + (1.0 - c->Omega_m) * u2 * u2 * u2;
    return 2.0 * u2 * u2 / (d * sqrt(d));
}

/* I(a) = ∫_0^a da' / (a' E(a'))^3. */
static double growth_integral(const struct cosmology *c, double a)
{
    double result = 0.0, abserr = 0.0;
    bool ok =
        quad_integrate(growth_integrand, (void *)c, 0.0, sqrt(a), GROWTH_EPSREL, &result, &abserr);
    if (!ok && abserr > 1e-12 * fabs(result))
        lm_fatal("internal error: growth integral at a = %g (Omega_m = %g) did not converge "
                 "(estimate %g, error %g)",
                 a, c->Omega_m, result, abserr);
    return result;
}

double cosmo_growth_D_integral(const struct cosmology *c, double a)
{
    ASSERT(a > 0);
    return cosmo_E(c, a) * growth_integral(c, a) / growth_integral(c, 1.0);
}

double cosmo_growth_f_integral(const struct cosmology *c, double a)
{
    ASSERT(a > 0);
    /* D = E I: dlnD/dlna = dlnE/dlna + a I'(a)/I = −3Ωm/(2 a^3 E^2) + 1/(a^2 E^3 I). */
    double E = cosmo_E(c, a);
    return -1.5 * c->Omega_m / (a * a * a * E * E) +
           1.0 / (a * a * E * E * E * growth_integral(c, a));
}

double cosmo_velocity_factor(const struct cosmology *c, double a)
{
    return a * 100.0 * cosmo_E(c, a) * cosmo_growth_f(c, a);
}

struct cosmology cosmo_from_params(const struct params *p)
{
    const struct cosmology_params *c = &p->cosmology;
    return (struct cosmology){.Omega_m = c->Omega_m,
                              .Omega_b = c->Omega_b,
                              .h = c->h,
                              .n_s = c->n_s,
                              .sigma8 = c->sigma8,
                              .T_cmb = c->T_cmb};
}
