/*
 * net_file (tier: mpi) — lemur's HDF5 file of a generic network (net.h): its description and its
 * weights, written by tools/convert-weights (from a PyTorch state_dict and a description) or by
 * net_file_write. A run loads it with net_file_load: rank 0 reads the file and broadcasts the
 * description text and the weights; every rank parses the same text. Layout, format version 1:
 *
 *   /                      attributes
 *       format             "lemur-network"
 *       format_version     1
 *       network            the description (YAML text, as in net.h)
 *       source             free text: what the weights were converted from
 *   /weights/<node>        one group per conv3d node, float32 datasets
 *       weight             [channels, cin, k, k, k]   (PyTorch's Conv3d layout)
 *       bias               [channels]
 *
 * Reading parses the description (its messages name the node), checks every tensor's presence
 * and shape (naming the tensor and both shapes), refuses NaN or infinite weights (naming the
 * tensor and the index of the first) and groups under /weights that no conv3d node has.
 */
#ifndef LEMUR_NET_FILE_H
#define LEMUR_NET_FILE_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "net.h"

/** Version of the layout this lemur reads and writes. */
#define NET_FILE_VERSION 1

/** Read the network file at path on every rank of comm (rank 0 reads, then broadcasts). Returns
 *  this rank's copy (free with net_destroy), or NULL on every rank with the same err. Collective
 *  on comm. */
struct net *net_file_load(const char *path, MPI_Comm comm, struct lm_err *err);
/** Read the network file at path in this process alone. Returns the net with its weights, or
 *  NULL with err naming the file and the offending attribute, node or tensor. Local. */
struct net *net_file_read(const char *path, struct lm_err *err);
/** Write n (its text and weights) to path through a temporary name renamed when complete.
 *  Returns false with err on failure. Local. */
bool net_file_write(const struct net *n, const char *path, const char *source, struct lm_err *err);

#endif
