/*
 * jerald_fit_io (tier: mpi) — the inputs and outputs of `lemur jerald-fit`.
 *
 * Targets: any float dataset of shape [N][N][N] (C order, [x][y][z], node i at x = i L/N) in any
 * HDF5 file, read collectively into the x-slabs of the fit's FFT layout.
 * Loss history: jerald_fit_history.txt (one block per map: step, learning rate, the three region
 * losses and every parameter) and jerald_fit_history.hdf5 (a group per map: datasets step, lr,
 * loss_train, loss_valid, loss_test, parameters and gradient [steps][n_params] (the gradient of
 * the training loss); attributes parameter_names,
 * best_step, stopped), written by rank 0.
 * Maps: jerald_fit_maps.hdf5 with fitted/<map> and target/<map> (float32 [N][N][N]) and the root
 * attributes lemur_config, box_size, n_mesh.
 * Parameters: a YAML text file written by rank 0.
 * Every file goes through a temporary name and is renamed when complete; every function is
 * collective on comm and returns the same value on every rank.
 */
#ifndef LEMUR_JERALD_FIT_IO_H
#define LEMUR_JERALD_FIT_IO_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "mesh.h"

/** The optimisation record of one map. */
struct jerald_fit_history {
    char map[64];
    int n_steps, cap_steps, n_params;
    double *lr;          /**< [cap_steps] */
    double *loss;        /**< [cap_steps][3]: training, validation, test */
    double *theta;       /**< [cap_steps][n_params] */
    double *grad;        /**< [cap_steps][n_params]: d loss_train / d theta */
    char (*names)[96];   /**< [n_params] names relative to jerald.maps.<map> */
    int best_step;       /**< step of the lowest validation loss (its parameters are kept) */
    const char *stopped; /**< why the fit stopped */
};

/** Read dataset of the HDF5 file path, shape [N][N][N] with N = l->n[0], into the real x-slabs of
 *  layout l (mesh). key names the parameter for messages (e.g. "jerald.fit.targets.dm").
 *  @return false with err naming key, file, dataset, the expected (jerald.n_mesh) and the found
 *  shape. Collective on comm, agreed. */
bool jerald_fit_io_read_target(const char *key, const char *path, const char *dataset,
                               const struct fft_layout *l, float *mesh, MPI_Comm comm,
                               struct lm_err *err);

/** Write the histories of n maps as base.txt and base.hdf5 (rank 0). Collective, agreed. */
bool jerald_fit_io_write_history(const char *base, const struct jerald_fit_history *h, int n,
                                 MPI_Comm comm, struct lm_err *err);

/** Write text (rank 0's) to path through a temporary name. Collective, agreed. */
bool jerald_fit_io_write_text(const char *path, const char *text, MPI_Comm comm,
                              struct lm_err *err);

/** Write the fitted maps and their targets (n of each, real meshes of layout l) into path.
 *  Collective, agreed. */
bool jerald_fit_io_write_maps(const char *path, const char *config, double box_size,
                              const struct fft_layout *l, int n, char (*names)[64],
                              float *const fitted[], float *const target[], MPI_Comm comm,
                              struct lm_err *err);

#endif
