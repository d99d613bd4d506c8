#include "mpi/transfer.h"

#include "alloc.h"
#include "mpi/comm.h"

#include <string.h>

static int n_chunks(size_t bytes) { return (int)((bytes + TRANSFER_CHUNK - 1) / TRANSFER_CHUNK); }

/* Offsets and first-request indices from per-peer item counts. */
static void side_init(int n_ranks, const size_t *items, size_t max_unit, size_t **off, int **req0,
                      MPI_Request **req)
{
    *off = lm_malloc("transfer.tables", (size_t)(n_ranks + 1) * sizeof(size_t));
    *req0 = lm_malloc("transfer.tables", (size_t)(n_ranks + 1) * sizeof(int));
    (*off)[0] = 0;
    (*req0)[0] = 0;
    for (int r = 0; r < n_ranks; r++) {
        (*off)[r + 1] = (*off)[r] + items[r];
        (*req0)[r + 1] = (*req0)[r] + n_chunks(items[r] * max_unit);
    }
    int n_req = (*req0)[n_ranks];
    *req = lm_malloc("transfer.tables", (size_t)(n_req > 0 ? n_req : 1) * sizeof(MPI_Request));
    for (int q = 0; q < n_req; q++)
        (*req)[q] = MPI_REQUEST_NULL;
}

void transfer_init(struct transfer *t, MPI_Comm comm, const size_t *send_items,
                   const size_t *recv_items, size_t max_unit)
{
    memset(t, 0, sizeof *t);
    t->comm = comm;
    t->rank = comm_rank(comm);
    t->n_ranks = comm_size(comm);
    t->max_unit = max_unit;
    side_init(t->n_ranks, send_items, max_unit, &t->send_off, &t->send_req0, &t->send_req);
    side_init(t->n_ranks, recv_items, max_unit, &t->recv_off, &t->recv_req0, &t->recv_req);
}

void transfer_init_reverse(struct transfer *t, const struct transfer *fwd)
{
    int p = fwd->n_ranks;
    size_t *s = lm_malloc("transfer.tmp", 2 * (size_t)p * sizeof(size_t)), *r = s + p;
    for (int q = 0; q < p; q++) {
        s[q] = fwd->recv_off[q + 1] - fwd->recv_off[q];
        r[q] = fwd->send_off[q + 1] - fwd->send_off[q];
    }
    transfer_init(t, fwd->comm, s, r, fwd->max_unit);
    lm_free(s);
}

/* Post peer's block [off[peer], off[peer+1]) items of buf as chunked messages. */
static void post(struct transfer *t, int peer, char *buf, size_t unit, const size_t *off,
                 const int *req0, MPI_Request *req, int is_send)
{
    ASSERT(unit <= t->max_unit);
    size_t lo = off[peer] * unit, hi = off[peer + 1] * unit;
    for (int c = 0; lo + (size_t)c * TRANSFER_CHUNK < hi; c++) {
        size_t at = lo + (size_t)c * TRANSFER_CHUNK;
        int count = (int)(hi - at < TRANSFER_CHUNK ? hi - at : TRANSFER_CHUNK);
        MPI_Request *rq = &req[req0[peer] + c];
        if (is_send)
            MPI_CHECK(MPI_Isend(buf + at, count, MPI_BYTE, peer, c, t->comm, rq));
        else
            MPI_CHECK(MPI_Irecv(buf + at, count, MPI_BYTE, peer, c, t->comm, rq));
    }
}

void transfer_post_recvs(struct transfer *t, void *recv_buf, size_t unit)
{
    for (int r = 0; r < t->n_ranks; r++)
        post(t, r, recv_buf, unit, t->recv_off, t->recv_req0, t->recv_req, 0);
}

void transfer_send(struct transfer *t, int peer, const void *send_buf, size_t unit)
{
    post(t, peer, (char *)send_buf, unit, t->send_off, t->send_req0, t->send_req, 1);
}

void transfer_wait_recv(struct transfer *t, int peer)
{
    int q0 = t->recv_req0[peer], n = t->recv_req0[peer + 1] - q0;
    if (n > 0)
        MPI_CHECK(MPI_Waitall(n, t->recv_req + q0, MPI_STATUSES_IGNORE));
}

void transfer_wait_sends(struct transfer *t)
{
    int n = t->send_req0[t->n_ranks];
    if (n > 0)
        MPI_CHECK(MPI_Waitall(n, t->send_req, MPI_STATUSES_IGNORE));
}

size_t transfer_send_total(const struct transfer *t) { return t->send_off[t->n_ranks]; }
size_t transfer_recv_total(const struct transfer *t) { return t->recv_off[t->n_ranks]; }

void transfer_free(struct transfer *t)
{
    lm_free(t->send_off);
    lm_free(t->recv_off);
    lm_free(t->send_req0);
    lm_free(t->recv_req0);
    lm_free(t->send_req);
    lm_free(t->recv_req);
    memset(t, 0, sizeof *t);
}
