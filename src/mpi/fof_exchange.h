/*
 * fof_exchange (tier: mpi) — the communication of the distributed friends-of-friends search.
 *
 * Ghost copies. A plan holds a list of copies (local particle index, destination rank): the owner
 * sends positions and IDs of each copy once (fill), after which the destination holds the copies
 * as ghosts, ordered by source rank and, within a source, by the source's particle index. Per-copy
 * values then travel both ways over the same pattern: forward (owner -> ghost) and backward
 * (ghost -> owner, folded into the owner's values with a minimum), which is how group labels are
 * merged across ranks until no label changes.
 *
 * Records. fof_exchange_records sends fixed-size records to arbitrary ranks (the members of groups
 * that span ranks, to the group's home rank); fof_exchange_gather collects records on rank 0.
 *
 * Counts above INT_MAX records per rank pair are refused (CHECK). Every function is collective on
 * the plan's communicator (a duplicate of the one given) unless it says Local.
 */
#ifndef LEMUR_FOF_EXCHANGE_H
#define LEMUR_FOF_EXCHANGE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "particles.h"

struct fof_exchange;

/** Plan the copies (idx[k] -> dest[k], k < n_copies; dest never this rank). The lists are copied
 *  and sorted by (dest, idx). Collective on comm. Free with fof_exchange_destroy. */
struct fof_exchange *fof_exchange_create(MPI_Comm comm, int64_t n_copies, const int32_t *idx,
                                         const int32_t *dest);

/** Ghosts this rank receives / copies it sends. Local. */
int64_t fof_exchange_n_ghosts(const struct fof_exchange *x);
int64_t fof_exchange_n_copies(const struct fof_exchange *x);

/** Send positions and IDs of the copies of src; the ghosts are written into entries
 *  at .. at + n_ghosts - 1 of dst (PARTICLES_POS and PARTICLES_ID; capacity must suffice; n is not
 *  changed). src and dst may be the same store. Collective. */
void fof_exchange_fill(struct fof_exchange *x, const struct particles *src, struct particles *dst,
                       int64_t at);

/** Forward: copy k carries values[map[idx[k]]] (map NULL: values[idx[k]]); ghost g receives
 *  ghost_values[g]. Collective. */
void fof_exchange_forward(struct fof_exchange *x, const uint64_t *values, const int32_t *map,
                          uint64_t *ghost_values);

/** Backward: ghost g sends ghost_values[g] to its owner, which lowers values[map[idx[k]]] (map
 * NULL: values[idx[k]]) to it when smaller. Returns the number of values lowered here. Collective.
 */
int64_t fof_exchange_backward_min(struct fof_exchange *x, const uint64_t *ghost_values,
                                  uint64_t *values, const int32_t *map);

/** Free the plan (NULL-safe); sets *x = NULL. Collective. */
void fof_exchange_destroy(struct fof_exchange **x);

/** Send n records of rec_bytes bytes, record k to rank dest[k]; returns the records received
 *  (source rank order, then send order) in a new lm_malloc buffer (label "fof.records") the caller
 *  frees, and their number in *n_recv. Collective on comm. */
void *fof_exchange_records(MPI_Comm comm, const void *recs, int64_t n, size_t rec_bytes,
                           const int32_t *dest, int64_t *n_recv);

/** Gather every rank's n records of rec_bytes bytes on rank 0 (rank order); rank 0 gets a new
 *  lm_malloc buffer (label "fof.records") and *n_total, other ranks NULL and 0. Collective. */
void *fof_exchange_gather(MPI_Comm comm, const void *recs, int64_t n, size_t rec_bytes,
                          int64_t *n_total);

/** Sum of v over comm (int64). Collective. */
int64_t fof_exchange_sum(MPI_Comm comm, int64_t v);

#endif
