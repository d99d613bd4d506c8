/*
 * stage_bias_fit — `lemur bias-fit`: trains the Lagrangian-bias network (Wu, Muñoz & Eisenstein
 * 2023, sec. 2.3) on a halo catalogue.
 *
 * Inputs: the linear field (bias.field, else output.dir/ic_field.hdf5), the final particles with
 * IDs (bias.input, else the run's snapshot) and the halo catalogue (bias.fit.catalogue, else
 * output.dir/fof_tab.hdf5; Gadget-4 fof_tab layout). Phases:
 *   features   at the scales of bias.scales; their covariance makes the orthogonalisation;
 *   target     haloes of mass >= bias.fit.min_mass, mass-weighted, NGP on the training mesh
 *              (bias.fit.n_mesh³): 1 + δ_true = M_cell / ⟨M_cell⟩;
 *   sampling   a fixed fraction bias.fit.subsample of the particles (a hash of ID and seed), moved
 *              to the rank of their cell, with θ_in fetched from their Lagrangian sites;
 *   batches    cells drawn into n_b = round(N_sampled / bias.fit.batch_particles) fixed sets (a
 *              hash of cell and seed);
 *   training   bias.fit.epochs epochs of Adam (src/bias_fit_plan.h), from PyTorch's initial law
 *              (seeded) or from the weights of bias.fit.init.
 * Writes the model file bias.fit.output (else output.dir/bias_model.hdf5) with the loss per epoch,
 * and bias_fit_loss.txt under output.dir.
 */
#include "stage_bias.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bias.h"
#include "bias_fit_plan.h"
#include "bias_plan.h"
#include "mpi/bias_io.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/lagrangian.h"
#include "mpi/migrate.h"
#include "mpi/params_load.h"
#include "mpi/snapshot.h"
#include "run.h"
#include "timer.h"

/* The training set being built, and the arrays behind struct bias_fit_data. */
struct fit_set {
    struct bias_fit_data d;
    float *x;
    int64_t *cell, *start;
    double *delta_true, *empty, *n_batch;
    int n_t;           /* training mesh side */
    struct decomp dec; /* its slabs */
};

static int train_mesh(const struct params *p)
{
    return (int)(p->bias.fit.n_mesh > 0 ? p->bias.fit.n_mesh
                                        : (p->box.n / 2 > 0 ? p->box.n / 2 : 1));
}

static bool fit_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    int ns = p->bias.scales.n, n = train_mesh(p), nn[3] = {n, n, n};
    if (ns < 1 || ns > BIAS_MAX_SCALES)
        lm_err_set(err, "bias.scales: %d scales; expected 1 ... %d", ns, BIAS_MAX_SCALES);
    else
        fft_check_size(nn, "bias.fit.n_mesh", err);
    return comm_agree_soft(comm, err);
}

/* Features of the linear field, the orthogonalisation into m, θ_in of every local site. */
static float *site_inputs(struct run *r, struct bias_model *m, struct fft_layout *layout,
                          struct lm_err *err)
{
    struct ic_fields own;
    const struct ic_fields *field;
    if (!stage_bias_load_field(r, &own, &field, err))
        return NULL;
    struct bias_features *bf = bias_features_create(field, m->n_scales, m->scales, r->comm);
    stage_bias_free_field(&own);
    double cov[9 * BIAS_MAX_SCALES * BIAS_MAX_SCALES];
    bias_features_cov(bf, cov, r->comm);
    float *in = NULL;
    if (bias_orth_from_cov(m, cov, err))
        in = bias_features_input(bf, m);
    *layout = bf->layout;
    bias_features_destroy(&bf);
    if (!comm_agree_soft(r->comm, err))
        lm_free(in);
    return lm_err_ok(err) ? in : NULL;
}

/* The sampled particles (positions, IDs) of parts, moved to the slabs of the training mesh. */
static struct particles *sample(const struct params *p, const struct particles *parts,
                                struct fit_set *fs, double box, MPI_Comm comm)
{
    uint64_t key = bias_hash((uint64_t)p->bias.fit.seed), cut;
    double s = p->bias.fit.subsample;
    cut = s >= 1 ? UINT64_MAX : (uint64_t)(s * 0x1.0p64);
    struct particles *q = particles_create(PARTICLES_POS | PARTICLES_ID, 0);
    for (int64_t i = 0; i < parts->n; i++) {
        if (s < 1 && bias_hash(parts->id[i] ^ key) >= cut)
            continue;
        particles_resize(q, q->n + 1);
        for (int d = 0; d < 3; d++)
            q->x[d][q->n - 1] = parts->x[d][i];
        q->id[q->n - 1] = parts->id[i];
    }
    int nn[3] = {fs->n_t, fs->n_t, fs->n_t};
    decomp_create_slabs_default(&fs->dec, comm, nn);
    migrate_particles(&fs->dec, q, box);
    return q;
}

/* 1 + δ_true = M_cell / ⟨M_cell⟩ of the local cells, from the haloes (NGP). */
static bool target(const struct params *p, struct fit_set *fs, int64_t n_loc, double box,
                   MPI_Comm comm, struct lm_err *err)
{
    char path[PARAMS_PATH_MAX + 64];
    if (*p->bias.fit.catalogue)
        snprintf(path, sizeof path, "%s", p->bias.fit.catalogue);
    else
        snprintf(path, sizeof path, "%s/fof_tab.hdf5", p->output.dir);
    struct bias_haloes h;
    if (!bias_io_read_haloes(path, p->bias.fit.min_mass, comm, &h, err))
        return false;
    if (fabs(h.box - box) > 1e-6 * box)
        lm_err_set(err,
                   "bias.fit.catalogue = %s: Header/BoxSize is %g Mpc/h; the particles' box "
                   "is %g",
                   path, h.box, box);
    else if (h.n == 0)
        lm_err_set(err, "bias.fit.catalogue = %s: no halo of mass >= bias.fit.min_mass = %g", path,
                   p->bias.fit.min_mass);
    if (!comm_agree_soft(comm, err)) {
        bias_haloes_free(&h);
        return false;
    }
    int n = fs->n_t;
    int64_t x0 = fs->dec.box.lo[0], per = (int64_t)n * n;
    double M = 0;
    for (int64_t i = 0; i < h.n; i++) {
        int64_t c[3];
        for (int d = 0; d < 3; d++)
            c[d] = decomp_cell_index(h.pos[3 * i + d], n, box);
        M += h.mass[i];
        int64_t at = (c[0] - x0) * per + c[1] * n + c[2];
        if (at >= 0 && at < n_loc)
            fs->delta_true[at] += h.mass[i];
    }
    double mean = M / ((double)per * n);
    for (int64_t c = 0; c < n_loc; c++)
        fs->delta_true[c] = fs->delta_true[c] / mean - 1;
    msg_info("bias-fit: %s: %lld haloes of mass >= %g, mean mass per cell %.6g [1e10 Msun/h]", path,
             (long long)h.n, p->bias.fit.min_mass, mean);
    bias_haloes_free(&h);
    return true;
}

static uint64_t batch_of(int64_t gcell, uint64_t key, int nb)
{
    return bias_hash((uint64_t)gcell ^ key) % (uint64_t)nb;
}

/* Order of the sampled particles: by batch, cell, ID. */
struct sort_key {
    uint64_t batch, cell, id;
    int64_t at;
};
static int cmp_key(const void *a, const void *b)
{
    const struct sort_key *x = a, *y = b;
    if (x->batch != y->batch)
        return x->batch < y->batch ? -1 : 1;
    if (x->cell != y->cell)
        return x->cell < y->cell ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Batches, the sorted training arrays and the per-batch constants. */
static bool arrange(const struct params *p, struct fit_set *fs, const struct particles *q,
                    const float *xin, int n_in, int64_t n_loc, double n_part, double box,
                    MPI_Comm comm)
{
    int n = fs->n_t;
    int64_t x0 = fs->dec.box.lo[0], per = (int64_t)n * n;
    double ns = (double)q->n;
    comm_sum_double_ordered(comm, &ns, 1);
    long nb = lround(ns / (double)p->bias.fit.batch_particles);
    int n_b = (int)(nb < 1 ? 1 : nb > 1000000 ? 1000000 : nb);
    uint64_t key = bias_hash((uint64_t)p->bias.fit.seed + 1);
    struct sort_key *k = lm_malloc("bias.fit", (size_t)(q->n ? q->n : 1) * sizeof *k);
    for (int64_t i = 0; i < q->n; i++) {
        int64_t c[3];
        for (int d = 0; d < 3; d++)
            c[d] = decomp_cell_index(q->x[d][i], n, box);
        int64_t loc = (c[0] - x0) * per + c[1] * n + c[2];
        CHECK(loc >= 0 && loc < n_loc, "bias-fit: a sampled particle outside this rank's slab");
        k[i] = (struct sort_key){batch_of(loc + x0 * per, key, n_b), (uint64_t)loc, q->id[i], i};
    }
    qsort(k, (size_t)q->n, sizeof *k, cmp_key);
    fs->x = lm_malloc("bias.fit.x", (size_t)(q->n ? q->n : 1) * n_in * sizeof(float));
    fs->cell = lm_malloc("bias.fit", (size_t)(q->n ? q->n : 1) * sizeof(int64_t));
    fs->start = lm_calloc("bias.fit", (size_t)n_b + 1, sizeof(int64_t));
    fs->n_batch = lm_calloc("bias.fit", (size_t)n_b, sizeof(double));
    fs->empty = lm_calloc("bias.fit", (size_t)n_b, sizeof(double));
    char *used = lm_calloc("bias.fit", (size_t)(n_loc ? n_loc : 1), 1);
    for (int64_t i = 0; i < q->n; i++) {
        memcpy(fs->x + i * n_in, xin + k[i].at * n_in, (size_t)n_in * sizeof(float));
        fs->cell[i] = (int64_t)k[i].cell;
        fs->start[k[i].batch + 1]++;
        fs->n_batch[k[i].batch] += 1;
        used[k[i].cell] = 1;
    }
    for (int b = 0; b < n_b; b++)
        fs->start[b + 1] += fs->start[b];
    for (int64_t c = 0; c < n_loc; c++)
        if (!used[c]) {
            double t = -1 - fs->delta_true[c];
            fs->empty[batch_of(c + x0 * per, key, n_b)] += t * t;
        }
    comm_sum_double_ordered(comm, fs->n_batch, n_b);
    lm_free(used);
    lm_free(k);
    fs->d = (struct bias_fit_data){.n_in = n_in,
                                   .n = q->n,
                                   .x = fs->x,
                                   .cell = fs->cell,
                                   .n_batches = n_b,
                                   .start = fs->start,
                                   .delta_true = fs->delta_true,
                                   .empty = fs->empty,
                                   .n_batch = fs->n_batch,
                                   .A = (double)per * n / (n_part * p->bias.fit.subsample)};
    msg_info("bias-fit: %.0f sampled particles (%.4g of %.0f) in %d batches of a %d^3 mesh", ns,
             p->bias.fit.subsample, n_part, n_b, n);
    return true;
}

static void fit_set_free(struct fit_set *fs)
{
    lm_free(fs->x);
    lm_free(fs->cell);
    lm_free(fs->start);
    lm_free(fs->delta_true);
    lm_free(fs->empty);
    lm_free(fs->n_batch);
    decomp_destroy(&fs->dec);
}

/* The training set from the particles and the site inputs. */
static bool build_set(const struct params *p, struct fit_set *fs, struct particles *parts,
                      const struct snapshot_header *hdr, const struct fft_layout *layout,
                      const float *site_in, int n_in, MPI_Comm comm, struct lm_err *err)
{
    timer_start("bias.fit.setup");
    double box = hdr->box_size;
    struct particles *q = sample(p, parts, fs, box, comm);
    int64_t n_loc = (fs->dec.box.hi[0] - fs->dec.box.lo[0]) * (int64_t)fs->n_t * fs->n_t;
    fs->delta_true = lm_calloc("bias.fit", (size_t)(n_loc ? n_loc : 1), sizeof(double));
    float *xin = lm_malloc("bias.fit", (size_t)(q->n ? q->n : 1) * n_in * sizeof(float));
    bool ok = lagrangian_fetch(layout, n_in, site_in, q->n, q->id, xin, comm, err) &&
              target(p, fs, n_loc, box, comm, err) &&
              arrange(p, fs, q, xin, n_in, n_loc, (double)hdr->n_total[1], box, comm);
    lm_free(xin);
    particles_destroy(&q);
    timer_stop("bias.fit.setup");
    return ok;
}

static bool write_loss_text(const struct params *p, const struct bias_model *m, MPI_Comm comm,
                            struct lm_err *err)
{
    if (comm_rank(comm) == 0) {
        char path[PARAMS_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/bias_fit_loss.txt", p->output.dir);
        FILE *f = fopen(path, "w");
        if (!f)
            lm_err_set(err, "cannot write %s", path);
        else {
            fprintf(f, "# epoch  mean_batch_loss\n");
            for (int e = 0; e < m->n_loss; e++)
                fprintf(f, "%d %.10g\n", e + 1, m->loss[e]);
            if (fclose(f) != 0)
                lm_err_set(err, "cannot write %s", path);
        }
    }
    return comm_agree_soft(comm, err);
}

/* Initial parameters: bias.fit.init's layers, else PyTorch's law from bias.fit.seed. */
static bool initial(const struct params *p, const struct bias_model *m, double *theta,
                    MPI_Comm comm, struct lm_err *err)
{
    const char *init = p->bias.fit.init;
    if (!*init) {
        bias_params_init(m, (uint64_t)p->bias.fit.seed, theta);
        return true;
    }
    struct bias_model *m0 = bias_io_read_model(init, comm, err);
    if (m0 && m0->n_in != m->n_in)
        lm_err_set(err, "bias.fit.init = %s: %d inputs; bias.scales gives %d", init, m0->n_in,
                   m->n_in);
    if (m0 && lm_err_ok(err))
        bias_params_get(m0, theta);
    bias_model_destroy(&m0);
    return comm_agree_soft(comm, err);
}

static bool write_model(const struct params *p, struct bias_model *m, MPI_Comm comm,
                        struct lm_err *err)
{
    char path[PARAMS_PATH_MAX + 64];
    if (*p->bias.fit.output)
        snprintf(path, sizeof path, "%s", p->bias.fit.output);
    else
        snprintf(path, sizeof path, "%s/bias_model.hdf5", p->output.dir);
    bool ok =
        bias_io_write_model(path, m, p->effective, comm, err) && write_loss_text(p, m, comm, err);
    if (ok)
        msg_info("bias-fit: wrote %s and %s/bias_fit_loss.txt", path, p->output.dir);
    return ok;
}

bool stage_bias_fit(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    if (!fit_check(p, comm, err))
        return false;
    struct run r = {.p = p, .comm = comm};
    struct bias_model *m = bias_model_create(p->bias.scales.n, p->bias.scales.v);
    struct fft_layout layout;
    float *site_in = site_inputs(&r, m, &layout, err);
    char input[PARAMS_PATH_MAX];
    struct snapshot_header hdr;
    bool owned;
    struct particles *parts =
        site_in ? stage_bias_particles(&r, &hdr, &owned, input, sizeof input, err) : NULL;
    struct fit_set fs = {.n_t = train_mesh(p)};
    bool ok = parts && build_set(p, &fs, parts, &hdr, &layout, site_in, m->n_in, comm, err);
    particles_destroy(&parts);
    lm_free(site_in);
    int np = (int)bias_n_params(m);
    double *theta = lm_malloc("bias.fit", (size_t)np * sizeof *theta);
    ok = ok && initial(p, m, theta, comm, err);
    if (ok) {
        struct bias_fit_options o = {.epochs = (int)p->bias.fit.epochs,
                                     .lr = p->bias.fit.lr,
                                     .lr_decay = p->bias.fit.lr_decay,
                                     .seed = (uint64_t)p->bias.fit.seed};
        m->n_loss = o.epochs;
        m->loss = lm_calloc("bias.model", (size_t)(o.epochs ? o.epochs : 1), sizeof(double));
        timer_start("bias.fit.train");
        bias_fit_train(&fs.d, &o, np, theta, m->loss, comm);
        timer_stop("bias.fit.train");
        bias_params_set(m, theta);
        ok = write_model(p, m, comm, err);
    }
    if (fs.delta_true || fs.x)
        fit_set_free(&fs);
    lm_free(theta);
    bias_model_destroy(&m);
    return ok;
}
