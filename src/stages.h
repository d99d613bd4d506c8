/*
 * stages (tier: driver) — the commands of `lemur <command> params.yml`. The stages (ic, emulate,
 * power, jerald) work on a struct run (src/run.h, whose table lists them); info and compare on the
 * parameters. Each returns true on success, or false with err agreed on every rank, and writes its
 * outputs under output.dir.
 */
#ifndef LEMUR_STAGES_H
#define LEMUR_STAGES_H

#include <mpi.h>

#include "cosmology.h"
#include "error.h"
#include "params.h"

struct run;

/** Print the effective configuration and the cosmology summary (D, f, H at every output
 *  redshift, σ8 of the normalised spectrum), then run run_check and check the BoxSize of every
 *  named input file (ic.input, power.input, power.reference, jerald.input, fof.input).
 *  Collective on comm. */
bool stage_info(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** Check the BoxSize of the input file path, named by key (NULL: the run's own file), against
 *  box.size (params_check_box): rank 0 reads only the header of a snapshot (field false) or the
 *  attributes of a field file (field true). @return false with err agreed. Collective on comm. */
bool stage_input_check(const struct params *p, const char *key, const char *path, bool field,
                       MPI_Comm comm, struct lm_err *err);

/* The checks each stage makes before it reads or writes anything (the check of its entry in the
 * stage table, run by `lemur info` and at the start of `lemur run` for every stage of
 * run.stages). Each returns false with err agreed on every rank. Collective on comm. */

/** ic: the white-noise mesh (box.n even), ic.amplitude, and with ic.input the LPT order and the
 *  file's BoxSize. */
bool stage_ic_check(const struct params *p, MPI_Comm comm, struct lm_err *err);
/** emulate (with emulator.model set): grid spacing, training range, tile and backend. */
bool stage_emulate_check(const struct params *p, MPI_Comm comm, struct lm_err *err);
/** power: the mesh (power.n_mesh or box.n) and the binning options of power.*. */
bool stage_power_check(const struct params *p, MPI_Comm comm, struct lm_err *err);
/** jerald: the maps of jerald.maps (completeness, values, mesh). */
bool stage_jerald_check(const struct params *p, MPI_Comm comm, struct lm_err *err);

struct cosmology;
/** The flat LCDM parameters of the run. Local. */
struct cosmology stage_cosmology(const struct params *p);

struct snapshot_header;
/** The Gadget header of the run's particles at redshift z: a, z, box, cosmology, and the particle
 *  mass Omega_m rho_crit (box.size / box.n)^3 [1e10 Msun/h]. Local. */
struct snapshot_header stage_snapshot_header(const struct params *p, double z);

/** Print the cosmology summary only (used by info and at the start of run). Collective. */
void stage_cosmology_summary(const struct params *p, MPI_Comm comm);

/** `lemur emulate`: run the field-level emulator on the linear displacement field (the run's, or
 *  its file) and write the particles (and optionally the fields) of every emulator.redshifts
 *  (src/stage_emulate.h); the particles of the first redshift go to the run when a later stage
 *  reads them. With an empty emulator.model the stage is skipped with a notice. Collective. */
bool stage_emulate(struct run *r, struct lm_err *err);

/** `lemur jerald`: read jerald.input (empty: the run's particles, borrowed, or their snapshot),
 *  apply the displacement layers of every map of jerald.maps, write the maps, their spectra and
 *  (optionally) the displaced particles under output.dir (jerald_run in jerald.h is the in-memory
 *  entry point). Collective. */
bool stage_jerald(struct run *r, struct lm_err *err);

struct particles;
struct snapshot_header;
/** The particles of jerald and jerald-fit: the run's (borrowed) when jerald.input is empty and the
 *  run holds them, else those of jerald.input (or the run's snapshot file) with `fields`, its
 *  BoxSize checked; *owned says which (the caller destroys owned ones). who prefixes the messages,
 *  timer names the read. NULL with err agreed on a failure. Collective on run->comm. */
struct particles *stage_jerald_particles(struct run *run, unsigned fields, const char *who,
                                         const char *timer, struct snapshot_header *hdr,
                                         bool *owned, struct lm_err *err);

/** The spectrum options of jerald's and jerald-fit's map spectra: power.dk, kmin, kmax and
 *  compensate, line of sight z. Local. */
struct power_options stage_jerald_power_options(const struct params *p);

/** `lemur power`: read power.input (empty: the run's particles, borrowed, or their snapshot),
 *  paint it with CIC and write P(k), the redshift-space multipoles and the momentum spectrum
 *  under output.dir (stage_power.c). Collective. */
bool stage_power(struct run *r, struct lm_err *err);

/** The snapshot of the run's particles: the emulated particles (first redshift) when
 *  emulator.model is set, else the IC particles. Local. */
void stage_particles_path(const struct params *p, char *out, size_t cap);

/** `lemur fof`: friends-of-friends groups of fof.input (empty: the run's particles), written as a
 *  Gadget-4 fof_tab catalogue with the mass function (and Sheth & Tormen curve) and the halo
 *  spectra and bias under output.dir (stage_fof.c). Collective on comm. */
bool stage_fof(struct run *r, struct lm_err *err);

/** superres: the super-resolution generator (Kodi Ramanah et al. 2020) of superres.model on the
 *  HR linear density and the LR evolved density; writes superres.hdf5, superres_power.* and
 *  superres_cross.* under output.dir (stage_superres.c). Skipped, saying so, without
 * superres.model. Collective. */
bool stage_superres(struct run *r, struct lm_err *err);
/** superres: superres.lr_input set, superres.tile, the network file and its inputs, box.n a
 *  multiple of the LR scale times 4, the LR input's box. */
bool stage_superres_check(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** `lemur compare`: P_AA, P_BB, P_AB, r(k), 1 - r^2 and T(k) of power.input (A) against
 *  power.reference (B), written under output.dir. Collective on comm. */
bool stage_compare(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** jerald-fit: the maps of jerald.maps and the targets of jerald.fit.targets (each names a map;
 *  bases fitted before and with the same Green's function). */
bool stage_jerald_fit_check(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** `lemur jerald-fit`: read jerald.input (empty: the run's particles, borrowed, or their
 *  snapshot), fit the parameters of every map with a target in jerald.fit.targets (dark matter,
 *  then stellar, then HI) and write under output.dir: jerald_fit.yml (a parameter file for
 *  `lemur jerald`), jerald_fit_history.{txt,hdf5}, jerald_fit_maps.hdf5 (fitted and target maps)
 *  and the spectra of both (stage_jerald_fit.c). Collective. */
bool stage_jerald_fit(struct run *r, struct lm_err *err);

struct particles;
struct snapshot_header;
/** Fit the maps of p (jerald.fit.*) on the particles (positions; migrated to the fit's slabs,
 *  not displaced) and write the outputs under output.dir. @return true on success; false with
 *  err agreed. Collective on comm. */
bool jerald_fit_run(const struct params *p, struct particles *parts,
                    const struct snapshot_header *hdr, MPI_Comm comm, struct lm_err *err);

/** Apply every map of p->cfg (jerald.*) to the particles and write the outputs under output.dir:
 *  jerald_maps.hdf5 (maps, spectra, parameters as attributes), jerald_<map>_pk.txt and, with
 *  jerald.write_particles, jerald_<map>_particles.hdf5.
 *  @param parts  the input particles (positions; IDs and velocities to write particles); they
 *                are migrated to the plan's slabs (reordered and wrapped), not displaced
 *  @param hdr    box size, redshift and cosmology of the particles
 *  @return true on success; false with err agreed on every rank. Collective on comm. */
bool jerald_run(const struct params *p, struct particles *parts, const struct snapshot_header *hdr,
                MPI_Comm comm, struct lm_err *err);

#endif
