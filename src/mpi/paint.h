/*
 * paint (tier: mpi) — distributed CIC painting and readout on the x-slabs of a float FFT mesh.
 *
 * Particles are first migrated to the rank owning their cell in the plan's slab decomposition
 * (paint_plan_decomp, which matches the FFT's real-space distribution; use migrate_particles from
 * src/mpi/migrate.h). Each rank then sorts its particles by lower x node (the stable counting
 * sort of sort.h, threaded; on an interlacing plan by lower x node and half cell, an order the
 * copies at shift - 0.5 reuse) and paints several fields in one pass (mass and three momentum
 * components share the sort and the stencils, computed block by block in vectorised loops,
 * cic.h). The OpenMP threads take contiguous ranges of x planes (balanced by particle count) and
 * sweep them with two rolling double planes; every node's double sum runs in an order fixed by
 * the sort alone (the
 * lower corners of the points of its own plane, then the upper corners of those of the plane below,
 * each in sorted order: a thread starts the plane it shares with the next thread from that thread's
 * partial sum), and each plane is rounded once to float into the caller's FFT buffer. The two ghost
 * planes (x0 - 1 for the interlacing shift, x0 + nx) and the first and last owned planes stay in
 * double until the halo accumulate has added each ghost plane, in double, onto the rank that owns
 * it; only then are they rounded. Readout is the adjoint: the ghost planes are filled from their
 * owners, then every particle reads its 8 nodes locally (threads take particles).
 *
 * Why double: the order in which the particles' contributions reach a node depends on the rank
 * count (migration reorders the particles, ghost planes are added after the owned sums). In float
 * that order shows up at ~1e-6 of the map; in double the order changes the sum by ~1e-16
 * relative, so the final float mesh is the same at any rank count (bitwise, except for a sum that
 * falls within a double rounding of a float rounding boundary: then 1 float ulp). For a given
 * rank count the order of every sum is fixed by the sort, so the mesh is bitwise the same for any
 * number of threads.
 *
 * Memory: 4 double planes per field (the edges above), three double planes per field and thread,
 * 4 bytes per particle for the painting order (grown to the largest particle count painted), two
 * double receive planes and the 2 n_fields float ghost planes used by readout — less than a
 * double copy of the slab while 3 n_fields threads < nx.
 *
 * Why mesh ghosts rather than particle ghosts: the traffic is two planes per field and rank,
 * independent of the particle load (particle ghosts would move every particle within one cell of
 * a slab face, with all its fields), and the only extra memory is the ghost and double planes
 * above (no ghosted copy of the particles). The plane exchange is a two-neighbour ring
 * along x written here rather than a generic box-overlap plan, whose accumulate would need a
 * separate ghosted copy of the whole slab.
 *
 * Ranks that own no plane (more ranks than planes) hold no particles after migration; they take
 * part in every collective with nothing to do.
 */
#ifndef LEMUR_PAINT_H
#define LEMUR_PAINT_H

#include <mpi.h>

#include "cic.h"
#include "mpi/decomp.h"
#include "mpi/fft.h"

struct paint_plan;

/** Plan painting and readout of up to n_fields fields on the real layout of a float FFT plan.
 *  Allocates the float ghost planes (2 n_fields planes), the double edge planes
 *  ("paint.edge", 4 per field, none on a rank without planes), the per-thread double planes
 *  ("paint.accum", 3 omp_get_max_threads() n_fields planes) and the two double receive planes.
 * Collective on comm (duplicated). Free with paint_plan_destroy. */
struct paint_plan *paint_plan_create(const struct fft_plan *fft, int n_fields, MPI_Comm comm);

/** Let the plan paint interlaced copies without a sort of their own: later paint_execute calls
 *  order the points by x plane and half cell (a sort about a fifth dearer), an order that also
 *  serves paint_execute_same_points at its shift - 0.5. Meshes keep their properties (bitwise the
 *  same for any thread count), though not the bits of a plan without it (another order of the
 *  double sums). Local. */
void paint_plan_interlace(struct paint_plan *p);

/** Make room in the plan for painting n points per call on this rank (the painting order, 4 bytes
 *  per point, with 1/8 headroom) and touch that memory now on the OpenMP threads, so that the first
 *  paint runs at the speed of the next ones. Optional: painting grows the order as needed. Local.
 */
void paint_plan_reserve(struct paint_plan *p, int64_t n);

/** Free the plan (NULL-safe) and set *p = NULL. Collective on its communicator. */
void paint_plan_destroy(struct paint_plan **p);

/** The slab decomposition particles must be migrated to before painting. Local. */
const struct decomp *paint_plan_decomp(const struct paint_plan *p);

/** Paint the points into fields[0..n_fields-1] (float FFT buffers of the plan's layout, real view):
 *  each field's owned planes are overwritten with the CIC density of the points (weights of pts),
 *  ghost contributions of every rank included, summed in double and rounded once to float, so the
 *  result does not depend on the rank count, the thread count or the order of the points.
 *  Padding of the rows is zeroed. Allocates only when more threads or more points than ever
 *  before need room (the per-thread planes and the painting order are grown and kept).
 *  @param shift  0, or -0.5 for the second mesh of interlacing
 *  A point outside this rank's slab is a bug in the caller's migration (fatal, with the count).
 *  Collective on the plan's communicator. */
void paint_execute(struct paint_plan *p, int n_fields, float *const fields[],
                   const struct cic_points *pts, double shift);

/** paint_execute for the points painted by the last paint_execute on this plan (the same
 *  positions and count; the weights and fields may differ) at that call's shift or, on a plan
 *  made with paint_plan_interlace and where that shift is a multiple of 0.5, at it - 0.5 (the
 *  interlaced copy): the painting order of that call is reused, without a sort. The mesh is bitwise
 * the one paint_execute would give. A count or shift other than these is fatal (positions moved
 * since are the caller's bug). Collective on the plan's communicator. */
void paint_execute_same_points(struct paint_plan *p, int n_fields, float *const fields[],
                               const struct cic_points *pts, double shift);

/** Read fields[0..n_fields-1] at the points (the adjoint of paint_execute): out[f][i] for point i.
 *  The fields are not modified. Collective on the plan's communicator. */
void paint_readout(struct paint_plan *p, int n_fields, float *const fields[],
                   const struct cic_points *pts, double shift, float *const out[]);

/** Bytes this rank sends per field and paint_execute (two double planes, or 0 without planes).
 *  Local. */
size_t paint_plan_bytes_per_field(const struct paint_plan *p);

#endif
