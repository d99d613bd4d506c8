/* net_file — reading, writing and the collective load of a generic network file (layout in
 * net_file.h). */
#include "mpi/net_file.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "finite.h"
#include "mpi/comm.h"
#include "mpi/h5io.h"

#define NET_FILE_FORMAT "lemur-network"

/* String attribute name of loc (fixed or variable length), lm_malloc'd; NULL when absent. */
static char *attr_text(hid_t loc, const char *name)
{
    if (H5Aexists(loc, name) <= 0)
        return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), ft = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Aread(a, mt, &s) >= 0 && s) {
            out = lm_malloc("net_file.text", strlen(s) + 1);
            strcpy(out, s);
        }
        H5free_memory(s);
    } else if (H5Tget_class(ft) == H5T_STRING) {
        size_t sz = H5Tget_size(ft);
        out = lm_calloc("net_file.text", sz + 1, 1);
        H5Tset_size(mt, sz + 1);
        if (H5Aread(a, mt, out) < 0)
            lm_free(out), out = NULL;
    }
    H5Tclose(mt);
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

/* Read dataset <gpath>/<name> of exactly shape want[rank] into dst, finite. */
static bool read_tensor(hid_t f, const char *path, const char *gpath, const char *name, int rank,
                        const hsize_t *want, float *dst, struct lm_err *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s/%s", gpath, name);
    if (H5Lexists(f, gpath, H5P_DEFAULT) <= 0 || H5Lexists(f, full, H5P_DEFAULT) <= 0)
        return lm_err_set(err, "network file '%s': missing tensor %s", path, full);
    hid_t d = H5Dopen2(f, full, H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int rk = H5Sget_simple_extent_ndims(sp);
    bool same = rk == rank && H5Sget_simple_extent_dims(sp, dims, NULL) == rk;
    for (int i = 0; same && i < rank; i++)
        same = dims[i] == want[i];
    bool ok = same && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0;
    H5Sclose(sp);
    H5Dclose(d);
    if (!same) {
        char got[96] = "", exp[96] = "";
        for (int i = 0; i < rk && i < 8; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? "," : "",
                     (unsigned long long)dims[i]);
        for (int i = 0; i < rank; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%llu", i ? "," : "",
                     (unsigned long long)want[i]);
        return lm_err_set(err, "network file '%s': tensor %s has shape [%s], expected [%s]", path,
                          full, got, exp);
    }
    if (!ok)
        return lm_err_set(err, "network file '%s': cannot read tensor %s as float32", path, full);
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (int64_t)want[i];
    int64_t bad = finite_first_bad_float(dst, n);
    if (bad >= 0)
        return lm_err_set(err,
                          "network file '%s': tensor %s holds a non-finite value (%g) at "
                          "flat index %lld: the weights are unusable",
                          path, full, (double)dst[bad], (long long)bad);
    return true;
}

/* Every group under /weights must be a conv3d node. */
static herr_t visit_group(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    const struct net *n = ((const struct net **)data)[0];
    int i = net_find(n, name);
    return i >= 0 && n->nodes[i].op == NET_CONV3D ? 0 : 1;
}

static bool read_weights(struct net *n, hid_t f, const char *path, struct lm_err *err)
{
    net_alloc_weights(n);
    for (int i = 0; i < n->n_nodes; i++) {
        struct net_node *nd = &n->nodes[i];
        if (nd->op != NET_CONV3D)
            continue;
        char g[128];
        snprintf(g, sizeof g, "/weights/%s", nd->name);
        hsize_t k = (hsize_t)nd->kernel, w[5] = {(hsize_t)nd->channels, (hsize_t)nd->cin, k, k, k};
        if (!read_tensor(f, path, g, "weight", 5, w, nd->weight, err) ||
            !read_tensor(f, path, g, "bias", 1, w, nd->bias, err))
            return false;
    }
    hid_t wg = H5Gopen2(f, "/weights", H5P_DEFAULT);
    const struct net *arg[1] = {n};
    hsize_t idx = 0;
    char extra[NN_NAME_LEN] = "";
    herr_t rc = wg >= 0 ? H5Literate(wg, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_group, arg) : 0;
    if (rc > 0)
        H5Lget_name_by_idx(wg, ".", H5_INDEX_NAME, H5_ITER_INC, idx - 1, extra, sizeof extra,
                           H5P_DEFAULT);
    if (wg >= 0)
        H5Gclose(wg);
    if (rc > 0)
        return lm_err_set(err,
                          "network file '%s': /weights/%s belongs to no conv3d node of the "
                          "description",
                          path, extra);
    return true;
}

struct net *net_file_read(const char *path, struct lm_err *err)
{
    h5io_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return lm_err_set(err, "network file '%s': cannot open (missing or not HDF5)", path), NULL;
    char *format = attr_text(f, "format"), *text = attr_text(f, "network");
    int version = 0;
    if (H5Aexists(f, "format_version") > 0) {
        hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
        H5Aread(a, H5T_NATIVE_INT, &version);
        H5Aclose(a);
    }
    struct net *n = NULL;
    if (!format || strcmp(format, NET_FILE_FORMAT) || version != NET_FILE_VERSION || !text)
        lm_err_set(err,
                   "network file '%s': attributes format \"%s\", format_version %d and "
                   "network are required (found \"%s\", %d, %s)",
                   path, NET_FILE_FORMAT, NET_FILE_VERSION, format ? format : "", version,
                   text ? "a description" : "none");
    else if ((n = net_parse(text, path, err)) && !read_weights(n, f, path, err))
        net_destroy(&n);
    lm_free(format);
    lm_free(text);
    H5Fclose(f);
    return n;
}

/* ---- writing ------------------------------------------------------------------------------- */

static bool attr_write_text(hid_t loc, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(s) + 1);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, t, s) >= 0;
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok;
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

bool net_file_write(const struct net *n, const char *path, const char *source, struct lm_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return lm_err_set(err, "network file '%s': cannot create", tmp);
    int version = NET_FILE_VERSION;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &version) >= 0;
    H5Aclose(a);
    H5Sclose(sp);
    ok = ok && attr_write_text(f, "format", NET_FILE_FORMAT) &&
         attr_write_text(f, "network", n->text) && attr_write_text(f, "source", source);
    hid_t wg = H5Gcreate2(f, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int i = 0; i < n->n_nodes && ok; i++) {
        const struct net_node *nd = &n->nodes[i];
        if (nd->op != NET_CONV3D)
            continue;
        hid_t g = H5Gcreate2(wg, nd->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t k = (hsize_t)nd->kernel, w[5] = {(hsize_t)nd->channels, (hsize_t)nd->cin, k, k, k};
        ok = g >= 0 && nd->weight && write_tensor(g, "weight", 5, w, nd->weight) &&
             write_tensor(g, "bias", 1, w, nd->bias);
        H5Gclose(g);
    }
    H5Gclose(wg);
    ok = H5Fclose(f) >= 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return lm_err_set(err, "network file '%s': cannot write", path);
    }
    return true;
}

/* ---- collective load ------------------------------------------------------------------------ */

struct net *net_file_load(const char *path, MPI_Comm comm, struct lm_err *err)
{
    struct net *n = NULL;
    bool root = comm_rank(comm) == 0;
    if (root)
        n = net_file_read(path, err);
    if (!comm_agree_soft(comm, err)) {
        net_destroy(&n);
        return NULL;
    }
    long len = root ? (long)strlen(n->text) + 1 : 0;
    MPI_CHECK(MPI_Bcast(&len, 1, MPI_LONG, 0, comm));
    char *text = root ? n->text : lm_malloc("net_file.text", (size_t)len);
    MPI_CHECK(MPI_Bcast(text, (int)len, MPI_CHAR, 0, comm));
    if (!root) {
        n = net_parse(text, path, err);
        CHECK(n, "network file '%s': the broadcast description does not parse: %s", path, err->msg);
        lm_free(text);
        net_alloc_weights(n);
    }
    for (int i = 0; i < n->n_nodes; i++)
        if (n->nodes[i].op == NET_CONV3D)
            MPI_CHECK(MPI_Bcast(n->nodes[i].weight,
                                (int)(net_weight_count(n, i) + n->nodes[i].channels), MPI_FLOAT, 0,
                                comm));
    return n;
}
