/*
 * ic (tier: kernels) — initial conditions: N-GenIC-compatible white noise, the linear density and
 * Zel'dovich / 2LPT displacement fields, and the Lagrangian particle set built from them.
 *
 * White noise (ic_noise.c). The generator behind N-GenIC, 2LPTic and the Quijote suite:
 *   - a master seed drives GSL's ranlxd1 to fill an n x n table of per-column seeds in N-GenIC's
 *     outward order (square shells of growing radius, visiting the four corners of the (kx, ky)
 *     plane in turn), so the seed of a column with small |kx|, |ky| does not depend on n;
 *   - column (ix, iy) re-seeds ranlxd1 with its table entry and draws, for kz = 0 ... n/2 − 1, a
 *     phase φ = 2π u1 and an amplitude variate u2 (redrawn while 0); |w| = sqrt(−ln u2)
 *     (Rayleigh) or 1 (fixed); w = |w| e^{iφ}; paired runs add π (an exact sign flip of w);
 *   - DC, the three Nyquist planes (ix, iy or kz = n/2) and the columns through them are zero;
 *   - on the kz = 0 plane only the columns 0 < ix < n/2 and (ix = 0, 0 < iy < n/2) use their own
 *     draw; every other mode there is the complex conjugate of its mirror −k, whose seed every rank
 *     can look up in the shared table, so the plane is Hermitian whatever the decomposition.
 * Each column depends only on the seed table, which makes the field bitwise identical for any
 * number of ranks, and the modes with |k_i| < n/2 of a smaller mesh reappear unchanged on a
 * larger one.
 *
 * Linear fields (ic_fields.c). With V = L^3 and δ(x) = Σ_k δ_k e^{ik·x} (lemur's FFT convention,
 * δ_k = FFT(δ)/n^3): δ_k = sqrt(P(k)/V) w_k (computed in double, rounded once to float; FFTs in
 * float); Ψ_k = (i k / k²) δ_k, i.e. Ψ = −∇φ with ∇²φ = δ, so that ∇·Ψ = −δ. Second order: with
 * S = Σ_{i<j} (φ_ii φ_jj − φ_ij²) and ∇²φ2 = S, the term psi2 = −(3/7) ∇φ2 at D = 1 gives
 * x = q + D Ψ + D² psi2 (D2 = −(3/7) D²); velocities v = a H f (D Ψ + 2 D² psi2) (f2 = 2 f for
 * D2 ∝ D²). All fields are at z = 0; the redshift enters through D, f and H only.
 *
 * Units: lengths Mpc/h, k in h/Mpc, P in (Mpc/h)^3, velocities km/s (peculiar).
 */
#ifndef LEMUR_IC_H
#define LEMUR_IC_H

#include <complex.h>
#include <stdbool.h>
#include <stdint.h>

#include "cosmology.h"
#include "error.h"
#include "linear_power.h"
#include "mesh.h"
#include "particles.h"

/** How the white-noise amplitudes are drawn. */
enum ic_amplitude {
    IC_AMPLITUDE_RAYLEIGH, /**< |w| = sqrt(−ln u): a Gaussian random field */
    IC_AMPLITUDE_FIXED,    /**< |w| = 1: "fixed" simulations (Angulo & Pontzen 2016) */
};

/** Largest master seed accepted (GSL ranlxd1 folds larger seeds, and 0 is its alias for 1). */
#define IC_SEED_MAX 2147483647L

/** The white-noise plan: the per-column seed table of one master seed and mesh size. */
struct ic_noise {
    int n;                       /**< mesh cells per side (even, >= 2) */
    long seed;                   /**< master seed, 1 ... IC_SEED_MAX */
    enum ic_amplitude amplitude; /**< Rayleigh or fixed amplitudes */
    bool paired;                 /**< add π to every phase */
    uint32_t *table;             /**< n*n column seeds, table[ix*n + iy] (owned) */
};

/** Check that n is a mesh side the white noise accepts (even, 2 ... 65536); err names box.n.
 *  Local. */
bool ic_noise_check_size(int n, struct lm_err *err);

/** Build the N-GenIC seed table for a master seed.
 *  @param n      mesh cells per side (even, 2 ... 65536)
 *  @param seed   master seed, 1 ... IC_SEED_MAX
 *  @param err    out: why the arguments are unusable (names the value and the accepted range)
 *  @return the plan (free with ic_noise_destroy), or NULL with err set. Local. */
struct ic_noise *ic_noise_create(int n, long seed, enum ic_amplitude amplitude, bool paired,
                                 struct lm_err *err);

/** Free the plan; NULL-safe; sets *nz = NULL. Local. */
void ic_noise_destroy(struct ic_noise **nz);

/** The white noise w of one (ix, iy) column for kz = 0 ... n/2 (n/2 + 1 values; the Nyquist value
 *  is 0). rng must come from ic_noise_rng_alloc. Local, thread-safe with one rng per thread. */
void ic_noise_column(const struct ic_noise *nz, void *rng, int ix, int iy, double complex *w);

/** A ranlxd1 generator for ic_noise_column (opaque; free with ic_noise_rng_free). Local. */
void *ic_noise_rng_alloc(void);
void ic_noise_rng_free(void *rng);

/** A real factor per mode (e.g. sqrt(P(k)/V)), applied in double before rounding to float:
 *  fn(ctx, ix, iy, kz) with global mesh indices. Must be thread-safe. */
struct ic_mode_scale {
    double (*fn)(const void *ctx, int ix, int iy, int kz);
    const void *ctx;
};

/** Fill the columns ix0 <= ix < ix1, iy0 <= iy < iy1 of a half-complex array (kz = 0 ... n/2):
 *  scale(ix, iy, kz)·w(ix, iy, kz) goes to out[(ix − ix0)·stride_x + (iy − iy0)·stride_y + kz],
 *  which covers both FFTW-MPI's [x][y][z] layout and its transposed [y][x][z] one.
 *  @param scale  per-mode factor, or NULL for the bare white noise
 *  OpenMP over columns. Local (any rank may fill any columns: the values never depend on who
 *  fills them). */
void ic_noise_fill(const struct ic_noise *nz, int ix0, int ix1, int iy0, int iy1,
                   float complex *out, int64_t stride_x, int64_t stride_y,
                   const struct ic_mode_scale *scale);

/** Parse "rayleigh" / "fixed". @return false for any other text. Local. */
bool ic_amplitude_parse(const char *name, enum ic_amplitude *out);

/* ---------------------------------------------------------------------------------------------- */
/* Linear fields (made by ic_plan.h) */

/** What the linear fields are made from. */
struct ic_setup {
    int n;                            /**< Lagrangian cells per side (even) */
    double box_size;                  /**< side [Mpc/h] */
    long seed;                        /**< master seed of the white noise */
    enum ic_amplitude amplitude;      /**< Rayleigh or fixed */
    bool paired;                      /**< add π to every phase */
    int lpt_order;                    /**< 1: Zel'dovich only; 2: also the 2LPT term */
    bool keep_delta;                  /**< also keep δ_lin(x) in real space */
    const struct linear_power *power; /**< P(k) at z = 0 (not owned) */
};

/** The fields on this rank's x-slab, at z = 0 (D = 1). Arrays use the FFT layout's padded rows:
 *  the value at global node (i, j, k) is at fft_real_index(&layout, i, j, k). */
struct ic_fields {
    struct fft_layout layout; /**< real x-slabs [rx0, rx0 + rnx) of n^3, rows of layout.row */
    float *delta;             /**< δ_lin(q), or NULL (keep_delta false) */
    float *psi[3];            /**< Zel'dovich displacement Ψ(q) [Mpc/h] */
    float *psi2[3];           /**< 2LPT term at D = 1, or NULL: x = q + D Ψ + D² psi2 */
};

/** The k range [kmin, kmax] (h/Mpc) the noise populates for n cells in a box of side L:
 *  kmin = 2π/L, kmax = 2π/L · sqrt(3) (n/2 − 1). Local. */
void ic_k_range(int n, double box_size, double *kmin, double *kmax);

/* ---------------------------------------------------------------------------------------------- */
/* Particles (ic_particles.c) */

/** Lagrangian particles of this rank's slab at redshift z: x = q + D Ψ (+ D² psi2 when present),
 *  wrapped into [0, L); v = a H(a) f(a) (D Ψ + 2 D² psi2) in km/s; ID = (i n + j) n + k, with
 *  q = (i, j, k) L / n. @return a new store (free with particles_destroy). Local. */
struct particles *ic_particles_create(const struct ic_fields *f, const struct cosmology *c,
                                      double box_size, double redshift);

#endif
