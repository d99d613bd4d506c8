/* pipeline — `lemur run`: the stages of run.stages in order, recorded in the run manifest. */
#include "pipeline.h"

#include "alloc.h"
#include "manifest.h"
#include "mpi/comm.h"
#include "mpi/params_load.h"
#include "stage_ic.h"
#include "stages.h"
#include "timer.h"

#include <stdio.h>
#include <string.h>

/* The stages `lemur run` can chain; a NULL function is a stage this build does not have. */
static const struct pipeline_stage stages[] = {
    {"ic", ic_command},       {"emulate", stage_emulate}, {"power", stage_power},
    {"jerald", stage_jerald}, {"fof", stage_fof},         {"bias", NULL},
};
static const int n_stages = (int)(sizeof stages / sizeof stages[0]);

const struct pipeline_stage *pipeline_find(const char *name)
{
    for (int i = 0; i < n_stages; i++)
        if (strcmp(stages[i].name, name) == 0)
            return &stages[i];
    return NULL;
}

static void check_stages(const struct params *p, MPI_Comm comm)
{
    struct lm_err err = {0};
    for (int i = 0; i < p->run.stages.n; i++) {
        const struct pipeline_stage *s = pipeline_find(p->run.stages.v[i]);
        if (!s || !s->run)
            lm_err_set(&err, "run.stages: the stage '%s' is not available in this build",
                       p->run.stages.v[i]);
    }
    comm_agree(comm, &err);
}

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

/* Rank 0 decides whether a stage is already done; every rank learns the answer. */
static bool stage_done(const struct params *p, struct manifest *m, const char *name, uint64_t hash,
                       MPI_Comm comm)
{
    char why[600] = "";
    int done = 0;
    if (comm_rank(comm) == 0 && p->run.resume)
        done = manifest_stage_valid(m, name, hash, why, sizeof why);
    double flag = done;
    comm_max_double(comm, &flag, 1);
    if (flag > 0)
        msg_info("== stage %s: already complete in %s/manifest.yml, skipped ==", name,
                 p->output.dir);
    else if (p->run.resume && *why)
        msg_info("== stage %s: runs again (%s) ==", name, why);
    return flag > 0;
}

static int run_stage(const struct params *p, const struct pipeline_stage *s, struct manifest *m,
                     uint64_t hash, MPI_Comm comm)
{
    struct lm_err err = {0};
    struct manifest_file *before = NULL;
    int n_before = 0;
    if (comm_rank(comm) == 0) {
        manifest_begin(m, s->name, hash);
        manifest_write(m, &err);
        n_before = manifest_scan(m, &before);
    }
    comm_agree(comm, &err);
    double t0 = timer_now();
    int rc = s->run(p, comm);
    comm_barrier(comm);
    double dt = timer_now() - t0;
    if (rc == 0 && comm_rank(comm) == 0 &&
        manifest_complete(m, s->name, dt, before, n_before, &err))
        manifest_write(m, &err);
    manifest_files_free(before, n_before);
    comm_agree(comm, &err);
    if (rc == 0)
        msg_info("== stage %s done in %.2f s ==", s->name, dt);
    return rc;
}

int pipeline_run(const struct params *p, MPI_Comm comm)
{
    check_stages(p, comm);
    stage_cosmology_summary(p, comm);
    uint64_t hash = manifest_config_hash(p->effective);
    struct manifest m = {0};
    params_make_dir(comm, p->output.dir);
    manifest_open(p, &m, hash, comm);
    params_write_used(comm, p);
    int rc = 0;
    for (int i = 0; i < p->run.stages.n && rc == 0; i++) {
        const struct pipeline_stage *s = pipeline_find(p->run.stages.v[i]);
        if (stage_done(p, &m, s->name, hash, comm))
            continue;
        msg_info("== stage %d/%d: %s ==", i + 1, p->run.stages.n, s->name);
        rc = run_stage(p, s, &m, hash, comm);
    }
    manifest_free(&m);
    if (rc == 0)
        msg_info("outputs are in %s/ (manifest.yml lists them)", p->output.dir);
    return rc;
}
