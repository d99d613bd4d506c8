/*
 * power_io (tier: mpi) — lemur's spectra files: a table of binned spectra (k, N_modes, one dataset
 * per column) with its metadata as HDF5 attributes, and the same columns as text in the nbodykit /
 * FastPM layout (Hand et al. 2018; Feng et al. 2016). One rank writes each file; callers agree on
 * the outcome over their communicator.
 */
#ifndef LEMUR_POWER_IO_H
#define LEMUR_POWER_IO_H

#include <stdbool.h>

#include "error.h"
#include "power.h"

/** Most columns of an output table. */
#define POWER_MAX_COLUMNS 10

/** A named column of an output table: n_rows rows of n_bins values (n_rows = POWER_N_ELL for
 *  multipoles: an [n_rows][n_bins] HDF5 dataset, and one text column per row). */
struct power_column {
    const char *name;                /**< HDF5 dataset name */
    int n_rows;                      /**< 1 or POWER_N_ELL */
    const double *rows[POWER_N_ELL]; /**< the values */
    const char *labels[POWER_N_ELL]; /**< text column labels (NULL: name) */
};

/** Metadata stored with every output (HDF5 attributes; text trailer). */
struct power_meta {
    double box[3];     /**< box sides (Mpc/h) */
    int n_mesh[3];     /**< mesh nodes per axis */
    double n_part[2];  /**< particles of field A and of field B (B = A for auto spectra) */
    double shot_noise; /**< V Σw^2/(Σw)^2 of field A (0 for cross-only tables) */
    double redshift;   /**< z of the snapshot */
    bool compensated;  /**< δ_k divided by the CIC window */
    bool interlaced;   /**< interlaced painting */
    bool shotnoise_subtracted;
    int los;               /**< line-of-sight axis of the multipoles (-1: none) */
    double kmin, dk, kmax; /**< binning (h/Mpc) */
    const char *input;     /**< field A's file */
    const char *reference; /**< field B's file (NULL: none) */
    const char *config;    /**< the effective configuration (YAML text; NULL: none) */
};

/** What an output file holds: bins, columns and metadata (pointers are borrowed). */
struct power_table {
    int n_bins;
    const double *k;       /**< mean |k| per bin */
    const double *n_modes; /**< modes per bin (k and -k counted) */
    int n_cols;
    struct power_column cols[POWER_MAX_COLUMNS];
    struct power_meta meta;
};

/** Write t as HDF5: datasets k, N_modes and one per column, attributes from t->meta. Written to
 *  "<path>.tmp" and renamed when complete. Local (one rank writes). */
bool power_io_write_hdf5(const char *path, const struct power_table *t, struct lm_err *err);

/** Write columns sel[0..n_sel-1] of t as text in the nbodykit / FastPM layout: a header
 *  "# k <first> N <others...>", one row per bin, then "# metadata 7" with volume, shotnoise, N1,
 *  N2, Lz, Lx, Ly. Written to "<path>.tmp" and renamed. Local (one rank writes). */
bool power_io_write_text(const char *path, const struct power_table *t, int n_sel, const int *sel,
                         struct lm_err *err);

#endif
