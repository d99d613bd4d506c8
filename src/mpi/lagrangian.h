/*
 * lagrangian (tier: mpi) — values that live on the Lagrangian grid's x-slabs (one record per site
 * q = (i, j, k), the layout of the linear field) fetched for particles by their IDs
 * ID = (i n + j) n + k, wherever the particles are: the requests go to the rank owning plane i and
 * the records come back (two all-to-all exchanges).
 */
#ifndef LEMUR_LAGRANGIAN_H
#define LEMUR_LAGRANGIAN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "mesh.h"

/** out[i][0 .. k) = vals[site of ids[i]][0 .. k) for the n local IDs.
 *  @param l     the layout of the grid (global n[0] = n[1] = n[2]; this rank's planes rx0, rnx)
 *  @param k     floats per site
 *  @param vals  this rank's sites, [(i - rx0) n² + j n + kk][k] (compact rows)
 *  @return false with err agreed when an ID lies outside the grid (it names the ID).
 *  Collective on comm. */
bool lagrangian_fetch(const struct fft_layout *l, int k, const float *vals, int64_t n,
                      const uint64_t *ids, float *out, MPI_Comm comm, struct lm_err *err);

#endif
