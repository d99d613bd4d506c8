/*
 * emunet (tier: kernels) — the field-level emulator on one tile: the styled V-Net of a struct model
 * turned into an NN graph (emunet_graph_create), its weights premodulated for a style
 * (emunet_premodulate), and a single-tile runner (struct emulator, struct emulator_tile_plan) that
 * the distributed driver (emulate_plan.h) and the tests use.
 *
 * Units (Jamieson et al. 2024): the tile input is the linear displacement Ψ_lin at z = 0 [Mpc/h],
 * three components [3][M1+96][M2+96][M3+96] (C order); the network sees x = Ψ_lin D / 6 and the
 * style s = [(Ωm - 0.3) 5, D - 1]; the outputs are Ψ_NL = 6 y [Mpc/h] over the M1 x M2 x M3 cells
 * of the tile's interior and, with velocities, dΨ_NL/dD = 6 dy/dD [Mpc/h per unit D], the total
 * derivative (through x, the style and the bypass; dx/dD = x / D). The velocity is
 *   v = emunet_velocity_factor(D, f, H, z) dΨ_NL/dD   [km/s]
 * with D, f = dlnD/dlna and H(z) [km/s per Mpc/h] from cosmology.h.
 *
 * Use:
 *   struct emulator *e = emulator_create(model, &err);
 *   emulator_set_style(e, omega_m, D);                   premodulation, once per (Ωm, D)
 *   struct emulator_tile_plan *p = emulator_tile_plan_create(e, shape, true, nn_backend_cpu(),
 * &err); void *ws = emulator_tile_workspace_alloc(p);         emulator_tile_plan_workspace(p) bytes
 *   emulator_tile_run(p, psi_in, psi_out, dpsi_dD, ws);  any number of tiles and styles
 *   emulator_tile_workspace_free(p, ws); emulator_tile_plan_destroy(&p); emulator_destroy(&e);
 * The model must outlive the emulator, the emulator its plans. Needs neither MPI nor HDF5.
 */
#ifndef LEMUR_EMUNET_H
#define LEMUR_EMUNET_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "model.h"
#include "nn.h"

/** The emulator's displacement normalisation [Mpc/h]: x = Ψ_lin D / 6, Ψ_NL = 6 y. */
#define EMUNET_PSI_UNIT 6.0

/** Build the graph of model m for an output tile of shape out[3] (multiples of 8 for the V-Net;
 *  input out + 2 m->halo per axis). Convolution slot i is model layer i. Returns NULL with err
 *  naming the tile shape and the node that does not fit. Local. Free with nn_graph_destroy. */
struct nn_graph *emunet_graph_create(const struct model *m, const int out[3], struct lm_err *err);

/** Style vector and its D-derivative: s = [(Ωm - 0.3) 5, D - 1], ds/dD = [0, 1]. Local. */
void emunet_style(double omega_m, double D, double s[2], double ds[2]);

/** Premodulate every layer of m for (Ωm, D) into w (nn_weights_create of any graph of m) and
 *  bump its generation. Local. */
void emunet_premodulate(const struct model *m, double omega_m, double D, struct nn_weights *w);

/** D f H(z) / (1 + z): multiplies dΨ_NL/dD [Mpc/h] into the velocity [km/s], H in km/s per
 *  Mpc/h. Local. */
double emunet_velocity_factor(double D, double f, double H, double z);

struct emulator;
struct emulator_tile_plan;

/** An emulator for model m (checked: architecture, style size 2, halo against the receptive
 *  field). Returns NULL with err on a model it cannot run. Local. Free with emulator_destroy. */
struct emulator *emulator_create(const struct model *m, struct lm_err *err);
/** Free (NULL-safe) and set *e = NULL. Local. */
void emulator_destroy(struct emulator **e);
/** Premodulate for (Ωm, D) (D > 0); the plans pick the new weights up at their next run. */
void emulator_set_style(struct emulator *e, double omega_m, double D);

/** Plan tiles of output shape out[3] on backend be, with or without the D-derivative. Returns
 *  NULL with err for a shape that is not a positive multiple of 8 or a plan the backend refuses.
 *  Local. Free with emulator_tile_plan_destroy. */
struct emulator_tile_plan *emulator_tile_plan_create(struct emulator *e, const int out[3],
                                                     bool velocities, const struct nn_backend *be,
                                                     struct lm_err *err);
/** Bytes of workspace a run needs (the activation peak, known before running). Local. */
size_t emulator_tile_plan_workspace(const struct emulator_tile_plan *p);
/** Bytes held by the plan itself (weights in the backend's layout). Local. */
size_t emulator_tile_plan_memory(const struct emulator_tile_plan *p);
/** Multiply-adds of one forward pass of the tile (the derivative adds about as many). Local. */
double emulator_tile_plan_macs(const struct emulator_tile_plan *p);
/** Allocate / free a workspace of emulator_tile_plan_workspace bytes in the backend's memory. */
void *emulator_tile_workspace_alloc(const struct emulator_tile_plan *p);
void emulator_tile_workspace_free(const struct emulator_tile_plan *p, void *ws);

/** Run one tile: psi_in [3][M1+96][M2+96][M3+96] Ψ_lin [Mpc/h] → psi_out [3][M1][M2][M3] Ψ_NL
 *  [Mpc/h] and, for a plan with velocities, dpsi_dD [3][M1][M2][M3] (may be NULL). No
 *  allocation. Local. */
void emulator_tile_run(struct emulator_tile_plan *p, const float *psi_in, float *psi_out,
                       float *dpsi_dD, void *workspace);
/** As emulator_tile_run on strided host views (shapes as above; dpsi_dD may be NULL). */
void emulator_tile_run_views(struct emulator_tile_plan *p, const struct nn_tensor *psi_in,
                             const struct nn_tensor *psi_out, const struct nn_tensor *dpsi_dD,
                             void *workspace);
/** Free (NULL-safe) and set *p = NULL. Local. */
void emulator_tile_plan_destroy(struct emulator_tile_plan **p);

#endif
