/*
 * bias_plan (tier: plans) — the distributed parts of the Lagrangian-bias network (Wu, Muñoz &
 * Eisenstein 2023; the network and its conventions in bias.h): the features of the linear field on
 * the Lagrangian grid's x-slabs, their covariance, the weight f of every site, and the halo field
 * and its spectra from weighted particles.
 *
 * Features. From δ_k of the linear field (its δ, or δ_k = −i k·Ψ_k from the Zel'dovich
 * displacement Ψ_k = i k δ_k / k²), per scale R with W = exp(−k²R²/2): φ_ij = IFFT[k_i k_j/k² W
 * δ_k] (k = 0 mode zero), δ_R = Σ_i φ_ii, L_R = IFFT[−k² W δ_k], G2_R = Σ_ij φ_ij² − δ_R². The FFTs
 * run in double, so the features do not depend on the rank count beyond a final float rounding.
 * Each feature is divided by its standard deviation over the box. Sums over the box (the standard
 * deviations, the covariance) are taken per x plane in double and added plane by plane in
 * plane order, the same for any number of ranks and threads.
 */
#ifndef LEMUR_BIAS_PLAN_H
#define LEMUR_BIAS_PLAN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "bias.h"
#include "ic.h"
#include "mesh.h"
#include "particles.h"
#include "power_plan.h"

/** The features of this rank's sites. */
struct bias_features {
    struct fft_layout layout;        /**< the Lagrangian grid (planes rx0 ... rx0 + rnx) */
    int n_scales, n_feat;            /**< n_R and 3 n_R */
    int64_t n_sites;                 /**< local sites rnx n² */
    float *feat;                     /**< [n_sites][n_feat], site (i − rx0) n² + j n + k */
    double std[3 * BIAS_MAX_SCALES]; /**< the standard deviation each feature was divided by */
};

/** Compute the normalised features of the linear field f (its delta when present, else from Ψ) at
 *  the scales of the model m. Collective on comm. Free with bias_features_destroy. */
struct bias_features *bias_features_create(const struct ic_fields *f, int n_scales,
                                           const double *scales, MPI_Comm comm);
/** Free bf (NULL-safe); sets *bf = NULL. Local. */
void bias_features_destroy(struct bias_features **bf);

/** Σ = (1/N) Σ_sites θ θᵀ (n_feat² doubles, row-major), the same on every rank. Collective. */
void bias_features_cov(const struct bias_features *bf, double *cov, MPI_Comm comm);

/** θ_in of every local site: [n_sites][m->n_in] floats (lm_malloc "bias.input"; the caller
 *  frees). Local. */
float *bias_features_input(const struct bias_features *bf, const struct bias_model *m);

/** f = 10^y of every local site ([n_sites] floats, lm_malloc "bias.f"; the caller frees). Local. */
float *bias_site_weights(const struct bias_features *bf, const struct bias_model *m);

struct power_plan;
/** δ_k of the halo field 1 + δ_h = (N_cells / N_part) Σ_cell f of the particles h (positions and
 *  weights f, migrated to power_plan_decomp(pp)) into mesh, a mesh of pp: NGP (ngp true; the
 *  cells summed in double, divided by the NGP window Π sinc(k_d H / 2) when compensate) or CIC
 *  (power_density with the plan's options, rescaled from its Σ f normalisation by sum_f / n_part).
 *  n_part is the global particle count, sum_f the global Σ f. Collective. */
void bias_halo_density(struct power_plan *pp, const struct particles *h, double n_part,
                       double sum_f, bool ngp, bool compensate, float *mesh);

#endif
