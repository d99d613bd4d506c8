/* bias_io — the bias network's model file and the halo catalogue of a fit (see bias_io.h). */
#include "mpi/bias_io.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/h5io.h"

#define BIAS_FORMAT "lemur-bias-mlp"

/* ---- reading the model (rank 0) ---------------------------------------------------------- */

/* Read dataset name of rank dims with the shape want (-1: any) into dst as mem_type; shape in got.
 */
static bool read_ds(hid_t f, const char *path, const char *name, int rank, const int64_t *want,
                    enum h5io_class cls, hid_t mem_type, void *dst, int64_t *got,
                    struct lm_err *err)
{
    int64_t dims[2];
    hid_t d = h5io_dataset_open(f, name, rank, want, cls, dims, path, err);
    if (d == H5I_INVALID_HID)
        return false;
    bool ok = true;
    if (dst)
        ok = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0;
    H5Dclose(d);
    if (got)
        memcpy(got, dims, (size_t)rank * sizeof *dims);
    return ok || lm_err_set(err, "%s: cannot read dataset %s", path, name);
}

static bool read_layers(hid_t f, const char *path, struct bias_model *m, struct lm_err *err)
{
    bool ok = true;
    for (int l = 0; l < BIAS_N_LAYERS && ok; l++) {
        char name[64];
        const int64_t ww[2] = {bias_layer_out(l), bias_layer_in(m, l)}, wb[1] = {ww[0]};
        snprintf(name, sizeof name, "mlp/weight_%d", l);
        ok = read_ds(f, path, name, 2, ww, H5IO_FLOAT, H5T_NATIVE_FLOAT, m->w[l], NULL, err);
        snprintf(name, sizeof name, "mlp/bias_%d", l);
        ok = ok && read_ds(f, path, name, 1, wb, H5IO_FLOAT, H5T_NATIVE_FLOAT, m->b[l], NULL, err);
    }
    return ok;
}

static struct bias_model *read_model_local(const char *path, struct lm_err *err)
{
    hid_t f = h5io_open(path, MPI_COMM_NULL, err);
    if (f == H5I_INVALID_HID)
        return NULL;
    struct bias_model *m = NULL;
    int64_t ns = 0;
    const int64_t any[1] = {-1};
    bool ok = read_ds(f, path, "scales", 1, any, H5IO_FLOAT, 0, NULL, &ns, err);
    if (ok && (ns < 1 || ns > BIAS_MAX_SCALES))
        ok = lm_err_set(err, "%s: dataset scales has %lld entries; expected 1 ... %d", path,
                        (long long)ns, BIAS_MAX_SCALES);
    double scales[BIAS_MAX_SCALES];
    const int64_t wn[1] = {ns};
    ok = ok && read_ds(f, path, "scales", 1, wn, H5IO_FLOAT, H5T_NATIVE_DOUBLE, scales, NULL, err);
    if (ok) {
        m = bias_model_create((int)ns, scales);
        const int64_t wv[2] = {m->n_feat, m->n_in}, wl[1] = {m->n_in};
        ok = read_ds(f, path, "orth/V", 2, wv, H5IO_FLOAT, H5T_NATIVE_DOUBLE, m->V, NULL, err) &&
             read_ds(f, path, "orth/Lambda", 1, wl, H5IO_FLOAT, H5T_NATIVE_DOUBLE, m->lambda, NULL,
                     err) &&
             read_ds(f, path, "orth/kept", 1, wl, H5IO_INTEGER, H5T_NATIVE_INT32, m->kept, NULL,
                     err) &&
             read_layers(f, path, m, err);
        for (int s = 0; ok && s < m->n_scales; s++)
            if (!(scales[s] > 0 && isfinite(scales[s])))
                ok = lm_err_set(err, "%s: scales[%d] = %g; expected a finite R > 0 [Mpc/h]", path,
                                s, scales[s]);
        char what[96];
        if (ok && bias_model_first_bad(m, what, sizeof what))
            ok = lm_err_set(err, "%s: %s is not finite or not valid", path, what);
    }
    H5Fclose(f);
    if (!ok)
        bias_model_destroy(&m);
    return m;
}

static void bcast_model(struct bias_model **mp, MPI_Comm comm)
{
    int head[1] = {*mp ? (*mp)->n_scales : 0};
    double scales[BIAS_MAX_SCALES] = {0};
    if (*mp)
        memcpy(scales, (*mp)->scales, sizeof scales);
    MPI_CHECK(MPI_Bcast(head, 1, MPI_INT, 0, comm));
    MPI_CHECK(MPI_Bcast(scales, BIAS_MAX_SCALES, MPI_DOUBLE, 0, comm));
    if (!*mp)
        *mp = bias_model_create(head[0], scales);
    struct bias_model *m = *mp;
    MPI_CHECK(MPI_Bcast(m->V, m->n_feat * m->n_in, MPI_DOUBLE, 0, comm));
    MPI_CHECK(MPI_Bcast(m->lambda, m->n_in, MPI_DOUBLE, 0, comm));
    MPI_CHECK(MPI_Bcast(m->kept, m->n_in, MPI_INT32_T, 0, comm));
    for (int l = 0; l < BIAS_N_LAYERS; l++) {
        MPI_CHECK(MPI_Bcast(m->w[l], bias_layer_in(m, l) * bias_layer_out(l), MPI_FLOAT, 0, comm));
        MPI_CHECK(MPI_Bcast(m->b[l], bias_layer_out(l), MPI_FLOAT, 0, comm));
    }
}

struct bias_model *bias_io_read_model(const char *path, MPI_Comm comm, struct lm_err *err)
{
    h5io_quiet();
    struct bias_model *m = comm_rank(comm) == 0 ? read_model_local(path, err) : NULL;
    if (!comm_agree_soft(comm, err)) {
        bias_model_destroy(&m);
        return NULL;
    }
    bcast_model(&m, comm);
    return m;
}

/* ---- writing the model (rank 0) ---------------------------------------------------------- */

static bool write_ds(hid_t loc, const char *name, hid_t mem, hid_t file_type, int rank,
                     const hsize_t *dims, const void *data)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = d >= 0 && H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return ok;
}

static bool write_model_file(hid_t f, const struct bias_model *m, const char *config)
{
    int n_hidden = BIAS_N_LAYERS - 1, width = BIAS_WIDTH;
    bool ok = h5io_attr_write_string(f, "format", BIAS_FORMAT) &&
              h5io_attr_write(f, "n_scales", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &m->n_scales) &&
              h5io_attr_write(f, "width", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &width) &&
              h5io_attr_write(f, "n_hidden", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &n_hidden) &&
              h5io_attr_write_string(f, "lemur_config", config ? config : "");
    hsize_t ns = (hsize_t)m->n_scales, vd[2] = {(hsize_t)m->n_feat, (hsize_t)m->n_in},
            ni = (hsize_t)m->n_in;
    ok = ok && write_ds(f, "scales", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &ns, m->scales);
    hid_t g = H5Gcreate2(f, "orth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && g >= 0 && write_ds(g, "V", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, vd, m->V) &&
         write_ds(g, "Lambda", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &ni, m->lambda) &&
         write_ds(g, "kept", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, &ni, m->kept);
    if (g >= 0)
        H5Gclose(g);
    g = H5Gcreate2(f, "mlp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && g >= 0;
    for (int l = 0; l < BIAS_N_LAYERS && ok; l++) {
        char name[32];
        hsize_t wd[2] = {(hsize_t)bias_layer_out(l), (hsize_t)bias_layer_in(m, l)};
        snprintf(name, sizeof name, "weight_%d", l);
        ok = write_ds(g, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, wd, m->w[l]);
        snprintf(name, sizeof name, "bias_%d", l);
        ok = ok && write_ds(g, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, wd, m->b[l]);
    }
    if (g >= 0)
        H5Gclose(g);
    hsize_t nl = (hsize_t)m->n_loss;
    if (ok && m->n_loss > 0)
        ok = write_ds(f, "loss", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &nl, m->loss);
    return ok;
}

/* Write a file through "<path>.tmp" with fn (rank 0 only); what names it in the message. */
static void write_file(const char *path, const char *what, bool (*fn)(hid_t f, const void *ctx),
                       const void *ctx, struct lm_err *err)
{
    h5io_quiet();
    char tmp[H5IO_PATH_MAX + 8];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        lm_err_set(err, "%s: file name too long", path);
    hid_t f = lm_err_ok(err) ? H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT) : -1;
    bool ok = f >= 0 && fn(f, ctx);
    if (f >= 0 && H5Fclose(f) < 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        unlink(tmp);
        if (lm_err_ok(err))
            lm_err_set(err, "cannot write %s%s", what, path);
    }
}

struct arrays {
    int n;
    const char *const *names;
    const int64_t *sizes;
    const double *const *data;
};

static bool write_arrays_file(hid_t f, const void *ctx)
{
    const struct arrays *a = ctx;
    bool ok = true;
    for (int i = 0; i < a->n && ok; i++) {
        hsize_t d = (hsize_t)a->sizes[i];
        ok = write_ds(f, a->names[i], H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &d, a->data[i]);
    }
    return ok;
}

bool bias_io_write_arrays(const char *path, int n, const char *const *names, const int64_t *sizes,
                          const double *const *data, MPI_Comm comm, struct lm_err *err)
{
    struct arrays a = {n, names, sizes, data};
    if (comm_rank(comm) == 0)
        write_file(path, "", write_arrays_file, &a, err);
    return comm_agree_soft(comm, err);
}

/** A model and its configuration text, for write_file. */
struct model_ctx {
    const struct bias_model *m;
    const char *config;
};

static bool write_model_ctx(hid_t f, const void *ctx)
{
    const struct model_ctx *c = ctx;
    return write_model_file(f, c->m, c->config);
}

bool bias_io_write_model(const char *path, const struct bias_model *m, const char *config,
                         MPI_Comm comm, struct lm_err *err)
{
    struct model_ctx c = {m, config};
    if (comm_rank(comm) == 0)
        write_file(path, "the bias model file ", write_model_ctx, &c, err);
    return comm_agree_soft(comm, err);
}

/* ---- haloes ------------------------------------------------------------------------------ */

/* Append the haloes of one catalogue file with mass >= min_mass to h; *n_files from its header. */
static bool read_halo_file(const char *path, double min_mass, struct bias_haloes *h, int *n_files,
                           struct lm_err *err)
{
    hid_t f = h5io_open(path, MPI_COMM_NULL, err);
    if (f == H5I_INVALID_HID)
        return false;
    hid_t g = H5Gopen2(f, "Header", H5P_DEFAULT);
    bool ok = g >= 0 || lm_err_set(err, "%s: no group Header (expected a fof_tab catalogue)", path);
    ok = ok && h5io_attr_read(g, "BoxSize", H5T_NATIVE_DOUBLE, 1, &h->box, path, "Header", err);
    *n_files = 1;
    if (ok && h5io_attr_exists(g, "NumFiles"))
        ok = h5io_attr_read(g, "NumFiles", H5T_NATIVE_INT, 1, n_files, path, "Header", err);
    if (g >= 0)
        H5Gclose(g);
    int64_t dims[2] = {0, 0}, n = 0;
    const int64_t w3[2] = {-1, 3};
    if (ok && h5io_exists(f, "Group/GroupPos")) {
        ok = read_ds(f, path, "Group/GroupPos", 2, w3, H5IO_FLOAT, 0, NULL, dims, err);
        n = dims[0];
    }
    float *pos = lm_malloc("bias.haloes", (size_t)(n ? n : 1) * 3 * sizeof *pos);
    double *mass = lm_malloc("bias.haloes", (size_t)(n ? n : 1) * sizeof *mass);
    const int64_t w1[1] = {n};
    if (ok && n > 0)
        ok = read_ds(f, path, "Group/GroupPos", 2, w3, H5IO_FLOAT, H5T_NATIVE_FLOAT, pos, NULL,
                     err) &&
             read_ds(f, path, "Group/GroupMass", 1, w1, H5IO_FLOAT, H5T_NATIVE_DOUBLE, mass, NULL,
                     err);
    H5Fclose(f);
    if (!h->pos) {
        h->pos = lm_malloc("bias.haloes", 3 * sizeof *h->pos);
        h->mass = lm_malloc("bias.haloes", sizeof *h->mass);
    }
    h->pos = lm_realloc(h->pos, (size_t)(h->n + n + 1) * 3 * sizeof *h->pos);
    h->mass = lm_realloc(h->mass, (size_t)(h->n + n + 1) * sizeof *h->mass);
    for (int64_t i = 0; ok && i < n; i++) {
        if (!isfinite(mass[i]) || !isfinite(pos[3 * i]) || !isfinite(pos[3 * i + 1]) ||
            !isfinite(pos[3 * i + 2]))
            ok = lm_err_set(err, "%s: halo %lld has a non-finite GroupMass or GroupPos", path,
                            (long long)i);
        else if (mass[i] >= min_mass) {
            memcpy(h->pos + 3 * h->n, pos + 3 * i, 3 * sizeof *pos);
            h->mass[h->n++] = mass[i];
        }
    }
    lm_free(pos);
    lm_free(mass);
    return ok;
}

static bool read_haloes_local(const char *path, double min_mass, struct bias_haloes *h,
                              struct lm_err *err)
{
    int n_files = 1;
    if (!read_halo_file(path, min_mass, h, &n_files, err))
        return false;
    size_t len = strlen(path);
    if (n_files > 1 && (len < 7 || strcmp(path + len - 7, ".0.hdf5") != 0))
        return lm_err_set(err,
                          "%s: the catalogue has %d files; name its first file, "
                          "<base>.0.hdf5",
                          path, n_files);
    for (int i = 1; i < n_files; i++) {
        char name[H5IO_PATH_MAX + 32];
        int dummy;
        snprintf(name, sizeof name, "%.*s.%d.hdf5", (int)(len - 7), path, i);
        if (!read_halo_file(name, min_mass, h, &dummy, err))
            return false;
    }
    return true;
}

bool bias_io_read_haloes(const char *path, double min_mass, MPI_Comm comm, struct bias_haloes *h,
                         struct lm_err *err)
{
    h5io_quiet();
    memset(h, 0, sizeof *h);
    if (comm_rank(comm) == 0)
        read_haloes_local(path, min_mass, h, err);
    if (!comm_agree_soft(comm, err)) {
        bias_haloes_free(h);
        return false;
    }
    MPI_CHECK(MPI_Bcast(&h->n, 1, MPI_INT64_T, 0, comm));
    MPI_CHECK(MPI_Bcast(&h->box, 1, MPI_DOUBLE, 0, comm));
    if (comm_rank(comm) != 0) {
        h->pos = lm_malloc("bias.haloes", (size_t)(h->n ? h->n : 1) * 3 * sizeof *h->pos);
        h->mass = lm_malloc("bias.haloes", (size_t)(h->n ? h->n : 1) * sizeof *h->mass);
    }
    for (int64_t at = 0; at < h->n; at += 1 << 24) { /* counts fit an int */
        int c = (int)(h->n - at < (1 << 24) ? h->n - at : (1 << 24));
        MPI_CHECK(MPI_Bcast(h->pos + 3 * at, 3 * c, MPI_FLOAT, 0, comm));
        MPI_CHECK(MPI_Bcast(h->mass + at, c, MPI_DOUBLE, 0, comm));
    }
    return true;
}

void bias_haloes_free(struct bias_haloes *h)
{
    if (!h)
        return;
    lm_free(h->pos);
    lm_free(h->mass);
    h->pos = NULL;
    h->mass = NULL;
    h->n = 0;
}
