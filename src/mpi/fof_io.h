/*
 * fof_io (tier: mpi) — group catalogues in Gadget-4's `fof_tab` HDF5 layout (Springel et al. 2021)
 * and the halo mass function.
 *
 * Catalogue "<base>.hdf5" (one file) or "<base>.<i>.hdf5", i < n_files (groups split in catalogue
 * order into n_files nearly equal contiguous parts):
 *   /Header  attributes Ngroups_ThisFile, Ngroups_Total (uint64), Nids_ThisFile, Nids_Total
 *            (uint64: member IDs written), Nsubhalos_ThisFile, Nsubhalos_Total,
 *            Nsubgroups_ThisFile, Nsubgroups_Total (0: FoF groups only), NumFiles,
 *            BoxSize, Time, Redshift, Omega0, OmegaLambda, HubbleParam, LinkingLength (b),
 *            MinLength, FlagDoubleprecision (0)
 *   /Group   GroupLen (int32), GroupMass, GroupPos [n,3], GroupVel [n,3], GroupVelDisp,
 *            GroupRadius (float32), GroupFirstID (uint64), GroupLenType [n,6] (int32),
 *            GroupMassType [n,6] (float32); with members: MemberIDs (uint64, group by group) and
 *            MemberOffset (int64, the first entry of each group in this file's MemberIDs)
 *   /Subhalo (empty; Gadget-4 readers such as yt's look for it)
 *   root attribute "lemur_config": the effective configuration.
 * Mass function "<base>.hdf5" with datasets log10M, M, M_mean, count, dndlnM, dndlnM_error,
 * dndlnM_ST and attributes, and "<base>.txt" with one row per bin.
 * Files are written by rank 0 under temporary names and renamed when all are complete; the
 * outcome is agreed on every rank.
 */
#ifndef LEMUR_FOF_IO_H
#define LEMUR_FOF_IO_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "fof.h"
#include "fof.h"

/** Header values of a catalogue. */
struct fof_io_header {
    double box, time, redshift, omega0, omega_lambda, hubble_param;
    double link_b;        /**< linking length in units of the mean interparticle spacing */
    double link;          /**< linking length [Mpc/h] */
    long min_length;      /**< smallest group kept */
    double particle_mass; /**< [1e10 Msun/h] */
    int64_t n_particles;  /**< particles searched */
    const char *input;    /**< the snapshot searched */
    const char *config;   /**< effective configuration (NULL: none) */
};

/** Write the catalogue c (complete on rank 0) as n_files files named from base ("dir/fof_tab"),
 *  with member IDs when c has them. Returns true on success, the same on every rank (err: the
 *  failure). Collective on comm. */
bool fof_io_write(const char *base, const struct fof_catalogue *c, const struct fof_io_header *h,
                  int n_files, MPI_Comm comm, struct lm_err *err);

/** Write the mass function (held on rank 0) as "<base>.hdf5" and "<base>.txt". Collective on comm
 *  (rank 0 writes); the outcome is agreed. */
bool fof_io_write_mass_function(const char *base, const struct fof_mass_function *mf,
                                const struct fof_io_header *h, MPI_Comm comm, struct lm_err *err);

#endif
