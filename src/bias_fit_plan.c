/* bias_fit_plan — training of the bias network over the ranks (see bias_fit_plan.h). */
#include "bias_fit_plan.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/lagrangian.h"
#include "mpi/migrate.h"
#include "timer.h"

static size_t n_params_of(int n_in)
{
    return (size_t)(n_in + 1) * BIAS_WIDTH +
           (BIAS_N_LAYERS - 2) * (size_t)(BIAS_WIDTH + 1) * BIAS_WIDTH + BIAS_WIDTH + 1;
}

/* Scratch of one thread: x in double, activations, backward workspace. */
struct fit_ws {
    double *x, *act, *ws;
};

static void ws_alloc(struct fit_ws *w, int n_in)
{
    w->x = lm_malloc("bias.fit", (size_t)BIAS_FIT_BLOCK * n_in * sizeof(double));
    w->act = lm_malloc("bias.fit", (size_t)BIAS_FIT_BLOCK * bias_dnet_act_size() * sizeof(double));
    w->ws = lm_malloc("bias.fit", (size_t)2 * BIAS_FIT_BLOCK * BIAS_WIDTH * sizeof(double));
}

static void ws_free(struct fit_ws *w)
{
    lm_free(w->x);
    lm_free(w->act);
    lm_free(w->ws);
}

static int block_rows(int64_t i0, int64_t i1)
{
    return (int)(i1 - i0 < BIAS_FIT_BLOCK ? i1 - i0 : BIAS_FIT_BLOCK);
}

static void load_x(const struct bias_fit_data *d, int64_t i0, int rows, double *x)
{
    for (int64_t e = 0; e < (int64_t)rows * d->n_in; e++)
        x[e] = d->x[i0 * d->n_in + e];
}

/* y of the batch's particles [i0, i1) into y (offset i0). */
static void batch_forward(const struct bias_fit_data *d, const struct bias_dnet *net, int64_t i0,
                          int64_t i1, double *y)
{
    int64_t nb = (i1 - i0 + BIAS_FIT_BLOCK - 1) / BIAS_FIT_BLOCK;
#pragma omp parallel
    {
        struct fit_ws w;
        ws_alloc(&w, d->n_in);
#pragma omp for schedule(dynamic)
        for (int64_t b = 0; b < nb; b++) {
            int64_t a = i0 + b * BIAS_FIT_BLOCK;
            int rows = block_rows(a, i1);
            load_x(d, a, rows, w.x);
            bias_dnet_forward(net, rows, w.x, w.act, y + (a - i0));
        }
        ws_free(&w);
    }
}

/* Gradient of Σ dy_i y_i over [i0, i1) added to grad: one gradient per block, added in order. */
static void batch_backward(const struct bias_fit_data *d, const struct bias_dnet *net, int64_t i0,
                           int64_t i1, const double *dy, double *grad, size_t np)
{
    int64_t nb = (i1 - i0 + BIAS_FIT_BLOCK - 1) / BIAS_FIT_BLOCK;
    double *g = lm_calloc("bias.fit.grad", (size_t)(nb ? nb : 1) * np, sizeof *g);
    double *yb = lm_malloc("bias.fit", (size_t)BIAS_FIT_BLOCK * omp_get_max_threads() * sizeof *yb);
#pragma omp parallel
    {
        struct fit_ws w;
        ws_alloc(&w, d->n_in);
        double *yt = yb + (size_t)BIAS_FIT_BLOCK * omp_get_thread_num();
#pragma omp for schedule(dynamic)
        for (int64_t b = 0; b < nb; b++) {
            int64_t a = i0 + b * BIAS_FIT_BLOCK;
            int rows = block_rows(a, i1);
            load_x(d, a, rows, w.x);
            bias_dnet_forward(net, rows, w.x, w.act, yt);
            bias_dnet_backward(net, rows, w.x, w.act, dy + (a - i0), g + (size_t)b * np, w.ws);
        }
        ws_free(&w);
    }
    for (int64_t b = 0; b < nb; b++)
        for (size_t k = 0; k < np; k++)
            grad[k] += g[(size_t)b * np + k];
    lm_free(yb);
    lm_free(g);
}

double bias_fit_batch(const struct bias_fit_data *d, int b, const double *theta, double eps,
                      double *grad, MPI_Comm comm)
{
    struct bias_dnet net;
    bias_dnet_bind(&net, d->n_in, theta);
    int64_t i0 = d->start[b], i1 = d->start[b + 1], n = i1 - i0;
    double *y = lm_malloc("bias.fit", (size_t)(n ? n : 1) * 2 * sizeof *y), *dy = y + n;
    batch_forward(d, &net, i0, i1, y);
    /* the batch's sums: Σ f, Σ over cells (δ − δ_true)², Σ max(0, −5 − y)⁴ (in particle order) */
    double s[3] = {0, d->empty[b], 0};
    for (int64_t i = 0; i < n; i++) {
        double f = pow(10.0, y[i]), r = y[i] < -5 ? -5 - y[i] : 0;
        s[0] += f;
        s[2] += r * r * r * r;
    }
    for (int64_t i = 0; i < n;) { /* cells are contiguous */
        int64_t j = i;
        double sf = 0;
        for (; j < n && d->cell[i0 + j] == d->cell[i0 + i]; j++)
            sf += pow(10.0, y[j]);
        double res = d->A * sf - 1 - d->delta_true[d->cell[i0 + i]];
        s[1] += res * res;
        for (int64_t k = i; k < j; k++)
            dy[k] = 2 * res * d->A; /* dL/df of the cell term */
        i = j;
    }
    comm_sum_double_ordered(comm, s, 3);
    double nb = d->n_batch[b], dm = s[0] / nb - d->f_batch[b];
    double loss = s[1] + s[2] + (eps > 0 ? dm * dm / (eps * eps) : 0);
    if (grad) {
        double dint = eps > 0 ? 2 * dm / (eps * eps * nb) : 0;
        for (int64_t i = 0; i < n; i++) {
            double f = pow(10.0, y[i]), r = y[i] < -5 ? -5 - y[i] : 0;
            dy[i] = (dy[i] + dint) * f * M_LN10 - 4 * r * r * r;
        }
        size_t np = n_params_of(d->n_in);
        double *g = lm_calloc("bias.fit.grad", np, sizeof *g);
        batch_backward(d, &net, i0, i1, dy, g, np);
        comm_sum_double_ordered(comm, g, (int)np);
        for (size_t k = 0; k < np; k++)
            grad[k] += g[k];
        lm_free(g);
    }
    lm_free(y);
    return loss;
}

/* The order of the batches in epoch e: a Fisher-Yates shuffle from the hash stream of (seed, e),
 * the same on every rank. */
static void batch_order(int n, uint64_t seed, int e, int *order)
{
    uint64_t s = bias_hash(seed ^ bias_hash((uint64_t)e));
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        s = bias_hash(s);
        int j = (int)(s % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

void bias_fit_train(const struct bias_fit_data *d, const struct bias_fit_options *o, int n_params,
                    double *theta, double *loss, MPI_Comm comm)
{
    double *g = lm_malloc("bias.fit.adam", (size_t)3 * n_params * sizeof *g);
    double *m = g + n_params, *v = m + n_params;
    memset(m, 0, (size_t)2 * n_params * sizeof *m);
    int *order = lm_malloc("bias.fit", (size_t)d->n_batches * sizeof *order);
    int64_t t = 0;
    for (int e = 1; e <= o->epochs; e++) {
        double t0 = timer_now(), eps = bias_epsilon(e), lr = o->lr * pow(o->lr_decay, e - 1);
        double sum = 0;
        batch_order(d->n_batches, o->seed, e, order);
        for (int k = 0; k < d->n_batches; k++) {
            memset(g, 0, (size_t)n_params * sizeof *g);
            sum += bias_fit_batch(d, order[k], theta, eps, g, comm);
            bias_adam_step(n_params, theta, g, m, v, lr, ++t);
        }
        loss[e - 1] = sum / d->n_batches;
        msg_info("bias-fit: epoch %d: mean batch loss %.6g (lr %.4g, eps %.3g) in %.2f s", e,
                 loss[e - 1], lr, eps, timer_now() - t0);
    }
    lm_free(order);
    lm_free(g);
}

/* ---- the training set ------------------------------------------------------------------- */

/* The sampled particles (positions, IDs) of parts, moved to the slabs of the training mesh. */
static struct particles *sample(const struct bias_fit_setup *s, const struct particles *parts,
                                struct bias_fit_set *fs, MPI_Comm comm)
{
    uint64_t key = bias_hash(s->seed), cut;
    double sub = s->subsample;
    cut = sub >= 1 ? UINT64_MAX : (uint64_t)(sub * 0x1.0p64);
    struct particles *q = particles_create(PARTICLES_POS | PARTICLES_ID, 0);
    for (int64_t i = 0; i < parts->n; i++) {
        if (sub < 1 && bias_hash(parts->id[i] ^ key) >= cut)
            continue;
        particles_resize(q, q->n + 1);
        for (int d = 0; d < 3; d++)
            q->x[d][q->n - 1] = parts->x[d][i];
        q->id[q->n - 1] = parts->id[i];
    }
    int nn[3] = {s->n_mesh, s->n_mesh, s->n_mesh};
    decomp_create_slabs_default(&fs->dec, comm, nn);
    migrate_particles(&fs->dec, q, s->box);
    return q;
}

/* 1 + δ_true = M_cell / ⟨M_cell⟩ of the local cells, from the haloes (NGP). */
static void target(const struct bias_fit_setup *s, struct bias_fit_set *fs, int64_t n_loc,
                   int64_t n_h, const float *pos, const double *mass)
{
    int n = s->n_mesh;
    int64_t x0 = fs->dec.box.lo[0], per = (int64_t)n * n;
    double M = 0;
    for (int64_t i = 0; i < n_h; i++) {
        int64_t c[3];
        for (int d = 0; d < 3; d++)
            c[d] = decomp_cell_index(pos[3 * i + d], n, s->box);
        M += mass[i];
        int64_t at = (c[0] - x0) * per + c[1] * n + c[2];
        if (at >= 0 && at < n_loc)
            fs->delta_true[at] += mass[i];
    }
    double mean = M / ((double)per * n);
    for (int64_t c = 0; c < n_loc; c++)
        fs->delta_true[c] = fs->delta_true[c] / mean - 1;
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
static bool arrange(const struct bias_fit_setup *s, struct bias_fit_set *fs,
                    const struct particles *q, const float *xin, int n_in, int64_t n_loc,
                    MPI_Comm comm)
{
    int n = s->n_mesh;
    int64_t x0 = fs->dec.box.lo[0], per = (int64_t)n * n;
    double ns = (double)q->n;
    comm_sum_double_ordered(comm, &ns, 1);
    long nb = lround(ns / (double)s->batch_particles);
    int n_b = (int)(nb < 1 ? 1 : nb > 1000000 ? 1000000 : nb);
    uint64_t key = bias_hash((uint64_t)s->seed + 1);
    struct sort_key *k = lm_malloc("bias.fit", (size_t)(q->n ? q->n : 1) * sizeof *k);
    for (int64_t i = 0; i < q->n; i++) {
        int64_t c[3];
        for (int d = 0; d < 3; d++)
            c[d] = decomp_cell_index(q->x[d][i], n, s->box);
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
    fs->f_batch = lm_calloc("bias.fit", (size_t)n_b, sizeof(double));
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
    for (int64_t c = 0; c < n_loc; c++) {
        uint64_t b = batch_of(c + x0 * per, key, n_b);
        double t = -1 - fs->delta_true[c];
        fs->f_batch[b] -= t;
        if (!used[c])
            fs->empty[b] += t * t;
    }
    comm_sum_double_ordered(comm, fs->n_batch, n_b);
    comm_sum_double_ordered(comm, fs->f_batch, n_b);
    double A = (double)per * n / (s->n_part * s->subsample);
    for (int b = 0; b < n_b; b++) /* Σ_c (1 + δ_true) / (A N_b): 1 for a batch like the box */
        fs->f_batch[b] = fs->n_batch[b] > 0 ? fs->f_batch[b] / (A * fs->n_batch[b]) : 1;
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
                                   .f_batch = fs->f_batch,
                                   .A = A};
    msg_info("bias-fit: %.0f sampled particles (%.4g of %.0f) in %d batches of a %d^3 mesh", ns,
             s->subsample, s->n_part, n_b, n);
    return true;
}

void bias_fit_set_destroy(struct bias_fit_set *fs)
{
    if (!fs->delta_true)
        return;
    lm_free(fs->x);
    lm_free(fs->cell);
    lm_free(fs->start);
    lm_free(fs->delta_true);
    lm_free(fs->empty);
    lm_free(fs->n_batch);
    lm_free(fs->f_batch);
    decomp_destroy(&fs->dec);
    memset(fs, 0, sizeof *fs);
}

bool bias_fit_set_create(struct bias_fit_set *fs, const struct bias_fit_setup *s,
                         const struct particles *parts, const struct fft_layout *layout,
                         const float *site_in, int n_in, int64_t n_haloes, const float *halo_pos,
                         const double *halo_mass, MPI_Comm comm, struct lm_err *err)
{
    memset(fs, 0, sizeof *fs);
    struct particles *q = sample(s, parts, fs, comm);
    int64_t n_loc = (fs->dec.box.hi[0] - fs->dec.box.lo[0]) * (int64_t)s->n_mesh * s->n_mesh;
    fs->delta_true = lm_calloc("bias.fit", (size_t)(n_loc ? n_loc : 1), sizeof(double));
    float *xin = lm_malloc("bias.fit", (size_t)(q->n ? q->n : 1) * n_in * sizeof(float));
    bool ok = lagrangian_fetch(layout, n_in, site_in, q->n, q->id, xin, comm, err);
    if (ok) {
        target(s, fs, n_loc, n_haloes, halo_pos, halo_mass);
        arrange(s, fs, q, xin, n_in, n_loc, comm);
    }
    lm_free(xin);
    particles_destroy(&q);
    return ok;
}
