/*
 * quad (tier: kernels) — one-dimensional adaptive quadrature for the smooth integrals of the
 * cosmology modules (growth integral, σ8 and σ(R) of the linear power spectrum).
 *
 * A thin wrapper over GSL's adaptive Gauss–Kronrod rule (gsl_integration_qag, 61 points) that
 * owns its workspace for the duration of one call and never lets GSL's error handler abort the
 * process: a failure to reach the requested accuracy is returned to the caller with the best
 * estimate and its error, and the caller decides what it means. Local, reentrant apart from the
 * brief swap of GSL's (process-wide) error handler: call it outside OpenMP regions.
 */
#ifndef LEMUR_QUAD_H
#define LEMUR_QUAD_H

#include <stdbool.h>

/** Integrand: value at x with the caller's context. */
typedef double (*quad_fn)(double x, void *ctx);

/** Integrate fn over [lo, hi] to relative accuracy epsrel.
 *  @param fn       in: integrand (finite on [lo, hi])
 *  @param ctx      in: passed to fn unchanged
 *  @param lo, hi   in: limits (lo < hi)
 *  @param epsrel   in: requested relative accuracy (raised to GSL's floor 50 DBL_EPSILON
 *                  ~ 1.1e-14 when smaller)
 *  @param result   out: the estimate (always written)
 *  @param abserr   out: GSL's absolute error estimate (may be NULL)
 *  @return true when GSL reports convergence to epsrel. Local; allocates and frees a workspace. */
bool quad_integrate(quad_fn fn, void *ctx, double lo, double hi, double epsrel, double *result,
                    double *abserr);

#endif
