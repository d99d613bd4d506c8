/*
 * power (tier: kernels) — power spectra of particle sets on distributed meshes, following the
 * nbodykit / FastPM conventions (Hand et al. 2018; Feng et al. 2016).
 *
 *   δ = ρ/ρ̄ − 1 from CIC painting (weights w), δ_k = FFT(δ)/N^3 (N^3 = n0 n1 n2 nodes)
 *   P(k) = V ⟨|δ_k|^2⟩ over the modes of a bin, cross V ⟨Re δ1_k δ2_k*⟩
 *   compensation (default on): δ_k /= Π_d sinc^2(k_d h_d / 2); interlacing (optional): a second
 *   mesh painted with positions shifted by half a cell, combined as (δ1 + e^{-i k·h/2} δ2)/2
 *   bins: i dk <= |k| - kmin < (i+1) dk, i = 0 .. n_bins-1; dk default 2π/min_d L_d, kmin default
 *   0, kmax default the Nyquist frequency π min_d(n_d/L_d); n_bins = floor((kmax - kmin)/dk).
 *   Modes exactly on an edge belong to the upper bin (|k| is nudged by 1e-12 relative to absorb
 *   rounding). Per bin: mean |k| (the bin centre when the bin is empty), P, and the mode count with
 *   both k and -k (Hermitian weights of src/mpi/fft.h). The DC mode is excluded.
 *   multipoles P_ℓ = (2ℓ+1) V ⟨|δ_k|^2 L_ℓ(μ)⟩, ℓ = 0, 2, 4, μ = k_los/|k|
 *   momentum: p_d = (1+δ) v_d painted as Σ w v_d / n̄ (n̄ = Σw / N^3), P_p = V ⟨Σ_d |p_d,k|^2⟩
 *   shot noise V Σw^2/(Σw)^2 (V/N_part for unit weights), momentum V Σw^2|v|^2/(Σw)^2; reported,
 *   subtracted from auto spectra only on request.
 *
 * This header holds the options, bins and spectra and their local helpers; the distributed
 * measurement (painting, FFT, binning over the ranks) is power_plan.h.
 */
#ifndef LEMUR_POWER_H
#define LEMUR_POWER_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "particles.h"

/** Multipoles measured: ℓ = 0, 2, 4. */
#define POWER_N_ELL 3

/** What to measure and how. */
struct power_options {
    double dk;          /**< bin width (h/Mpc); <= 0: 2π / min_d L_d */
    double kmin;        /**< lower edge of the first bin (h/Mpc) */
    double kmax;        /**< upper limit (h/Mpc); <= 0: Nyquist π min_d(n_d / L_d) */
    bool compensate;    /**< divide δ_k by the CIC window */
    bool interlace;     /**< interlaced painting */
    int los;            /**< line-of-sight axis of μ for multipoles (0, 1, 2) */
    unsigned fft_flags; /**< enum fft_flags for the plan (0: estimate, transposed) */
};

/** Sums over the particles of a painted field (global), for normalisation and shot noise. */
struct power_sums {
    double n_part;   /**< number of particles */
    double sum_w;    /**< Σ w (= n_part for unit weights) */
    double sum_w2;   /**< Σ w^2 */
    double sum_w2v2; /**< Σ w^2 |v|^2 (momentum fields only) */
};

/** A binned spectrum (every rank holds the same values). */
struct power_spectrum {
    int n_bins;
    int n_ell;              /**< 1 (P only) or POWER_N_ELL (P_0, P_2, P_4) */
    double *k;              /**< mean |k| per bin */
    double *P[POWER_N_ELL]; /**< P[0] = P (or P_0), P[1] = P_2, P[2] = P_4 */
    double *n_modes;        /**< modes per bin, k and -k counted */
};

/** Check options against the mesh; err names the power.* key. Local. */
bool power_options_check(const struct power_options *o, const int n[3], const double box[3],
                         struct lm_err *err);

/** The bins of o on an n mesh in a box of sides box[]: lower edge *kmin, width *dk and upper
 *  limit *kmax (h/Mpc; defaults filled in). @return the number of bins. Local. */
int power_bins(const struct power_options *o, const int n[3], const double box[3], double *kmin,
               double *dk, double *kmax);

/** Allocate a spectrum of n_bins bins and n_ell multipoles (1 or POWER_N_ELL). Local. */
struct power_spectrum *power_spectrum_create(int n_bins, int n_ell);
/** Free a spectrum (NULL-safe); sets *s = NULL. Local. */
void power_spectrum_destroy(struct power_spectrum **s);

/** Shot noise V Σw^2/(Σw)^2 of a density field, or V Σw^2|v|^2/(Σw)^2 of a momentum field. */
double power_shot_noise(const struct power_sums *s, double volume, bool momentum);

/** Displace positions into redshift space along axis los: x_los += factor v_los (factor =
 *  (1+z)/H(z) in Mpc/h per km/s); positions are not wrapped (migration wraps them). Local. */
void power_rsd_displace(struct particles *parts, int los, double factor);

/** Number of particles of this rank with a coordinate outside [0, box_d). Local. */
int64_t power_count_outside(const struct particles *parts, const double box[3]);

#endif
