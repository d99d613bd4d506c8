/*
 * migrate_ghost — CIC ghost plans: copies of boundary particles to the ranks owning their other
 * CIC nodes, and the reverse sum.
 */
#include "mpi/migrate.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/transfer.h"
#include "timer.h"

#include <string.h>

struct ghost_plan {
    MPI_Comm comm;
    int rank, n_ranks;
    unsigned fields;     /* fields sent by ghost_plan_fill */
    size_t rec_fields;   /* their bytes per particle */
    size_t max_bytes;    /* largest record of any fill or reduce */
    int64_t n_src;       /* p->n at creation */
    int64_t *copy_idx;   /* local particle of each copy, grouped by destination rank */
    struct transfer fwd; /* copies -> ghosts (items = particles) */
    struct transfer rev; /* ghosts -> copies */
    char *send_buf;      /* n_copies * max_bytes */
    char *recv_buf;      /* n_ghosts * rec_fields */
    struct particles *ghosts;
};

/* Ranks other than this one owning one of the 8 CIC nodes of particle i; returns their number
 * (at most 7). O(1): the owner tables are read only when a +1 node leaves this rank's box. */
static int ghost_dests(const struct decomp *d, const struct particles *p, int64_t i,
                       double box_size, int out[7])
{
    int64_t c[3];
    bool edge = false;
    for (int a = 0; a < 3; a++) {
        c[a] = decomp_cell_index(p->x[a][i], d->n[a], box_size);
        bool whole = d->box.lo[a] == 0 && d->box.hi[a] == d->n[a];
        edge = edge || (!whole && c[a] + 1 >= d->box.hi[a]);
    }
    CHECK(decomp_owner_cell(d, c[0], c[1], c[2]) == d->rank,
          "ghosts: particle %lld at (%g, %g, %g) lies outside this rank's box: migrate first",
          (long long)i, p->x[0][i], p->x[1][i], p->x[2][i]);
    if (!edge)
        return 0;
    int n = 0;
    for (int s = 1; s < 8; s++) {
        int r = decomp_owner_cell(d, c[0] + (s >> 2), c[1] + ((s >> 1) & 1), c[2] + (s & 1));
        bool seen = r == d->rank;
        for (int q = 0; q < n && !seen; q++)
            seen = out[q] == r;
        if (!seen)
            out[n++] = r;
    }
    return n;
}

/* Copies per destination rank, then copy_idx grouped by destination (ascending particle index). */
static void build_copies(struct ghost_plan *g, const struct decomp *d, const struct particles *p,
                         double box_size, size_t *cnt)
{
    int dst[7];
    for (int64_t i = 0; i < p->n; i++)
        for (int q = 0, n = ghost_dests(d, p, i, box_size, dst); q < n; q++)
            cnt[dst[q]]++;
    int64_t *at = lm_malloc("ghost.tmp", (size_t)(g->n_ranks + 1) * sizeof(int64_t));
    at[0] = 0;
    for (int r = 0; r < g->n_ranks; r++)
        at[r + 1] = at[r] + (int64_t)cnt[r];
    g->copy_idx = lm_malloc("ghost.index", (size_t)(at[g->n_ranks] + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < p->n; i++)
        for (int q = 0, n = ghost_dests(d, p, i, box_size, dst); q < n; q++)
            g->copy_idx[at[dst[q]]++] = i;
    lm_free(at);
}

struct ghost_plan *ghost_plan_create(const struct decomp *d, const struct particles *p,
                                     double box_size, unsigned fields, size_t value_bytes)
{
    CHECK((fields & PARTICLES_POS) && (fields & ~p->fields) == 0,
          "ghosts: fields 0x%x must include positions and be held by the store (0x%x)", fields,
          p->fields);
    struct ghost_plan *g = lm_calloc("ghost.plan", 1, sizeof *g);
    MPI_CHECK(MPI_Comm_dup(d->comm, &g->comm));
    g->rank = comm_rank(g->comm);
    g->n_ranks = comm_size(g->comm);
    g->fields = fields;
    g->rec_fields = particles_record_bytes(fields);
    g->max_bytes = value_bytes > g->rec_fields ? value_bytes : g->rec_fields;
    g->n_src = p->n;
    size_t *cnt = lm_calloc("ghost.tmp", 2 * (size_t)g->n_ranks, sizeof(size_t));
    size_t *rcnt = cnt + g->n_ranks;
    build_copies(g, d, p, box_size, cnt);
    MPI_CHECK(MPI_Alltoall(cnt, 1, MPI_UINT64_T, rcnt, 1, MPI_UINT64_T, g->comm));
    transfer_init(&g->fwd, g->comm, cnt, rcnt, g->max_bytes);
    transfer_init_reverse(&g->rev, &g->fwd);
    lm_free(cnt);
    g->send_buf = lm_malloc("ghost.buffers", transfer_send_total(&g->fwd) * g->max_bytes);
    g->recv_buf = lm_malloc("ghost.buffers", transfer_recv_total(&g->fwd) * g->rec_fields);
    g->ghosts = particles_create(fields, (int64_t)transfer_recv_total(&g->fwd));
    g->ghosts->n = g->ghosts->cap;
    return g;
}

int64_t ghost_plan_n_ghosts(const struct ghost_plan *g)
{
    return (int64_t)transfer_recv_total(&g->fwd);
}

int64_t ghost_plan_n_copies(const struct ghost_plan *g)
{
    return (int64_t)transfer_send_total(&g->fwd);
}

const struct particles *ghost_plan_ghosts(const struct ghost_plan *g) { return g->ghosts; }

void ghost_plan_fill(struct ghost_plan *g, const struct particles *p)
{
    CHECK(p->n == g->n_src, "ghosts: the particle store changed since the plan was made");
    const struct transfer *t = &g->fwd;
    timer_start("ghost.fill");
    timer_add_bytes("ghost.fill", (double)transfer_send_total(t) * (double)g->rec_fields);
    transfer_post_recvs(&g->fwd, g->recv_buf, g->rec_fields);
    for (int k = 1; k < g->n_ranks; k++) {
        int r = (g->rank + k) % g->n_ranks;
        size_t o = t->send_off[r], n = t->send_off[r + 1] - o;
        particles_pack(p, g->fields, g->copy_idx + o, 0, (int64_t)n,
                       g->send_buf + o * g->rec_fields);
        transfer_send(&g->fwd, r, g->send_buf, g->rec_fields);
    }
    for (int r = 0; r < g->n_ranks; r++) {
        size_t o = t->recv_off[r], n = t->recv_off[r + 1] - o;
        if (n == 0)
            continue;
        transfer_wait_recv(&g->fwd, r);
        particles_unpack(g->ghosts, g->fields, (int64_t)o, (int64_t)n,
                         g->recv_buf + o * g->rec_fields);
    }
    transfer_wait_sends(&g->fwd);
    timer_stop("ghost.fill");
}

void ghost_plan_fill_values(struct ghost_plan *g, const void *values, void *ghost_values,
                            size_t bytes)
{
    CHECK(bytes <= g->max_bytes, "ghosts: records of %zu bytes, the plan was made for %zu", bytes,
          g->max_bytes);
    const struct transfer *t = &g->fwd;
    timer_start("ghost.fill");
    timer_add_bytes("ghost.fill", (double)transfer_send_total(t) * (double)bytes);
    /* ghosts arrive in ghost order, so the receive buffer is ghost_values itself */
    transfer_post_recvs(&g->fwd, ghost_values, bytes);
    for (int k = 1; k < g->n_ranks; k++) {
        int r = (g->rank + k) % g->n_ranks;
        for (size_t q = t->send_off[r]; q < t->send_off[r + 1]; q++)
            memcpy(g->send_buf + q * bytes, (const char *)values + g->copy_idx[q] * bytes, bytes);
        transfer_send(&g->fwd, r, g->send_buf, bytes);
    }
    for (int r = 0; r < g->n_ranks; r++)
        transfer_wait_recv(&g->fwd, r);
    transfer_wait_sends(&g->fwd);
    timer_stop("ghost.fill");
}

/* values[copy_idx[q]] += in[q] for the copies [q0, q1) (n_comp elements of type t each). */
static void add_back(const struct ghost_plan *g, size_t q0, size_t q1, const char *in, void *values,
                     int n_comp, enum exchange_type t)
{
    for (size_t q = q0; q < q1; q++) {
        int64_t i = g->copy_idx[q];
        for (int c = 0; c < n_comp; c++) {
            if (t == EXCHANGE_FLOAT)
                ((float *)values)[i * n_comp + c] +=
                    ((const float *)(const void *)in)[q * n_comp + c];
            else
                ((double *)values)[i * n_comp + c] +=
                    ((const double *)(const void *)in)[q * n_comp + c];
        }
    }
}

void ghost_plan_reduce(struct ghost_plan *g, const void *ghost_values, void *values, int n_comp,
                       enum exchange_type t)
{
    size_t bytes = (size_t)n_comp * (t == EXCHANGE_FLOAT ? sizeof(float) : sizeof(double));
    CHECK(n_comp >= 1 && bytes <= g->max_bytes,
          "ghosts: reduce of %d components (%zu bytes), the plan was made for %zu", n_comp, bytes,
          g->max_bytes);
    timer_start("ghost.reduce");
    timer_add_bytes("ghost.reduce", (double)transfer_send_total(&g->rev) * (double)bytes);
    transfer_post_recvs(&g->rev, g->send_buf, bytes);
    for (int k = 1; k < g->n_ranks; k++)
        transfer_send(&g->rev, (g->rank + k) % g->n_ranks, ghost_values, bytes);
    for (int r = 0; r < g->n_ranks; r++) {
        size_t q0 = g->rev.recv_off[r], q1 = g->rev.recv_off[r + 1];
        if (q1 == q0)
            continue;
        transfer_wait_recv(&g->rev, r);
        add_back(g, q0, q1, g->send_buf, values, n_comp, t);
    }
    transfer_wait_sends(&g->rev);
    timer_stop("ghost.reduce");
}

void ghost_plan_destroy(struct ghost_plan **gp)
{
    if (!gp || !*gp)
        return;
    struct ghost_plan *g = *gp;
    transfer_free(&g->fwd);
    transfer_free(&g->rev);
    lm_free(g->copy_idx);
    lm_free(g->send_buf);
    lm_free(g->recv_buf);
    particles_destroy(&g->ghosts);
    MPI_CHECK(MPI_Comm_free(&g->comm));
    lm_free(g);
    *gp = NULL;
}
