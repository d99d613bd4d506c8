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
 * and bias_fit_loss.txt under output.dir; with bias.fit.write_check (one rank) also
 * bias_fit_check.hdf5: batch 0's inputs, θ, and its loss and gradient without and with the
 * integral term (ε of epoch 2), for checks against an independent implementation; scalars holds
 * A, N_batch, the empty cells' Σ (−1 − δ_true)², ε, the two losses and the batch's target ⟨f⟩.
 */
#include "stage_bias.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bias.h"
#include "bias_fit_plan.h"
#include "bias_plan.h"
#include "mpi/bias_io.h"
#include "mpi/comm.h"
#include "mpi/params_load.h"
#include "mpi/snapshot.h"
#include "run.h"
#include "timer.h"

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
    struct bias_features *bf = stage_bias_features(r, m, err);
    if (!bf)
        return NULL;
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

/* The training set from the particles, the site inputs and the catalogue. */
static bool build_set(const struct params *p, struct bias_fit_set *fs, struct particles *parts,
                      const struct snapshot_header *hdr, const struct fft_layout *layout,
                      const float *site_in, int n_in, MPI_Comm comm, struct lm_err *err)
{
    char path[PARAMS_PATH_MAX + 64];
    if (*p->bias.fit.catalogue)
        snprintf(path, sizeof path, "%s", p->bias.fit.catalogue);
    else
        snprintf(path, sizeof path, "%s/fof_tab.hdf5", p->output.dir);
    struct bias_haloes h;
    if (!bias_io_read_haloes(path, p->bias.fit.min_mass, comm, &h, err))
        return false;
    double box = hdr->box_size;
    if (fabs(h.box - box) > 1e-6 * box)
        lm_err_set(err,
                   "bias.fit.catalogue = %s: Header/BoxSize is %g Mpc/h; the particles' box "
                   "is %g",
                   path, h.box, box);
    else if (h.n == 0)
        lm_err_set(err, "bias.fit.catalogue = %s: no halo of mass >= bias.fit.min_mass = %g", path,
                   p->bias.fit.min_mass);
    bool ok = comm_agree_soft(comm, err);
    if (ok)
        msg_info("bias-fit: %s: %lld haloes of mass >= %g", path, (long long)h.n,
                 p->bias.fit.min_mass);
    struct bias_fit_setup s = {.n_mesh = train_mesh(p),
                               .subsample = p->bias.fit.subsample,
                               .batch_particles = p->bias.fit.batch_particles,
                               .seed = (uint64_t)p->bias.fit.seed,
                               .box = box,
                               .n_part = (double)hdr->n_total[1]};
    timer_start("bias.fit.setup");
    ok = ok &&
         bias_fit_set_create(fs, &s, parts, layout, site_in, n_in, h.n, h.pos, h.mass, comm, err);
    timer_stop("bias.fit.setup");
    bias_haloes_free(&h);
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

/* bias_fit_check.hdf5: batch 0's inputs, the loss and gradient at theta without the integral
 * term and with ε of epoch 2, for a check against an independent implementation. One rank. */
static bool write_check(const struct params *p, const struct bias_fit_set *fs, const double *theta,
                        int np, MPI_Comm comm, struct lm_err *err)
{
    if (comm_size(comm) != 1)
        lm_err_set(err, "bias.fit.write_check needs one rank (found %d)", comm_size(comm));
    if (!comm_agree_soft(comm, err))
        return false;
    const struct bias_fit_data *d = &fs->d;
    int64_t i0 = d->start[0], n = d->start[1] - i0, ni = d->n_in;
    double *buf = lm_calloc("bias.fit", (size_t)(n * (ni + 2) + 4 * np + 1), sizeof *buf);
    double *x = buf, *dt = x + n * ni, *cell = dt + n, *g0 = cell + n, *g2 = g0 + np;
    for (int64_t i = 0; i < n * ni; i++)
        x[i] = d->x[i0 * ni + i];
    for (int64_t i = 0; i < n; i++) {
        cell[i] = (double)d->cell[i0 + i];
        dt[i] = d->delta_true[d->cell[i0 + i]];
    }
    double eps = bias_epsilon(2), l0 = bias_fit_batch(d, 0, theta, 0, g0, comm);
    double l2 = bias_fit_batch(d, 0, theta, eps, g2, comm);
    double scalars[7] = {d->A, d->n_batch[0], d->empty[0], eps, l0, l2, d->f_batch[0]};
    const char *names[7] = {"theta", "x", "delta_true", "cell", "grad0", "grad2", "scalars"};
    const int64_t sizes[7] = {np, n * ni, n, n, np, np, 7};
    const double *data[7] = {theta, x, dt, cell, g0, g2, scalars};
    char path[PARAMS_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/bias_fit_check.hdf5", p->output.dir);
    bool ok = bias_io_write_arrays(path, 7, names, sizes, data, comm, err);
    if (ok)
        msg_info("bias-fit: wrote %s (batch 0: %lld particles, loss %.10g / %.10g)", path,
                 (long long)n, l0, l2);
    lm_free(buf);
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
    struct bias_fit_set fs = {0};
    bool ok = parts && build_set(p, &fs, parts, &hdr, &layout, site_in, m->n_in, comm, err);
    particles_destroy(&parts);
    lm_free(site_in);
    int np = (int)bias_n_params(m);
    double *theta = lm_malloc("bias.fit", (size_t)np * sizeof *theta);
    ok = ok && initial(p, m, theta, comm, err);
    if (ok && p->bias.fit.write_check)
        ok = write_check(p, &fs, theta, np, comm, err);
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
    bias_fit_set_destroy(&fs);
    lm_free(theta);
    bias_model_destroy(&m);
    return ok;
}
