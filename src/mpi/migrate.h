/*
 * migrate — particle migration to the owners of their positions, and CIC ghosts.
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
 * Ghosts. CIC node i sits at x = i h; a particle in cell (i, j, k) (decomp_cell_index) deposits on
 * the 8 nodes (i + a, j + b, k + c), a, b, c in {0, 1}, wrapped periodically. The particle's own
 * rank owns node (i, j, k); each other rank owning one of the other 7 nodes receives one ghost
 * copy (once, however many of its nodes it owns). Destinations are found locally in O(1) per
 * particle: only when i+1, j+1 or k+1 leaves this rank's box are the owner tables consulted.
 *   ghost_plan_fill         send copies of the particles' fields to the ghost ranks (the plan
 *                           owns the ghost store, ghost_plan_ghosts)
 *   ghost_plan_fill_values  send any per-particle values (values[i] -> ghost_values[g])
 *   ghost_plan_reduce       the adjoint: add per-ghost values (e.g. partial CIC readouts computed
 *                           on the ghost ranks) back onto the original particles
 * Ghosts arrive ordered by source rank, then by the source's particle index.
 *
 * Both plans duplicate the decomposition's communicator; executions are collective on it and
 * allocate nothing. They are timed and their bytes counted (src/timer.h) under "migrate",
 * "ghost.fill" and "ghost.reduce".
 */
#ifndef LEMUR_MIGRATE_H
#define LEMUR_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "mpi/decomp.h"
#include "mpi/exchange.h"
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

/** Opaque ghost plan. */
struct ghost_plan;

/** Plan CIC ghosts of the particles of p (already migrated to d: each particle's cell is owned by
 *  this rank, CHECKed) in a box of side box_size. fields (a subset of p->fields, including
 *  PARTICLES_POS) are what ghost_plan_fill sends; value_bytes is the largest per-particle record
 *  ghost_plan_fill_values and ghost_plan_reduce will move (0 when unused). The plan keeps no
 *  pointer to p. Collective on d->comm. */
struct ghost_plan *ghost_plan_create(const struct decomp *d, const struct particles *p,
                                     double box_size, unsigned fields, size_t value_bytes);

/** Number of ghosts this rank receives / ghost copies it sends. Local. */
int64_t ghost_plan_n_ghosts(const struct ghost_plan *gp);
int64_t ghost_plan_n_copies(const struct ghost_plan *gp);

/** Send the plan's fields of p (the store given at creation, unchanged) to the ghost ranks; the
 *  received ghosts are in ghost_plan_ghosts. Collective. */
void ghost_plan_fill(struct ghost_plan *gp, const struct particles *p);

/** The ghost store (fields of the plan, n = ghost_plan_n_ghosts), owned by the plan and valid until
 *  it is destroyed; its contents are those of the last ghost_plan_fill. Local. */
const struct particles *ghost_plan_ghosts(const struct ghost_plan *gp);

/** Send records of bytes (<= value_bytes) per particle: values[i] (particle i of p) is copied to
 *  ghost_values[g] of each of its ghosts g. Collective. */
void ghost_plan_fill_values(struct ghost_plan *gp, const void *values, void *ghost_values,
                            size_t bytes);

/** Adjoint of fill_values: values[i] += sum over the ghosts g of particle i of ghost_values[g],
 *  n_comp elements of type t per particle (n_comp * size(t) <= value_bytes). Sums are taken in a
 *  fixed order (source rank order). Collective. */
void ghost_plan_reduce(struct ghost_plan *gp, const void *ghost_values, void *values, int n_comp,
                       enum exchange_type t);

/** Free the plan and its ghost store; sets *gp = NULL; NULL-safe. Collective on its communicator.
 */
void ghost_plan_destroy(struct ghost_plan **gp);

#endif
