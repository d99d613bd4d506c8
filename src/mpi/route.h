/*
 * route (tier: mpi) — send per-item values back to where the items came from.
 *
 * Reverse-mode passes through particle migration: before a migration every item is tagged with
 * its origin, route_origin(rank, index) (the rank in the top 24 bits, the index below); after it,
 * values computed in the new order (the cotangents of the positions) are sent back to their
 * origin ranks and stored at their origin indices. The values move unchanged (a permutation:
 * no sum, exact).
 */
#ifndef LEMUR_ROUTE_H
#define LEMUR_ROUTE_H

#include <mpi.h>
#include <stdint.h>

/** The origin code of item index on rank. Local. */
static inline uint64_t route_origin(int rank, int64_t index)
{
    return ((uint64_t)rank << 40) | (uint64_t)index;
}

/** Deliver val[c][i] (c < width <= 8 columns, i < n, origin code origin[i]) to out[c][index] on
 *  the origin rank (out columns hold n_out items there; every index must be delivered once).
 *  Allocates its send and receive buffers. Collective on comm. */
void route_back(MPI_Comm comm, int64_t n, const uint64_t *origin, int width,
                const float *const val[], int64_t n_out, float *const out[]);

#endif
