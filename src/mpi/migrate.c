/*
 * migrate — particle migration plans (see migrate.h).
 */
#include "mpi/migrate.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/transfer.h"
#include "timer.h"

#include <stdbool.h>
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

/** Particles whose cells are tested at once (a vectorisable loop). */
enum { MIGRATE_BLOCK = 256 };

/* Compute kernel: stay[k] &= the cell along axis a of particles x[0 .. m) lies in [lo, hi), the
 * cells computed as decomp_cell_scaled does (one periodic wrap: a position further out fails the
 * test, and takes the exact path of find_destinations). */
static void block_in_range(const float *restrict x, int m, int n, double scale, int64_t lo,
                           int64_t hi, unsigned char *restrict stay)
{
    for (int k = 0; k < m; k++) {
        double u = x[k] * scale;
        int64_t i = (int64_t)u;
        i -= (double)i > u;
        i = i < 0 ? i + n : i >= n ? i - n : i;
        stay[k] &= i >= lo && i < hi;
    }
}

/* Compute kernel: destinations of every particle and per-rank counts (this rank's own count is
 * n_keep). Threads take blocks of particles; per block, whether each particle's cell lies in this
 * rank's box is tested axis by axis in vectorisable loops (only the axes the decomposition
 * splits), and the owner of a particle that leaves is then found exactly (decomp_owner_pos, with
 * the scales n / box_size computed once). The counts are integers: they do not depend on the
 * threads. */
static void find_destinations(struct migrate_plan *m, const struct decomp *d,
                              const struct particles *p, double box_size, size_t *send_cnt)
{
    int *dest = m->dest;
    int64_t first = p->n;
    const int n_ranks = m->n_ranks, rank = m->rank;
    const int n[3] = {d->n[0], d->n[1], d->n[2]};
    const double scale[3] = {(double)n[0] / box_size, (double)n[1] / box_size,
                             (double)n[2] / box_size};
    const int64_t np = p->n;
#pragma omp parallel for schedule(static) reduction(+ : send_cnt[:n_ranks]) reduction(min : first)
    for (int64_t i0 = 0; i0 < np; i0 += MIGRATE_BLOCK) {
        const int len = np - i0 < MIGRATE_BLOCK ? (int)(np - i0) : MIGRATE_BLOCK;
        unsigned char stay[MIGRATE_BLOCK];
        memset(stay, 1, sizeof stay);
        for (int a = 0; a < 3; a++)
            if (d->dims[a] > 1)
                block_in_range(p->x[a] + i0, len, n[a], scale[a], d->box.lo[a], d->box.hi[a], stay);
        for (int k = 0; k < len; k++) {
            int64_t i = i0 + k;
            int r = rank;
            if (!stay[k]) {
                r = decomp_owner_cell(d, decomp_cell_scaled(p->x[0][i], n[0], scale[0]),
                                      decomp_cell_scaled(p->x[1][i], n[1], scale[1]),
                                      decomp_cell_scaled(p->x[2][i], n[2], scale[2]));
                if (r != rank && i < first)
                    first = i;
            }
            dest[i] = r;
            send_cnt[r]++;
        }
    }
    m->n_keep = (int64_t)send_cnt[rank];
    send_cnt[rank] = 0;
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

/* The destinations are touched in an even split over the threads, as find_destinations scans
 * them. */
void migrate_plan_reserve(struct migrate_plan *m, int64_t n)
{
    m->dest = grow(m->dest, &m->cap_dest, n, sizeof(int), "migrate.dest");
    int *dest = m->dest;
    const int64_t cap = m->cap_dest;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < cap; i++)
        dest[i] = 0;
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

/** The end of the run, from i, of particles that stay on this rank (stay) or leave it (!stay). */
static int64_t run_end(const struct migrate_plan *m, int64_t i, bool stay)
{
    while (i < m->n_in && (m->dest[i] == m->rank) == stay)
        i++;
    return i;
}

/* Move the stayers to the front, keeping their order: each run of stayers after the first leaver
 * moves down at once, column by column (leavers are few and come in runs: the particles that
 * crossed a slab face). */
static void compact_stayers(const struct migrate_plan *m, struct particles *p)
{
    struct particles_column cols[PARTICLES_MAX_COLUMNS];
    int n = particles_columns(p, m->fields, cols);
    int64_t k = m->first_leaver; /* the stayers before the first leaver do not move */
    for (int64_t i = m->first_leaver; i < m->n_in;) {
        int64_t a = run_end(m, i, false), b = run_end(m, a, true);
        for (int c = 0; c < n && b > a; c++) {
            char *d = cols[c].data;
            size_t es = cols[c].elem_size;
            memmove(d + (size_t)k * es, d + (size_t)a * es, (size_t)(b - a) * es);
        }
        k += b - a;
        i = b;
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
