/*
 * jerald_adjoint (tier: kernels) — the local pieces of reverse-mode differentiation of the JERALD
 * layers and maps (Rigo, Trotta & Viel 2025, arXiv 2501.09168, sections II-III), and of their fit.
 *
 * The chain of one layer is paint → (ρ + 1e-8)^γ → FFT → s α G(k) (−i D(k_d)) → IFFT → readout →
 * x + ∇φ(x). Its adjoints:
 *   - paint and readout are adjoint to each other: the cotangent of a painted mesh is read out at
 *     the particles, that of a read-out value is painted (src/mpi/paint.h does both);
 *   - both depend on the positions through the CIC weights; the derivative of a readout with
 *     respect to the position uses the derivative of the CIC kernel, piecewise constant:
 *     ∂/∂x_e Σ_nodes W f = Σ_nodes (∂W/∂x_e) f, with ∂(1 − t)/∂x = −1/h, ∂t/∂x = 1/h
 *     (jerald_cic_readout_grad; a paint's derivative is the same readout of its cotangent);
 *   - the k-space filter g_d = IFFT[H_d FFT[s]] with H_d(−k) = H_d(k)* is a real convolution: its
 *     adjoint is the filter H_d* (both transforms unnormalised, 1/N³ inside H_d), and the
 *     derivative of the loss with respect to a parameter θ of H is Σ_k w_k ∂H/∂θ Re(P_k* A_k)
 *     over the half spectrum with the Hermitian weights w_k (1 on the kz = 0 and Nyquist planes,
 *     2 elsewhere);
 *   - the closed forms of ∂G/∂kh, ∂G/∂kl, ∂G/∂ν (jerald_green_grad) and of the depletion filter.
 * Adam (Kingma & Ba 2015) and the learning-rate schedule of JERALD are here too. Everything is
 * Local and pure.
 */
#ifndef LEMUR_JERALD_ADJOINT_H
#define LEMUR_JERALD_ADJOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cic.h"
#include "jerald.h"

/** G(k) and its derivatives with respect to kh, kl and ν for form g and term t:
 *  out = {G, ∂G/∂kh, ∂G/∂kl, ∂G/∂ν} (k = 0 taken as JERALD_K_ZERO, as jerald_green). Local. */
void jerald_green_grad(enum jerald_green g, const struct jerald_term *t, double k, double out[4]);

/** Depletion filter F(k) = exp(−k/kl − kh/k) k^ν + ξ and its derivatives:
 *  out = {F, ∂F/∂kh, ∂F/∂kl, ∂F/∂ν, ∂F/∂ξ}. Local. */
void jerald_depletion_filter_grad(const struct jerald_depletion *d, double k, double out[5]);

/** Derivative of a CIC readout with respect to the positions, contracted with per-point
 *  coefficients: out[e][i] = Σ_f coef[f][i] Σ_nodes ∂W_node(x_i)/∂x_e fields[f](node), the sums
 *  in double. fields are owned planes with filled ghosts (as cic_readout); coef[f] NULL counts as
 *  1 for every point. Threads take points.
 *  @return the number of points outside the slab (their out values are 0). Local. */
int64_t jerald_cic_readout_grad(const struct cic_slab *s, int n_fields,
                                const struct cic_field *fields, const float *const coef[],
                                const struct cic_points *pts, float *const out[3]);

/** The fit's learning rate at step t: η(t) = (η_end − η_0)(2 / (e^(−t/τ) + 1) − 1) + η_0
 *  (JERALD's smooth ramp from η_0 to η_end). Local. */
double jerald_fit_rate(double t, double eta0, double eta_end, double tau);

/** Adam moments of n parameters. */
struct jerald_adam {
    int n;
    int t;     /**< steps taken */
    double *m; /**< first moments (n) */
    double *v; /**< second moments (n) */
    double beta1, beta2, eps;
};

/** One Adam step of n parameters theta (in place) with gradient g and rate lr: m ← β1 m +
 *  (1 − β1) g, v ← β2 v + (1 − β2) g², θ ← θ − lr m̂ / (√v̂ + ε) with bias-corrected m̂, v̂.
 *  Local. */
void jerald_adam_step(struct jerald_adam *a, double *theta, const double *g, double lr);

/* ---- the trained parameters of a map ------------------------------------------------------ */

/** Walk the parameters of map m that a fit trains, in a fixed order: every term of the layers
 *  [first, n_layers) (α, γ, kh, kl, ν; HI layers then repel.*), the final map (stellar: w, μ, b;
 *  HI: w, μ, b, z_s) and the depletion (HI: all 8). With theta non-NULL, copy them into theta
 *  (pack) or from theta into m (unpack, which then clamps kh >= 0 and kl >= 1e-6 h/Mpc so that
 *  the Green's functions stay defined). @return their number. Local. */
int jerald_fit_pack(const struct jerald_map *m, int first, double *theta);
int jerald_fit_unpack(struct jerald_map *m, int first, const double *theta);

/** The parameter-file name of trained parameter i of m, relative to jerald.maps.<name>
 *  ("layers.1.kl", "layers.0.repel.alpha", "final.w", "depletion.xi"). Local. */
void jerald_fit_param_name(const struct jerald_map *m, int first, int i, char *out, size_t cap);

#endif
