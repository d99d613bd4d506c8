#include "mpi/paint.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "timer.h"

enum { PAINT_TAG_LO = 7101, PAINT_TAG_HI = 7102 };

struct paint_plan {
    MPI_Comm comm;
    struct decomp decomp;
    struct cic_slab slab;
    int n_fields;
    int prev, next;                  /**< owners of planes x0 - 1 and x0 + nx */
    int plane_count;                 /**< floats per plane */
    float *ghost[CIC_MAX_FIELDS][2]; /**< lo and hi ghost planes per field (readout) */
    double *edge[CIC_MAX_FIELDS]
                [4]; /**< double planes 0, 1, nx, nx + 1 (paint; [2] unused if nx = 1) */
    double *recv[2]; /**< planes received from prev and next (paint) */
    int n_threads;   /**< threads the scratch below serves */
    double *scratch; /**< n_threads n_fields double planes (paint) */
    int64_t *work;   /**< n_threads (2 nx + 3) key counts (paint) */
    int64_t *start;  /**< 2 nx + 4 offsets of the sort's keys (paint) */
    int64_t *bucket; /**< nx + 2 offsets of the planes' buckets of one painting (paint) */
    uint32_t *idx;   /**< cap_idx point indices in painting order (paint) */
    int64_t cap_idx;
    int64_t order_n;    /**< points of the painting order in idx (-1: none yet) */
    double order_shift; /**< and the shift they were sorted with */
    bool interlace;     /**< sorts are by half cell (paint_plan_interlace) */
    bool order_halves;  /**< the painting order in idx is by half cell */
};

/* Per-thread scratch for n_threads threads (kept when large enough). */
static void paint_threads_reserve(struct paint_plan *p, int n_threads)
{
    if (n_threads <= p->n_threads)
        return;
    lm_free(p->scratch);
    lm_free(p->work);
    size_t planes = 3 * (size_t)n_threads * (size_t)p->n_fields; /* head and two rolling planes */
    p->scratch = p->slab.nx > 0
                     ? lm_malloc("paint.accum", planes * (size_t)p->plane_count * sizeof(double))
                     : NULL;
    p->work = lm_malloc("paint.order",
                        (size_t)n_threads * (size_t)(2 * p->slab.nx + 3) * sizeof(int64_t));
    p->n_threads = n_threads;
}

/* The painting order has room for n points (kept when large enough). */
static void paint_order_reserve(struct paint_plan *p, int64_t n)
{
    CHECK(n < ((int64_t)1 << 32),
          "paint: %lld particles on one rank; at most 2^32 - 1 can be painted per rank (use more "
          "ranks)",
          (long long)n);
    if (n <= p->cap_idx)
        return;
    lm_free(p->idx);
    p->cap_idx = n + n / 8;
    p->idx = lm_malloc("paint.order", (size_t)p->cap_idx * sizeof(uint32_t));
}

/* Where the sort writes each point depends on the keys: the order is touched in an even split
 * over the threads. */
void paint_plan_reserve(struct paint_plan *p, int64_t n)
{
    paint_order_reserve(p, n);
    const int64_t cap = p->cap_idx;
    uint32_t *idx = p->idx;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < cap; i++)
        idx[i] = 0;
}

struct paint_plan *paint_plan_create(const struct fft_plan *fft, int n_fields, MPI_Comm comm)
{
    CHECK(fft_precision(fft) == FFT_PRECISION_FLOAT, "paint: the FFT plan must be float");
    CHECK(n_fields >= 1 && n_fields <= CIC_MAX_FIELDS, "paint: %d fields, expected 1 to %d",
          n_fields, CIC_MAX_FIELDS);
    const struct fft_layout *l = fft_layout(fft);
    struct paint_plan *p = lm_calloc("paint.plan", 1, sizeof *p);
    MPI_CHECK(MPI_Comm_dup(comm, &p->comm));
    decomp_create_slabs(&p->decomp, p->comm, l->n, l->rnx, l->rx0);
    struct cic_slab *s = &p->slab;
    for (int d = 0; d < 3; d++) {
        s->n[d] = l->n[d];
        s->box[d] = l->box[d];
    }
    s->x0 = l->rx0;
    s->nx = l->rnx;
    s->row = l->row;
    CHECK(cic_plane_size(s) < INT_MAX,
          "paint: a plane of %d x %lld floats is too large for one "
          "MPI message",
          s->n[1], (long long)s->row);
    p->plane_count = (int)cic_plane_size(s);
    p->n_fields = n_fields;
    p->prev = p->decomp.owner[0][box3_wrap(s->x0 - 1, s->n[0])];
    p->next = p->decomp.owner[0][box3_wrap(s->x0 + s->nx, s->n[0])];
    size_t bytes = (size_t)p->plane_count * sizeof(float);
    for (int f = 0; f < n_fields; f++)
        for (int g = 0; g < 2; g++)
            p->ghost[f][g] = lm_calloc("paint.ghost", 1, bytes);
    if (s->nx > 0) {
        size_t dbytes = (size_t)p->plane_count * sizeof(double);
        for (int f = 0; f < n_fields; f++)
            for (int e = 0; e < 4; e++)
                p->edge[f][e] = lm_malloc("paint.edge", dbytes);
        for (int g = 0; g < 2; g++)
            p->recv[g] = lm_malloc("paint.ghost", dbytes);
    }
    p->start = lm_malloc("paint.order", (size_t)(2 * s->nx + 4) * sizeof(int64_t));
    p->bucket = lm_malloc("paint.order", (size_t)(s->nx + 2) * sizeof(int64_t));
    p->order_n = -1;
    paint_threads_reserve(p, omp_get_max_threads());
    return p;
}

void paint_plan_destroy(struct paint_plan **plan)
{
    struct paint_plan *p = *plan;
    if (!p)
        return;
    for (int f = 0; f < p->n_fields; f++)
        for (int g = 0; g < 2; g++)
            lm_free(p->ghost[f][g]);
    for (int f = 0; f < p->n_fields; f++)
        for (int e = 0; e < 4; e++)
            lm_free(p->edge[f][e]);
    for (int g = 0; g < 2; g++)
        lm_free(p->recv[g]);
    lm_free(p->scratch);
    lm_free(p->work);
    lm_free(p->start);
    lm_free(p->bucket);
    lm_free(p->idx);
    decomp_destroy(&p->decomp);
    MPI_Comm_free(&p->comm);
    lm_free(p);
    *plan = NULL;
}

const struct decomp *paint_plan_decomp(const struct paint_plan *p) { return &p->decomp; }

void paint_plan_interlace(struct paint_plan *p) { p->interlace = true; }

size_t paint_plan_bytes_per_field(const struct paint_plan *p)
{
    return p->slab.nx > 0 ? 2 * (size_t)p->plane_count * sizeof(double) : 0;
}

static void make_fields(const struct paint_plan *p, int n_fields, float *const fields[],
                        struct cic_field *out)
{
    CHECK(n_fields >= 1 && n_fields <= p->n_fields, "paint: %d fields, the plan has %d", n_fields,
          p->n_fields);
    for (int f = 0; f < n_fields; f++)
        out[f] = (struct cic_field){fields[f], p->ghost[f][0], p->ghost[f][1]};
}

/* Ghost planes of the double accumulator -> owners: my lo ghost (edge 0) goes to prev, my hi
 * ghost (edge 3) to next; prev's hi ghost lands on my first owned plane (edge 1) and next's lo
 * ghost on my last (edge 2, or edge 1 when nx = 1), in that order. Needs nx > 0. */
static void ghost_accumulate(struct paint_plan *p, double *const edge[4])
{
    int n = p->plane_count;
    MPI_Request rq[4];
    MPI_CHECK(MPI_Irecv(p->recv[0], n, MPI_DOUBLE, p->prev, PAINT_TAG_HI, p->comm, &rq[0]));
    MPI_CHECK(MPI_Irecv(p->recv[1], n, MPI_DOUBLE, p->next, PAINT_TAG_LO, p->comm, &rq[1]));
    MPI_CHECK(MPI_Isend(edge[0], n, MPI_DOUBLE, p->prev, PAINT_TAG_LO, p->comm, &rq[2]));
    MPI_CHECK(MPI_Isend(edge[3], n, MPI_DOUBLE, p->next, PAINT_TAG_HI, p->comm, &rq[3]));
    MPI_CHECK(MPI_Waitall(4, rq, MPI_STATUSES_IGNORE));
    double *first = edge[1], *last = p->slab.nx == 1 ? edge[1] : edge[2];
    for (int i = 0; i < n; i++)
        first[i] += p->recv[0][i];
    for (int i = 0; i < n; i++)
        last[i] += p->recv[1][i];
}

/* Owners -> ghost planes: my lo ghost is prev's last plane, my hi ghost next's first plane. */
static void ghost_fill(struct paint_plan *p, const struct cic_field *f)
{
    int n = p->plane_count;
    const float *first = f->data, *last = f->data + (p->slab.nx - 1) * (int64_t)n;
    MPI_Request rq[4];
    MPI_CHECK(MPI_Irecv(f->lo, n, MPI_FLOAT, p->prev, PAINT_TAG_LO, p->comm, &rq[0]));
    MPI_CHECK(MPI_Irecv(f->hi, n, MPI_FLOAT, p->next, PAINT_TAG_HI, p->comm, &rq[1]));
    MPI_CHECK(MPI_Isend(first, n, MPI_FLOAT, p->prev, PAINT_TAG_HI, p->comm, &rq[2]));
    MPI_CHECK(MPI_Isend(last, n, MPI_FLOAT, p->next, PAINT_TAG_LO, p->comm, &rq[3]));
    MPI_CHECK(MPI_Waitall(4, rq, MPI_STATUSES_IGNORE));
}

static void round_plane(const double *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

/** dst = (float)src, then src = 0 (one pass: the rolling plane is ready for its next use). */
static void round_zero_plane(double *restrict src, float *restrict dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        dst[i] = (float)src[i];
        src[i] = 0;
    }
}

/** Plane P (0 .. nx + 1) of every field is complete in src: the four edge planes (0, 1, nx,
 *  nx + 1) are kept in double for the ghost exchange, the others rounded into the fields; src is
 *  left zeroed. */
static void plane_done(struct paint_plan *p, int n_fields, float *const fields[], int64_t P,
                       double *const src[])
{
    const int64_t nx = p->slab.nx, plane = p->plane_count;
    int e = P == 0 ? 0 : P == 1 ? 1 : P == nx + 1 ? 3 : P == nx ? 2 : -1;
    for (int f = 0; f < n_fields; f++) {
        if (e >= 0) {
            memcpy(p->edge[f][e], src[f], (size_t)plane * sizeof(double));
            memset(src[f], 0, (size_t)plane * sizeof(double));
        } else {
            round_zero_plane(src[f], fields[f] + (P - 1) * plane, plane);
        }
    }
}

/** Thread t's planes: its head (bucket b0's lower corners) and two rolling planes, per field. */
static void thread_planes(const struct paint_plan *p, int t, int n_fields, double *head[],
                          double *roll0[], double *roll1[])
{
    const size_t plane = (size_t)p->plane_count;
    double *base = p->scratch + (size_t)t * 3 * n_fields * plane;
    for (int f = 0; f < n_fields; f++) {
        head[f] = base + (size_t)f * plane;
        roll0[f] = base + (size_t)(n_fields + f) * plane;
        roll1[f] = base + (size_t)(2 * n_fields + f) * plane;
    }
}

static void zero_planes(const struct paint_plan *p, int n_fields, double *const a[])
{
    for (int f = 0; f < n_fields; f++)
        memset(a[f], 0, (size_t)p->plane_count * sizeof(double));
}

/** Bucket ranges of nt threads, balanced by particle count: thread t takes [cut[t], cut[t+1]). */
static void split_buckets(const int64_t *start, int64_t n_buckets, int nt, int64_t *cut)
{
    int64_t n = start[n_buckets] - start[0];
    cut[0] = 0;
    for (int t = 1; t < nt; t++) {
        int64_t b = cut[t - 1] + 1, goal = start[0] + n * t / nt;
        while (b < n_buckets - (nt - t) && start[b] < goal)
            b++;
        cut[t] = b;
    }
    cut[nt] = n_buckets;
}

/* Compute kernel. Plane P of the accumulator (0 .. nx + 1) is the sum, in this order, of the
 * lower corners of bucket P (its points in sorted order) and the upper corners of bucket P - 1:
 * an order fixed by the sort alone. Thread t takes buckets [b0, b1): it first sums the lower
 * corners of bucket b0 into its head; then, from b1 - 1 down to b0, each bucket's upper corners
 * complete plane b + 1 (which already holds the lower corners of bucket b + 1: the next thread's
 * head for b + 1 = b1) and its lower corners start plane b. Plane b0 is completed by thread t - 1
 * (thread 0's plane 0 has no upper corners: its head). Bucket b is idx[bucket[b] ..
 * bucket[b + 1]).
 * @return the number of points of the buckets not painted (their lower node is not the bucket's) */
static int64_t paint_planes(struct paint_plan *p, int n_fields, float *const fields[],
                            const struct cic_points *pts, double shift, int nt)
{
    const int64_t nb = p->slab.nx + 1; /* buckets with points: 0 .. nx */
    int64_t cut[nt + 1], n_other = 0;
#pragma omp parallel num_threads(nt) reduction(+ : n_other)
    {
        int n_t = omp_get_num_threads(), t = omp_get_thread_num();
        n_t = n_t < nb ? n_t : (int)nb;
#pragma omp single
        split_buckets(p->bucket, nb, n_t, cut);
        double *head[CIC_MAX_FIELDS] = {0}, *cur[CIC_MAX_FIELDS] = {0}, *nxt[CIC_MAX_FIELDS] = {0};
        if (t < n_t) {
            thread_planes(p, t, n_fields, head, cur, nxt);
            zero_planes(p, n_fields, head);
            (void)cic_paint_bucket(&p->slab, cut[t], p->idx, p->bucket, pts, shift, n_fields, head,
                                   NULL); /* its points are counted below */
        }
#pragma omp barrier
        if (t < n_t) {
            int64_t b0 = cut[t], b1 = cut[t + 1];
            if (t + 1 < n_t) {
                double *h[CIC_MAX_FIELDS], *r0[CIC_MAX_FIELDS], *r1[CIC_MAX_FIELDS];
                thread_planes(p, t + 1, n_fields, h, r0, r1);
                for (int f = 0; f < n_fields; f++)
                    memcpy(cur[f], h[f], (size_t)p->plane_count * sizeof(double));
            } else {
                zero_planes(p, n_fields, cur);
            }
            zero_planes(p, n_fields, nxt); /* plane_done leaves each completed plane zeroed */
            for (int64_t b = b1 - 1; b >= b0; b--) {
                n_other += cic_paint_bucket(&p->slab, b, p->idx, p->bucket, pts, shift, n_fields,
                                            b > b0 ? nxt : NULL, cur);
                plane_done(p, n_fields, fields, b + 1, cur);
                for (int f = 0; f < n_fields; f++) {
                    double *x = cur[f];
                    cur[f] = nxt[f];
                    nxt[f] = x;
                }
            }
            if (t == 0)
                plane_done(p, n_fields, fields, 0, head);
        }
    }
    return n_other;
}

/** Every point lies in this rank's slab of planes (n_out of n do not). */
static void check_inside(const struct paint_plan *p, int64_t n_out, int64_t n)
{
    CHECK(n_out == 0,
          "paint: %lld of %lld particles lie outside this rank's slab [%lld, %lld) of planes; "
          "they must be migrated to paint_plan_decomp first",
          (long long)n_out, (long long)n, (long long)p->slab.x0,
          (long long)(p->slab.x0 + p->slab.nx));
}

/** Sort the points by lower x node and half cell into the plan's painting order (kept for
 *  paint_execute_same_points). */
static void paint_order(struct paint_plan *p, const struct cic_points *pts, double shift, int nt)
{
    paint_order_reserve(p, pts->n);
    timer_start("paint.sort");
    int64_t n_out =
        cic_order_points(&p->slab, pts, shift, p->interlace, nt, p->work, p->idx, p->start);
    timer_stop("paint.sort");
    check_inside(p, n_out, pts->n);
    p->order_n = pts->n;
    p->order_shift = shift;
    p->order_halves = p->interlace;
}

/** Paint every plane in the plan's painting order at shift order_shift - half / 2 (half 0, or 1
 *  for an order by half cell), add the ghost planes in double and round the edges once (padding
 *  included: it is never painted, so it stays 0). The bucket of plane b (lower node x0 - 1 + b)
 *  at that shift is key b of the sort, or keys 2 b + half and 2 b + half + 1 of an order by half
 *  cell: with half = 1, the points in the upper half of cell b - 1 and those in the lower half of
 *  cell b. In an order by half cell a plane's points come in the same order at either shift:
 *  those in the lower half of their cell at the painting shift, then the others, each in point
 *  order; so painting at shift - 0.5 in the order of shift gives the mesh of a fresh sort at
 *  shift - 0.5 bit for bit. */
static void paint_in_order(struct paint_plan *p, int n_fields, float *const fields[],
                           const struct cic_points *pts, double shift, int half, int nt)
{
    const int64_t plane = p->plane_count, nx = p->slab.nx;
    const int hv = p->order_halves;
    for (int64_t b = 0; b <= nx + 1; b++)
        p->bucket[b] = p->start[(b << hv) + half];
    /* with half = 1 the points of key 0 (lower node x0 - 2 at the painting shift) are in no
       bucket, and the last bucket takes those of key 2 nx + 2 whose lower node is x0 + nx - 1 */
    int64_t n_out = half ? p->start[1] - p->start[0] : 0;
    if (nx > 0)
        n_out += paint_planes(p, n_fields, fields, pts, shift, nt);
    check_inside(p, n_out, pts->n);
    timer_stop("paint.cic");
    if (nx == 0)
        return;
    timer_start("paint.ghosts");
    for (int f = 0; f < n_fields; f++) {
        ghost_accumulate(p, p->edge[f]);
        round_plane(p->edge[f][1], fields[f], plane);
        if (nx > 1)
            round_plane(p->edge[f][2], fields[f] + (nx - 1) * plane, plane);
    }
    timer_stop("paint.ghosts");
}

/* Sort the points by lower x node, paint every plane of every field in double (threads take
 * ranges of planes; interior planes are rounded to float at once, the four edge planes wait), add
 * the ghost planes in double and round the edges once. */
void paint_execute(struct paint_plan *p, int n_fields, float *const fields[],
                   const struct cic_points *pts, double shift)
{
    CHECK(n_fields >= 1 && n_fields <= p->n_fields, "paint: %d fields, the plan has %d", n_fields,
          p->n_fields);
    int nt = omp_get_max_threads();
    timer_start("paint.cic");
    paint_threads_reserve(p, nt);
    paint_order(p, pts, shift, nt);
    paint_in_order(p, n_fields, fields, pts, shift, 0, nt);
}

void paint_execute_same_points(struct paint_plan *p, int n_fields, float *const fields[],
                               const struct cic_points *pts, double shift)
{
    CHECK(n_fields >= 1 && n_fields <= p->n_fields, "paint: %d fields, the plan has %d", n_fields,
          p->n_fields);
    const bool half = p->order_halves && shift == p->order_shift - 0.5 &&
                      2 * p->order_shift == floor(2 * p->order_shift);
    CHECK(p->order_n == pts->n && (shift == p->order_shift || half),
          "paint: %lld points at shift %g repainted in the order of %lld points at shift %g; "
          "paint them with paint_execute first (an order serves its shift and, on a plan made "
          "with paint_plan_interlace and for a multiple of 0.5, that shift - 0.5)",
          (long long)pts->n, shift, (long long)p->order_n, p->order_shift);
    int nt = omp_get_max_threads();
    timer_start("paint.cic");
    paint_threads_reserve(p, nt);
    paint_in_order(p, n_fields, fields, pts, shift, half, nt);
}

void paint_readout(struct paint_plan *p, int n_fields, float *const fields[],
                   const struct cic_points *pts, double shift, float *const out[])
{
    struct cic_field cf[CIC_MAX_FIELDS];
    make_fields(p, n_fields, fields, cf);
    timer_start("paint.ghosts");
    for (int f = 0; f < n_fields && p->slab.nx > 0; f++)
        ghost_fill(p, &cf[f]);
    timer_stop("paint.ghosts");
    timer_start("paint.readout");
    int64_t n_out = cic_readout(&p->slab, n_fields, cf, pts, shift, out);
    timer_stop("paint.readout");
    CHECK(n_out == 0,
          "paint: %lld of %lld particles lie outside this rank's slab [%lld, %lld) of planes; "
          "they must be migrated to paint_plan_decomp first",
          (long long)n_out, (long long)pts->n, (long long)p->slab.x0,
          (long long)(p->slab.x0 + p->slab.nx));
}
