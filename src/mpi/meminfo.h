/*
 * meminfo (tier: mpi) — how much memory a rank may plan to use, for the size decisions of
 * memory-hungry stages (the emulator's tile size). The host figure is the node's available memory
 * (MemAvailable of /proc/meminfo, or sysconf's available pages where that file is missing) shared
 * evenly among the ranks of a communicator that run on the same node.
 */
#ifndef LEMUR_MEMINFO_H
#define LEMUR_MEMINFO_H

#include <mpi.h>
#include <stddef.h>

/** Bytes of physical memory the node has available now. Local. */
size_t meminfo_node_available(void);

/** Number of ranks of comm on this rank's node (shared-memory split). Collective on comm. */
int meminfo_node_ranks(MPI_Comm comm);

/** This rank's share of the node's available memory: meminfo_node_available() divided by
 *  meminfo_node_ranks(comm), the minimum over the ranks of comm (so that every rank plans with the
 *  same figure). Collective on comm. */
size_t meminfo_rank_share(MPI_Comm comm);

#endif
