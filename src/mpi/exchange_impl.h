/*
 * exchange_impl (tier: mpi) — the exchange plan's internals, shared by exchange.c (construction)
 * and exchange_execute.c (execution). Not for use outside src/mpi/exchange*.c.
 */
#ifndef LEMUR_EXCHANGE_IMPL_H
#define LEMUR_EXCHANGE_IMPL_H

#include <stdbool.h>

#include "mpi/exchange.h"
#include "mpi/transfer.h"

/** Byte geometry of one local array. */
struct xgeom {
    struct box3 box;   /**< global box; memory origin at box.lo */
    int64_t stride[3]; /**< bytes per step along i, j, k */
    int n_planes;      /**< component planes (n_comp when EXCHANGE_COMP_MAJOR, else 1) */
    int64_t plane;     /**< bytes between planes */
    size_t row_cell;   /**< bytes per cell within a row (elem_size, or elem_size * n_comp) */
};

/** One wanted region: cells of a wanted array that the plan fills. */
struct xregion {
    struct box3 box; /**< global cells (inside the array's box) */
    int array;       /**< index of the wanted array */
};

/** One box copied between a source array and a wanted array (offsets relative to box.lo). */
struct xpiece {
    int want;       /**< wanted array index on the receiving rank */
    int64_t src[3]; /**< first cell in the source array (valid on the sending rank) */
    int64_t dst[3]; /**< first cell in the wanted array (valid on the receiving rank) */
    int64_t ext[3]; /**< extent */
};

struct exchange_plan {
    MPI_Comm comm; /**< duplicate of the source decomposition's communicator */
    int rank, n_ranks;
    struct exchange_field field;
    struct xgeom src;                /**< this rank's source array */
    struct box3 owned;               /**< owned cells (zeroed and summed by accumulate) */
    int n_want;                      /**< wanted arrays of this rank */
    struct exchange_array *want_arr; /**< their descriptions */
    struct xgeom *want;              /**< and geometries */
    int n_reg;                       /**< wanted regions of this rank */
    struct xregion *reg;             /**< the regions, in canonical order */
    struct xpiece *send;             /**< pieces sent, grouped by destination rank */
    int64_t *send_p0;                /**< n_ranks + 1 first piece per destination */
    struct xpiece *recv;             /**< pieces received (self pieces at this rank's slot) */
    int64_t *recv_p0;                /**< n_ranks + 1 first piece per source */
    struct transfer fwd, rev;        /**< fill and accumulate directions */
    char *send_buf, *recv_buf;
};

/** Bytes of a piece's data. */
size_t xpiece_bytes(const struct exchange_plan *p, const struct xpiece *pc);

#endif
