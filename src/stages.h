/*
 * stages — the commands of `lemur <command> params.yml`. Each stage reads struct params, does its
 * work collectively on comm, writes its outputs under output.dir and returns 0 on success.
 * The command table (cli.c) maps names to these functions.
 */
#ifndef LEMUR_STAGES_H
#define LEMUR_STAGES_H

#include <mpi.h>

#include "cosmology.h"
#include "params.h"

/** Validate the parameters and print the effective configuration and the cosmology summary
 *  (D, f, H at every output redshift, σ8 of the normalised spectrum). Collective on comm. */
int stage_info(const struct params *p, MPI_Comm comm);

struct cosmology;
/** The flat LCDM parameters of the run. Local. */
struct cosmology stage_cosmology(const struct params *p);

struct snapshot_header;
/** The Gadget header of the run's particles at redshift z: a, z, box, cosmology, and the particle
 *  mass Omega_m rho_crit (box.size / box.n)^3 [1e10 Msun/h]. Local. */
struct snapshot_header stage_snapshot_header(const struct params *p, double z);

/** Print the cosmology summary only (used by info and at the start of run). Collective. */
void stage_cosmology_summary(const struct params *p, MPI_Comm comm);

/** `lemur emulate`: run the field-level emulator on the linear displacement field and write the
 *  particles (and optionally the fields) of every emulator.redshifts (src/emulate_stage.h). With
 *  an empty emulator.model the stage is skipped with a notice. Collective on comm. */
int stage_emulate(const struct params *p, MPI_Comm comm);

/** `lemur jerald`: read jerald.input (empty: <output.dir>/snapshot, the run's particles), apply
 *  the displacement layers of every map of jerald.maps, write the maps, their spectra and
 *  (optionally) the displaced particles under output.dir (jerald_run in jerald.h is the in-memory
 *  entry point). Collective on comm. */
int stage_jerald(const struct params *p, MPI_Comm comm);

/** `lemur power`: read power.input, paint it with CIC and write P(k), the redshift-space
 *  multipoles and the momentum spectrum under output.dir (stage_power.c). Collective on comm. */
int stage_power(const struct params *p, MPI_Comm comm);

/** `lemur fof`: friends-of-friends groups of fof.input (empty: the run's particles), written as a
 *  Gadget-4 fof_tab catalogue with the mass function (and Sheth & Tormen curve) and the halo
 *  spectra and bias under output.dir (stage_fof.c). Collective on comm. */
int stage_fof(const struct params *p, MPI_Comm comm);

/** `lemur compare`: P_AA, P_BB, P_AB, r(k), 1 - r^2 and T(k) of power.input (A) against
 *  power.reference (B), written under output.dir. Collective on comm. */
int stage_compare(const struct params *p, MPI_Comm comm);

#endif
