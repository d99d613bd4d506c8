/*
 * jerald_fit_plan (tier: plans) — the loss of a JERALD map against a target mesh and its gradient
 * with respect to every parameter of the map, by reverse-mode differentiation through the final
 * transformation and the layers (Rigo, Trotta & Viel 2025, arXiv 2501.09168, sections II-III).
 *
 * Loss. With F the map and T the target on the same N^3 mesh, e = Õ_s (F − T), where the optional
 * smoothing operator Õ_s(k) = 1 + (k / 1 h/Mpc)^(−n) acts in Fourier space (the k = 0 mode kept
 * as it is), the loss of a region r is L_r = (1/N_r) Σ_{cells of r} |e|^p, p = 1 or 2. Regions of
 * the N^3 mesh (global cell indices): training ix < N/2 (a (0.5N) x N x N slab), test the cube
 * ix >= N − t, iy < t, iz < t with t = round(0.43 N), validation the rest. The gradient is that
 * of the training loss.
 *
 * Gradient. The forward pass is jerald_layer_execute (src/jerald_plan.h) for every layer; before
 * each trained layer the positions are kept and every particle is tagged with its origin, so that
 * after the layer's migration the cotangents can be routed back (src/mpi/route.h). The reverse
 * pass of a layer repaints its input, recomputes the source, its transform and the three gradient
 * meshes, paints the position cotangents (adjoint of the readout), transforms them, forms the
 * parameter derivatives in k space (jerald_adjoint.h) and the source cotangent, and reads out the
 * position derivatives of the readout and of the paint (src/mpi/readout_grad.h). Per trained
 * layer and evaluation, forward pass included: 3 paints (the density twice, the 3 cotangent
 * fields once), 5 forward and 7 inverse FFTs (HI layers: 7 and 8), 1 readout of 3 fields and 1
 * readout derivative of 4 fields.
 *
 * Meshes are float (lemur's convention); every sum (k-space parameter sums, region losses, the
 * readout derivatives) is double and runs in an order fixed by the layout (threads take rows or
 * planes, partial sums added in order), so results do not depend on the thread count, and depend
 * on the rank count through float roundings only.
 */
#ifndef LEMUR_JERALD_FIT_PLAN_H
#define LEMUR_JERALD_FIT_PLAN_H

#include <mpi.h>
#include <stdbool.h>

#include "jerald.h"
#include "jerald_plan.h"
#include "particles.h"
#include "power.h"

/** Regions of the map. */
enum jerald_region {
    JERALD_REGION_TRAIN,
    JERALD_REGION_VALID,
    JERALD_REGION_TEST,
    JERALD_N_REGIONS
};

/** Loss options. */
struct jerald_loss {
    int p;              /**< 1 (L1) or 2 (L2) */
    double smoothing_n; /**< n of Õ_s(k) = 1 + k^−n; 0: no smoothing */
};

struct jerald_fit_plan;

/** Plan losses and gradients on an n_mesh^3 mesh of a periodic box of side box_size (Mpc/h):
 *  makes the forward plan (jerald_plan_create with the same arguments; its 3 meshes serve the
 *  reverse pass too), a 3-field painter, the readout derivative of 4 fields and 7 mesh buffers (8
 *  with HI maps). Collective on comm. Free
 *  with jerald_fit_plan_destroy. */
struct jerald_fit_plan *jerald_fit_plan_create(int n_mesh, double box_size, int gradient_order,
                                               const struct power_options *power, MPI_Comm comm);

/** Free the plan (NULL-safe); sets *plan = NULL. Collective. */
void jerald_fit_plan_destroy(struct jerald_fit_plan **plan);

/** The forward plan inside (its decomposition, FFT, spectra). Local. */
struct jerald_plan *jerald_fit_plan_forward(struct jerald_fit_plan *plan);

/** Set the loss and the target: target is a real mesh of the plan's FFT layout (copied). Local. */
void jerald_fit_set_target(struct jerald_fit_plan *plan, const float *target,
                           const struct jerald_loss *loss);

/** Number of mesh cells of each region (global). Local. */
void jerald_fit_region_sizes(const struct jerald_fit_plan *plan, int64_t out[JERALD_N_REGIONS]);

/** Evaluate map m on particles x0 (migrated to jerald_plan_decomp; not modified) and its losses.
 *  @param first    first trained layer: layers before it are applied but not differentiated
 *  @param stellar  the stellar map feeding an HI map (real mesh of the layout), else NULL
 *  @param loss     out: the loss of each region
 *  @param grad     out (NULL: losses only): zeroed, then d L_train / d parameter in the fields of
 *                  the parameters jerald_fit_pack trains (others stay 0)
 *  @return the map (a plan mesh valid until the next call). Collective. */
const float *jerald_fit_evaluate(struct jerald_fit_plan *plan, const struct jerald_map *m,
                                 int first, const struct particles *x0, const float *stellar,
                                 double loss[JERALD_N_REGIONS], struct jerald_map *grad);

#endif
