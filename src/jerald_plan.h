/*
 * jerald_plan (tier: plans) — the JERALD displacement layers and maps on distributed meshes (Rigo,
 * Trotta & Viel 2025, arXiv 2501.09168): CIC painting over x-slabs, the Green's-function filters in
 * k-space, readout of the displacement and particle migration between layers. The formulas and the
 * map descriptions are jerald.h.
 */
#ifndef LEMUR_JERALD_PLAN_H
#define LEMUR_JERALD_PLAN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "jerald.h"
#include "particles.h"
#include "power.h"

struct decomp;
struct fft_plan;

struct jerald_plan;

/** Plan layers and maps on an n_mesh^3 mesh of a periodic box of side box_size (Mpc/h).
 *  @param gradient_order  4 or 6
 *  @param power           options of the maps' spectra (interlacing is ignored: maps are meshes)
 *  @param comm            communicator of the particles (plans made here duplicate it)
 *  Creates the FFT plan (shared with the spectra), the 3-field painter, three mesh buffers and
 *  the k-space tables. Collective on comm. Free with jerald_plan_destroy. */
struct jerald_plan *jerald_plan_create(int n_mesh, double box_size, int gradient_order,
                                       const struct power_options *power, MPI_Comm comm);

/** Free the plan and everything it owns (NULL-safe); sets *plan = NULL. Collective. */
void jerald_plan_destroy(struct jerald_plan **plan);

/** Read the gradient out for at most n particles per collective call (default 4M: 48 MB of
 *  buffers); smaller saves memory, results are identical. Reallocates the buffers. Local (every
 *  rank must set the same n). */
void jerald_plan_set_readout_chunk(struct jerald_plan *plan, int64_t n);

/** Prepare the plan for layers on the particle store parts (migrated to jerald_plan_decomp;
 *  empty or not) with up to parts->cap particles on this rank: the painting order and, on several
 *  ranks, the migration plan of parts are made for that many and their memory is touched now, so
 *  that the first layer runs at the speed of the next ones. Optional: layers grow them as
 *  needed; the layers must then run on this store. Collective. */
void jerald_plan_reserve(struct jerald_plan *plan, struct particles *parts);

/** The slab decomposition the particles must be migrated to (migrate_particles) before a layer
 *  or a map runs; executions keep them migrated. Local. */
const struct decomp *jerald_plan_decomp(const struct jerald_plan *plan);

/** The plan's FFT (layout of every mesh buffer). Local. */
const struct fft_plan *jerald_plan_fft(const struct jerald_plan *plan);

/** Number of spectrum bins of the plan, and their lower edge, width and upper limit (h/Mpc).
 *  Local. */
int jerald_plan_n_bins(const struct jerald_plan *plan);
void jerald_plan_bins(const struct jerald_plan *plan, double *kmin, double *dk, double *kmax);

/** A zeroed mesh buffer of the plan's layout (lm_malloc; the caller frees with lm_free). Local. */
float *jerald_mesh_alloc(const struct jerald_plan *plan, const char *label);

/** Working mesh i (0 to 2) of the plan, free between executions: a scratch buffer of the plan's
 *  layout for passes of the caller's own (the reverse pass of jerald_fit_plan). Every execution
 *  overwrites it; the plan frees it. Local. */
float *jerald_plan_scratch(struct jerald_plan *plan, int i);

/** Apply layer `layer` of map m to the particles (migrated to jerald_plan_decomp): paint, source,
 *  FFT, potential, gradient, one-pass readout, displacement, migration. stellar is the stellar
 *  map mesh of an HI map (NULL otherwise). Collective. */
void jerald_layer_execute(struct jerald_plan *plan, const struct jerald_map *m, int layer,
                          struct particles *parts, const float *stellar);

/** Apply every layer of m to the particles and evaluate the final map.
 *  @param stellar  the real stellar map mesh feeding an HI map (NULL for other models)
 *  @return the plan mesh holding the map (real x-slabs of the FFT layout), valid until the next
 *          execution; copy it to keep it. Collective. */
float *jerald_map_execute(struct jerald_plan *plan, const struct jerald_map *m,
                          struct particles *parts, const float *stellar);

/** Global mean of a real mesh of the plan (double sums). Collective. */
double jerald_mesh_mean(const struct jerald_plan *plan, const float *mesh);

/** Power spectrum of δ = map/⟨map⟩ − 1 (δ_k = FFT(δ)/N^3, CIC compensation as the power options
 *  say). The map buffer is overwritten (transformed in place). out comes from
 *  power_spectrum_create(jerald_plan_n_bins(plan), 1).
 *  @return false (out untouched) when the mean of the map is not positive. Collective. */
bool jerald_map_spectrum(struct jerald_plan *plan, float *map, struct power_spectrum *out);

#endif
