/* run — the run's data in memory, the stage table, `lemur run` and `lemur <stage>` (see run.h). */
#include "run.h"

#include "alloc.h"
#include "manifest.h"
#include "mesh.h"
#include "mpi/comm.h"
#include "mpi/params_load.h"
#include "stage_bias.h"
#include "stage_ic.h"
#include "stages.h"
#include "timer.h"

#include <stdio.h>
#include <string.h>

/* ---- the stage table ------------------------------------------------------------------------- */

/* What each stage uses under the parameters: ic's particles are the run's only without an
 * emulator model; emulate is idle without one; power and jerald read the run's particles only
 * when their input key is empty. */
static unsigned ic_uses(const struct params *p)
{
    return RUN_FIELD | (*p->emulator.model ? 0u : RUN_PARTICLES);
}
static unsigned emulate_uses(const struct params *p)
{
    return *p->emulator.model ? RUN_FIELD | RUN_PARTICLES : 0u;
}
static unsigned power_uses(const struct params *p) { return *p->power.input ? 0u : RUN_PARTICLES; }
static unsigned jerald_uses(const struct params *p)
{
    return *p->jerald.input ? 0u : RUN_PARTICLES;
}
static unsigned fof_uses(const struct params *p) { return *p->fof.input ? 0u : RUN_PARTICLES; }
static unsigned superres_uses(const struct params *p)
{
    return *p->superres.model && !*p->superres.hr_input ? RUN_FIELD : 0u;
}
static unsigned bias_uses(const struct params *p)
{
    return (*p->bias.field ? 0u : RUN_FIELD) | (*p->bias.input ? 0u : RUN_PARTICLES);
}

/* clang-format off */
const struct stage run_stages[] = {
    {"ic", stage_ic, 0, RUN_FIELD | RUN_PARTICLES, ic_uses, stage_ic_check,
     "make the linear displacement field (and optionally LPT particles)",
     "Generates N-GenIC-compatible white noise, the linear density and the Zel'dovich\n"
     "displacement (box.n^3 on x-slabs) and writes them as HDF5 under output.dir."},
    {"emulate", stage_emulate, RUN_FIELD, RUN_PARTICLES, emulate_uses, stage_emulate_check,
     "run the field-level emulator on the displacement field",
     "Takes the displacement field (from ic in memory, or its file), runs the styled V-Net tile\n"
     "by tile (emulator.*) and writes the nonlinear particles (positions, velocities, IDs)."},
    {"power", stage_power, RUN_PARTICLES, 0, power_uses, stage_power_check,
     "measure power spectra of a snapshot",
     "Reads power.input (or takes the run's particles), paints them with CIC and writes P(k),\n"
     "multipoles and momentum spectra as HDF5 and text."},
    {"jerald", stage_jerald, RUN_PARTICLES, 0, jerald_uses, stage_jerald_check,
     "paint dark-matter, stellar and HI maps with displacement layers",
     "Applies the Green's-function displacement layers of jerald.maps.* to the particles and\n"
     "writes the maps and their spectra."},
    {"jerald-fit", stage_jerald_fit, RUN_PARTICLES, 0, jerald_uses, stage_jerald_fit_check,
     "fit the JERALD parameters of jerald.maps to target maps",
     "Fits the layers and final maps of jerald.maps.* that have a target in jerald.fit.targets\n"
     "(Adam, L1/L2 loss, early stopping) and writes the fitted parameters as a parameter file."},
    {"fof", stage_fof, RUN_PARTICLES, 0, fof_uses, NULL,
     "friends-of-friends haloes: catalogue, mass function, halo spectra",
     "Finds friends-of-friends groups of fof.input (or the run's particles), writes the\n"
     "Gadget-4 fof_tab catalogue, the mass function with the Sheth & Tormen curve and the\n"
     "halo auto, halo-matter cross spectra and bias."},
    {"superres", stage_superres, RUN_FIELD, 0, superres_uses, stage_superres_check,
     "super-resolution: LR evolved density + HR ICs -> HR density",
     "Runs the generator network of superres.model (Kodi Ramanah et al. 2020) on the HR linear\n"
     "density (from ic in memory, or its file) and the LR density painted from superres.lr_input,\n"
     "tiled over the ranks, and writes the HR density with its P(k) and r(k) against the LR field."},
    {"bias", stage_bias, RUN_FIELD | RUN_PARTICLES, 0, bias_uses, stage_bias_check,
     "Lagrangian-bias halo field: features, network weights, spectra",
     "Computes the features of the linear field (the run's, or bias.field) at the model's\n"
     "smoothing scales, the network's weight f of every Lagrangian site (bias.model; Wu, Munoz\n"
     "& Eisenstein 2023), carries f to the final particles by ID and writes the halo field's\n"
     "auto and halo-matter spectra (bias_power.hdf5, .txt). lemur bias-fit trains a model."},
};
/* clang-format on */
const int run_n_stages = (int)(sizeof run_stages / sizeof run_stages[0]);

const struct stage *run_stage_find(const char *name)
{
    for (int i = 0; i < run_n_stages; i++)
        if (strcmp(run_stages[i].name, name) == 0)
            return &run_stages[i];
    return NULL;
}

static int stage_index(const char *name)
{
    const struct stage *s = run_stage_find(name);
    return s ? (int)(s - run_stages) : -1;
}

static unsigned stage_uses(const struct stage *s, const struct params *p)
{
    return s->uses ? s->uses(p) : s->reads | s->makes;
}

/* The stage nearest to an unknown name, as a hint. */
static void suggest_stage(const char *name, char *out, size_t cap)
{
    int best = -1, best_d = 1000, len = (int)strlen(name);
    char all[256] = "";
    for (int i = 0; i < run_n_stages; i++) {
        int d = config_edit_distance(name, run_stages[i].name);
        if (d < best_d)
            best_d = d, best = i;
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "",
                 run_stages[i].name);
    }
    if (best >= 0 && best_d <= (len < 6 ? 2 : len / 3 + 1))
        snprintf(out, cap, "did you mean '%s'? (stages: %s)", run_stages[best].name, all);
    else
        snprintf(out, cap, "the stages are %s", all);
}

bool run_stages_check(const struct params *p, struct lm_err *err)
{
    const struct string_list *l = &p->run.stages;
    if (l->n == 0)
        return lm_err_set(err, "run.stages is empty: name at least one stage (e.g. [ic, power])");
    int last = -1;
    for (int i = 0; i < l->n; i++) {
        int at = stage_index(l->v[i]);
        char hint[400];
        if (at < 0) {
            suggest_stage(l->v[i], hint, sizeof hint);
            return lm_err_set(err, "run.stages[%d] = '%s' is not a stage: %s", i, l->v[i], hint);
        }
        for (int j = 0; j < i; j++)
            if (strcmp(l->v[j], l->v[i]) == 0)
                return lm_err_set(err, "run.stages lists '%s' twice (items %d and %d)", l->v[i], j,
                                  i);
        if (at < last)
            return lm_err_set(err,
                              "run.stages: '%s' comes after '%s', but it runs before it (the "
                              "order is that of lemur --help)",
                              l->v[i], run_stages[last].name);
        last = at;
    }
    return true;
}

bool run_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    int n = (int)p->box.n, nn[3] = {n, n, n};
    if (run_stages_check(p,
                         err)) /* the parameters, and so the outcome, are the same on every rank */
        fft_check_size(nn, "box.n", err);
    if (!lm_err_ok(err))
        return false;
    for (int i = 0; i < p->run.stages.n; i++) {
        const struct stage *s = run_stage_find(p->run.stages.v[i]);
        if (s->check && !s->check(p, comm, err))
            return false;
    }
    return true;
}

/* ---- the products ---------------------------------------------------------------------------- */

static const char *product_name(unsigned product)
{
    return product == RUN_FIELD ? "the linear field" : "the run's particles";
}

/* Whether a product is also written to a file under p (the key that says so in *key). */
static bool product_on_disk(const struct params *p, unsigned product, const char **key)
{
    if (product == RUN_FIELD) {
        *key = "ic.write_field";
        return p->ic.write_field || *p->ic.input;
    }
    *key = *p->emulator.model ? "particles.write_snapshot" : "ic.write_particles";
    return *p->emulator.model ? p->particles.write_snapshot : p->ic.write_particles;
}

static void run_drop(struct run *r, unsigned products)
{
    if (products & r->held & RUN_FIELD) {
        for (int d = 0; d < 3; d++)
            lm_free(r->field.psi[d]);
        lm_free(r->field.delta);
        memset(&r->field, 0, sizeof r->field);
        msg_info("run: %s freed", product_name(RUN_FIELD));
    }
    if (products & r->held & RUN_PARTICLES) {
        particles_destroy(&r->parts);
        msg_info("run: %s freed", product_name(RUN_PARTICLES));
    }
    r->held &= ~products;
}

bool run_wants(const struct run *r, enum run_product product)
{
    unsigned makes = r->stage ? r->stage->makes & stage_uses(r->stage, r->p) : 0u;
    return (r->wanted & makes & (unsigned)product) != 0;
}

void run_put_field(struct run *r, struct ic_fields *f)
{
    ASSERT(f->psi2[0] == NULL && f->psi2[1] == NULL && f->psi2[2] == NULL);
    run_drop(r, RUN_FIELD);
    r->field = *f;
    memset(f, 0, sizeof *f);
    r->held |= RUN_FIELD;
}

const struct ic_fields *run_field(const struct run *r)
{
    return r->held & RUN_FIELD ? &r->field : NULL;
}

void run_put_particles(struct run *r, struct particles **parts, const struct snapshot_header *hdr)
{
    run_drop(r, RUN_PARTICLES);
    r->parts = *parts;
    *parts = NULL;
    r->hdr = *hdr;
    int64_t n = r->parts->n;
    comm_sum_int64(r->comm, &n, 1);
    r->hdr.n_total[1] = (uint64_t)n;
    r->held |= RUN_PARTICLES;
}

struct particles *run_particles(struct run *r, struct snapshot_header *hdr)
{
    if (!(r->held & RUN_PARTICLES))
        return NULL;
    *hdr = r->hdr;
    return r->parts;
}

void run_release(struct run *r, enum run_product product)
{
    if (!(r->wanted & (unsigned)product))
        run_drop(r, (unsigned)product);
}

/* ---- one stage ------------------------------------------------------------------------------- */

/* Run s with wanted products; drop what no later stage reads. */
static bool run_one(struct run *r, const struct stage *s, unsigned wanted, struct lm_err *err)
{
    r->wanted = wanted;
    r->stage = s;
    bool ok = s->run(r, err);
    if (!ok && lm_err_ok(err))
        lm_err_set(err, "stage %s failed without a reason (internal error)", s->name);
    ok = comm_agree_soft(r->comm, err);
    run_drop(r, r->held & ~wanted);
    return ok;
}

bool run_stage_alone(const struct stage *s, const struct params *p, MPI_Comm comm,
                     struct lm_err *err)
{
    struct run r = {.p = p, .comm = comm};
    bool ok = run_one(&r, s, 0, err);
    run_drop(&r, r.held);
    return ok;
}

/* ---- the manifest ---------------------------------------------------------------------------- */

/* The keys (outside run.*) whose values differ between two configurations, as "key: a -> b". */
static void config_diff(const struct config *old, const struct config *now, char *out, size_t cap)
{
    out[0] = 0;
    const struct config *pair[2] = {old, now};
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < pair[side]->n_entries; i++) {
            const struct config_entry *e = &pair[side]->entries[i];
            const struct config_entry *o = config_entry(pair[1 - side], e->path);
            bool same = o && o->n_values == e->n_values;
            for (int v = 0; same && v < e->n_values; v++)
                same = strcmp(o->values[v], e->values[v]) == 0;
            if (same || strncmp(e->path, "run.", 4) == 0 || (side == 1 && o))
                continue;
            char item[512];
            snprintf(item, sizeof item, "%s%s: %s -> %s", *out ? "; " : "", e->path,
                     side == 0 ? e->values[0] : (o ? o->values[0] : "(unset)"),
                     side == 0 ? (o ? o->values[0] : "(unset)") : e->values[0]);
            if (strlen(out) + strlen(item) + 1 < cap)
                strcat(out, item);
        }
}

/* Rank 0: refuse to resume over a manifest made with another configuration. */
static void check_resume(const struct params *p, const struct manifest *m, uint64_t hash,
                         struct lm_err *err)
{
    if (m->config_hash == hash)
        return;
    char path[4200], diff[2048] = "(the saved configuration is unreadable)";
    snprintf(path, sizeof path, "%s/manifest_config.yml", m->dir);
    struct config *old = config_create(params_schema, params_n_schema);
    struct lm_err e2 = {0};
    if (config_load_file(old, path, &e2) && config_finalize(old, &e2))
        config_diff(old, p->cfg, diff, sizeof diff);
    config_destroy(&old);
    lm_err_set(err,
               "run.resume: %s/manifest.yml was made with a different configuration (%s); use "
               "another output.dir, or run.resume=false to start again",
               m->dir, diff);
}

static void write_config_copy(const struct params *p, struct lm_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest_config.yml", p->output.dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(p->effective, f) < 0)
        lm_err_set(err, "cannot write '%s'", path);
    if (f)
        fclose(f);
}

/* Rank 0 opens (resume) or starts the manifest. */
static void manifest_open(const struct params *p, struct manifest *m, uint64_t hash, MPI_Comm comm)
{
    struct lm_err err = {0};
    if (comm_rank(comm) == 0) {
        bool found = manifest_read(m, p->output.dir, &err);
        if (found && p->run.resume)
            check_resume(p, m, hash, &err);
        if (!found || !p->run.resume) {
            manifest_free(m);
            m->config_hash = hash;
        }
        if (lm_err_ok(&err))
            write_config_copy(p, &err);
        if (lm_err_ok(&err))
            manifest_write(m, &err);
    }
    comm_agree(comm, &err);
}

/* Which stages of the list are complete in the manifest (rank 0 decides, every rank learns). */
static void stages_done(const struct params *p, struct manifest *m, int n, const struct stage **st,
                        uint64_t hash, bool *done, MPI_Comm comm)
{
    double flag[64] = {0};
    char why[600];
    for (int i = 0; i < n; i++) {
        why[0] = 0;
        if (comm_rank(comm) == 0 && p->run.resume)
            flag[i] = manifest_stage_valid(m, st[i]->name, hash, why, sizeof why);
        if (p->run.resume && flag[i] == 0 && *why)
            msg_info("== stage %s: runs again (%s) ==", st[i]->name, why);
    }
    comm_max_double(comm, flag, n);
    for (int i = 0; i < n; i++)
        done[i] = flag[i] > 0;
}

/* A complete stage runs again when a stage that runs reads one of its products from memory and
 * the product was not written to a file. Backwards, so that a stage run again brings its own
 * inputs back in turn. */
static void plan_reruns(const struct params *p, int n, const struct stage **st, bool *skip)
{
    for (int i = n - 1; i >= 0; i--) {
        if (skip[i])
            continue;
        unsigned reads = st[i]->reads & stage_uses(st[i], p);
        for (unsigned x = 1; x <= reads; x <<= 1) {
            if (!(reads & x))
                continue;
            int k = i - 1;
            while (k >= 0 && !(st[k]->makes & stage_uses(st[k], p) & x))
                k--;
            const char *key;
            if (k < 0 || !skip[k] || product_on_disk(p, x, &key))
                continue;
            skip[k] = false;
            msg_info("== stage %s: runs again: %s needs %s, which was kept in memory only (%s: "
                     "false) ==",
                     st[k]->name, st[i]->name, product_name(x), key);
        }
    }
}

/* The products read by the stages after i that run. */
static unsigned wanted_after(const struct params *p, int n, const struct stage **st,
                             const bool *skip, int i)
{
    unsigned w = 0;
    for (int j = i + 1; j < n; j++)
        if (!skip[j])
            w |= st[j]->reads & stage_uses(st[j], p);
    return w;
}

/* One stage of `lemur run`: manifest entry, the stage, its files or its failure. */
static bool pipeline_stage(struct run *r, const struct stage *s, unsigned wanted,
                           struct manifest *m, uint64_t hash, struct lm_err *err)
{
    MPI_Comm comm = r->comm;
    char where[96];
    snprintf(where, sizeof where, "before stage %s", s->name);
    if (comm_interrupted(comm, where, err))
        return false;
    struct lm_err merr = {0};
    struct manifest_file *before = NULL;
    int n_before = 0;
    if (comm_rank(comm) == 0) {
        manifest_begin(m, s->name, hash);
        manifest_write(m, &merr);
        n_before = manifest_scan(m, &before);
    }
    if (!comm_agree_soft(comm, &merr)) {
        manifest_files_free(before, n_before);
        *err = merr;
        return false;
    }
    double t0 = timer_now();
    bool ok = run_one(r, s, wanted, err);
    double dt = timer_now() - t0;
    if (comm_rank(comm) == 0) {
        if (ok && manifest_complete(m, s->name, dt, before, n_before, &merr))
            manifest_write(m, &merr);
        else if (!ok) {
            manifest_fail(m, s->name, dt, err->msg, comm_was_interrupted());
            manifest_write(m, &merr);
        }
    }
    manifest_files_free(before, n_before);
    if (!comm_agree_soft(comm, &merr) && ok) {
        *err = merr;
        return false;
    }
    if (ok)
        msg_info("== stage %s done in %.2f s ==", s->name, dt);
    return ok;
}

bool run_pipeline(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    if (!run_check(p, comm, err))
        return false;
    stage_cosmology_summary(p, comm);
    uint64_t hash = manifest_config_hash(p->effective);
    struct manifest m = {0};
    params_make_dir(comm, p->output.dir);
    manifest_open(p, &m, hash, comm);
    int n = p->run.stages.n;
    const struct stage *st[64];
    bool skip[64];
    for (int i = 0; i < n; i++)
        st[i] = run_stage_find(p->run.stages.v[i]);
    stages_done(p, &m, n, st, hash, skip, comm);
    plan_reruns(p, n, st, skip);
    struct run r = {.p = p, .comm = comm};
    bool ok = true, used_written = false;
    for (int i = 0; i < n && ok; i++) {
        if (skip[i]) {
            msg_info("== stage %s: already complete in %s/manifest.yml, skipped ==", st[i]->name,
                     p->output.dir);
            continue;
        }
        msg_info("== stage %d/%d: %s ==", i + 1, n, st[i]->name);
        ok = pipeline_stage(&r, st[i], wanted_after(p, n, st, skip, i), &m, hash, err);
        if (ok && !used_written) { /* the configuration of outputs that exist, not of a failure */
            params_write_used(comm, p);
            used_written = true;
        }
    }
    if (ok && !used_written) /* every stage was complete already */
        params_write_used(comm, p);
    run_drop(&r, r.held);
    manifest_free(&m);
    if (ok)
        msg_info("outputs are in %s/ (manifest.yml lists them)", p->output.dir);
    return ok;
}
