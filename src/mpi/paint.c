#include "mpi/paint.h"

#include <limits.h>
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
    double *accum;                   /**< [nx + 2] planes: ghost lo, owned, ghost hi (paint) */
    double *recv[2];                 /**< planes received from prev and next (paint) */
};

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
        p->accum = lm_malloc("paint.accum", (size_t)(s->nx + 2) * dbytes);
        for (int g = 0; g < 2; g++)
            p->recv[g] = lm_malloc("paint.ghost", dbytes);
    }
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
    for (int g = 0; g < 2; g++)
        lm_free(p->recv[g]);
    lm_free(p->accum);
    decomp_destroy(&p->decomp);
    MPI_Comm_free(&p->comm);
    lm_free(p);
    *plan = NULL;
}

const struct decomp *paint_plan_decomp(const struct paint_plan *p) { return &p->decomp; }

const struct cic_slab *paint_plan_slab(const struct paint_plan *p) { return &p->slab; }

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

/* Ghost planes of the double accumulator -> owners: my lo ghost (plane 0) goes to prev, my hi
 * ghost (plane nx + 1) to next; prev's hi ghost lands on my first owned plane (1) and next's lo
 * ghost on my last (nx). Needs nx > 0. */
static void ghost_accumulate(struct paint_plan *p)
{
    int n = p->plane_count;
    int64_t nx = p->slab.nx;
    double *acc = p->accum;
    MPI_Request rq[4];
    MPI_CHECK(MPI_Irecv(p->recv[0], n, MPI_DOUBLE, p->prev, PAINT_TAG_HI, p->comm, &rq[0]));
    MPI_CHECK(MPI_Irecv(p->recv[1], n, MPI_DOUBLE, p->next, PAINT_TAG_LO, p->comm, &rq[1]));
    MPI_CHECK(MPI_Isend(acc, n, MPI_DOUBLE, p->prev, PAINT_TAG_LO, p->comm, &rq[2]));
    MPI_CHECK(MPI_Isend(acc + (nx + 1) * n, n, MPI_DOUBLE, p->next, PAINT_TAG_HI, p->comm, &rq[3]));
    MPI_CHECK(MPI_Waitall(4, rq, MPI_STATUSES_IGNORE));
    double *first = acc + n, *last = acc + nx * n;
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

/* One field at a time: zero the double accumulator, paint, add the ghosts in double, round each
 * owned node once to float (padding included: it is never painted, so it stays 0). */
void paint_execute(struct paint_plan *p, int n_fields, float *const fields[],
                   const struct cic_points *pts, double shift)
{
    CHECK(n_fields >= 1 && n_fields <= p->n_fields, "paint: %d fields, the plan has %d", n_fields,
          p->n_fields);
    const int64_t plane = p->plane_count, nx = p->slab.nx, owned = nx * plane;
    for (int f = 0; f < n_fields; f++) {
        timer_start("paint.cic");
        if (nx > 0)
            memset(p->accum, 0, (size_t)(nx + 2) * (size_t)plane * sizeof(double));
        int64_t n_out = cic_paint_double(&p->slab, p->accum, f, pts, shift);
        timer_stop("paint.cic");
        CHECK(n_out == 0,
              "paint: %lld of %lld particles lie outside this rank's slab [%lld, %lld) of planes; "
              "they must be migrated to paint_plan_decomp first",
              (long long)n_out, (long long)pts->n, (long long)p->slab.x0,
              (long long)(p->slab.x0 + p->slab.nx));
        if (nx == 0)
            continue;
        timer_start("paint.ghosts");
        ghost_accumulate(p);
        timer_stop("paint.ghosts");
        timer_start("paint.cic");
        const double *src = p->accum + plane;
        float *dst = fields[f];
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < owned; i++)
            dst[i] = (float)src[i];
        timer_stop("paint.cic");
    }
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
