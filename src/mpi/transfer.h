/*
 * transfer (tier: mpi) — per-peer byte messages over nonblocking point-to-point; internal to
 * src/mpi (the common transport of exchange, migrate and ghost plans).
 *
 * A transfer is set up once from the item counts this rank sends to and receives from every peer;
 * each posting gives the bytes per item (unit, at most the max_unit given at set-up), and the block
 * for peer r lies at bytes [off[r] unit, off[r+1] unit) of one send and one receive buffer. Blocks
 * above TRANSFER_CHUNK bytes travel as several messages so that MPI's int counts never overflow.
 * Requests are allocated at set-up; posting and waiting allocate nothing.
 */
#ifndef LEMUR_TRANSFER_H
#define LEMUR_TRANSFER_H

#include <mpi.h>
#include <stddef.h>

/** Largest single message in bytes. */
#define TRANSFER_CHUNK ((size_t)1 << 30)

struct transfer {
    MPI_Comm comm; /**< not owned (the plan's duplicate) */
    int rank, n_ranks;
    size_t max_unit;       /**< largest bytes per item a posting may use */
    size_t *send_off;      /**< n_ranks + 1 item offsets into the send buffer */
    size_t *recv_off;      /**< n_ranks + 1 item offsets into the receive buffer */
    int *send_req0;        /**< n_ranks + 1: first send request of each peer */
    int *recv_req0;        /**< n_ranks + 1: first receive request of each peer */
    MPI_Request *send_req; /**< one per send message */
    MPI_Request *recv_req; /**< one per receive message */
};

/** Set up from per-peer item counts (n_ranks entries each; copied) and the largest item size
 *  in bytes that postings will use. Local. */
void transfer_init(struct transfer *t, MPI_Comm comm, const size_t *send_items,
                   const size_t *recv_items, size_t max_unit);
/** The same transfer with send and receive roles swapped. Local. */
void transfer_init_reverse(struct transfer *t, const struct transfer *fwd);
/** Post every receive into recv_buf, unit bytes per item. Local (completes collectively). */
void transfer_post_recvs(struct transfer *t, void *recv_buf, size_t unit);
/** Start sending peer's block of send_buf, unit bytes per item (the receiver's unit). Local. */
void transfer_send(struct transfer *t, int peer, const void *send_buf, size_t unit);
/** Wait until peer's block has arrived. Local. */
void transfer_wait_recv(struct transfer *t, int peer);
/** Wait until every send has completed. Local. */
void transfer_wait_sends(struct transfer *t);
/** Total items sent / received (all peers). Local. */
size_t transfer_send_total(const struct transfer *t);
size_t transfer_recv_total(const struct transfer *t);
/** Free the tables; NULL-safe on a zeroed struct. Local. */
void transfer_free(struct transfer *t);

#endif
