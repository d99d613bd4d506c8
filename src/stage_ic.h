/*
 * stage_ic (tier: driver) — the command `lemur ic` (N-GenIC-compatible ICs, Springel 2005; linear
 * P(k) of Eisenstein & Hu 1998) and the IC field file.
 *
 * ic  generates the linear fields of ic.* on box.n^3 x-slabs (or reads them from ic.input) and
 *     writes under output.dir:
 *       ic_field.hdf5      (ic.write_field) datasets psi_x, psi_y, psi_z: the Zel'dovich
 *                          displacement Ψ(q) at z = 0 [Mpc/h], and delta: δ_lin(q) at z = 0;
 *                          float32 [n, n, n], C order [x][y][z] with q = (i, j, k) L / n;
 *                          root attributes BoxSize [Mpc/h], Nmesh, Redshift (0), Seed, Amplitude,
 *                          Paired, Omega_m, sigma8, units, lemur_config (the effective
 *                          configuration)
 *       ic_snapshot.hdf5   (ic.write_particles) the LPT particles at ic.redshift (order
 *                          ic.lpt_order) as a Gadget-4-style snapshot in output.snapshot_files
 *                          files (ic_snapshot.<i>.hdf5 when more than one)
 *
 * Keys used: box.size, box.n, cosmology.*, ic.seed, ic.amplitude, ic.paired, ic.lpt_order,
 * ic.redshift, ic.write_field, ic.write_particles, ic.input, output.dir, output.snapshot_files.
 */
#ifndef LEMUR_STAGE_IC_H
#define LEMUR_STAGE_IC_H

#include <mpi.h>
#include <stdbool.h>

#include "box.h"
#include "error.h"
#include "params.h"

/** File names of the IC field and of the IC snapshot under output.dir (the field file's layout:
 *  src/mpi/field_file.h). */
#define IC_FIELD_FILE    "ic_field.hdf5"
#define IC_SNAPSHOT_FILE "ic_snapshot.hdf5"

struct run;
/** The ic stage (`lemur ic`) on the run r: makes the fields, writes the files ic.write_* ask for
 *  and hands the field and the LPT particles to the run when a later stage reads them (run.h).
 *  @return true on success; false with err agreed on every rank (bad keys, table range,
 *  unreadable input, unwritable output; no partial file is left). Collective on r->comm. */
bool stage_ic(struct run *r, struct lm_err *err);

#endif
