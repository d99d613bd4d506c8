/*
 * gpu_bind (tier: mpi) — the MPI side of lemur's GPUs: one device per rank.
 *
 * Ranks on one node (MPI_COMM_TYPE_SHARED) take the devices they see in node-rank order: node rank
 * r uses visible device r mod n. The ranks of a node then compare the UUIDs of the devices they
 * chose, so the rule also holds when a launcher gives each rank its own CUDA_VISIBLE_DEVICES: two
 * ranks on one device is an error unless sharing is allowed.
 */
#ifndef LEMUR_GPU_BIND_H
#define LEMUR_GPU_BIND_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "gpu/gpu.h"

/** The device of this rank. */
struct gpu_binding {
    int node_rank, node_size; /**< this rank among the ranks of its node */
    int n_devices;            /**< devices visible to this rank */
    int device;               /**< the device now current (-1 when unbound) */
    int shared_with;          /**< lowest node rank using the same device, -1 when none */
};

/** Bind this rank to a device (see the overview) and make it current. Collective on comm.
 *  Returns true on every rank, or false on every rank with err holding the message of the lowest
 *  failing rank: no GPU (or a build without CUDA), or two ranks on one device when !allow_shared.
 */
bool gpu_bind(MPI_Comm comm, bool allow_shared, struct gpu_binding *b, struct lm_err *err);

#endif
