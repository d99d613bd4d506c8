/*
 * fof_plan (tier: plans) — distributed friends-of-friends groups of a periodic particle set (Davis
 * et al. 1985), the same catalogue for any number of ranks.
 *
 *   1. migrate the particles to x-slabs (src/mpi/migrate.h);
 *   2. send every particle within ℓ of another rank's slab (periodic) to that rank as a ghost;
 *   3. link owned particles and ghosts on each rank (fof_link: cell list, union-find);
 *   4. label components by their smallest ParticleID and merge labels across ranks through the
 *      ghost copies (owner -> ghost, ghost -> owner, minimum) until no label changes;
 *   5. components with ghosts or copies elsewhere send their owned members to the rank
 *      label mod P; every group is then whole on one rank;
 *   6. groups of at least min_length members get their properties, summed in double over the
 *      members sorted by ID (fof_group_properties), so every value is bitwise the same whatever
 *      the decomposition; rank 0 gathers the catalogue and orders it by length (descending), then
 *      by first ID.
 * The friends test is evaluated from the float positions alone (fof_friends), identically on
 * every rank.
 */
#ifndef LEMUR_FOF_PLAN_H
#define LEMUR_FOF_PLAN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "fof.h"
#include "particles.h"

struct decomp;

/** What to find. */
struct fof_options {
    double link;          /**< linking length ℓ [Mpc/h] */
    int64_t min_length;   /**< smallest group kept (>= 1) */
    double particle_mass; /**< [1e10 Msun/h] */
    bool members;         /**< also return the member IDs of every group */
    int n_slab_cells;     /**< x resolution of the slab decomposition (>= 1) */
};

struct fof_plan;

/** Plan a search in a box of side box: the slab decomposition. Collective on comm; free with
 *  fof_plan_destroy. */
struct fof_plan *fof_plan_create(const struct fof_options *o, double box, MPI_Comm comm);

/** The slab decomposition the particles are migrated to. Local. */
const struct decomp *fof_plan_decomp(const struct fof_plan *p);

/** Find the groups of parts (needs PARTICLES_POS and PARTICLES_ID; velocities used when present).
 *  On return parts holds this rank's slab of the particles (migrated, wrapped, same multiset).
 *  out is filled as described on struct fof_catalogue; free it with fof_catalogue_free.
 *  Collective. */
void fof_plan_execute(struct fof_plan *p, struct particles *parts, struct fof_catalogue *out);

/** Free the plan (NULL-safe); sets *p = NULL. Collective. */
void fof_plan_destroy(struct fof_plan **p);

#endif
