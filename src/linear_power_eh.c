/*
 * Eisenstein & Hu 1998 (ApJ 496, 605; astro-ph/9709112) transfer functions. Equation numbers
 * refer to that paper. Internally wavenumbers are in 1/Mpc and lengths in Mpc, as in the paper;
 * the public functions take k in h/Mpc.
 */
#include "linear_power.h"

#include <math.h>

#define EH_E 2.718281828459045 /* Euler's number */

/* Redshift of the drag epoch (eq. 4). */
static double eh_z_drag(double omhh, double obhh)
{
    double b1 = 0.313 * pow(omhh, -0.419) * (1.0 + 0.607 * pow(omhh, 0.674));
    double b2 = 0.238 * pow(omhh, 0.223);
    return 1291.0 * pow(omhh, 0.251) / (1.0 + 0.659 * pow(omhh, 0.828)) *
           (1.0 + b1 * pow(obhh, b2));
}

/* The suppression function G(y) of the baryon envelope (eq. 15). */
static double eh_G(double y)
{
    double s = sqrt(1.0 + y);
    return y * (-6.0 * s + (2.0 + 3.0 * y) * log((s + 1.0) / (s - 1.0)));
}

/* The CDM coefficients α_c (eq. 11) and β_c (eq. 12). */
static void eh_setup_cdm(struct linear_power_eh *e, double omhh)
{
    double a1 = pow(46.9 * omhh, 0.670) * (1.0 + pow(32.1 * omhh, -0.532));
    double a2 = pow(12.0 * omhh, 0.424) * (1.0 + pow(45.0 * omhh, -0.582));
    e->alpha_c = pow(a1, -e->f_b) * pow(a2, -e->f_b * e->f_b * e->f_b);
    double b1 = 0.944 / (1.0 + pow(458.0 * omhh, -0.708));
    double b2 = pow(0.395 * omhh, -0.0266);
    e->beta_c = 1.0 / (1.0 + b1 * (pow(e->f_c, b2) - 1.0));
}

/* Sound horizon (eq. 6), Silk scale (eq. 7) and the baryon coefficients (eqs. 14, 23, 24). */
static void eh_setup_baryons(struct linear_power_eh *e, double omhh, double obhh)
{
    double th4 = e->theta * e->theta * e->theta * e->theta;
    /* As in the authors' reference code (tf_fit.c), eq. 2 is read as 1 + z_eq, and R (eq. 5) is
     * evaluated at 1 + z: R_eq = R(1 + z_eq), R_d = R(1 + z_d). */
    double zp_eq = 2.50e4 * omhh / th4;              /* 1 + z_eq, eq. 2 */
    double zp_d = 1.0 + eh_z_drag(omhh, obhh);       /* 1 + z_d, eq. 4 */
    double R_eq = 31.5 * obhh / th4 * (1e3 / zp_eq); /* eq. 5 */
    double R_d = 31.5 * obhh / th4 * (1e3 / zp_d);
    e->s = 2.0 / (3.0 * e->k_eq) * sqrt(6.0 / R_eq) *
           log((sqrt(1.0 + R_d) + sqrt(R_d + R_eq)) / (1.0 + sqrt(R_eq)));
    e->k_silk = 1.6 * pow(obhh, 0.52) * pow(omhh, 0.73) * (1.0 + pow(10.4 * omhh, -0.95));
    e->alpha_b = 2.07 * e->k_eq * e->s * pow(1.0 + R_d, -0.75) * eh_G(zp_eq / zp_d);
    e->beta_b = 0.5 + e->f_b + (3.0 - 2.0 * e->f_b) * sqrt(pow(17.2 * omhh, 2.0) + 1.0);
    e->beta_node = 8.41 * pow(omhh, 0.435);
}

void linear_power_eh_setup(struct linear_power_eh *e, const struct cosmology *c)
{
    double omhh = c->Omega_m * c->h * c->h, obhh = c->Omega_b * c->h * c->h;
    *e = (struct linear_power_eh){.h = c->h,
                                  .f_b = c->Omega_b / c->Omega_m,
                                  .f_c = (c->Omega_m - c->Omega_b) / c->Omega_m,
                                  .theta = c->T_cmb / 2.7,
                                  .omega_m_h = c->Omega_m * c->h};
    e->k_eq = 7.46e-2 * omhh / (e->theta * e->theta); /* eq. 3 */
    eh_setup_cdm(e, omhh);
    if (obhh > 0)
        eh_setup_baryons(e, omhh, obhh);
    /* No-wiggle form: eqs. 26 and 31. */
    e->s_fit = 44.5 * log(9.83 / omhh) / sqrt(1.0 + 10.0 * pow(obhh, 0.75));
    e->alpha_gamma =
        1.0 - 0.328 * log(431.0 * omhh) * e->f_b + 0.38 * log(22.3 * omhh) * e->f_b * e->f_b;
}

/* The pressureless transfer function T~0(k, α_c, β_c) of eqs. 19-20, q = k / (13.41 k_eq). */
static double eh_T0(double q, double alpha_c, double beta_c)
{
    double L = log(EH_E + 1.8 * beta_c * q);
    double C = 14.2 / alpha_c + 386.0 / (1.0 + 69.9 * pow(q, 1.08));
    return L / (L + C * q * q);
}

/* sin(x)/x with its series near 0. */
static double eh_j0(double x)
{
    if (fabs(x) < 1e-4)
        return 1.0 - x * x / 6.0;
    return sin(x) / x;
}

/* Baryon part T_b (eqs. 21-22) at k [1/Mpc]. */
static double eh_T_baryon(const struct linear_power_eh *e, double k, double q)
{
    double ks = k * e->s;
    double s_tilde = e->s / cbrt(1.0 + pow(e->beta_node / ks, 3.0));
    double smooth = eh_T0(q, 1.0, 1.0) / (1.0 + (ks / 5.2) * (ks / 5.2));
    double peak = e->alpha_b / (1.0 + pow(e->beta_b / ks, 3.0)) * exp(-pow(k / e->k_silk, 1.4));
    return (smooth + peak) * eh_j0(k * s_tilde);
}

double linear_power_eh_transfer(const struct linear_power_eh *e, double k_h)
{
    double k = k_h * e->h;
    double q = k / (13.41 * e->k_eq); /* eq. 10 */
    if (e->f_b == 0)
        return eh_T0(q, 1.0, 1.0);
    double ks = k * e->s;
    double f = 1.0 / (1.0 + pow(ks / 5.4, 4.0)); /* eq. 18 */
    double T_c = f * eh_T0(q, 1.0, e->beta_c) + (1.0 - f) * eh_T0(q, e->alpha_c, e->beta_c);
    return e->f_b * eh_T_baryon(e, k, q) + e->f_c * T_c; /* eq. 16 */
}

double linear_power_eh_nowiggle(const struct linear_power_eh *e, double k_h)
{
    double ks = 0.43 * k_h * e->h * e->s_fit;
    double gamma_eff =
        e->omega_m_h * (e->alpha_gamma + (1.0 - e->alpha_gamma) / (1.0 + ks * ks * ks * ks));
    double q = k_h * e->theta * e->theta / gamma_eff; /* eq. 28 */
    double L0 = log(2.0 * EH_E + 1.8 * q);
    double C0 = 14.2 + 731.0 / (1.0 + 62.5 * q);
    return L0 / (L0 + C0 * q * q); /* eq. 29 */
}
