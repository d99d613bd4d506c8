/*
 * cosmology (tier: kernels) — background expansion and linear growth of a flat ΛCDM universe
 * without radiation.
 *
 *   E(a) = H(a)/H0 = sqrt(Ωm a^-3 + 1 − Ωm),  H in h km/s/Mpc (= 100 E), a = 1/(1+z).
 *
 * The linear growth factor D(a) (normalised to D(1) = 1) and the growth rate f = dlnD/dlna come in
 * two independent forms that the tests hold against each other:
 *   - closed form (the default, used everywhere): with x = (1 − Ωm) a^3 / Ωm,
 *       D(a) = a 2F1(1, 1/3; 11/6; −x) / 2F1(1, 1/3; 11/6; −x(1)),
 *       f(a) = 1 − (6/11) x 2F1(2, 4/3; 17/6; −x) / 2F1(1, 1/3; 11/6; −x);
 *     2F1 is summed after a Pfaff transformation (and, for large x, the 1 − z connection formula),
 *     so it converges for every a > 0 and Ωm in (0, 1]; Ωm = 1 gives D = a, f = 1 exactly.
 *   - integral form: D ∝ E(a) ∫_0^a da' / (a' E(a'))^3, f from its logarithmic derivative.
 *
 * Units are lemur's: lengths in Mpc/h, velocities in km/s, so a H(a) f(a) in km/s per Mpc/h
 * turns a linear displacement into a peculiar velocity. Every function here is Local and pure.
 */
#ifndef LEMUR_COSMOLOGY_H
#define LEMUR_COSMOLOGY_H

#include <stdbool.h>

#include "error.h"

/** Flat ΛCDM parameters (Ω_Λ = 1 − Ω_m; radiation neglected in the expansion). */
struct cosmology {
    double Omega_m; /**< total matter density today, in (0, 1] */
    double Omega_b; /**< baryon density today, in [0, Omega_m) (enters the transfer function) */
    double h;       /**< H0 / (100 km/s/Mpc) */
    double n_s;     /**< primordial spectral index */
    double sigma8;  /**< rms linear density contrast in 8 Mpc/h top-hat spheres at z = 0 */
    double T_cmb;   /**< CMB temperature today [K] (enters the transfer function) */
};

struct params;
/** The flat ΛCDM parameters of the keys cosmology.* of a run. Local. */
struct cosmology cosmo_from_params(const struct params *p);

/** The Quijote fiducial cosmology (Ωm 0.3175, Ωb 0.049, h 0.6711, ns 0.9624, σ8 0.834,
 *  T_cmb 2.7255 K). Local. */
struct cosmology cosmo_quijote_fiducial(void);

/** Check that c is a valid flat ΛCDM cosmology (ranges as documented on the fields).
 *  @param c    in: parameters
 *  @param err  out: the first offending parameter, its value and the expected range
 *  @return true when valid. Local. */
bool cosmo_check(const struct cosmology *c, struct lm_err *err);

/** E(a) = H(a)/H0. @param a scale factor (> 0). Local. */
double cosmo_E(const struct cosmology *c, double a);

/** Hubble rate at redshift z in h km/s/Mpc (= 100 E(1/(1+z))). Local. */
double cosmo_H(const struct cosmology *c, double z);

/** Linear growth factor D(a), D(1) = 1, from the closed hypergeometric form. @param a > 0. Local.
 */
double cosmo_growth_D(const struct cosmology *c, double a);

/** Linear growth rate f(a) = dlnD/dlna from the closed hypergeometric form. Local. */
double cosmo_growth_f(const struct cosmology *c, double a);

/** dD/dz = −a f(a) D(a) at a = 1/(1+z). Local. */
double cosmo_growth_dDdz(const struct cosmology *c, double z);

/** D(a), D(1) = 1, from the growth integral E(a) ∫_0^a da'/(a'E)^3 (adaptive quadrature).
 *  An independent cross-check of cosmo_growth_D; slower. Local. */
double cosmo_growth_D_integral(const struct cosmology *c, double a);

/** f(a) = dlnD/dlna from the growth integral (analytic derivative of the integral form). Local. */
double cosmo_growth_f_integral(const struct cosmology *c, double a);

/** a H(a) f(a) in km/s per Mpc/h: linear peculiar velocity = this × linear displacement [Mpc/h].
 *  Local. */
double cosmo_velocity_factor(const struct cosmology *c, double a);

/** Gauss hypergeometric function 2F1(p, q; r; −x) for x >= 0, with p, q > 0, r > max(p, q) and
 *  q − p not an integer (true of both functions the growth needs); relative accuracy ~1e-15.
 *  Exposed for the tests. Local. */
double cosmo_hyp2f1_neg(double p, double q, double r, double x);

#endif
