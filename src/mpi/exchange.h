/*
 * exchange (tier: mpi) — box-overlap exchange plans: one mechanism for halo fill, halo accumulate
 * and redistribution of distributed meshes.
 *
 * A field is distributed by a decomposition (src/mpi/decomp.h): rank r owns the cells of its box.
 * In the core plan, every rank asks for any number of arbitrary boxes of global indices ("wanted
 * arrays"); boxes may extend outside [0, n) and be wider than the mesh, global index i meaning cell
 * i mod n. The plan intersects each wanted box with every periodic image of every owner's box
 * (using the decomposition's split tables, never a scan of all ranks), giving a list of pieces per
 * pair of ranks in one canonical order that both sides compute (creation allgathers the wanted
 * boxes: 48 bytes per box and rank). Execution packs the pieces for each
 * peer into one contiguous buffer, sends it with nonblocking point-to-point (messages above 1 GiB
 * are split), copies pieces to itself directly, and unpacks in rank order.
 *
 *   fill        owners -> wanted arrays: every wanted cell receives the value of the cell it
 *               images (each wanted cell is written exactly once).
 *   accumulate  the exact adjoint: every owned cell is overwritten with the sum of all wanted cells
 *               that image it (0 when none does). Summation order is fixed (rank order, then the
 *               plan's piece order), so results are reproducible run to run.
 *
 * Uses:
 *   boxes         any regions, e.g. emulator tiles with their 48-cell halos (any width, also wider
 *                 than the neighbours or the mesh: data then comes from several ranks and from this
 *                 rank itself through the periodic wrap): exchange_plan_create.
 *   redistribute  wanted = this rank's box in a second decomposition (slabs <-> blocks).
 *
 * Local arrays. A struct exchange_array describes one local C row-major array: the global box it
 * covers (memory origin at box.lo) and the allocated extents per axis (dims >= box extent, to allow
 * FFTW's padded last axis 2(n/2+1); dims all 0 means compact). Components: a struct exchange_field
 * gives the element size in bytes (any), the number of components per cell and their order:
 * EXCHANGE_CELL_MAJOR stores the n_comp values of a cell contiguously (AoS, [i][j][k][c]);
 * EXCHANGE_COMP_MAJOR stores n_comp separate planes, each of dims[0]*dims[1]*dims[2] elements
 * ([c][i][j][k], the NN engine's channel-first layout). Both sides of a plan use the same field
 * description.
 *
 * Plans allocate every buffer and request at creation; execution allocates nothing. A plan
 * duplicates the communicator of its source decomposition. Execution is collective on that
 * communicator: every rank calls it, also ranks with nothing to send or receive.
 */
#ifndef LEMUR_EXCHANGE_H
#define LEMUR_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "box.h"
#include "mpi/decomp.h"

/** Element type of accumulate sums (the element size of the field must match). */
enum exchange_type {
    EXCHANGE_FLOAT,  /**< float, 4 bytes */
    EXCHANGE_DOUBLE, /**< double, 8 bytes */
};

/** Order of the components of a field in memory. */
enum exchange_order {
    EXCHANGE_CELL_MAJOR, /**< [i][j][k][c]: the components of a cell are contiguous (AoS) */
    EXCHANGE_COMP_MAJOR, /**< [c][i][j][k]: one plane of dims[0]*dims[1]*dims[2] per component */
};

/** What is stored per cell. */
struct exchange_field {
    size_t elem_size;          /**< bytes of one component value (any size) */
    int n_comp;                /**< components per cell (>= 1) */
    enum exchange_order order; /**< component order (default EXCHANGE_CELL_MAJOR) */
};

/** One local array: the global box it covers and its allocated extents. */
struct exchange_array {
    struct box3 box; /**< global cells held; memory origin at box.lo (may lie outside [0, n)) */
    int64_t dims[3]; /**< allocated extent per axis (>= box extent); all 0: compact */
};

/** Opaque plan. */
struct exchange_plan;

/** Core plan: each rank receives n_want arrays, want[b] being filled with the periodic region
 *  want[b].box of the field distributed by src. src_arr describes this rank's source array; its
 *  box must contain src->box (only owned cells are read); NULL means a compact array of exactly
 *  src->box. Wanted boxes may lie anywhere and overlap each other. n_want and want are per rank
 *  (n_want may be 0). Collective on src->comm. The caller keeps ownership of want and field. */
struct exchange_plan *exchange_plan_create(const struct decomp *src,
                                           const struct exchange_array *src_arr, int n_want,
                                           const struct exchange_array *want,
                                           const struct exchange_field *field);

/** Fill: copy the owners' values into this rank's wanted arrays dst[0..n_want-1] (pointers to the
 *  arrays described by want at creation); src is this rank's source array. Cells of dst outside
 *  the wanted boxes (padding) are not touched. src and the dst arrays must not overlap in memory.
 *  Timed and counted as "exchange.fill" (src/timer.h). Collective on the plan's communicator. */
void exchange_fill(struct exchange_plan *p, const void *src, void *const *dst);

/** Accumulate (adjoint of fill): overwrite every owned cell of src with the sum, in type t, of all
 *  cells of the wanted arrays ghost[0..n_want-1] that image it. Owned cells nobody wants become 0;
 *  cells of src outside the owned box are not touched. CHECKs that t matches the element size.
 * Timed and counted as "exchange.accumulate". Collective on the plan's communicator. */
void exchange_accumulate(struct exchange_plan *p, const void *const *ghost, void *src,
                         enum exchange_type t);

/** Redistribution plan from decomposition from to decomposition to (same mesh; communicators of
 *  the same group in the same order). from_arr / to_arr describe the local arrays (NULL: compact
 *  over the rank's box in that decomposition). Collective on from->comm. */
struct exchange_plan *exchange_plan_redistribute(const struct decomp *from,
                                                 const struct exchange_array *from_arr,
                                                 const struct decomp *to,
                                                 const struct exchange_array *to_arr,
                                                 const struct exchange_field *field);

/** Redistribute: out (this rank's array in the target decomposition) receives the values of in
 *  (its array in the source decomposition). Collective. */
void exchange_redistribute(struct exchange_plan *p, const void *in, void *out);

/** Free the plan and its duplicated communicator; sets *p = NULL; NULL-safe. Collective on the
 *  plan's communicator. */
void exchange_plan_destroy(struct exchange_plan **p);

#endif
