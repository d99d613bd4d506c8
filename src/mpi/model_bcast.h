/*
 * model_bcast — the emulator model on every rank: rank 0 reads lemur's model file (serial HDF5,
 * src/model_file.h) and broadcasts the architecture and the weights, so that a run on thousands of
 * ranks opens the file once.
 */
#ifndef LEMUR_MODEL_BCAST_H
#define LEMUR_MODEL_BCAST_H

#include <mpi.h>

#include "error.h"
#include "model.h"

/** Broadcast *m from root: on the other ranks *m is replaced by a new model (model_destroy) equal
 *  to root's, weights included. Collective on comm. */
void model_bcast(struct model **m, int root, MPI_Comm comm);

/** Read the model file at path on rank 0 of comm and broadcast it.
 *  @return this rank's copy (free with model_destroy), or NULL on every rank with err set
 *  identically (the loader's message: file, group, attribute or tensor, expected and found
 *  shapes). Collective on comm. */
struct model *model_bcast_read(const char *path, MPI_Comm comm, struct lm_err *err);

#endif
