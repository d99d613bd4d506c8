/*
 * jerald_io (tier: mpi) — the outputs of the jerald stage.
 *
 * Maps: one HDF5 file written collectively through a temporary name (src/mpi/h5io.h), each map a
 * distributed float32 field (field_file_write_dataset, src/mpi/field_file.h):
 *   /                 attributes: lemur_config (effective YAML), input, box_size [Mpc/h], n_mesh,
 *                     n_part, gradient_order, redshift, time, and the model's constants (scale
 *                     1e-2, scale_hi 1e-3, rho_eps 1e-8, k_zero 1e-8, floor 1e-12)
 *   /maps/<name>      float32 [N][N][N], C order [x][y][z], node i at x = i L/N; attributes: model,
 *                     green, n_layers, gradient_order, mean, one array per layer parameter
 *                     (alpha, gamma, kh, kl, nu; HI maps also repel_alpha ... repel_nu), final_w,
 *                     final_mu, final_b, final_z_s (stellar, HI), depletion_* and stellar_map (HI)
 * Spectra: the spectra files of src/mpi/power_io.h (HDF5 and nbodykit/FastPM text), one pair per
 * map, written by rank 0.
 *
 * Every function is collective on the file's (or the given) communicator and returns the same
 * value on every rank; failures name the file and the object.
 */
#ifndef LEMUR_JERALD_IO_H
#define LEMUR_JERALD_IO_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "jerald.h"
#include "mpi/fft.h"
#include "mpi/power_io.h"
#include "power.h"

/** Run-wide metadata of the outputs. */
struct jerald_io_info {
    const char *config; /**< effective configuration (YAML text) */
    const char *input;  /**< where the particles came from */
    double box_size;    /**< Mpc/h */
    double redshift, time;
    int64_t n_part;
    int n_mesh, gradient_order;
};

/** The maps file being written (opaque). */
struct jerald_io_file;

/** Create the maps file path (through "<path>.tmp") with the root attributes of info.
 *  @return the open file, or NULL on every rank with err set (agreed). Collective on comm. */
struct jerald_io_file *jerald_io_create(const char *path, const struct jerald_io_info *info,
                                        MPI_Comm comm, struct lm_err *err);

/** Close *f and commit it under its final name when ok on every rank (else remove it); sets
 *  *f = NULL. @return true when committed (err set otherwise, agreed). Collective. */
bool jerald_io_close(struct jerald_io_file **f, bool ok, struct lm_err *err);

/** Close *f if open and remove its temporary file; sets *f = NULL; NULL-safe. Collective on the
 *  communicator the file was created on (comm; every rank calls it). */
void jerald_io_discard(struct jerald_io_file **f, MPI_Comm comm);

/** Write map m (the real x-slabs of layout l in mesh) as /maps/<name> with its parameters, its
 *  mean and the gradient order as attributes. @return true when every rank succeeded (err set
 *  otherwise, agreed). Collective on f->comm. */
bool jerald_io_write_map(struct jerald_io_file *f, const struct jerald_map *m,
                         const struct fft_layout *l, const float *mesh, double mean,
                         int gradient_order, struct lm_err *err);

/** Write the spectrum s of a map as base.hdf5 and base.txt (rank 0; meta describes it).
 *  @return false with err set (agreed). Collective on comm. */
bool jerald_io_write_spectrum(const char *base, const struct power_spectrum *s,
                              const struct power_meta *meta, MPI_Comm comm, struct lm_err *err);

#endif
