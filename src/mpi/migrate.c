/*
 * migrate — particle migration plans (see migrate.h).
 */
#include "mpi/migrate.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/transfer.h"
#include "timer.h"

#include <string.h>

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "counts travel as MPI_UINT64_T");

struct migrate_plan {
    MPI_Comm comm;
    int rank, n_ranks;
    unsigned fields; /* fields of the store (all travel) */
    size_t rec;      /* bytes per particle */
    int64_t n_in;    /* p->n at the last scan */
    int *dest;       /* n_in destination ranks */
    int64_t *order;  /* leavers grouped by destination, ascending index within */
    int64_t n_send, n_recv, n_keep;
    int64_t first_leaver; /* smallest index of a leaver (n_in when none) */
    struct transfer t;    /* items = particles */
    char *send_buf, *recv_buf;
    size_t *cnt;                                     /* 2 n_ranks: send and receive counts */
    int64_t cap_dest, cap_order, cap_send, cap_recv; /* capacities kept between scans */
};

/* Grow *buf (label) to hold n items of size bytes, keeping it when it is large enough. */
static void *grow(void *buf, int64_t *cap, int64_t n, size_t size, const char *label)
{
    if (n <= *cap && buf)
        return buf;
    lm_free(buf);
    *cap = n + n / 8 + 1;
    return lm_malloc(label, (size_t)*cap * size);
}

/* Destinations of every particle and per-rank counts (this rank's own count is n_keep); threads
 * take particles, and the counts are integers, so they do not depend on the threads. */
static void find_destinations(struct migrate_plan *m, const struct decomp *d,
                              const struct particles *p, double box_size, size_t *send_cnt)
{
    int *dest = m->dest;
    int64_t first = p->n;
    const int n_ranks = m->n_ranks;
#pragma omp parallel for schedule(static) reduction(+ : send_cnt[:n_ranks]) reduction(min : first)
    for (int64_t i = 0; i < p->n; i++) {
        const float x[3] = {p->x[0][i], p->x[1][i], p->x[2][i]};
        int r = decomp_owner_pos(d, x, box_size);
        dest[i] = r;
        send_cnt[r]++;
        if (r != m->rank && i < first)
            first = i;
    }
    m->n_keep = (int64_t)send_cnt[m->rank];
    send_cnt[m->rank] = 0;
    m->n_send = p->n - m->n_keep;
    m->first_leaver = first;
}

/* Leavers grouped by destination rank (a stable counting sort). */
static void sort_leavers(struct migrate_plan *m, const size_t *send_cnt)
{
    int64_t *at = lm_malloc("migrate.tmp", (size_t)(m->n_ranks + 1) * sizeof(int64_t));
    at[0] = 0;
    for (int r = 0; r < m->n_ranks; r++)
        at[r + 1] = at[r] + (int64_t)send_cnt[r];
    m->order = grow(m->order, &m->cap_order, m->n_send, sizeof(int64_t), "migrate.order");
    for (int64_t i = m->first_leaver; i < m->n_in; i++)
        if (m->dest[i] != m->rank)
            m->order[at[m->dest[i]]++] = i;
    lm_free(at);
}

/* Wrap p, find every destination, exchange the counts and size the buffers, reusing the plan's
 * allocations when they are large enough. */
static void migrate_scan(struct migrate_plan *m, const struct decomp *d, struct particles *p,
                         double box_size)
{
    m->n_in = p->n;
    particles_wrap(p, box_size);
    m->dest = grow(m->dest, &m->cap_dest, p->n, sizeof(int), "migrate.dest");
    size_t *cnt = m->cnt, *rcnt = cnt + m->n_ranks;
    memset(cnt, 0, 2 * (size_t)m->n_ranks * sizeof *cnt);
    find_destinations(m, d, p, box_size, cnt);
    sort_leavers(m, cnt);
    MPI_CHECK(MPI_Alltoall(cnt, 1, MPI_UINT64_T, rcnt, 1, MPI_UINT64_T, m->comm));
    transfer_free(&m->t);
    transfer_init(&m->t, m->comm, cnt, rcnt, m->rec);
    m->n_recv = (int64_t)transfer_recv_total(&m->t);
    m->send_buf = grow(m->send_buf, &m->cap_send, m->n_send, m->rec, "migrate.buffers");
    m->recv_buf = grow(m->recv_buf, &m->cap_recv, m->n_recv, m->rec, "migrate.buffers");
    particles_reserve(p, m->n_keep + m->n_recv);
}

struct migrate_plan *migrate_plan_create(const struct decomp *d, struct particles *p,
                                         double box_size)
{
    CHECK(p->fields & PARTICLES_POS, "migrate: the particle store has no positions");
    struct migrate_plan *m = lm_calloc("migrate.plan", 1, sizeof *m);
    MPI_CHECK(MPI_Comm_dup(d->comm, &m->comm));
    m->rank = comm_rank(m->comm);
    m->n_ranks = comm_size(m->comm);
    m->fields = p->fields;
    m->rec = particles_record_bytes(p->fields);
    m->cnt = lm_malloc("migrate.counts", 2 * (size_t)m->n_ranks * sizeof(size_t));
    migrate_scan(m, d, p, box_size);
    return m;
}

void migrate_plan_update(struct migrate_plan *m, const struct decomp *d, struct particles *p,
                         double box_size)
{
    CHECK(p->fields == m->fields && comm_size(d->comm) == m->n_ranks,
          "migrate: the plan was made for fields 0x%x on %d ranks, not 0x%x on %d", m->fields,
          m->n_ranks, p->fields, comm_size(d->comm));
    migrate_scan(m, d, p, box_size);
}

/* Move the stayers to the front, keeping their order, column by column. */
static void compact_stayers(const struct migrate_plan *m, struct particles *p)
{
    struct particles_column cols[PARTICLES_MAX_COLUMNS];
    int n = particles_columns(p, m->fields, cols);
    for (int c = 0; c < n; c++) {
        char *a = cols[c].data;
        size_t es = cols[c].elem_size;
        int64_t k = m->first_leaver; /* the stayers before the first leaver do not move */
        for (int64_t i = k; i < m->n_in; i++)
            if (m->dest[i] == m->rank) {
                if (k != i)
                    memcpy(a + (size_t)k * es, a + (size_t)i * es, es);
                k++;
            }
    }
}

void migrate_execute(struct migrate_plan *m, struct particles *p)
{
    CHECK(p->n == m->n_in && p->fields == m->fields,
          "migrate: the particle store changed between plan and execution");
    timer_start("migrate");
    timer_add_bytes("migrate", (double)m->n_send * (double)m->rec);
    transfer_post_recvs(&m->t, m->recv_buf, m->rec);
    for (int k = 1; k < m->n_ranks; k++) {
        int r = (m->rank + k) % m->n_ranks;
        size_t o = m->t.send_off[r], cnt = m->t.send_off[r + 1] - o;
        particles_pack(p, m->fields, m->order + o, 0, (int64_t)cnt, m->send_buf + o * m->rec);
        transfer_send(&m->t, r, m->send_buf, m->rec);
    }
    compact_stayers(m, p);
    for (int r = 0; r < m->n_ranks; r++) {
        size_t o = m->t.recv_off[r], cnt = m->t.recv_off[r + 1] - o;
        if (cnt == 0)
            continue;
        transfer_wait_recv(&m->t, r);
        particles_unpack(p, m->fields, m->n_keep + (int64_t)o, (int64_t)cnt,
                         m->recv_buf + o * m->rec);
    }
    p->n = m->n_keep + m->n_recv;
    transfer_wait_sends(&m->t);
    timer_stop("migrate");
}

int64_t migrate_plan_n_send(const struct migrate_plan *m) { return m->n_send; }
int64_t migrate_plan_n_recv(const struct migrate_plan *m) { return m->n_recv; }
int64_t migrate_plan_n_keep(const struct migrate_plan *m) { return m->n_keep; }

void migrate_plan_destroy(struct migrate_plan **mp)
{
    if (!mp || !*mp)
        return;
    struct migrate_plan *m = *mp;
    transfer_free(&m->t);
    lm_free(m->dest);
    lm_free(m->order);
    lm_free(m->send_buf);
    lm_free(m->recv_buf);
    lm_free(m->cnt);
    MPI_CHECK(MPI_Comm_free(&m->comm));
    lm_free(m);
    *mp = NULL;
}

void migrate_particles(const struct decomp *d, struct particles *p, double box_size)
{
    struct migrate_plan *m = migrate_plan_create(d, p, box_size);
    migrate_execute(m, p);
    migrate_plan_destroy(&m);
}
