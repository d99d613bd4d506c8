/*
 * bias_io (tier: mpi) — the files of the Lagrangian-bias network (Wu, Muñoz & Eisenstein 2023):
 * its model file, and the halo catalogue a fit reads.
 *
 * Model file (HDF5; tools/convert-weights writes the same layout from PyTorch):
 *   root attributes  format = "lemur-bias-mlp", n_scales, width (64), n_hidden (5), lemur_config
 *   scales        [n_R]                  smoothing scales R [Mpc/h] (float64)
 *   orth/V        [3 n_R][2 n_R + 1]     kept eigenvectors (float64; bias.h)
 *   orth/Lambda   [2 n_R + 1]            their eigenvalues (float64, > 0)
 *   orth/kept     [2 n_R + 1]            index of each in its block by decreasing eigenvalue
 * (int32) mlp/weight_<l> [out][in], mlp/bias_<l> [out], l = 0 ... 5 (float32; nn.Linear's layout)
 *   loss          [epochs]               mean batch loss per epoch of the fit (when fitted)
 * Reading checks every shape and refuses NaN or infinity, naming the file and the dataset.
 *
 * Halo catalogue: Gadget-4's fof_tab layout (lemur's own, src/mpi/fof_io.h, or any other):
 * Header/BoxSize, Header/NumFiles, Group/GroupPos [n][3] and Group/GroupMass [n]
 * [1e10 Msun/h]; a catalogue in several files is named by its first, "<base>.0.hdf5".
 */
#ifndef LEMUR_BIAS_IO_H
#define LEMUR_BIAS_IO_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "bias.h"
#include "error.h"

/** Read a model file: rank 0 reads and checks, every rank receives the model.
 *  @return the model (free with bias_model_destroy) or NULL on every rank with err naming the
 *  file and dataset. Collective on comm. */
struct bias_model *bias_io_read_model(const char *path, MPI_Comm comm, struct lm_err *err);

/** Write m as a model file (rank 0, through "<path>.tmp" renamed when complete); config is
 *  stored as the lemur_config attribute (NULL: ""). @return the agreed outcome. Collective. */
bool bias_io_write_model(const char *path, const struct bias_model *m, const char *config,
                         MPI_Comm comm, struct lm_err *err);

/** Write n one-dimensional double datasets names[i] of sizes[i] values (rank 0's arrays) into a
 *  new file path (rank 0, through "<path>.tmp"). @return the agreed outcome. Collective. */
bool bias_io_write_arrays(const char *path, int n, const char *const *names, const int64_t *sizes,
                          const double *const *data, MPI_Comm comm, struct lm_err *err);

/** Haloes of a catalogue. */
struct bias_haloes {
    int64_t n;    /**< haloes kept */
    float *pos;   /**< [n][3] positions [Mpc/h] */
    double *mass; /**< [n] masses [1e10 Msun/h] */
    double box;   /**< Header/BoxSize */
};

/** Read the haloes of mass >= min_mass of the catalogue path (rank 0 reads, every rank receives
 *  them). @return false with err (naming the file and dataset) agreed. Collective on comm. Free
 *  with bias_haloes_free. */
bool bias_io_read_haloes(const char *path, double min_mass, MPI_Comm comm, struct bias_haloes *h,
                         struct lm_err *err);
/** Free the arrays of h (NULL-safe). Local. */
void bias_haloes_free(struct bias_haloes *h);

#endif
