/* fof_exchange — ghost copies, label merging and record exchange of the FoF search. */
#include "mpi/fof_exchange.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "timer.h"

struct fof_exchange {
    MPI_Comm comm;
    int n_ranks;
    int64_t n_copies, n_ghosts;
    int32_t *idx; /**< copies sorted by (dest, idx) */
    int *send_count, *send_displ, *recv_count, *recv_displ;
    uint64_t *send_u64, *recv_u64; /**< value buffers (n_copies, n_ghosts) */
    float *send_f, *recv_f;        /**< positions of the fill (3 per copy / ghost) */
};

struct copy {
    int32_t dest, idx;
};

static int copy_compare(const void *a, const void *b)
{
    const struct copy *x = a, *y = b;
    if (x->dest != y->dest)
        return x->dest < y->dest ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int to_int(int64_t v, const char *what)
{
    CHECK(v <= INT_MAX, "fof: %lld %s between two ranks; at most %d are supported", (long long)v,
          what, INT_MAX);
    return (int)v;
}

static void *alloc_n(int64_t n, size_t size)
{
    return lm_malloc("fof.exchange", (size_t)(n > 0 ? n : 1) * size);
}

struct fof_exchange *fof_exchange_create(MPI_Comm comm, int64_t n_copies, const int32_t *idx,
                                         const int32_t *dest)
{
    struct fof_exchange *x = lm_calloc("fof.exchange", 1, sizeof *x);
    MPI_CHECK(MPI_Comm_dup(comm, &x->comm));
    MPI_CHECK(MPI_Comm_size(x->comm, &x->n_ranks));
    int P = x->n_ranks;
    struct copy *c = alloc_n(n_copies, sizeof *c);
    for (int64_t k = 0; k < n_copies; k++)
        c[k] = (struct copy){dest[k], idx[k]};
    qsort(c, (size_t)n_copies, sizeof *c, copy_compare);
    x->n_copies = n_copies;
    x->idx = alloc_n(n_copies, sizeof *x->idx);
    x->send_count = lm_calloc("fof.exchange", 4 * (size_t)P, sizeof(int));
    x->send_displ = x->send_count + P;
    x->recv_count = x->send_displ + P;
    x->recv_displ = x->recv_count + P;
    int64_t *cnt = lm_calloc("fof.exchange", (size_t)P, sizeof *cnt);
    for (int64_t k = 0; k < n_copies; k++) {
        x->idx[k] = c[k].idx;
        cnt[c[k].dest]++;
    }
    lm_free(c);
    for (int r = 0; r < P; r++)
        x->send_count[r] = to_int(cnt[r], "ghost copies");
    lm_free(cnt);
    MPI_CHECK(MPI_Alltoall(x->send_count, 1, MPI_INT, x->recv_count, 1, MPI_INT, x->comm));
    int64_t s = 0, r = 0;
    for (int q = 0; q < P; q++) {
        x->send_displ[q] = to_int(s, "ghost copies");
        x->recv_displ[q] = to_int(r, "ghosts");
        s += x->send_count[q];
        r += x->recv_count[q];
    }
    x->n_ghosts = r;
    x->send_u64 = alloc_n(n_copies, sizeof(uint64_t));
    x->recv_u64 = alloc_n(r, sizeof(uint64_t));
    return x;
}

int64_t fof_exchange_n_ghosts(const struct fof_exchange *x) { return x->n_ghosts; }
int64_t fof_exchange_n_copies(const struct fof_exchange *x) { return x->n_copies; }

static void alltoallv_u64(struct fof_exchange *x)
{
    MPI_CHECK(MPI_Alltoallv(x->send_u64, x->send_count, x->send_displ, MPI_UINT64_T, x->recv_u64,
                            x->recv_count, x->recv_displ, MPI_UINT64_T, x->comm));
}

void fof_exchange_fill(struct fof_exchange *x, const struct particles *src, struct particles *dst,
                       int64_t at)
{
    timer_start("fof.ghosts");
    int P = x->n_ranks;
    float *sf = alloc_n(x->n_copies, 3 * sizeof *sf), *rf = alloc_n(x->n_ghosts, 3 * sizeof *rf);
    for (int64_t k = 0; k < x->n_copies; k++) {
        int32_t i = x->idx[k];
        for (int d = 0; d < 3; d++)
            sf[3 * k + d] = src->x[d][i];
        x->send_u64[k] = src->id[i];
    }
    int *c3 = lm_malloc("fof.exchange", 4 * (size_t)P * sizeof *c3);
    for (int q = 0; q < P; q++) {
        c3[q] = to_int(3 * (int64_t)x->send_count[q], "ghost coordinates");
        c3[P + q] = to_int(3 * (int64_t)x->send_displ[q], "ghost coordinates");
        c3[2 * P + q] = to_int(3 * (int64_t)x->recv_count[q], "ghost coordinates");
        c3[3 * P + q] = to_int(3 * (int64_t)x->recv_displ[q], "ghost coordinates");
    }
    MPI_CHECK(
        MPI_Alltoallv(sf, c3, c3 + P, MPI_FLOAT, rf, c3 + 2 * P, c3 + 3 * P, MPI_FLOAT, x->comm));
    alltoallv_u64(x);
    for (int64_t g = 0; g < x->n_ghosts; g++) {
        for (int d = 0; d < 3; d++)
            dst->x[d][at + g] = rf[3 * g + d];
        dst->id[at + g] = x->recv_u64[g];
    }
    timer_add_bytes("fof.ghosts", (double)x->n_copies * 20);
    lm_free(c3);
    lm_free(sf);
    lm_free(rf);
    timer_stop("fof.ghosts");
}

void fof_exchange_forward(struct fof_exchange *x, const uint64_t *values, const int32_t *map,
                          uint64_t *ghost_values)
{
    for (int64_t k = 0; k < x->n_copies; k++) {
        int32_t i = x->idx[k];
        x->send_u64[k] = values[map ? map[i] : i];
    }
    alltoallv_u64(x);
    memcpy(ghost_values, x->recv_u64, (size_t)x->n_ghosts * sizeof *ghost_values);
}

int64_t fof_exchange_backward_min(struct fof_exchange *x, const uint64_t *ghost_values,
                                  uint64_t *values, const int32_t *map)
{
    memcpy(x->recv_u64, ghost_values, (size_t)x->n_ghosts * sizeof *ghost_values);
    MPI_CHECK(MPI_Alltoallv(x->recv_u64, x->recv_count, x->recv_displ, MPI_UINT64_T, x->send_u64,
                            x->send_count, x->send_displ, MPI_UINT64_T, x->comm));
    int64_t lowered = 0;
    for (int64_t k = 0; k < x->n_copies; k++) {
        int32_t i = x->idx[k];
        int32_t j = map ? map[i] : i;
        if (x->send_u64[k] < values[j]) {
            values[j] = x->send_u64[k];
            lowered++;
        }
    }
    return lowered;
}

void fof_exchange_destroy(struct fof_exchange **px)
{
    struct fof_exchange *x = px ? *px : NULL;
    if (!x)
        return;
    MPI_Comm_free(&x->comm);
    lm_free(x->idx);
    lm_free(x->send_count);
    lm_free(x->send_u64);
    lm_free(x->recv_u64);
    lm_free(x);
    *px = NULL;
}

static MPI_Datatype record_type(size_t rec_bytes)
{
    MPI_Datatype t;
    MPI_CHECK(MPI_Type_contiguous(to_int((int64_t)rec_bytes, "bytes per record"), MPI_BYTE, &t));
    MPI_CHECK(MPI_Type_commit(&t));
    return t;
}

void *fof_exchange_records(MPI_Comm comm, const void *recs, int64_t n, size_t rec_bytes,
                           const int32_t *dest, int64_t *n_recv)
{
    int P = comm_size(comm);
    int *c = lm_calloc("fof.exchange", 4 * (size_t)P, sizeof *c);
    int64_t *cnt = lm_calloc("fof.exchange", (size_t)P, sizeof *cnt);
    for (int64_t k = 0; k < n; k++)
        cnt[dest[k]]++;
    for (int q = 0; q < P; q++)
        c[q] = to_int(cnt[q], "group members");
    MPI_CHECK(MPI_Alltoall(c, 1, MPI_INT, c + 2 * P, 1, MPI_INT, comm));
    int64_t s = 0, r = 0;
    for (int q = 0; q < P; q++) {
        c[P + q] = to_int(s, "group members");
        c[3 * P + q] = to_int(r, "group members");
        cnt[q] = s; /* fill cursor */
        s += c[q];
        r += c[2 * P + q];
    }
    char *sb = alloc_n(n, rec_bytes), *rb = alloc_n(r, rec_bytes);
    for (int64_t k = 0; k < n; k++)
        memcpy(sb + (size_t)(cnt[dest[k]]++) * rec_bytes,
               (const char *)recs + (size_t)k * rec_bytes, rec_bytes);
    MPI_Datatype t = record_type(rec_bytes);
    MPI_CHECK(MPI_Alltoallv(sb, c, c + P, t, rb, c + 2 * P, c + 3 * P, t, comm));
    MPI_Type_free(&t);
    lm_free(sb);
    lm_free(cnt);
    lm_free(c);
    *n_recv = r;
    return rb;
}

void *fof_exchange_gather(MPI_Comm comm, const void *recs, int64_t n, size_t rec_bytes,
                          int64_t *n_total)
{
    int P = comm_size(comm), rank = comm_rank(comm);
    int mine = to_int(n, "group records"), *c = NULL;
    if (rank == 0)
        c = lm_calloc("fof.exchange", 2 * (size_t)P, sizeof *c);
    MPI_CHECK(MPI_Gather(&mine, 1, MPI_INT, c, 1, MPI_INT, 0, comm));
    int64_t tot = 0;
    char *out = NULL;
    if (rank == 0) {
        for (int q = 0; q < P; q++) {
            c[P + q] = to_int(tot, "group records");
            tot += c[q];
        }
        out = alloc_n(tot, rec_bytes);
    }
    MPI_Datatype t = record_type(rec_bytes);
    MPI_CHECK(MPI_Gatherv(recs, mine, t, out, c, rank == 0 ? c + P : NULL, t, 0, comm));
    MPI_Type_free(&t);
    lm_free(c);
    *n_total = tot;
    return out;
}

int64_t fof_exchange_sum(MPI_Comm comm, int64_t v)
{
    comm_sum_int64(comm, &v, 1);
    return v;
}
