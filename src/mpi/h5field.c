/* h5field — collective hyperslab I/O of distributed 3-D float fields. */
#include "mpi/h5field.h"

#include "finite.h"
#include "mpi/comm.h"

#include <stdio.h>

#define CHUNK_MAX 512

struct h5field_block h5field_block_make(const int n[3], const struct box3 *box, const int64_t *dims)
{
    struct h5field_block b = {.box = *box};
    for (int a = 0; a < 3; a++) {
        b.n[a] = n[a];
        b.dims[a] = dims ? dims[a] : box3_extent(box, a);
    }
    return b;
}

/* File and memory selections of a block: the owned box in the file, the same cells at the origin
 * of the local array in memory (none when the box is empty). */
static void select_block(const struct h5field_block *b, hid_t fs, hid_t ms)
{
    if (box3_empty(&b->box)) {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
        return;
    }
    hsize_t fstart[3], mstart[3] = {0, 0, 0}, count[3];
    for (int a = 0; a < 3; a++) {
        fstart[a] = (hsize_t)b->box.lo[a];
        count[a] = (hsize_t)box3_extent(&b->box, a);
    }
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, fstart, NULL, count, NULL);
    H5Sselect_hyperslab(ms, H5S_SELECT_SET, mstart, NULL, count, NULL);
}

static hid_t memory_space(const struct h5field_block *b)
{
    hsize_t md[3];
    for (int a = 0; a < 3; a++)
        md[a] = (hsize_t)(b->dims[a] > 0 ? b->dims[a] : 1);
    return H5Screate_simple(3, md, NULL);
}

/* Create the groups on the way to name ("a/b/c" creates a and a/b). */
static bool make_parents(hid_t file, const char *name)
{
    char buf[H5IO_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (!h5io_exists(file, buf)) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0)
                return false;
            H5Gclose(g);
        }
        *p = '/';
    }
    return true;
}

static hid_t create_dataset(hid_t file, const char *name, const int64_t n[3])
{
    hsize_t dims[3], chunk[3];
    for (int a = 0; a < 3; a++) {
        dims[a] = (hsize_t)n[a];
        chunk[a] = a == 0 ? 1 : (hsize_t)(n[a] < CHUNK_MAX ? n[a] : CHUNK_MAX);
    }
    if (!make_parents(file, name))
        return H5I_INVALID_HID;
    hid_t fs = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = h5io_dcpl(3, chunk);
    hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(fs);
    return ds;
}

bool h5field_write(struct h5io_file *f, const char *name, const struct h5field_block *b,
                   const float *data, struct lm_err *err)
{
    hid_t ds = create_dataset(f->id, name, b->n);
    bool ok = ds >= 0;
    if (ok) {
        hid_t fs = H5Dget_space(ds), ms = memory_space(b);
        select_block(b, fs, ms);
        hid_t dxpl = h5io_dxpl_collective();
        ok = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, data) >= 0;
        H5Pclose(dxpl);
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    if (!ok)
        lm_err_set(err,
                   "%s: writing dataset %s failed (HDF5 error: disk full or file system "
                   "error?)",
                   f->tmp, name);
    return comm_agree_soft(f->comm, err);
}

/* Open path collectively and the dataset name with its shape checked against want (NULL: any). */
static bool open_field(const char *path, const char *name, const int64_t *want, MPI_Comm comm,
                       hid_t *file, hid_t *ds, int64_t n[3], struct lm_err *err)
{
    *ds = H5I_INVALID_HID;
    *file = H5I_INVALID_HID;
    if (comm_rank(comm) == 0) { /* existence and format first, so that no rank is left alone
                                   in the collective open */
        hid_t probe = h5io_open(path, MPI_COMM_NULL, err);
        if (probe >= 0)
            H5Fclose(probe);
    }
    if (!comm_agree_soft(comm, err))
        return false;
    *file = h5io_open(path, comm, err);
    if (*file >= 0)
        *ds = h5io_dataset_open(*file, name, 3, want, H5IO_FLOAT, n, path, err);
    if (comm_agree_soft(comm, err))
        return true;
    if (*ds >= 0)
        H5Dclose(*ds);
    if (*file >= 0)
        H5Fclose(*file);
    return false;
}

bool h5field_shape(const char *path, const char *name, MPI_Comm comm, int64_t n[3],
                   struct lm_err *err)
{
    hid_t file, ds;
    if (!open_field(path, name, NULL, comm, &file, &ds, n, err))
        return false;
    H5Dclose(ds);
    H5Fclose(file);
    return true;
}

/* Refuse a block read from a file that holds NaN or infinity, naming its first global cell. */
static void check_finite(const struct h5field_block *b, const float *data, const char *path,
                         const char *name, struct lm_err *err)
{
    int64_t count[3], stride[2] = {b->dims[1] * b->dims[2], b->dims[2]}, c[3];
    for (int a = 0; a < 3; a++)
        count[a] = box3_empty(&b->box) ? 0 : box3_extent(&b->box, a);
    if (!finite_first_bad_block(data, count, stride, c))
        return;
    float v = data[c[0] * stride[0] + c[1] * stride[1] + c[2]];
    lm_err_set(err,
               "%s: dataset %s holds a non-finite value (%g) at cell [%lld, %lld, %lld]; "
               "expected finite values",
               path, name, v, (long long)(b->box.lo[0] + c[0]), (long long)(b->box.lo[1] + c[1]),
               (long long)(b->box.lo[2] + c[2]));
}

bool h5field_read(const char *path, const char *name, const struct h5field_block *b, float *data,
                  MPI_Comm comm, struct lm_err *err)
{
    hid_t file, ds;
    int64_t n[3];
    if (!open_field(path, name, b->n, comm, &file, &ds, n, err))
        return false;
    hid_t fs = H5Dget_space(ds), ms = memory_space(b);
    select_block(b, fs, ms);
    hid_t dxpl = h5io_dxpl_collective();
    if (H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, data) < 0)
        lm_err_set(err, "%s: cannot read dataset %s (file truncated or corrupt?)", path, name);
    else
        check_finite(b, data, path, name, err);
    H5Pclose(dxpl);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
    H5Fclose(file);
    return comm_agree_soft(comm, err);
}
