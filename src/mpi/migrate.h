/*
 * migrate (tier: mpi) — particle migration to the owners of their positions.
 *
 * Migration. After migrate_execute every particle lives on the rank owning the cell of its
 * (wrapped) position in a decomposition (decomp_owner_pos), with all its fields and the exact
 * multiset of IDs kept. The plan wraps positions into [0, box_size), finds each destination in
 * O(1), exchanges counts (MPI_Alltoall) and reserves room in the store; execution packs leavers
 * per destination (column-major blocks), sends them with nonblocking point-to-point (messages
 * above 1 GiB are split), compacts the stayers in place (stable) and appends arrivals in rank
 * order; the stayers before the first leaver are not touched. The store must not change between
 * create (or update) and execute; a plan kept across steps is re-planned with migrate_plan_update,
 * which reuses its buffers. Finding the destinations and wrapping run on the OpenMP threads.
 *
 * The plan duplicates the decomposition's communicator; execution is collective on it and
 * allocates nothing. It is timed and its bytes counted (src/timer.h) under "migrate".
 */
#ifndef LEMUR_MIGRATE_H
#define LEMUR_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "mpi/decomp.h"
#include "particles.h"

/** Opaque migration plan. */
struct migrate_plan;

/** Plan the migration of p to the owners of its positions in d (box of side box_size). Wraps p's
 *  positions into [0, box_size) in place and reserves capacity in p for the arrivals. p must hold
 *  PARTICLES_POS; every field p holds travels. Collective on d->comm. */
struct migrate_plan *migrate_plan_create(const struct decomp *d, struct particles *p,
                                         double box_size);

/** Re-plan an existing plan for the current state of p (positions moved, count changed),
 *  keeping its buffers when they are large enough: the same as destroying it and creating it
 *  again, without the allocations. Same decomposition communicator and fields as at creation.
 *  Collective on d->comm. */
void migrate_plan_update(struct migrate_plan *plan, const struct decomp *d, struct particles *p,
                         double box_size);

/** Make room in the plan for the destinations of n particles (4 bytes each, with 1/8 headroom)
 *  and touch that memory now on the OpenMP threads, so that the first scan of that many runs at
 *  the speed of the next ones. Optional: scans grow the plan as needed. Local. */
void migrate_plan_reserve(struct migrate_plan *plan, int64_t n);

/** Move the particles: on return p holds exactly the particles whose position this rank owns.
 *  p must be the store given at creation, unchanged since. Collective. */
void migrate_execute(struct migrate_plan *plan, struct particles *p);

/** Particles leaving this rank / arriving here / staying (from the plan). Local. */
int64_t migrate_plan_n_send(const struct migrate_plan *plan);
int64_t migrate_plan_n_recv(const struct migrate_plan *plan);
int64_t migrate_plan_n_keep(const struct migrate_plan *plan);

/** Free the plan; sets *plan = NULL; NULL-safe. Collective on the plan's communicator. */
void migrate_plan_destroy(struct migrate_plan **plan);

/** Convenience: create, execute and destroy a migration plan. Collective on d->comm. */
void migrate_particles(const struct decomp *d, struct particles *p, double box_size);

#endif
