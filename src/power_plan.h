/*
 * power_plan (tier: plans) — power spectra of particle sets on distributed meshes: CIC painting
 * over x-slabs, the FFT, compensation and interlacing, and binning (conventions in power.h).
 *
 * A struct power_plan owns the FFT plan, the painter and the bins of one mesh; meshes are buffers
 * of power_mesh_alloc. The measuring functions are collective; sums are taken in double and
 * reduced over the ranks, so every rank holds the same spectrum.
 */
#ifndef LEMUR_POWER_PLAN_H
#define LEMUR_POWER_PLAN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "particles.h"
#include "power.h"

struct decomp;
struct fft_plan;

struct power_plan;

/** Create a plan for meshes of n[0] x n[1] x n[2] nodes in a box of sides box[] (Mpc/h): the FFT
 *  plan, the painter (up to 3 fields) and, with interlacing, a scratch mesh. Collective on comm.
 *  Free with power_plan_destroy. */
struct power_plan *power_plan_create(const int n[3], const double box[3],
                                     const struct power_options *o, MPI_Comm comm);
/** Free the plan (NULL-safe); sets *p = NULL. Collective. */
void power_plan_destroy(struct power_plan **p);

/** The slab decomposition particles must be migrated to before painting. Local. */
const struct decomp *power_plan_decomp(const struct power_plan *p);
/** The plan's FFT. Local. */
const struct fft_plan *power_plan_fft(const struct power_plan *p);
/** Number of bins and their lower edge and width (h/Mpc). Local. */
int power_plan_n_bins(const struct power_plan *p);
double power_plan_kmin(const struct power_plan *p);
double power_plan_dk(const struct power_plan *p);
/** Upper limit kmax actually used (h/Mpc). Local. */
double power_plan_kmax(const struct power_plan *p);
/** Box volume L0 L1 L2 ((Mpc/h)^3). Local. */
double power_plan_volume(const struct power_plan *p);

/** A zeroed mesh buffer of the plan (real and complex views); the caller frees it with lm_free.
 *  Local. */
float *power_mesh_alloc(const struct power_plan *p, const char *label);

/** δ_k of the particles (migrated to power_plan_decomp; weights p->w if present): paint, FFT,
 *  normalise, interlace and compensate. out is a mesh of the plan. sums (may be NULL) receives
 *  the global particle sums. Collective. */
void power_density(struct power_plan *p, const struct particles *parts, float *out,
                   struct power_sums *sums);

/** p_d,k, d = 0, 1, 2, of the particles' momentum field (needs PARTICLES_VEL; migrated as for
 *  power_density). Collective. */
void power_momentum(struct power_plan *p, const struct particles *parts, float *const out[3],
                    struct power_sums *sums);

/** power_momentum of the particles the last power_density on p painted, painted in that call's
 *  order without a new sort (with interlacing the shifted copies are still sorted once). The
 *  meshes and sums are bitwise those of power_momentum.
 *  The caller guarantees that parts is the very set given to that power_density, unchanged since
 *  (no move, migration, resize or position update in between: the painting order would no longer
 *  match and the mesh would be wrong without notice). Calling it after anything other than
 *  power_density on p, or with another count or other position arrays, is fatal. Collective. */
void power_momentum_same_points(struct power_plan *p, const struct particles *parts,
                                float *const out[3], struct power_sums *sums);

/** Spectrum V ⟨Σ_c Re a_c b_c*⟩ of n_comp pairs of k-space meshes (a == b for auto spectra),
 *  with the multipoles ℓ = 2, 4 when n_ell == POWER_N_ELL. out must come from
 *  power_spectrum_create(power_plan_n_bins(p), n_ell). Collective. */
void power_measure(struct power_plan *p, int n_comp, float *const a[], float *const b[],
                   struct power_spectrum *out);

#endif
