/*
 * gpu_bind — the MPI side of lemur's GPUs: one device per rank, and NCCL communicators.
 *
 * Ranks on one node (MPI_COMM_TYPE_SHARED) take the devices they see in node-rank order: node rank
 * r uses visible device r mod n. The ranks of a node then compare the UUIDs of the devices they
 * chose, so the rule also holds when a launcher gives each rank its own CUDA_VISIBLE_DEVICES: two
 * ranks on one device is an error unless sharing is allowed. NCCL communicators are created over a
 * communicator from a unique id made by rank 0 and broadcast with MPI.
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

/** Create an NCCL communicator over comm, each rank on its current device (after gpu_bind).
 *  Collective on comm. Returns NULL on every rank with err filled when any rank fails. Free with
 *  gpu_nccl_destroy (collective). */
struct gpu_nccl *gpu_nccl_comm_create(MPI_Comm comm, struct lm_err *err);

#endif
