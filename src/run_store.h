/*
 * run_store — particle sets handed from one stage of `lemur run` to the next in memory.
 *
 * A stage that writes particles as a snapshot (or would write them) also puts them here under the
 * snapshot's path; a later stage that would read that path takes them from here instead, so a
 * chained run never reads back what it has just written. Standalone commands (`lemur power`, ...)
 * find the store empty and read the file. Each rank keeps its own share; every rank puts and
 * gets the same paths, so the choice between memory and disk is the same everywhere.
 */
#ifndef LEMUR_RUN_STORE_H
#define LEMUR_RUN_STORE_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "mpi/snapshot.h"
#include "params.h"
#include "particles.h"

/** Keep a copy of this rank's particles parts (fields present in parts) under path, with the
 *  header a snapshot of them carries. Replaces what path held. Local (call on every rank). */
void run_store_put(const char *path, const struct particles *parts,
                   const struct snapshot_header *hdr);
/** Keep parts itself under path (the store takes ownership; *parts becomes NULL). Local. */
void run_store_adopt(const char *path, struct particles **parts, const struct snapshot_header *hdr);
/** True when path is held. Local. */
bool run_store_has(const char *path);
/** Free everything held (the end of a run). Local. */
void run_store_clear(void);

/** The snapshot of "the run's particles", read by power and jerald when their input is empty:
 *  the emulated particles (first redshift) when emulator.model is set, else the IC particles. */
void run_particles_path(const struct params *p, char *out, size_t cap);

/** The particles of path with at least the fields of opts (all when opts->fields is 0): a copy
 *  from the store when held, else read from the file with snapshot_read. Returns the same on
 *  every rank; on failure *out is NULL and err says why. Collective on comm. */
bool stage_read_particles(const char *path, const struct snapshot_read_opts *opts, MPI_Comm comm,
                          struct snapshot_header *hdr, struct particles **out, struct lm_err *err);

#endif
