/*
 * snapshot (tier: mpi) — Gadget-4-style HDF5 particle snapshots, written and read in parallel.
 *
 * Layout (readable by Pylians readgadget, yt and plain h5py):
 *   /Header      attributes NumPart_ThisFile (uint64[6]), NumPart_Total (uint64[6]),
 *                NumPart_Total_HighWord (uint32[6]), MassTable (double[6], 1e10 Msun/h), Time (a),
 *                Redshift, BoxSize, NumFilesPerSnapshot, Omega0, OmegaLambda, HubbleParam,
 *                Flag_DoublePrecision (0)
 *   /Parameters  HubbleParam, Omega0, OmegaLambda, BoxSize, UnitLength_in_cm,
 *                UnitVelocity_in_cm_per_s, UnitMass_in_g (Gadget-4 names)
 *   /PartType1/Coordinates  float32 [n, 3], Mpc/h (attribute "units")
 *   /PartType1/Velocities   float32 [n, 3], v / sqrt(a) in km/s (Gadget's convention)
 *   /PartType1/ParticleIDs  uint64 [n]
 *   root attribute "lemur_config": the effective configuration given by the caller.
 * Multi-file snapshots ("base.0.hdf5" ... "base.<m-1>.hdf5") split the particles, in global order,
 * into m nearly equal contiguous parts. Files are written under a temporary name (".tmp" appended)
 * and renamed only when every file is complete; a failed write removes them.
 *
 * Reading accepts lemur's own files and Gadget-2/3/4 HDF5 snapshots in one or several files (the
 * Quijote layout: kpc/h positions, uint32 IDs, v/sqrt(a) velocities). The length unit is, in this
 * order: the caller's (snapshot_read_opts.length_unit), /Parameters or /Header UnitLength_in_cm,
 * or else kpc/h when BoxSize > 20000 (no Mpc/h box is that large) and Mpc/h otherwise. In memory
 * positions are Mpc/h and velocities peculiar km/s. Particles are spread evenly over the ranks in
 * file order (rank r of P gets the global range [N r / P, N (r+1) / P)); the caller migrates them.
 *
 * Path conventions. Writing "dir/snap.hdf5" (or "dir/snap") gives dir/snap.hdf5 for one file and
 * dir/snap.<i>.hdf5 for several. Reading accepts "dir/snap.hdf5", "dir/snap.0.hdf5" (any file of
 * a multi-file set) or the base "dir/snap" (then dir/snap.hdf5 or dir/snap.0.hdf5).
 *
 * Errors (missing or corrupt file, missing dataset, wrong shape or type, inconsistent counts) are
 * reported through struct lm_err naming the file, the dataset and what was expected; every
 * function agrees on the outcome across the ranks of comm and returns the same value everywhere.
 * HDF5's own error printing is silenced.
 */
#ifndef LEMUR_SNAPSHOT_H
#define LEMUR_SNAPSHOT_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "particles.h"

/** Snapshot metadata, in lemur's units (lengths Mpc/h whatever the file uses). */
struct snapshot_header {
    uint64_t n_total[6]; /**< particles per type over all files (HighWord folded in) */
    double mass[6];      /**< MassTable [1e10 Msun/h] */
    double time;         /**< scale factor a */
    double redshift;     /**< z */
    double box_size;     /**< box side [Mpc/h] */
    int n_files;         /**< NumFilesPerSnapshot */
    double omega0, omega_lambda, hubble_param;
    double length_unit; /**< reading: Mpc/h per file length unit (1, or 1e-3 for kpc/h) */
};

/** Options of snapshot_write. Zero-initialised options mean: one file, particle type 1. */
struct snapshot_write_opts {
    int n_files;        /**< files per snapshot (0 or 1: one file) */
    int part_type;      /**< Gadget particle type of the particles (0: 1, dark matter) */
    const char *config; /**< effective configuration echoed into each file (NULL: none) */
};

/** Options of snapshot_read. Zero-initialised options mean: type 1, all fields, detect units. */
struct snapshot_read_opts {
    int part_type;      /**< particle type to read (0: 1) */
    unsigned fields;    /**< subset of PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID (0: all) */
    double length_unit; /**< Mpc/h per file length unit (0: detect as described above) */
};

/** Write the particles p of every rank as one snapshot (global order: rank order, then local
 *  order). hdr gives time, redshift, box_size, cosmology and mass table; n_total and n_files are
 *  filled in here. p must hold PARTICLES_POS, PARTICLES_VEL and PARTICLES_ID.
 *  @param path  output name (see path conventions); written through temporary names
 *  @param err   out: the failure, identical on every rank
 *  @return true on success, the same on every rank. Collective on comm. */
bool snapshot_write(const char *path, const struct snapshot_header *hdr, const struct particles *p,
                    const struct snapshot_write_opts *opts, MPI_Comm comm, struct lm_err *err);

/** Read a snapshot, this rank's even share of the particles of one type.
 *  @param opts  type, fields and unit (NULL: defaults)
 *  @param hdr   out: the header (lengths converted to Mpc/h)
 *  @param out   out: a new particle store with the requested fields (caller frees with
 *               particles_destroy); NULL on failure
 *  @return true on success, the same on every rank. Collective on comm. */
bool snapshot_read(const char *path, const struct snapshot_read_opts *opts, MPI_Comm comm,
                   struct snapshot_header *hdr, struct particles **out, struct lm_err *err);

/** Read and check the header of a snapshot (every file's counts, as snapshot_read does) without
 *  its particles: rank 0 reads, every rank receives hdr.
 *  @return true on success, the same on every rank (err names the file). Collective on comm. */
bool snapshot_read_header(const char *path, MPI_Comm comm, struct snapshot_header *hdr,
                          struct lm_err *err);

#endif
