/* model_file — reading and writing lemur's HDF5 model file (layout in model_file.h). */
#include "mpi/model_file.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "finite.h"

#define MODEL_FILE_FORMAT "lemur-emulator-model"
#define MODEL_FILE_STYLE  "s = [(Omega_m - 0.3) * 5, D(z) - 1]"

/* What a reader is reading, for messages. */
struct reader {
    hid_t file;
    const char *path;
    struct lm_err *err;
};

/* ---- attributes ---------------------------------------------------------------------------- */

static bool attr_open(struct reader *r, hid_t loc, const char *obj, const char *name, hid_t *a)
{
    if (H5Aexists(loc, name) <= 0 || (*a = H5Aopen(loc, name, H5P_DEFAULT)) < 0)
        return lm_err_set(r->err, "model file '%s': %s has no attribute '%s'", r->path, obj, name);
    return true;
}

static bool attr_int(struct reader *r, hid_t loc, const char *obj, const char *name, int *v)
{
    hid_t a = -1;
    if (!attr_open(r, loc, obj, name, &a))
        return false;
    long long x = 0;
    bool ok = H5Aread(a, H5T_NATIVE_LLONG, &x) >= 0;
    H5Aclose(a);
    *v = (int)x;
    if (!ok)
        return lm_err_set(r->err, "model file '%s': %s attribute '%s' is not an integer", r->path,
                          obj, name);
    return true;
}

static bool attr_double(struct reader *r, hid_t loc, const char *obj, const char *name, double *v)
{
    hid_t a = -1;
    if (!attr_open(r, loc, obj, name, &a))
        return false;
    bool ok = H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0;
    H5Aclose(a);
    if (!ok)
        return lm_err_set(r->err, "model file '%s': %s attribute '%s' is not a number", r->path,
                          obj, name);
    return true;
}

/* A string attribute, fixed or variable length, into buf (truncated to n - 1 characters). */
static bool attr_str(struct reader *r, hid_t loc, const char *obj, const char *name, char *buf,
                     size_t n)
{
    hid_t a = -1;
    if (!attr_open(r, loc, obj, name, &a))
        return false;
    hid_t ft = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    bool ok = H5Tget_class(ft) == H5T_STRING;
    if (ok && H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        ok = H5Aread(a, mt, &s) >= 0 && s;
        snprintf(buf, n, "%s", ok ? s : "");
        H5free_memory(s);
    } else if (ok) {
        size_t sz = H5Tget_size(ft);
        char *s = calloc(sz + 1, 1);
        H5Tset_size(mt, sz + 1);
        ok = H5Aread(a, mt, s) >= 0;
        snprintf(buf, n, "%s", s);
        free(s);
    }
    H5Tclose(mt);
    H5Tclose(ft);
    H5Aclose(a);
    if (!ok)
        return lm_err_set(r->err, "model file '%s': %s attribute '%s' is not a string", r->path,
                          obj, name);
    return true;
}

static bool attr_enum(struct reader *r, hid_t loc, const char *obj, const char *name,
                      const char *const *names, int n_names, int *v)
{
    char s[64];
    if (!attr_str(r, loc, obj, name, s, sizeof s))
        return false;
    for (*v = 0; *v < n_names; (*v)++)
        if (strcmp(s, names[*v]) == 0)
            return true;
    char list[128] = "";
    for (int k = 0; k < n_names; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", k ? ", " : "",
                 names[k]);
    return lm_err_set(r->err, "model file '%s': %s attribute '%s' is \"%s\", expected one of %s",
                      r->path, obj, name, s, list);
}

/* ---- tensors ------------------------------------------------------------------------------- */

static void shape_str(char *buf, size_t n, int rank, const hsize_t *dims)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Refuse a tensor holding NaN or infinity, naming its first bad entry by its index. */
static bool tensor_finite(struct reader *r, const char *gpath, const char *name, int rank,
                          const hsize_t *dims, const float *v)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (int64_t)dims[i];
    int64_t bad = finite_first_bad_float(v, n);
    if (bad < 0)
        return true;
    hsize_t at[8];
    int64_t flat = bad;
    for (int i = rank - 1; i >= 0; i--) {
        at[i] = (hsize_t)flat % dims[i];
        flat /= (int64_t)dims[i];
    }
    char where[160] = "[";
    for (int i = 0; i < rank; i++)
        snprintf(where + strlen(where), sizeof where - strlen(where), "%s%llu", i ? ", " : "",
                 (unsigned long long)at[i]);
    strcat(where, "]");
    return lm_err_set(r->err,
                      "model file '%s': tensor %s/%s holds a non-finite value (%g) at index %s: "
                      "the weights are unusable (convert the checkpoint again)",
                      r->path, gpath, name, (double)v[bad], where);
}

/* Read float dataset <group>/<name> of exactly the given shape into dst. */
static bool read_tensor(struct reader *r, hid_t g, const char *gpath, const char *name, int rank,
                        const hsize_t *want, float *dst)
{
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0)
        return lm_err_set(r->err, "model file '%s': missing tensor %s/%s", r->path, gpath, name);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int rk = H5Sget_simple_extent_ndims(sp);
    bool same = rk == rank && rk <= 8 && H5Sget_simple_extent_dims(sp, dims, NULL) == rk;
    for (int i = 0; same && i < rank; i++)
        same = dims[i] == want[i];
    bool ok = same && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0;
    H5Sclose(sp);
    H5Dclose(d);
    if (!same) {
        char got[128], exp[128];
        shape_str(got, sizeof got, rk > 8 ? 8 : rk, dims);
        shape_str(exp, sizeof exp, rank, want);
        return lm_err_set(r->err, "model file '%s': tensor %s/%s has shape %s, expected %s",
                          r->path, gpath, name, got, exp);
    }
    if (!ok)
        return lm_err_set(r->err, "model file '%s': cannot read tensor %s/%s as float32", r->path,
                          gpath, name);
    return tensor_finite(r, gpath, name, rank, want, dst);
}

/* ---- reading ------------------------------------------------------------------------------- */

static const char *const act_names[2] = {"none", "leaky_relu"};
static const char *const kind_names[3] = {"residual", "down", "up"};
static const char *const conv_names[2] = {"conv", "tconv"};

static bool read_root(struct reader *r, struct model *m)
{
    char s[256];
    int v = 0, bypass = 0;
    double slope = 0, eps = 0;
    hid_t root = H5Gopen2(r->file, "/", H5P_DEFAULT);
    bool ok = attr_str(r, root, "/", "format", s, sizeof s) &&
              (strcmp(s, MODEL_FILE_FORMAT) == 0 ||
               lm_err_set(r->err, "model file '%s': format \"%s\" is not \"%s\"", r->path, s,
                          MODEL_FILE_FORMAT)) &&
              attr_int(r, root, "/", "format_version", &v) &&
              (v == MODEL_FORMAT_VERSION ||
               lm_err_set(r->err, "model file '%s': format version %d; this lemur reads version %d",
                          r->path, v, MODEL_FORMAT_VERSION)) &&
              attr_str(r, root, "/", "architecture", s, sizeof s) &&
              (strcmp(s, "styled_vnet") == 0 ||
               lm_err_set(r->err, "model file '%s': architecture \"%s\" is not \"styled_vnet\"",
                          r->path, s)) &&
              attr_int(r, root, "/", "in_channels", &m->in_channels) &&
              attr_int(r, root, "/", "out_channels", &m->out_channels) &&
              attr_int(r, root, "/", "width", &m->width) &&
              attr_int(r, root, "/", "style_size", &m->n_style) &&
              attr_int(r, root, "/", "halo", &m->halo) &&
              attr_int(r, root, "/", "bypass", &bypass) &&
              attr_double(r, root, "/", "leaky_slope", &slope) &&
              attr_double(r, root, "/", "demod_eps", &eps) &&
              attr_str(r, root, "/", "source", m->source, sizeof m->source);
    H5Gclose(root);
    m->format_version = v;
    m->bypass = bypass != 0;
    if (ok && (fabs(slope - NN_LEAKY_SLOPE) > 1e-9 || fabs(eps - NN_DEMOD_EPS) > 1e-15))
        return lm_err_set(r->err,
                          "model file '%s': leaky_slope %g and demod_eps %g; lemur's "
                          "engine implements %g and %g",
                          r->path, slope, eps, (double)NN_LEAKY_SLOPE, NN_DEMOD_EPS);
    if (ok && (m->n_style < 1 || m->n_style > NN_MAX_STYLE))
        return lm_err_set(r->err, "model file '%s': style_size %d (expected 1 to %d)", r->path,
                          m->n_style, NN_MAX_STYLE);
    return ok;
}

/* Names of the members of a group. */
struct name_list {
    int n;
    char (*names)[NN_NAME_LEN];
};

static bool list_group(struct reader *r, const char *path, struct name_list *l)
{
    if (H5Lexists(r->file, path, H5P_DEFAULT) <= 0)
        return lm_err_set(r->err, "model file '%s': missing group %s", r->path, path);
    hid_t g = H5Gopen2(r->file, path, H5P_DEFAULT);
    H5G_info_t info;
    H5Gget_info(g, &info);
    l->n = (int)info.nlinks;
    l->names = lm_calloc("model.read", l->n > 0 ? l->n : 1, sizeof *l->names);
    bool ok = true;
    for (int i = 0; ok && i < l->n; i++) {
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i,
                                         l->names[i], NN_NAME_LEN, H5P_DEFAULT);
        if (len < 0 || len >= NN_NAME_LEN)
            ok = lm_err_set(r->err,
                            "model file '%s': member %d of %s has no name or one longer "
                            "than %d characters",
                            r->path, i, path, NN_NAME_LEN - 1);
    }
    H5Gclose(g);
    return ok;
}

/* Attributes of block group /blocks/<name> into b (concat_from resolved later). */
static bool read_block(struct reader *r, const char *name, struct model_block *b, int *index,
                       char *concat_from)
{
    char path[4 * NN_NAME_LEN];
    snprintf(path, sizeof path, "/blocks/%s", name);
    snprintf(b->name, sizeof b->name, "%s", name);
    hid_t g = H5Gopen2(r->file, path, H5P_DEFAULT);
    int kind = 0, act = 0, keep = 0;
    bool ok = attr_int(r, g, path, "index", index) &&
              attr_enum(r, g, path, "kind", kind_names, 3, &kind) &&
              attr_int(r, g, path, "cin", &b->cin) && attr_int(r, g, path, "cout", &b->cout) &&
              attr_enum(r, g, path, "activation", act_names, 2, &act) &&
              attr_int(r, g, path, "keep", &keep) &&
              attr_str(r, g, path, "concat_from", concat_from, NN_NAME_LEN) &&
              attr_int(r, g, path, "concat_crop", &b->concat_crop);
    H5Gclose(g);
    b->kind = (enum model_block_kind)kind;
    b->act = act ? NN_ACT_LRELU : NN_ACT_NONE;
    b->keep = keep != 0;
    return ok;
}

/* Layer group /layers/<name>: attributes, then the four tensors with their shapes. */
static bool read_layer(struct reader *r, struct model *m, const char *name, struct model_layer *l)
{
    char path[4 * NN_NAME_LEN];
    snprintf(path, sizeof path, "/layers/%s", name);
    if (H5Lexists(r->file, path, H5P_DEFAULT) <= 0)
        return lm_err_set(r->err, "model file '%s': missing layer group %s", r->path, path);
    struct nn_conv_desc *d = &l->desc;
    snprintf(d->name, sizeof d->name, "%.63s", name);
    hid_t g = H5Gopen2(r->file, path, H5P_DEFAULT);
    int tr = 0, act = 0;
    bool ok = attr_enum(r, g, path, "kind", conv_names, 2, &tr) &&
              attr_int(r, g, path, "kernel", &d->kernel) &&
              attr_int(r, g, path, "stride", &d->stride) && attr_int(r, g, path, "cin", &d->cin) &&
              attr_int(r, g, path, "cout", &d->cout) &&
              attr_enum(r, g, path, "activation", act_names, 2, &act);
    d->transposed = tr != 0;
    l->act = act ? NN_ACT_LRELU : NN_ACT_NONE;
    if (ok && (d->cin < 1 || d->cout < 1 || d->kernel < 1 || d->stride < 1 || d->kernel > 16))
        ok = lm_err_set(r->err, "model file '%s': %s has cin %d, cout %d, kernel %d, stride %d",
                        r->path, path, d->cin, d->cout, d->kernel, d->stride);
    if (ok) {
        model_layer_alloc(m, l);
        hsize_t k = (hsize_t)d->kernel, ci = (hsize_t)d->cin, co = (hsize_t)d->cout;
        hsize_t sw[2] = {ci, (hsize_t)m->n_style}, w[5] = {co, ci, k, k, k};
        if (d->transposed)
            w[0] = ci, w[1] = co;
        ok = read_tensor(r, g, path, "style_weight", 2, sw, l->style_weight) &&
             read_tensor(r, g, path, "style_bias", 1, &ci, l->style_bias) &&
             read_tensor(r, g, path, "weight", 5, w, l->weight) &&
             read_tensor(r, g, path, "bias", 1, &co, l->bias);
    }
    H5Gclose(g);
    return ok;
}

/* Blocks in index order with their layers; then no unused layer group may remain. */
static bool read_blocks(struct reader *r, struct model *m, const struct name_list *blocks,
                        const struct name_list *layers)
{
    char(*from)[NN_NAME_LEN] = lm_calloc("model.read", blocks->n + 1, sizeof *from);
    bool ok = true;
    for (int i = 0; ok && i < blocks->n; i++) {
        struct model_block b;
        memset(&b, 0, sizeof b);
        int idx = -1;
        char cf[NN_NAME_LEN];
        ok = read_block(r, blocks->names[i], &b, &idx, cf);
        if (ok && (idx < 0 || idx >= blocks->n || m->blocks[idx].name[0]))
            ok = lm_err_set(r->err,
                            "model file '%s': block /blocks/%s has index %d (duplicate or "
                            "outside 0..%d)",
                            r->path, b.name, idx, blocks->n - 1);
        if (ok) {
            m->blocks[idx] = b;
            snprintf(from[idx], NN_NAME_LEN, "%s", cf);
        }
    }
    int n_layers = 0;
    for (int b = 0; ok && b < m->n_blocks; b++) {
        struct model_block *blk = &m->blocks[b];
        blk->concat_from = -1;
        for (int c = 0; from[b][0] && c < b; c++)
            if (strcmp(m->blocks[c].name, from[b]) == 0)
                blk->concat_from = c;
        if (from[b][0] && blk->concat_from < 0)
            ok = lm_err_set(r->err,
                            "model file '%s': block /blocks/%s concatenates unknown or "
                            "later block '%s'",
                            r->path, blk->name, from[b]);
        const char *const *names;
        blk->n_layers = model_block_layer_names(blk->kind, &names);
        for (int k = 0; ok && k < blk->n_layers; k++) {
            char ln[NN_NAME_LEN + 16];
            snprintf(ln, sizeof ln, "%s.%s", blk->name, names[k]);
            ok = (strlen(ln) < NN_NAME_LEN ||
                  lm_err_set(r->err, "model file '%s': layer name %s is longer than %d characters",
                             r->path, ln, NN_NAME_LEN - 1)) &&
                 (n_layers < m->n_layers ||
                  lm_err_set(r->err, "model file '%s': missing layer group /layers/%s", r->path,
                             ln));
            if (ok) {
                blk->layer[k] = n_layers;
                ok = read_layer(r, m, ln, &m->layers[n_layers++]);
            }
        }
    }
    for (int i = 0; ok && i < layers->n; i++)
        if (model_find_layer(m, layers->names[i]) < 0)
            ok = lm_err_set(r->err, "model file '%s': layer group /layers/%s belongs to no block",
                            r->path, layers->names[i]);
    lm_free(from);
    return ok;
}

struct model *model_file_read(const char *path, struct lm_err *err)
{
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    struct reader r = {H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), path, err};
    struct model *m = NULL;
    struct name_list blocks = {0}, layers = {0};
    bool ok = r.file >= 0;
    if (!ok && access(path, R_OK) != 0)
        lm_err_set(err, "model file '%s': cannot open: %s", path, strerror(errno));
    else if (!ok)
        lm_err_set(err, "model file '%s': cannot open as HDF5 (not an HDF5 file, or truncated)",
                   path);
    if (ok) {
        m = model_alloc(0, 0);
        ok = read_root(&r, m) && list_group(&r, "/blocks", &blocks) &&
             list_group(&r, "/layers", &layers);
    }
    if (ok) {
        lm_free(m->blocks);
        lm_free(m->layers);
        m->n_blocks = blocks.n;
        m->n_layers = layers.n;
        m->blocks = lm_calloc("model", blocks.n + 1, sizeof *m->blocks);
        m->layers = lm_calloc("model", layers.n + 1, sizeof *m->layers);
        ok = read_blocks(&r, m, &blocks, &layers);
    }
    struct lm_err check = {{0}};
    if (ok && !model_check(m, &check))
        ok = lm_err_set(err, "model file '%s': %s", path, check.msg);
    lm_free(blocks.names);
    lm_free(layers.names);
    if (r.file >= 0)
        H5Fclose(r.file);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (!ok)
        model_destroy(&m);
    return m;
}

/* ---- writing ------------------------------------------------------------------------------- */

static void set_int(hid_t loc, const char *name, long long v)
{
    hid_t sp = H5Screate(H5S_SCALAR),
          a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void set_double(hid_t loc, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR),
          a = H5Acreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void set_str(hid_t loc, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static bool write_tensor(hid_t g, const char *name, int rank, const hsize_t *dims, const float *v)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    H5Dclose(d);
    H5Sclose(sp);
    return ok;
}

static void write_root(hid_t f, const struct model *m)
{
    hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
    set_str(root, "format", MODEL_FILE_FORMAT);
    set_int(root, "format_version", MODEL_FORMAT_VERSION);
    set_str(root, "architecture", "styled_vnet");
    set_int(root, "in_channels", m->in_channels);
    set_int(root, "out_channels", m->out_channels);
    set_int(root, "width", m->width);
    set_int(root, "style_size", m->n_style);
    set_int(root, "halo", m->halo);
    set_int(root, "bypass", m->bypass);
    set_double(root, "leaky_slope", NN_LEAKY_SLOPE);
    set_double(root, "demod_eps", NN_DEMOD_EPS);
    set_str(root, "style", MODEL_FILE_STYLE);
    set_str(root, "source", m->source);
    H5Gclose(root);
}

static void write_block(hid_t blocks, const struct model *m, int b)
{
    const struct model_block *blk = &m->blocks[b];
    hid_t g = H5Gcreate2(blocks, blk->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *const *names;
    int n = model_block_layer_names(blk->kind, &names);
    char list[64] = "";
    for (int k = 0; k < n; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? "," : "", names[k]);
    set_int(g, "index", b);
    set_str(g, "kind", model_block_kind_name(blk->kind));
    set_int(g, "cin", blk->cin);
    set_int(g, "cout", blk->cout);
    set_str(g, "activation", act_names[blk->act == NN_ACT_LRELU]);
    set_int(g, "keep", blk->keep);
    set_str(g, "concat_from", blk->concat_from >= 0 ? m->blocks[blk->concat_from].name : "");
    set_int(g, "concat_crop", blk->concat_crop);
    set_str(g, "layers", list);
    H5Gclose(g);
}

static bool write_layer(hid_t layers, const struct model *m, const struct model_layer *l)
{
    const struct nn_conv_desc *d = &l->desc;
    hid_t g = H5Gcreate2(layers, d->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    set_str(g, "kind", conv_names[d->transposed]);
    set_int(g, "kernel", d->kernel);
    set_int(g, "stride", d->stride);
    set_int(g, "cin", d->cin);
    set_int(g, "cout", d->cout);
    set_str(g, "activation", act_names[l->act == NN_ACT_LRELU]);
    hsize_t k = (hsize_t)d->kernel, ci = (hsize_t)d->cin, co = (hsize_t)d->cout;
    hsize_t sw[2] = {ci, (hsize_t)m->n_style}, w[5] = {co, ci, k, k, k};
    if (d->transposed)
        w[0] = ci, w[1] = co;
    bool ok = write_tensor(g, "style_weight", 2, sw, l->style_weight) &&
              write_tensor(g, "style_bias", 1, &ci, l->style_bias) &&
              write_tensor(g, "weight", 5, w, l->weight) &&
              write_tensor(g, "bias", 1, &co, l->bias);
    H5Gclose(g);
    return ok;
}

bool model_file_write(const struct model *m, const char *path, struct lm_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return lm_err_set(err, "model file '%s': cannot create", tmp);
    write_root(f, m);
    hid_t blocks = H5Gcreate2(f, "blocks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t layers = H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = true;
    for (int b = 0; b < m->n_blocks; b++)
        write_block(blocks, m, b);
    for (int i = 0; ok && i < m->n_layers; i++)
        ok = write_layer(layers, m, &m->layers[i]);
    H5Gclose(blocks);
    H5Gclose(layers);
    ok = H5Fclose(f) >= 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return lm_err_set(err, "model file '%s': writing failed", path);
    }
    return true;
}
