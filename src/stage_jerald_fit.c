/* stage_jerald_fit — `lemur jerald-fit`: fit the parameters of the maps of jerald.maps that have a
 * target in jerald.fit.targets (Rigo, Trotta & Viel 2025, section III): Adam with JERALD's
 * learning-rate ramp on the training region, early stopping on the validation region, dark-matter
 * maps first, then stellar, then HI. Writes the fitted parameters as a parameter file that
 * `lemur jerald` takes as it is, the loss history, the fitted maps against their targets and the
 * spectra of both. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "jerald_adjoint.h"
#include "jerald_fit_plan.h"
#include "jerald_plan.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/jerald_fit_io.h"
#include "mpi/jerald_io.h"
#include "mpi/migrate.h"
#include "mpi/params_load.h"
#include "mpi/snapshot.h"
#include "params.h"
#include "run.h"
#include "stages.h"
#include "timer.h"

/** The target of one fitted map. */
struct fit_target {
    int map; /**< index in the set */
    const char *file, *dataset;
    int base; /**< index of the map whose fitted layers come first, or -1 */
};

struct fit_state {
    const struct params *p;
    MPI_Comm comm;
    struct jerald_set *set;
    int n_fit;
    struct fit_target fit[JERALD_MAX_MAPS]; /**< in fitting order */
    struct jerald_fit_plan *plan;
    const struct snapshot_header *hdr;
    struct particles *x0;
    struct jerald_fit_history hist[JERALD_MAX_MAPS];
    float *fitted[JERALD_MAX_MAPS], *target[JERALD_MAX_MAPS];
    float *stellar[JERALD_MAX_MAPS]; /**< stellar maps of the set, made when an HI map needs one */
    char names[JERALD_MAX_MAPS][64];
};

/* ---- configuration --------------------------------------------------------------------------- */

static int map_index(const struct jerald_set *s, const char *name)
{
    for (int i = 0; i < s->n_maps; i++)
        if (strcmp(s->map[i].name, name) == 0)
            return i;
    return -1;
}

/** Read jerald.fit.targets.<name>.{file, dataset, base} into f (in the set's map order). */
static bool read_targets(const struct config *cfg, const struct jerald_set *s, struct fit_target *f,
                         int *n, struct lm_err *err)
{
    char names[JERALD_MAX_MAPS + 1][64], key[256];
    *n = config_children(cfg, "jerald.fit.targets", names, JERALD_MAX_MAPS + 1);
    if (*n > JERALD_MAX_MAPS)
        return lm_err_set(err, "jerald.fit.targets: more than %d targets", JERALD_MAX_MAPS);
    if (*n == 0)
        return lm_err_set(err, "jerald.fit.targets is empty: name a map of jerald.maps and its "
                               "target, e.g. jerald.fit.targets.dm: {file: target.hdf5, "
                               "dataset: maps/dm}");
    for (int i = 0; i < *n; i++) {
        f[i].map = map_index(s, names[i]);
        if (f[i].map < 0)
            return lm_err_set(err, "jerald.fit.targets.%s: jerald.maps has no map '%s'", names[i],
                              names[i]);
        snprintf(key, sizeof key, "jerald.fit.targets.%.63s.file", names[i]);
        f[i].file = config_string(cfg, key);
        snprintf(key, sizeof key, "jerald.fit.targets.%.63s.dataset", names[i]);
        f[i].dataset = config_string(cfg, key);
        snprintf(key, sizeof key, "jerald.fit.targets.%.63s.base", names[i]);
        const char *base = config_string(cfg, key);
        f[i].base = *base ? map_index(s, base) : -1;
        if (*base && f[i].base < 0)
            return lm_err_set(err, "%s = '%s': jerald.maps has no such map", key, base);
    }
    return true;
}

static int model_rank(enum jerald_model m)
{
    return m == JERALD_MODEL_DM ? 0 : m == JERALD_MODEL_STELLAR ? 1 : 2;
}

/** Sort the targets into the paper's order (dark matter, stellar, HI; stable) and check the
 *  bases: fitted before, with the same Green's function, and room for the layers. */
static bool order_targets(const struct jerald_set *s, struct fit_target *f, int n,
                          struct lm_err *err)
{
    for (int i = 1; i < n; i++)
        for (int j = i;
             j > 0 && model_rank(s->map[f[j].map].model) < model_rank(s->map[f[j - 1].map].model);
             j--) {
            struct fit_target t = f[j];
            f[j] = f[j - 1];
            f[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (f[i].base < 0)
            continue;
        const struct jerald_map *m = &s->map[f[i].map], *b = &s->map[f[i].base];
        int at = -1;
        for (int j = 0; j < i; j++)
            at = f[j].map == f[i].base ? j : at;
        enum jerald_green gm = m->model == JERALD_MODEL_HI ? JERALD_GREEN_SM : m->green;
        enum jerald_green gb = b->model == JERALD_MODEL_HI ? JERALD_GREEN_SM : b->green;
        if (m->model == JERALD_MODEL_HI)
            return lm_err_set(err,
                              "jerald.fit.targets.%s.base = '%s': HI layers carry a repulsive "
                              "stellar term, so an HI map takes no base (give it its own layers)",
                              m->name, b->name);
        if (at < 0)
            return lm_err_set(err,
                              "jerald.fit.targets.%s.base = '%s': that map is not fitted before "
                              "it (fitting order: dm, stellar, hi maps with targets)",
                              m->name, b->name);
        if (gm != gb)
            return lm_err_set(err,
                              "jerald.fit.targets.%s.base = '%s': its layers use the %s Green's "
                              "function, map %s the %s one (set jerald.maps.%s.green: %s)",
                              m->name, b->name, jerald_green_name(gb), m->name,
                              jerald_green_name(gm), m->name, jerald_green_name(gb));
        if (m->n_layers + b->n_layers > JERALD_MAX_LAYERS)
            return lm_err_set(err, "jerald.fit.targets.%s.base: %d + %d layers, at most %d",
                              m->name, b->n_layers, m->n_layers, JERALD_MAX_LAYERS);
    }
    return true;
}

static bool read_config(const struct params *p, struct jerald_set *set, struct fit_target *f,
                        int *n, struct lm_err *err)
{
    if (!jerald_set_read(p->cfg, p->box.n, set, err))
        return false;
    if (!read_targets(p->cfg, set, f, n, err) || !order_targets(set, f, *n, err))
        return false;
    const struct jerald_fit_params *q = &p->jerald.fit;
    if (q->tolerance == 0 && q->patience == 0)
        msg_info("jerald-fit: no tolerance and no patience: every fit runs %ld steps", q->steps);
    return true;
}

bool stage_jerald_fit_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    struct jerald_set *set = lm_calloc("jerald.set", 1, sizeof *set);
    struct fit_target f[JERALD_MAX_MAPS];
    int n;
    read_config(p, set, f, &n, err);
    lm_free(set);
    return comm_agree_soft(comm, err);
}

/* ---- one fit --------------------------------------------------------------------------------- */

/** Copy the positions of st->x0 into a new store of positions and IDs (the fields the fit's
 *  forward plan migrates). */
static struct particles *copy_x0(const struct particles *x0)
{
    struct particles *w = particles_create(PARTICLES_POS | PARTICLES_ID, x0->n);
    particles_resize(w, x0->n);
    for (int d = 0; d < 3; d++)
        memcpy(w->x[d], x0->x[d], (size_t)x0->n * sizeof(float));
    memset(w->id, 0, (size_t)x0->n * sizeof(uint64_t));
    return w;
}

/** Map idx of the set (with its current parameters) evaluated on the input particles, kept. */
static const float *evaluate_kept(struct fit_state *st, int idx, const float *stellar)
{
    struct jerald_plan *fwd = jerald_fit_plan_forward(st->plan);
    if (!st->stellar[idx]) {
        struct particles *w = copy_x0(st->x0);
        st->stellar[idx] = jerald_mesh_alloc(fwd, "jerald_fit.maps");
        const float *m = jerald_map_execute(fwd, &st->set->map[idx], w, stellar);
        memcpy(st->stellar[idx], m, fft_alloc_bytes(jerald_plan_fft(fwd)));
        particles_destroy(&w);
    }
    return st->stellar[idx];
}

/** Put the fitted layers of map base in front of the layers of m (frozen in the fit). */
static int prepend_base(struct jerald_map *m, const struct jerald_map *base)
{
    int nb = base->n_layers;
    memmove(&m->layer[nb], &m->layer[0], (size_t)m->n_layers * sizeof m->layer[0]);
    memcpy(&m->layer[0], &base->layer[0], (size_t)nb * sizeof m->layer[0]);
    m->n_layers += nb;
    return nb;
}

static void history_init(struct jerald_fit_history *h, const struct jerald_map *m, int first,
                         int cap)
{
    snprintf(h->map, sizeof h->map, "%s", m->name);
    h->n_params = jerald_fit_pack(m, first, NULL);
    h->cap_steps = cap;
    h->lr = lm_calloc("jerald_fit.history", (size_t)cap, sizeof(double));
    h->loss = lm_calloc("jerald_fit.history", (size_t)cap * 3, sizeof(double));
    h->theta = lm_calloc("jerald_fit.history", (size_t)cap * h->n_params, sizeof(double));
    h->grad = lm_calloc("jerald_fit.history", (size_t)cap * h->n_params, sizeof(double));
    h->names = lm_calloc("jerald_fit.history", (size_t)h->n_params, sizeof *h->names);
    for (int j = 0; j < h->n_params; j++)
        jerald_fit_param_name(m, first, j, h->names[j], sizeof h->names[j]);
}

static void history_free(struct jerald_fit_history *h)
{
    lm_free(h->lr);
    lm_free(h->loss);
    lm_free(h->theta);
    lm_free(h->grad);
    lm_free(h->names);
}

/** The Adam loop on map m (parameters from layer first on): the parameters of the lowest
 *  validation loss end in m. @return false when interrupted (err agreed). */
static bool optimise(struct fit_state *st, struct jerald_map *m, int first, const float *stellar,
                     struct jerald_fit_history *h, struct lm_err *err)
{
    const struct jerald_fit_params *q = &st->p->jerald.fit;
    int n = h->n_params;
    double *theta = lm_calloc("jerald_fit.adam", 5 * (size_t)(n > 0 ? n : 1), sizeof(double));
    double *g = theta + n, *best = g + n;
    struct jerald_adam adam = {
        .n = n, .m = best + n, .v = best + 2 * n, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    struct jerald_map *grad = lm_calloc("jerald_fit.grad", 1, sizeof *grad);
    jerald_fit_pack(m, first, theta);
    memcpy(best, theta, (size_t)n * sizeof(double));
    double best_valid = INFINITY, loss0 = 0;
    int since = 0;
    h->stopped = "steps";
    bool ok = true;
    for (int s = 0; s <= q->steps && ok; s++) {
        double loss[JERALD_N_REGIONS];
        jerald_fit_evaluate(st->plan, m, first, st->x0, stellar, loss, grad);
        jerald_fit_pack(grad, first, &h->grad[(size_t)s * n]);
        double lr = jerald_fit_rate(s, q->lr_start, q->lr_end, q->lr_tau);
        h->lr[s] = lr;
        memcpy(&h->loss[3 * s], loss, sizeof loss);
        memcpy(&h->theta[(size_t)s * n], theta, (size_t)n * sizeof(double));
        h->n_steps = s + 1;
        loss0 = s == 0 ? loss[JERALD_REGION_TRAIN] : loss0;
        if (loss[JERALD_REGION_VALID] < best_valid) {
            best_valid = loss[JERALD_REGION_VALID];
            memcpy(best, theta, (size_t)n * sizeof(double));
            h->best_step = s;
            since = 0;
        } else {
            since++;
        }
        if (s % 10 == 0 || s == q->steps)
            msg_info("jerald-fit: map %s step %d: loss train %.6e valid %.6e test %.6e, rate %.3g",
                     m->name, s, loss[0], loss[1], loss[2], lr);
        if (s == q->steps)
            break;
        if (!isfinite(loss[JERALD_REGION_TRAIN])) {
            msg_warn("jerald-fit: map %s: the loss is not finite at step %d (learning rate too "
                     "large?): keeping the parameters of step %d",
                     m->name, s, h->best_step);
            h->stopped = "non-finite loss";
            break;
        }
        if (q->tolerance > 0 && loss[JERALD_REGION_TRAIN] <= q->tolerance * loss0) {
            h->stopped = "tolerance";
            break;
        }
        if (q->patience > 0 && since >= q->patience) {
            h->stopped = "patience";
            break;
        }
        if (s % 10 == 9)
            ok = !comm_interrupted(st->comm, "between jerald-fit steps", err);
        memcpy(g, &h->grad[(size_t)s * n], (size_t)n * sizeof(double));
        jerald_adam_step(&adam, theta, g, lr);
        jerald_fit_unpack(m, first, theta);
    }
    jerald_fit_unpack(m, first, best);
    lm_free(grad);
    lm_free(theta);
    return ok;
}

/** Fit target i: read it, optimise, keep the fitted map. */
static bool fit_one(struct fit_state *st, int i, struct lm_err *err)
{
    const struct fit_target *t = &st->fit[i];
    struct jerald_map *m = &st->set->map[t->map];
    struct jerald_plan *fwd = jerald_fit_plan_forward(st->plan);
    const struct fft_layout *l = fft_layout(jerald_plan_fft(fwd));
    char key[128];
    snprintf(key, sizeof key, "jerald.fit.targets.%s", m->name);
    st->target[i] = jerald_mesh_alloc(fwd, "jerald_fit.maps");
    timer_start("jerald_fit.read");
    bool ok = jerald_fit_io_read_target(key, t->file, t->dataset, l, st->target[i], st->comm, err);
    timer_stop("jerald_fit.read");
    if (!ok)
        return false;
    struct jerald_loss loss = {.p = strcmp(st->p->jerald.fit.loss, "l1") == 0 ? 1 : 2,
                               .smoothing_n = st->p->jerald.fit.smoothing_n};
    jerald_fit_set_target(st->plan, st->target[i], &loss);
    int first = t->base >= 0 ? prepend_base(m, &st->set->map[t->base]) : 0;
    const float *stellar = m->model == JERALD_MODEL_HI ? evaluate_kept(st, m->stellar, NULL) : NULL;
    struct jerald_fit_history *h = &st->hist[i];
    history_init(h, m, first, (int)st->p->jerald.fit.steps + 1);
    msg_info("jerald-fit: map %s (%s): %d parameters%s%s, target %s:%s", m->name,
             jerald_model_name(m->model), h->n_params, t->base >= 0 ? " after the layers of " : "",
             t->base >= 0 ? st->set->map[t->base].name : "", t->file, t->dataset);
    double t0 = timer_now();
    timer_start("jerald_fit.optimise");
    ok = optimise(st, m, first, stellar, h, err);
    timer_stop("jerald_fit.optimise");
    if (!ok)
        return false;
    double dt = timer_now() - t0;
    double loss_end[JERALD_N_REGIONS];
    const float *map = jerald_fit_evaluate(st->plan, m, first, st->x0, stellar, loss_end, NULL);
    st->fitted[i] = jerald_mesh_alloc(fwd, "jerald_fit.maps");
    memcpy(st->fitted[i], map, fft_alloc_bytes(jerald_plan_fft(fwd)));
    snprintf(st->names[i], sizeof st->names[i], "%s", m->name);
    msg_info("jerald-fit: map %s: stopped (%s) after %d steps in %.2f s (%.3f s per step), best "
             "validation loss at step %d: train %.6e valid %.6e test %.6e (step 0: train %.6e)",
             m->name, h->stopped, h->n_steps, dt, dt / h->n_steps, h->best_step, loss_end[0],
             loss_end[1], loss_end[2], h->loss[0]);
    for (int j = 0; j < h->n_params; j++)
        msg_info("jerald-fit:   %s.%s = %.8g (start %.8g)", m->name, h->names[j],
                 h->theta[(size_t)h->best_step * h->n_params + j], h->theta[j]);
    return true;
}

/* ---- outputs --------------------------------------------------------------------------------- */

static void yaml_term(char *out, size_t cap, const struct jerald_term *t)
{
    snprintf(out, cap, "alpha: %.17g, gamma: %.17g, kh: %.17g, kl: %.17g, nu: %.17g", t->alpha,
             t->gamma, t->kh, t->kl, t->nu);
}

/** Append the fields of a parameter table as a YAML flow mapping. */
static void yaml_table(char **at, char *end, const struct jerald_field *f, const void *base,
                       bool with_zs)
{
    *at += snprintf(*at, (size_t)(end - *at), "{");
    for (const struct jerald_field *x = f; x->name; x++) {
        if (!with_zs && strcmp(x->name, "z_s") == 0)
            continue;
        *at += snprintf(*at, (size_t)(end - *at), "%s%s: %.17g", x == f ? "" : ", ", x->name,
                        *(const double *)((const char *)base + x->offset));
    }
    *at += snprintf(*at, (size_t)(end - *at), "}\n");
}

static void yaml_map(char **at, char *end, const struct jerald_map *m)
{
    bool hi = m->model == JERALD_MODEL_HI;
    *at +=
        snprintf(*at, (size_t)(end - *at), "    %s:\n      model: %s\n      green: %s\n", m->name,
                 jerald_model_name(m->model), jerald_green_name(hi ? JERALD_GREEN_SM : m->green));
    if (hi)
        *at += snprintf(*at, (size_t)(end - *at), "      stellar_map: %s\n", m->stellar_name);
    *at += snprintf(*at, (size_t)(end - *at), "      layers:%s\n", m->n_layers ? "" : " []");
    for (int l = 0; l < m->n_layers; l++) {
        char a[512], b[512] = "";
        yaml_term(a, sizeof a, &m->layer[l].density);
        if (hi) {
            char r[400];
            yaml_term(r, sizeof r, &m->layer[l].repel);
            snprintf(b, sizeof b, ", repel: {%s}", r);
        }
        *at += snprintf(*at, (size_t)(end - *at), "        - {%s%s}\n", a, b);
    }
    if (m->model != JERALD_MODEL_DM) {
        *at += snprintf(*at, (size_t)(end - *at), "      final: ");
        yaml_table(at, end, jerald_final_fields, &m->final, hi);
    }
    if (hi) {
        *at += snprintf(*at, (size_t)(end - *at), "      depletion: ");
        yaml_table(at, end, jerald_depletion_fields, &m->depletion, true);
    }
}

/** The parameter file of the fitted maps (every map of jerald.maps, fitted values in place). */
static char *fragment_text(const struct fit_state *st)
{
    const struct params *p = st->p;
    size_t cap = 4096 + (size_t)st->set->n_maps * (1024 + JERALD_MAX_LAYERS * 1024);
    char *text = lm_malloc("jerald_fit.yaml", cap), *at = text, *end = text + cap;
    at += snprintf(at, (size_t)(end - at),
                   "# JERALD parameters fitted by lemur jerald-fit (Rigo, Trotta & Viel 2025); "
                   "run `lemur jerald <this file>`\n");
    for (int i = 0; i < st->n_fit; i++)
        at += snprintf(at, (size_t)(end - at), "# %s fitted to %s:%s (%s)\n",
                       st->set->map[st->fit[i].map].name, st->fit[i].file, st->fit[i].dataset,
                       st->hist[i].stopped);
    at += snprintf(at, (size_t)(end - at), "box: {size: %.17g, n: %ld}\njerald:\n", p->box.size,
                   p->box.n);
    if (*p->jerald.input)
        at += snprintf(at, (size_t)(end - at), "  input: \"%s\"\n", p->jerald.input);
    at += snprintf(at, (size_t)(end - at), "  n_mesh: %d\n  gradient_order: %d\n  maps:\n",
                   st->set->n_mesh, st->set->gradient_order);
    for (int i = 0; i < st->set->n_maps; i++)
        yaml_map(&at, end, &st->set->map[i]);
    return text;
}

static void output_path(char *out, size_t cap, const struct params *p, const char *name)
{
    snprintf(out, cap, "%s/jerald_fit%s%s", p->output.dir, *name ? "_" : "", name);
}

/** Spectrum of mesh (overwritten) as jerald_fit_<name>_power.{hdf5,txt}. */
static bool write_spectrum(struct fit_state *st, const char *name, float *mesh,
                           struct power_spectrum *ps, struct lm_err *err)
{
    struct jerald_plan *fwd = jerald_fit_plan_forward(st->plan);
    if (!jerald_map_spectrum(fwd, mesh, ps)) {
        msg_warn("jerald-fit: %s has a non-positive mean: no spectrum written", name);
        return true;
    }
    double L = st->hdr->box_size;
    int64_t n = st->x0->n;
    comm_sum_int64(st->comm, &n, 1);
    struct power_meta meta = {.box = {L, L, L},
                              .n_mesh = {st->set->n_mesh, st->set->n_mesh, st->set->n_mesh},
                              .n_part = {(double)n, (double)n},
                              .shot_noise = L * L * L / (double)n,
                              .redshift = st->hdr->redshift,
                              .compensated = st->p->power.compensate,
                              .los = -1,
                              .input = name,
                              .config = st->p->effective};
    jerald_plan_bins(fwd, &meta.kmin, &meta.dk, &meta.kmax);
    char base[PARAMS_PATH_MAX], what[160];
    snprintf(what, sizeof what, "%s_power", name);
    output_path(base, sizeof base, st->p, what);
    return jerald_io_write_spectrum(base, ps, &meta, st->comm, err);
}

static bool write_outputs(struct fit_state *st, struct lm_err *err)
{
    const struct params *p = st->p;
    char path[PARAMS_PATH_MAX];
    timer_start("jerald_fit.write");
    char *text = fragment_text(st);
    output_path(path, sizeof path, p, "");
    strncat(path, ".yml", sizeof path - strlen(path) - 1);
    bool ok = jerald_fit_io_write_text(path, text, st->comm, err);
    lm_free(text);
    if (ok)
        msg_info("jerald-fit: wrote %s", path);
    output_path(path, sizeof path, p, "history");
    ok = ok && jerald_fit_io_write_history(path, st->hist, st->n_fit, st->comm, err);
    output_path(path, sizeof path, p, "maps.hdf5");
    const struct fft_layout *l = fft_layout(jerald_plan_fft(jerald_fit_plan_forward(st->plan)));
    ok = ok && jerald_fit_io_write_maps(path, p->effective, st->hdr->box_size, l, st->n_fit,
                                        st->names, st->fitted, st->target, st->comm, err);
    struct power_spectrum *ps =
        power_spectrum_create(jerald_plan_n_bins(jerald_fit_plan_forward(st->plan)), 1);
    for (int i = 0; ok && i < st->n_fit; i++) {
        char name[96];
        ok = write_spectrum(st, st->names[i], st->fitted[i], ps, err);
        snprintf(name, sizeof name, "%s_target", st->names[i]);
        ok = ok && write_spectrum(st, name, st->target[i], ps, err);
    }
    power_spectrum_destroy(&ps);
    timer_stop("jerald_fit.write");
    return ok;
}

/* ---- the stage ------------------------------------------------------------------------------- */

static void teardown(struct fit_state *st)
{
    for (int i = 0; i < JERALD_MAX_MAPS; i++) {
        lm_free(st->fitted[i]);
        lm_free(st->target[i]);
        lm_free(st->stellar[i]);
        history_free(&st->hist[i]);
    }
    jerald_fit_plan_destroy(&st->plan);
    lm_free(st->set);
}

bool jerald_fit_run(const struct params *p, struct particles *parts,
                    const struct snapshot_header *hdr, MPI_Comm comm, struct lm_err *err)
{
    struct fit_state st = {.p = p, .comm = comm, .hdr = hdr, .x0 = parts};
    st.set = lm_calloc("jerald.set", 1, sizeof *st.set);
    read_config(p, st.set, st.fit, &st.n_fit, err);
    if (!comm_agree_soft(comm, err)) {
        teardown(&st);
        return false;
    }
    struct power_options po = stage_jerald_power_options(p);
    st.plan =
        jerald_fit_plan_create(st.set->n_mesh, hdr->box_size, st.set->gradient_order, &po, comm);
    migrate_particles(jerald_plan_decomp(jerald_fit_plan_forward(st.plan)), parts, hdr->box_size);
    int64_t n = parts->n;
    comm_sum_int64(comm, &n, 1);
    msg_info("jerald-fit: %lld particles, %d^3 mesh, box %g Mpc/h, %d map(s) to fit, loss %s",
             (long long)n, st.set->n_mesh, hdr->box_size, st.n_fit, p->jerald.fit.loss);
    params_make_dir(comm, p->output.dir);
    bool ok = true;
    for (int i = 0; ok && i < st.n_fit; i++)
        ok = fit_one(&st, i, err) && comm_agree_soft(comm, err);
    ok = ok && write_outputs(&st, err);
    teardown(&st);
    return ok;
}

bool stage_jerald_fit(struct run *run, struct lm_err *err)
{
    if (!stage_jerald_fit_check(run->p, run->comm, err))
        return false;
    struct snapshot_header hdr;
    bool owned;
    struct particles *parts = stage_jerald_particles(run, PARTICLES_POS, "jerald-fit",
                                                     "jerald_fit.read", &hdr, &owned, err);
    if (!parts)
        return false;
    bool ok = jerald_fit_run(run->p, parts, &hdr, run->comm, err);
    if (owned)
        particles_destroy(&parts);
    return ok;
}
