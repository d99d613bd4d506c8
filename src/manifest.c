/* manifest — the run record: scan, checksum, read and write manifest.yml. */
#include "manifest.h"

#include "alloc.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

uint64_t manifest_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t manifest_config_hash(const char *yaml)
{
    /* Every line outside the top-level "run:" section counts. */
    uint64_t h = MANIFEST_FNV_SEED;
    bool in_run = false;
    for (const char *line = yaml; *line;) {
        size_t len = strcspn(line, "\n");
        if (line[0] != ' ' && line[0] != '#')
            in_run = strncmp(line, "run:", 4) == 0;
        if (!in_run)
            h = manifest_fnv1a(h, line, len + 1);
        line += len + (line[len] == '\n');
    }
    return h;
}

static bool file_checksum(const char *path, uint64_t *sum)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = lm_malloc("manifest.io", CHUNK);
    uint64_t h = MANIFEST_FNV_SEED;
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0)
        h = manifest_fnv1a(h, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    lm_free(buf);
    *sum = h;
    return ok;
}

/* ---- scanning ------------------------------------------------------------------------------- */

static bool bookkeeping(const char *rel)
{
    return strncmp(rel, "manifest", 8) == 0 || strcmp(rel, "used_parameters.yml") == 0 ||
           strcmp(rel, "timings.json") == 0 || strstr(rel, ".tmp") != NULL;
}

static void scan_dir(const char *root, const char *rel, struct manifest_file **files, int *n,
                     int *cap)
{
    char path[8192];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096], full[8192];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            scan_dir(root, sub, files, n, cap);
            continue;
        }
        if (!S_ISREG(st.st_mode) || bookkeeping(sub))
            continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 32;
            *files = *files ? lm_realloc(*files, *cap * sizeof **files)
                            : lm_malloc("manifest", *cap * sizeof **files);
        }
        (*files)[(*n)++] = (struct manifest_file){.path = lm_strdup("manifest", sub),
                                                  .bytes = (uint64_t)st.st_size,
                                                  .mtime = (double)st.st_mtim.tv_sec +
                                                           1e-9 * (double)st.st_mtim.tv_nsec};
    }
    closedir(d);
}

int manifest_scan(const struct manifest *m, struct manifest_file **files)
{
    int n = 0, cap = 0;
    *files = NULL;
    scan_dir(m->dir, "", files, &n, &cap);
    return n;
}

void manifest_files_free(struct manifest_file *files, int n)
{
    for (int i = 0; i < n; i++)
        lm_free(files[i].path);
    lm_free(files);
}

/* ---- stages --------------------------------------------------------------------------------- */

struct manifest_stage *manifest_stage(struct manifest *m, const char *name)
{
    for (int i = 0; i < m->n_stages; i++)
        if (strcmp(m->stages[i].name, name) == 0)
            return &m->stages[i];
    return NULL;
}

void manifest_begin(struct manifest *m, const char *name, uint64_t config_hash)
{
    struct manifest_stage *s = manifest_stage(m, name);
    if (!s) {
        CHECK(m->n_stages < 16, "too many stages in one manifest");
        s = &m->stages[m->n_stages++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", name);
    }
    manifest_files_free(s->files, s->n_files);
    s->files = NULL;
    s->n_files = 0;
    s->complete = false;
    s->failed = false;
    s->interrupted = false;
    s->reason[0] = 0;
    s->config_hash = config_hash;
    s->seconds = 0;
}

static bool changed(const struct manifest_file *f, const struct manifest_file *before, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(before[i].path, f->path) == 0)
            return before[i].bytes != f->bytes || before[i].mtime != f->mtime;
    return true;
}

bool manifest_complete(struct manifest *m, const char *name, double seconds,
                       const struct manifest_file *before, int n_before, struct lm_err *err)
{
    struct manifest_stage *s = manifest_stage(m, name);
    ASSERT(s != NULL);
    struct manifest_file *after;
    int n_after = manifest_scan(m, &after);
    s->files = lm_malloc("manifest", (n_after ? n_after : 1) * sizeof *s->files);
    for (int i = 0; i < n_after; i++) {
        if (!changed(&after[i], before, n_before))
            continue;
        struct manifest_file *f = &s->files[s->n_files++];
        *f = after[i];
        f->path = lm_strdup("manifest", after[i].path);
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", m->dir, f->path);
        if (!file_checksum(full, &f->checksum))
            lm_err_set(err, "cannot read back '%s' to checksum it", full);
    }
    manifest_files_free(after, n_after);
    s->complete = lm_err_ok(err);
    s->seconds = seconds;
    return s->complete;
}

void manifest_fail(struct manifest *m, const char *name, double seconds, const char *reason,
                   bool interrupted)
{
    struct manifest_stage *s = manifest_stage(m, name);
    ASSERT(s != NULL);
    s->complete = false;
    s->failed = true;
    s->interrupted = interrupted;
    s->seconds = seconds;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    for (char *c = s->reason; *c; c++) /* one double-quoted YAML line */
        if (*c == '"' || *c == '\\' || *c == '\n')
            *c = '\'';
}

bool manifest_stage_valid(struct manifest *m, const char *name, uint64_t config_hash, char *why,
                          size_t n_why)
{
    struct manifest_stage *s = manifest_stage(m, name);
    if (!s || !s->complete) {
        snprintf(why, n_why, "%s",
                 !s               ? "it has not run"
                 : s->interrupted ? "it was interrupted"
                 : s->failed      ? "it failed"
                                  : "it did not complete");
        return false;
    }
    if (s->config_hash != config_hash) {
        snprintf(why, n_why, "it ran with another configuration");
        return false;
    }
    for (int i = 0; i < s->n_files; i++) {
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", m->dir, s->files[i].path);
        struct stat st;
        uint64_t sum = 0;
        if (stat(full, &st) != 0 || (uint64_t)st.st_size != s->files[i].bytes ||
            !file_checksum(full, &sum) || sum != s->files[i].checksum) {
            snprintf(why, n_why, "its output '%s' is missing or changed", s->files[i].path);
            return false;
        }
    }
    return true;
}

void manifest_free(struct manifest *m)
{
    for (int i = 0; i < m->n_stages; i++)
        manifest_files_free(m->stages[i].files, m->stages[i].n_files);
    m->n_stages = 0;
}

/* ---- write ---------------------------------------------------------------------------------- */

static void write_stage(FILE *f, const struct manifest_stage *s)
{
    fprintf(f, "  - name: %s\n    status: %s\n    config_hash: \"%016" PRIx64 "\"\n", s->name,
            s->complete      ? "complete"
            : s->interrupted ? "interrupted"
            : s->failed      ? "failed"
                             : "running",
            s->config_hash);
    if (s->failed)
        fprintf(f, "    reason: \"%s\"\n", s->reason);
    fprintf(f, "    seconds: %.3f\n    files:", s->seconds);
    if (!s->n_files)
        fprintf(f, " []");
    fprintf(f, "\n");
    for (int i = 0; i < s->n_files; i++)
        fprintf(f,
                "      - {path: \"%s\", bytes: %" PRIu64 ", fnv1a64: \"%016" PRIx64
                "\", mtime: %.9f}\n",
                s->files[i].path, s->files[i].bytes, s->files[i].checksum, s->files[i].mtime);
}

bool manifest_write(const struct manifest *m, struct lm_err *err)
{
    char path[8192], tmp[8300];
    snprintf(path, sizeof path, "%s/manifest.yml", m->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return lm_err_set(err, "cannot write '%s': %s", tmp, strerror(errno));
    fprintf(f,
            "# lemur run manifest: stages, their files and checksums (rewritten as stages "
            "complete)\nconfig_hash: \"%016" PRIx64 "\"\nstages:",
            m->config_hash);
    fprintf(f, m->n_stages ? "\n" : " []\n");
    for (int i = 0; i < m->n_stages; i++)
        write_stage(f, &m->stages[i]);
    bool ok = fclose(f) == 0 && rename(tmp, path) == 0;
    if (!ok)
        return lm_err_set(err, "cannot write '%s': %s", path, strerror(errno));
    return true;
}

/* ---- read ----------------------------------------------------------------------------------- */

static const char *scalar_of(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "";
    }
    return NULL;
}

static yaml_node_t *node_of(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static bool read_files(yaml_document_t *d, yaml_node_t *seq, struct manifest_stage *s)
{
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return false;
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    s->files = lm_calloc("manifest", n ? n : 1, sizeof *s->files);
    for (int i = 0; i < n; i++) {
        yaml_node_t *f = yaml_document_get_node(d, seq->data.sequence.items.start[i]);
        const char *path = scalar_of(d, f, "path"), *bytes = scalar_of(d, f, "bytes");
        const char *sum = scalar_of(d, f, "fnv1a64"), *mtime = scalar_of(d, f, "mtime");
        if (!path || !bytes || !sum || !mtime)
            return false;
        s->files[i] = (struct manifest_file){lm_strdup("manifest", path), strtoull(bytes, NULL, 10),
                                             strtoull(sum, NULL, 16), atof(mtime)};
        s->n_files++;
    }
    return true;
}

static bool read_stage(yaml_document_t *d, yaml_node_t *n, struct manifest_stage *s)
{
    const char *name = scalar_of(d, n, "name"), *status = scalar_of(d, n, "status");
    const char *hash = scalar_of(d, n, "config_hash"), *secs = scalar_of(d, n, "seconds");
    if (!name || !status || !hash || !secs)
        return false;
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->complete = strcmp(status, "complete") == 0;
    s->interrupted = strcmp(status, "interrupted") == 0;
    s->failed = s->interrupted || strcmp(status, "failed") == 0;
    const char *reason = scalar_of(d, n, "reason");
    snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
    s->config_hash = strtoull(hash, NULL, 16);
    s->seconds = atof(secs);
    return read_files(d, node_of(d, n, "files"), s);
}

static bool read_document(struct manifest *m, yaml_document_t *d)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    const char *hash = scalar_of(d, root, "config_hash");
    yaml_node_t *stages = root ? node_of(d, root, "stages") : NULL;
    if (!hash || !stages || stages->type != YAML_SEQUENCE_NODE)
        return false;
    m->config_hash = strtoull(hash, NULL, 16);
    int n = (int)(stages->data.sequence.items.top - stages->data.sequence.items.start);
    for (int i = 0; i < n && i < 16; i++) {
        if (!read_stage(d, yaml_document_get_node(d, stages->data.sequence.items.start[i]),
                        &m->stages[m->n_stages]))
            return false;
        m->n_stages++;
    }
    return true;
}

bool manifest_read(struct manifest *m, const char *dir, struct lm_err *err)
{
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    char path[8192];
    snprintf(path, sizeof path, "%s/manifest.yml", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    bool ok = yaml_parser_load(&parser, &doc);
    if (ok) {
        ok = read_document(m, &doc);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (!ok) {
        manifest_free(m);
        lm_err_set(err, "'%s' is not a lemur manifest (delete it, or use another output.dir)",
                   path);
    }
    return ok;
}
