#include "mpi/params_load.h"

#include "alloc.h"
#include "mpi/comm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Rank 0: parse, override, validate; returns the effective YAML or NULL with err set. */
static char *parse_on_root(const char *path, int n_over, char *const *over, struct lm_err *err)
{
    struct config *c = config_create(params_schema, params_n_schema);
    bool ok = config_load_file(c, path, err);
    for (int i = 0; ok && i < n_over; i++)
        ok = config_override(c, over[i], err);
    ok = ok && config_finalize(c, err);
    char *text = ok ? config_to_yaml(c) : NULL;
    config_destroy(&c);
    return text;
}

void params_load(MPI_Comm comm, const char *path, int n_overrides, char *const *overrides,
                 struct params *p)
{
    struct lm_err err = {0};
    char *text = NULL;
    if (comm_rank(comm) == 0)
        text = parse_on_root(path, n_overrides, overrides, &err);
    comm_agree(comm, &err);
    comm_bcast_string(comm, &text, 0);
    struct config *c = config_create(params_schema, params_n_schema);
    bool ok = config_load_string(c, text, path, &err) && config_finalize(c, &err);
    CHECK(ok, "internal error: the effective configuration does not parse back: %s", err.msg);
    lm_free(text);
    params_fill(p, c);
    msg_set_verbosity((int)p->run.verbosity);
}

static bool make_dirs(const char *path, struct lm_err *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1;; s++) {
        bool end = *s == 0;
        if (*s == '/' || end) {
            *s = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return lm_err_set(err, "cannot create directory '%s': %s", buf, strerror(errno));
            struct stat st;
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return lm_err_set(err, "'%s' exists and is not a directory", buf);
            if (end)
                return true;
            *s = '/';
        }
    }
}

void params_make_dir(MPI_Comm comm, const char *path)
{
    struct lm_err err = {0};
    if (comm_rank(comm) == 0)
        make_dirs(path, &err);
    comm_agree(comm, &err);
}

static bool write_text(const char *path, const char *text, struct lm_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return lm_err_set(err, "cannot write '%s': %s (is output.dir writable?)", tmp,
                          strerror(errno));
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return lm_err_set(err, "cannot write '%s': %s", path, strerror(errno));
    }
    return true;
}

void params_write_used(MPI_Comm comm, const struct params *p)
{
    params_make_dir(comm, p->output.dir);
    struct lm_err err = {0};
    if (comm_rank(comm) == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/used_parameters.yml", p->output.dir);
        char *text = lm_malloc("params.text", strlen(p->effective) + 128);
        sprintf(text, "# effective lemur configuration (defaults included)\n%s", p->effective);
        write_text(path, text, &err);
        lm_free(text);
    }
    comm_agree(comm, &err);
}
