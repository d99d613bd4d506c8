/*
 * exchange_execute — running an exchange plan: packing pieces into per-peer buffers, copying
 * pieces to this rank, unpacking (fill) or summing (accumulate). Allocates nothing.
 */
#include "mpi/exchange_impl.h"

#include "mpi/comm.h"
#include "timer.h"

#include <string.h>

enum xop {
    XOP_COPY,
    XOP_ZERO,
    XOP_ADD_FLOAT,
    XOP_ADD_DOUBLE,
};

static void row_op(char *restrict dst, const char *restrict src, size_t bytes, enum xop op)
{
    switch (op) {
    case XOP_COPY:
        memcpy(dst, src, bytes);
        break;
    case XOP_ZERO:
        memset(dst, 0, bytes);
        break;
    case XOP_ADD_FLOAT: {
        float *d = (float *)(void *)dst;
        const float *s = (const float *)(const void *)src;
        for (size_t i = 0; i < bytes / sizeof(float); i++)
            d[i] += s[i];
        break;
    }
    case XOP_ADD_DOUBLE: {
        double *d = (double *)(void *)dst;
        const double *s = (const double *)(const void *)src;
        for (size_t i = 0; i < bytes / sizeof(double); i++)
            d[i] += s[i];
        break;
    }
    }
}

/* Apply op row by row to a box of extent ext: dst array (geometry gd, first cell d0) from src
 * array (geometry gs, first cell s0). Both geometries have the same planes and row_cell. */
static void piece_op(char *dst, const struct xgeom *gd, const int64_t d0[3], const char *src,
                     const struct xgeom *gs, const int64_t s0[3], const int64_t ext[3], enum xop op)
{
    size_t row = (size_t)ext[2] * gd->row_cell;
    for (int c = 0; c < gd->n_planes; c++) {
        char *dp = dst + c * gd->plane + d0[2] * gd->stride[2];
        const char *sp = src + c * gs->plane + s0[2] * gs->stride[2];
        for (int64_t i = 0; i < ext[0]; i++)
            for (int64_t j = 0; j < ext[1]; j++)
                row_op(dp + (d0[0] + i) * gd->stride[0] + (d0[1] + j) * gd->stride[1],
                       sp + (s0[0] + i) * gs->stride[0] + (s0[1] + j) * gs->stride[1], row, op);
    }
}

/* Geometry of a piece packed contiguously in a message buffer. */
static struct xgeom packed_geom(const struct xgeom *like, const int64_t ext[3])
{
    struct xgeom g = *like;
    g.stride[2] = (int64_t)like->row_cell;
    g.stride[1] = ext[2] * g.stride[2];
    g.stride[0] = ext[1] * g.stride[1];
    g.plane = ext[0] * g.stride[0];
    return g;
}

static const int64_t zero3[3] = {0, 0, 0};

/* Pack pieces [q0, q1) of list into buf; from the source array when to_wanted is false, from the
 * wanted arrays otherwise. */
static void pack(const struct exchange_plan *p, const struct xpiece *list, int64_t q0, int64_t q1,
                 const void *src, const void *const *wanted, char *buf)
{
    for (int64_t q = q0; q < q1; q++) {
        const struct xpiece *pc = &list[q];
        const struct xgeom *g = wanted ? &p->want[pc->want] : &p->src;
        const char *a = wanted ? (const char *)wanted[pc->want] : (const char *)src;
        struct xgeom pg = packed_geom(g, pc->ext);
        piece_op(buf, &pg, zero3, a, g, wanted ? pc->dst : pc->src, pc->ext, XOP_COPY);
        buf += xpiece_bytes(p, pc);
    }
}

/* Unpack pieces [q0, q1) from buf with op: into the wanted arrays (fill) or the source array. */
static void unpack(const struct exchange_plan *p, const struct xpiece *list, int64_t q0, int64_t q1,
                   const char *buf, void *src, void *const *wanted, enum xop op)
{
    for (int64_t q = q0; q < q1; q++) {
        const struct xpiece *pc = &list[q];
        const struct xgeom *g = wanted ? &p->want[pc->want] : &p->src;
        char *a = wanted ? (char *)wanted[pc->want] : (char *)src;
        struct xgeom pg = packed_geom(g, pc->ext);
        piece_op(a, g, wanted ? pc->dst : pc->src, buf, &pg, zero3, pc->ext, op);
        buf += xpiece_bytes(p, pc);
    }
}

void exchange_fill(struct exchange_plan *p, const void *src, void *const *dst)
{
    timer_start("exchange.fill");
    timer_add_bytes("exchange.fill", (double)transfer_send_total(&p->fwd));
    transfer_post_recvs(&p->fwd, p->recv_buf, 1);
    for (int k = 1; k < p->n_ranks; k++) {
        int r = (p->rank + k) % p->n_ranks;
        pack(p, p->send, p->send_p0[r], p->send_p0[r + 1], src, NULL,
             p->send_buf + p->fwd.send_off[r]);
        transfer_send(&p->fwd, r, p->send_buf, 1);
    }
    for (int64_t q = p->recv_p0[p->rank]; q < p->recv_p0[p->rank + 1]; q++) {
        const struct xpiece *pc = &p->recv[q];
        piece_op(dst[pc->want], &p->want[pc->want], pc->dst, src, &p->src, pc->src, pc->ext,
                 XOP_COPY);
    }
    for (int r = 0; r < p->n_ranks; r++) {
        if (r == p->rank)
            continue;
        transfer_wait_recv(&p->fwd, r);
        unpack(p, p->recv, p->recv_p0[r], p->recv_p0[r + 1], p->recv_buf + p->fwd.recv_off[r], NULL,
               dst, XOP_COPY);
    }
    transfer_wait_sends(&p->fwd);
    timer_stop("exchange.fill");
}

/* Zero the owned cells of the source array. */
static void zero_owned(const struct exchange_plan *p, void *src)
{
    if (box3_empty(&p->owned))
        return;
    int64_t o[3], ext[3];
    for (int a = 0; a < 3; a++) {
        o[a] = p->owned.lo[a] - p->src.box.lo[a];
        ext[a] = box3_extent(&p->owned, a);
    }
    piece_op(src, &p->src, o, src, &p->src, o, ext, XOP_ZERO);
}

/* Add this rank's own wanted cells into its source array. */
static void accumulate_self(const struct exchange_plan *p, const void *const *ghost, void *src,
                            enum xop op)
{
    for (int64_t q = p->recv_p0[p->rank]; q < p->recv_p0[p->rank + 1]; q++) {
        const struct xpiece *pc = &p->recv[q];
        piece_op(src, &p->src, pc->src, ghost[pc->want], &p->want[pc->want], pc->dst, pc->ext, op);
    }
}

void exchange_accumulate(struct exchange_plan *p, const void *const *ghost, void *src,
                         enum exchange_type t)
{
    CHECK((t == EXCHANGE_FLOAT && p->field.elem_size == sizeof(float)) ||
              (t == EXCHANGE_DOUBLE && p->field.elem_size == sizeof(double)),
          "exchange: accumulate type %d does not match the field's element size %zu", (int)t,
          p->field.elem_size);
    enum xop op = t == EXCHANGE_FLOAT ? XOP_ADD_FLOAT : XOP_ADD_DOUBLE;
    timer_start("exchange.accumulate");
    timer_add_bytes("exchange.accumulate", (double)transfer_send_total(&p->rev));
    transfer_post_recvs(&p->rev, p->send_buf, 1);
    for (int k = 1; k < p->n_ranks; k++) {
        int r = (p->rank + k) % p->n_ranks;
        pack(p, p->recv, p->recv_p0[r], p->recv_p0[r + 1], NULL, ghost,
             p->recv_buf + p->rev.send_off[r]);
        transfer_send(&p->rev, r, p->recv_buf, 1);
    }
    zero_owned(p, src);
    for (int r = 0; r < p->n_ranks; r++) {
        if (r == p->rank) {
            accumulate_self(p, ghost, src, op);
            continue;
        }
        transfer_wait_recv(&p->rev, r);
        unpack(p, p->send, p->send_p0[r], p->send_p0[r + 1], p->send_buf + p->rev.recv_off[r], src,
               NULL, op);
    }
    transfer_wait_sends(&p->rev);
    timer_stop("exchange.accumulate");
}
