#include "run_store.h"

#include "alloc.h"
#include "emulate_stage.h"
#include "mpi/comm.h"
#include "stage_ic.h"

#include <string.h>

enum { RUN_STORE_MAX = 16 };

static struct held {
    char path[4096];
    struct particles *parts;
    struct snapshot_header hdr;
} g_held[RUN_STORE_MAX];
static int g_n = 0;

/* The key of a snapshot path: without a trailing ".hdf5", as snapshot_read accepts both. */
static void key_of(const char *path, char *key, size_t cap)
{
    snprintf(key, cap, "%s", path);
    size_t n = strlen(key);
    if (n > 5 && strcmp(key + n - 5, ".hdf5") == 0)
        key[n - 5] = 0;
}

static struct held *find(const char *path)
{
    char key[4096];
    key_of(path, key, sizeof key);
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_held[i].path, key) == 0)
            return &g_held[i];
    return NULL;
}

/* A copy of the fields `fields` of src (all of src's when 0). */
static struct particles *copy(const struct particles *src, unsigned fields)
{
    unsigned f = fields ? (fields & src->fields) : src->fields;
    struct particles *dst = particles_create(f, src->n);
    particles_resize(dst, src->n);
    size_t n = (size_t)src->n;
    for (int d = 0; d < 3; d++) {
        if (f & PARTICLES_POS)
            memcpy(dst->x[d], src->x[d], n * sizeof(float));
        if (f & PARTICLES_VEL)
            memcpy(dst->v[d], src->v[d], n * sizeof(float));
    }
    if (f & PARTICLES_ID)
        memcpy(dst->id, src->id, n * sizeof(uint64_t));
    if (f & PARTICLES_WEIGHT)
        memcpy(dst->w, src->w, n * sizeof(float));
    return dst;
}

static struct held *slot(const char *path)
{
    struct held *h = find(path);
    if (h) {
        particles_destroy(&h->parts);
        return h;
    }
    CHECK(g_n < RUN_STORE_MAX, "more than %d particle sets held in memory", RUN_STORE_MAX);
    h = &g_held[g_n++];
    key_of(path, h->path, sizeof h->path);
    return h;
}

void run_store_put(const char *path, const struct particles *parts,
                   const struct snapshot_header *hdr)
{
    struct held *h = slot(path);
    h->parts = copy(parts, 0);
    h->hdr = *hdr;
}

void run_store_adopt(const char *path, struct particles **parts, const struct snapshot_header *hdr)
{
    struct held *h = slot(path);
    h->parts = *parts;
    h->hdr = *hdr;
    *parts = NULL;
}

bool run_store_has(const char *path) { return find(path) != NULL; }

void run_store_clear(void)
{
    for (int i = 0; i < g_n; i++)
        particles_destroy(&g_held[i].parts);
    g_n = 0;
}

void run_particles_path(const struct params *p, char *out, size_t cap)
{
    if (*p->emulator.model)
        emulate_output_path(p, 0, EMULATE_SNAPSHOT_NAME, out, cap);
    else
        snprintf(out, cap, "%s/%s", p->output.dir, IC_SNAPSHOT_FILE);
}

bool stage_read_particles(const char *path, const struct snapshot_read_opts *opts, MPI_Comm comm,
                          struct snapshot_header *hdr, struct particles **out, struct lm_err *err)
{
    const struct held *h = find(path);
    unsigned want =
        opts && opts->fields ? opts->fields : (PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID);
    bool usable = h && (h->parts->fields & want) == want;
    if (comm_all(comm, usable)) {
        *out = copy(h->parts, want);
        *hdr = h->hdr;
        int64_t n = h->parts->n;
        comm_sum_int64(comm, &n, 1);
        hdr->n_total[1] = (uint64_t)n;
        msg_info("particles of %s taken from memory (%.0f in all)", path, (double)hdr->n_total[1]);
        return true;
    }
    return snapshot_read(path, opts, comm, hdr, out, err);
}
