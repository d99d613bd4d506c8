/*
 * exchange — box-overlap exchange plans: one mechanism for halo fill, halo accumulate and
 * redistribution of distributed meshes.
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
 * The uses are thin wrappers over the core:
 *   halo          wanted = the owned box grown by width on every side (any width, also wider than
 *                 the neighbours or the mesh: data then comes from several ranks and from this rank
 *                 itself through the periodic wrap). The ghosted array is the whole grown box, its
 *                 interior included, so fill makes it a complete periodic view of the field.
 *   redistribute  wanted = this rank's box in a second decomposition (slabs <-> blocks).
 *   boxes         any regions, e.g. emulator tiles with their 48-cell halos: exchange_plan_create.
 *   in place      one array holding the owned cells and a ghost shell (per-axis, per-side widths):
 *                 only the shell is wanted, so no copy of the interior is made; accumulate then
 *                 adds the ghost sums onto the owned cells (exchange_plan_halo_inplace).
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

/** Exchange statistics of this rank (for logs and the communication model). */
struct exchange_stats {
    size_t bytes_sent; /**< bytes this rank sends to other ranks per execution */
    size_t bytes_recv; /**< bytes it receives from other ranks per execution */
    size_t bytes_self; /**< bytes it copies to itself per execution */
    int n_send_peers;  /**< other ranks it sends to */
    int n_recv_peers;  /**< other ranks it receives from */
    int64_t n_pieces;  /**< boxes it packs, unpacks or copies per execution */
};

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
 *  the wanted boxes (padding) are not touched. src and the dst arrays must not overlap in memory
 *  (one array holding owned and ghost cells: exchange_plan_halo_inplace). Timed and counted as
 *  "exchange.fill" (src/timer.h). Collective on the plan's communicator. */
void exchange_fill(struct exchange_plan *p, const void *src, void *const *dst);

/** Accumulate (adjoint of fill): overwrite every owned cell of src with the sum, in type t, of all
 *  cells of the wanted arrays ghost[0..n_want-1] that image it. Owned cells nobody wants become 0;
 *  cells of src outside the owned box are not touched (in-place halo plans add onto the owned
 *  cells instead of overwriting them). CHECKs that t matches the element size. Timed and counted as
 * "exchange.accumulate". Collective on the plan's communicator. */
void exchange_accumulate(struct exchange_plan *p, const void *const *ghost, void *src,
                         enum exchange_type t);

/** The ghosted box of a halo of width w around this rank's box: d->box grown by w on every side of
 *  every axis, or an empty box when this rank owns no cell. Local. */
struct box3 exchange_halo_box(const struct decomp *d, int width);

/** Halo plan: the wanted array is the compact array over exchange_halo_box(d, width) (any width
 *  >= 0, also larger than the mesh). owned describes the source array (NULL: compact d->box).
 *  Ranks owning no cell want nothing. Collective on d->comm. */
struct exchange_plan *exchange_plan_halo(const struct decomp *d, const struct exchange_array *owned,
                                         int width, const struct exchange_field *field);

/** Halo fill: ghosted (compact, exchange_halo_box) = periodic view of the field. Collective. */
void exchange_halo_fill(struct exchange_plan *p, const void *owned, void *ghosted);

/** Halo accumulate: owned = sum over all ghosted cells imaging each owned cell (the painter's
 *  ghost -> owner reduction; interior included, see exchange_accumulate). Collective. */
void exchange_halo_accumulate(struct exchange_plan *p, const void *ghosted, void *owned,
                              enum exchange_type t);

/** In-place halo plan: one array holds the owned cells and a ghost shell around them, w_lo[a]
 *  cells below and w_hi[a] above on axis a (any widths >= 0, also larger than the mesh; e.g.
 *  {1,0,0}/{1,0,0} for one ghost plane on each side of an x-slab). arr describes the array (its
 *  box must cover box3_grow(&d->box, w_lo, w_hi), dims may be padded); NULL: compact over that
 *  box. Only ghost-shell cells are exchanged: the owned interior is neither copied nor moved.
 *  Collective on d->comm. */
struct exchange_plan *exchange_plan_halo_inplace(const struct decomp *d,
                                                 const struct exchange_array *arr,
                                                 const int64_t w_lo[3], const int64_t w_hi[3],
                                                 const struct exchange_field *field);

/** In-place fill: every ghost-shell cell of arr receives the value of the cell it images (owned
 *  cells are read, not written). Collective. */
void exchange_halo_fill_inplace(struct exchange_plan *p, void *arr);

/** In-place accumulate (adjoint of the in-place fill plus identity): every owned cell of arr gets
 *  the sum of all ghost-shell cells (of every rank) imaging it ADDED to its own value; ghost cells
 *  are left as they were. This is the painter's "paint owned + ghost, then fold the ghosts in".
 *  Collective. */
void exchange_halo_accumulate_inplace(struct exchange_plan *p, void *arr, enum exchange_type t);

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

/** Bytes this rank sends to other ranks per execution (fill or accumulate direction: fill). Local.
 */
size_t exchange_plan_bytes(const struct exchange_plan *p);

/** This rank's statistics for the fill direction (accumulate swaps sent and received). Local. */
struct exchange_stats exchange_plan_stats(const struct exchange_plan *p);

#endif
