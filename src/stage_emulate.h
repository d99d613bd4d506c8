/*
 * emulate_stage (tier: driver) — the command `lemur emulate` (and the emulate stage of `lemur
 * run`).
 *
 * Takes the linear displacement field Ψ_lin (z = 0) of a cubic box.n^3 grid of spacing
 * 1000/512 Mpc/h — within `lemur run`, the x-slabs the ic stage left in the run (src/run.h),
 * redistributed once into the emulator's blocks and then freed; else the file ic.input when set,
 * or <output.dir>/ic_field.hdf5 of `lemur ic` (datasets psi_x, psi_y, psi_z, attribute BoxSize) —
 * runs the emulator over it with the distributed driver (src/emulate.h) for every redshift of
 * emulator.redshifts, hands the particles of the first redshift to the run when a later stage
 * reads them, and writes under output.dir:
 *   snapshot[.hdf5]            (particles.write_snapshot) the emulated particles of the FIRST
 *                              output redshift: x = q + Ψ_NL (periodic), v [km/s], ID =
 *                              (i n + j) n + k, Gadget-4-style in particles.n_files files; this is
 *                              the snapshot `lemur power` and `lemur jerald` read by default
 *   snapshot_z<z>[.hdf5]       the same for every further redshift
 *   emulated_field[_z<z>].hdf5 (emulator.output_fields) Ψ_NL as psi_x, psi_y, psi_z [Mpc/h] and v
 *                              as vel_x, vel_y, vel_z [km/s], float32 [n, n, n]
 * Every file is written under a temporary name and renamed when complete.
 *
 * Before anything is read or written the stage checks: the model file (the loader's message
 * passes through), the grid spacing box.size / box.n against 1000/512 Mpc/h, Ωm and the redshifts
 * against the training range (Ωm 0.1-0.5, z 0-3: a warning, or an error with
 * emulator.allow_extrapolation: false), the backend (gpu without CUDA or without a device is an
 * error; auto falls back to the CPU with a notice), the tile side (a multiple of 8) and the
 * memory of the tile (the engine's workspace query against emulator.memory_limit or the node's
 * available memory). With an empty emulator.model the stage is skipped with a notice saying how
 * to obtain and convert the authors' weights.
 */
#ifndef LEMUR_EMULATE_STAGE_H
#define LEMUR_EMULATE_STAGE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "emulate_plan.h"
#include "error.h"
#include "mpi/snapshot.h"
#include "params.h"
#include "particles.h"

/** Base names of the outputs under output.dir (see the overview). */
#define EMULATE_SNAPSHOT_NAME "snapshot"
#define EMULATE_FIELD_NAME    "emulated_field"

/** Training range of the emulator (Jamieson et al. 2024). */
#define EMULATE_OMEGA_M_MIN 0.1
#define EMULATE_OMEGA_M_MAX 0.5
#define EMULATE_Z_MIN       0.0
#define EMULATE_Z_MAX       3.0

/** The particles of the owned cells of block from results r (arrays over r->box, containing
 *  block): x = q + Ψ_NL wrapped into [0, n[a] spacing) per axis, v from r->vel (0 without
 *  velocities), ID = (i n1 + j) n2 + k. Returns a new store (particles_destroy). Local. */
struct particles *emulate_particles_create(const struct emulate_results *r,
                                           const struct box3 *block, const int n[3],
                                           double spacing);

/** Output path without extension for redshift index iz and base name kind: "<dir>/<kind>" for
 *  iz = 0, "<dir>/<kind>_z<z>" otherwise. Local. */
void emulate_output_path(const struct params *p, int iz, const char *kind, char *out, size_t cap);

/** Write the particles ps (this rank's share) of redshift index iz as the snapshot
 *  emulate_output_path(p, iz, EMULATE_SNAPSHOT_NAME) with header hdr. @return true when written
 *  (err agreed otherwise). Collective on comm. */
bool emulate_write_snapshot(const struct params *p, int iz, const struct particles *ps,
                            const struct snapshot_header *hdr, MPI_Comm comm, struct lm_err *err);

/** Write the field file of redshift index iz (Ψ_NL and v of every rank's block). @return true
 *  when written (err agreed otherwise). Collective on comm. */
bool emulate_write_fields(const struct params *p, int iz, const struct emulate_results *r,
                          const struct box3 *block, MPI_Comm comm, struct lm_err *err);

/** The training-range, spacing and tile checks of the parameters (no file is touched). Warnings
 *  go to the log; an error fills err. Local (rank 0 prints). */
bool emulate_check_params(const struct params *p, struct lm_err *err);

/** The backend of emulator.backend: gpu binds every rank to a device (src/mpi/gpu_bind.h) and
 *  fails with the reason when none can be used; auto falls back to the CPU with a notice; cpu is
 *  the CPU backend. @param device_bytes out: this rank's share of the device's free memory (0 on
 *  the CPU). Collective on comm; the outcome is the same on every rank. */
bool emulate_backend_select(const struct params *p, MPI_Comm comm,
                            const struct nn_backend **backend, size_t *device_bytes,
                            struct lm_err *err);

#endif
