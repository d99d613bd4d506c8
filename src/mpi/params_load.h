/*
 * params_load (tier: mpi) — the parameter file of a run, read once and shared: rank 0 parses the
 * file, applies command-line overrides and validates; every rank then builds the same struct params
 * from the broadcast effective YAML, so all ranks agree on every value and default.
 */
#ifndef LEMUR_PARAMS_LOAD_H
#define LEMUR_PARAMS_LOAD_H

#include <mpi.h>
#include <stdbool.h>

#include "params.h"

/** Load path with overrides ("key.path=value") into p. Any error is printed once by rank 0 and
 *  every rank exits with status 1. Collective on comm. Free p with params_free. */
void params_load(MPI_Comm comm, const char *path, int n_overrides, char *const *overrides,
                 struct params *p);

/** Create output.dir (and parents) and write <output.dir>/used_parameters.yml through a
 *  temporary name. Errors (not writable, ...) are agreed and fatal. Collective on comm. */
void params_write_used(MPI_Comm comm, const struct params *p);

/** Create directory path and its parents (rank 0), agreeing on failure. Collective on comm. */
void params_make_dir(MPI_Comm comm, const char *path);

#endif
