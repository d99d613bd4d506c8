/* readout_grad — position derivative of the distributed CIC readout (readout_grad.h). */
#include "mpi/readout_grad.h"

#include "alloc.h"
#include "jerald_adjoint.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "timer.h"

enum { GRAD_TAG_LO = 7201, GRAD_TAG_HI = 7202 };

struct readout_grad_plan {
    MPI_Comm comm;
    struct cic_slab slab;
    int n_fields;
    int prev, next; /**< owners of planes x0 − 1 and x0 + nx */
    int plane;      /**< floats per plane */
    float *ghost[CIC_MAX_FIELDS][2];
};

struct readout_grad_plan *readout_grad_plan_create(const struct fft_plan *fft, int n_fields,
                                                   MPI_Comm comm)
{
    CHECK(n_fields >= 1 && n_fields <= CIC_MAX_FIELDS, "readout_grad: %d fields, expected 1 to %d",
          n_fields, CIC_MAX_FIELDS);
    const struct fft_layout *l = fft_layout(fft);
    struct readout_grad_plan *p = lm_calloc("readout_grad.plan", 1, sizeof *p);
    MPI_CHECK(MPI_Comm_dup(comm, &p->comm));
    struct decomp d;
    decomp_create_slabs(&d, p->comm, l->n, l->rnx, l->rx0);
    for (int a = 0; a < 3; a++) {
        p->slab.n[a] = l->n[a];
        p->slab.box[a] = l->box[a];
    }
    p->slab.x0 = l->rx0;
    p->slab.nx = l->rnx;
    p->slab.row = l->row;
    p->plane = (int)cic_plane_size(&p->slab);
    p->prev = d.owner[0][box3_wrap(p->slab.x0 - 1, p->slab.n[0])];
    p->next = d.owner[0][box3_wrap(p->slab.x0 + p->slab.nx, p->slab.n[0])];
    decomp_destroy(&d);
    p->n_fields = n_fields;
    for (int f = 0; f < n_fields; f++)
        for (int g = 0; g < 2; g++)
            p->ghost[f][g] = lm_calloc("readout_grad.ghost", (size_t)p->plane, sizeof(float));
    return p;
}

void readout_grad_plan_destroy(struct readout_grad_plan **plan)
{
    struct readout_grad_plan *p = *plan;
    if (!p)
        return;
    for (int f = 0; f < p->n_fields; f++)
        for (int g = 0; g < 2; g++)
            lm_free(p->ghost[f][g]);
    MPI_Comm_free(&p->comm);
    lm_free(p);
    *plan = NULL;
}

/* Owners -> ghost planes: my lo ghost is prev's last plane, my hi ghost next's first plane. */
static void ghost_fill(struct readout_grad_plan *p, const struct cic_field *f)
{
    int n = p->plane;
    const float *first = f->data, *last = f->data + (p->slab.nx - 1) * (int64_t)n;
    MPI_Request rq[4];
    MPI_CHECK(MPI_Irecv(f->lo, n, MPI_FLOAT, p->prev, GRAD_TAG_LO, p->comm, &rq[0]));
    MPI_CHECK(MPI_Irecv(f->hi, n, MPI_FLOAT, p->next, GRAD_TAG_HI, p->comm, &rq[1]));
    MPI_CHECK(MPI_Isend(first, n, MPI_FLOAT, p->prev, GRAD_TAG_HI, p->comm, &rq[2]));
    MPI_CHECK(MPI_Isend(last, n, MPI_FLOAT, p->next, GRAD_TAG_LO, p->comm, &rq[3]));
    MPI_CHECK(MPI_Waitall(4, rq, MPI_STATUSES_IGNORE));
}

void readout_grad_execute(struct readout_grad_plan *p, int n_fields, float *const fields[],
                          const float *const coef[], const struct cic_points *pts,
                          float *const out[3])
{
    CHECK(n_fields >= 1 && n_fields <= p->n_fields, "readout_grad: %d fields, the plan has %d",
          n_fields, p->n_fields);
    struct cic_field cf[CIC_MAX_FIELDS];
    for (int f = 0; f < n_fields; f++)
        cf[f] = (struct cic_field){fields[f], p->ghost[f][0], p->ghost[f][1]};
    timer_start("readout_grad.ghosts");
    for (int f = 0; f < n_fields && p->slab.nx > 0; f++)
        ghost_fill(p, &cf[f]);
    timer_stop("readout_grad.ghosts");
    timer_start("readout_grad.cic");
    int64_t n_out = jerald_cic_readout_grad(&p->slab, n_fields, cf, coef, pts, out);
    timer_stop("readout_grad.cic");
    CHECK(n_out == 0,
          "readout_grad: %lld of %lld particles lie outside this rank's slab [%lld, %lld) of "
          "planes; they must be migrated to the paint decomposition first",
          (long long)n_out, (long long)pts->n, (long long)p->slab.x0,
          (long long)(p->slab.x0 + p->slab.nx));
}
