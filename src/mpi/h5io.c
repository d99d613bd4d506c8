/* h5io — shared HDF5 plumbing: temporary names, checked opens, attributes, checked datasets. */
#include "mpi/h5io.h"

#include "alloc.h"
#include "mpi/comm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes allocated to a new file before anything is written: when the disk fills up, discarding
 * the file frees at least this much, enough for HDF5 to write its metadata while closing it. */
#define H5IO_RESERVE ((off_t)256 << 10)

void h5io_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Rank 0: allocate H5IO_RESERVE bytes of the new file (file systems without fallocate are
 * left as they are). */
static void reserve_space(const struct h5io_file *f, struct lm_err *err)
{
    int fd = open(f->tmp, O_WRONLY);
    int rc = fd >= 0 ? posix_fallocate(fd, 0, H5IO_RESERVE) : errno;
    if (fd >= 0)
        close(fd);
    if (rc == ENOSPC || rc == EDQUOT || rc == EIO)
        lm_err_set(err, "cannot create %s (temporary name of %s): %s", f->tmp, f->path,
                   strerror(rc));
}

bool h5io_create(struct h5io_file *f, const char *path, MPI_Comm comm, struct lm_err *err)
{
    h5io_quiet();
    *f = (struct h5io_file){.id = H5I_INVALID_HID, .comm = comm};
    if (strlen(path) >= H5IO_PATH_MAX)
        lm_err_set(err, "output file name is too long (%zu characters, at most %d): %s",
                   strlen(path), H5IO_PATH_MAX - 1, path);
    if (!comm_agree_soft(comm, err))
        return false;
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    H5Pset_coll_metadata_write(fapl, 1);
    f->id = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f->id < 0)
        lm_err_set(err,
                   "cannot create %s (temporary name of %s): check that the directory exists "
                   "and is writable",
                   f->tmp, f->path);
    if (f->id >= 0 && comm_rank(comm) == 0)
        reserve_space(f, err);
    if (comm_agree_soft(comm, err))
        return true;
    if (f->id >= 0)
        H5Fclose(f->id);
    f->id = H5I_INVALID_HID;
    if (comm_rank(comm) == 0)
        unlink(f->tmp);
    return false;
}

bool h5io_close(struct h5io_file *f, bool ok, struct lm_err *err)
{
    if (!ok && lm_err_ok(err))
        lm_err_set(err, "writing %s failed", f->path);
    /* Flush while the file is open (collective, so only once every rank is ok), then agree: a
     * flush that fails (disk full) leaves a file that h5io_discard can still close cleanly. */
    bool all_ok = comm_agree_soft(f->comm, err);
    if (all_ok && f->id >= 0 && H5Fflush(f->id, H5F_SCOPE_LOCAL) < 0)
        lm_err_set(err, "writing %s failed (disk full or file system error?)", f->tmp);
    if (!all_ok || !comm_agree_soft(f->comm, err)) {
        h5io_discard(f, 1, f->comm);
        return false;
    }
    haddr_t eoa = 0;
    bool have_eoa = f->id >= 0 && H5Fget_eoa(f->id, &eoa) >= 0;
    if (f->id >= 0 && H5Fclose(f->id) < 0)
        lm_err_set(err, "closing %s failed (disk full or file system error?)", f->tmp);
    f->id = H5I_INVALID_HID;
    struct stat st;
    if (have_eoa && comm_rank(f->comm) == 0 && lm_err_ok(err) && stat(f->tmp, &st) == 0 &&
        (haddr_t)st.st_size > eoa && truncate(f->tmp, (off_t)eoa) != 0) /* the unused reserve */
        lm_err_set(err, "cannot truncate %s to its %llu bytes: %s", f->tmp, (unsigned long long)eoa,
                   strerror(errno));
    if (comm_agree_soft(f->comm, err))
        return true;
    h5io_discard(f, 1, f->comm);
    return false;
}

bool h5io_commit(struct h5io_file *files, int n, MPI_Comm comm, struct lm_err *err)
{
    if (comm_rank(comm) == 0)
        for (int i = 0; i < n && lm_err_ok(err); i++)
            if (rename(files[i].tmp, files[i].path) != 0)
                lm_err_set(err, "cannot rename %s to %s: %s", files[i].tmp, files[i].path,
                           strerror(errno));
    return comm_agree_soft(comm, err);
}

void h5io_discard(struct h5io_file *files, int n, MPI_Comm comm)
{
    /* Truncate first: the close still flushes HDF5's metadata, which must not fail for want of
     * the space the discarded data holds (a failed close leaves HDF5 with a file it tries to close
     * again when MPI ends). */
    bool open = false;
    for (int i = 0; i < n; i++)
        open |= files[i].id >= 0;
    if (open && comm_rank(comm) == 0)
        for (int i = 0; i < n; i++)
            if (files[i].id >= 0 && truncate(files[i].tmp, 0) != 0)
                msg_warn("cannot truncate %s: %s", files[i].tmp, strerror(errno));
    comm_barrier(comm);
    for (int i = 0; i < n; i++) {
        if (files[i].id >= 0)
            H5Fclose(files[i].id);
        files[i].id = H5I_INVALID_HID;
    }
    if (comm_rank(comm) == 0)
        for (int i = 0; i < n; i++)
            if (files[i].tmp[0])
                unlink(files[i].tmp);
    comm_barrier(comm);
}

bool h5io_finish(struct h5io_file *f, bool ok, struct lm_err *err)
{
    return h5io_close(f, ok, err) && h5io_commit(f, 1, f->comm, err);
}

hid_t h5io_open(const char *path, MPI_Comm comm, struct lm_err *err)
{
    h5io_quiet();
    if (access(path, R_OK) != 0) {
        lm_err_set(err, "cannot open %s: %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (comm != MPI_COMM_NULL)
        H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t id = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (id < 0)
        lm_err_set(err, "cannot open %s: not an HDF5 file, or the file is truncated or corrupt",
                   path);
    return id;
}

static hid_t space_of(int n)
{
    hsize_t d = (hsize_t)n;
    return n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL);
}

bool h5io_attr_write(hid_t obj, const char *name, hid_t mem_type, hid_t file_type, int n,
                     const void *value)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t space = space_of(n);
    hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = a >= 0 && H5Awrite(a, mem_type, value) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return ok;
}

bool h5io_attr_write_string(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    bool ok = h5io_attr_write(obj, name, t, t, 0, value);
    H5Tclose(t);
    return ok;
}

bool h5io_attr_exists(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

const char *h5io_class_name(H5T_class_t cls)
{
    switch (cls) {
    case H5T_INTEGER:
        return "integer";
    case H5T_FLOAT:
        return "float";
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    case H5T_ARRAY:
        return "array";
    default:
        return "non-numeric";
    }
}

/* Class and element count of an attribute or dataset's type and space. */
static void type_info(hid_t type, hid_t space, H5T_class_t *cls, int64_t *count)
{
    *cls = H5Tget_class(type);
    *count = (int64_t)H5Sget_simple_extent_npoints(space);
}

bool h5io_attr_read(hid_t obj, const char *name, hid_t mem_type, int n, void *value,
                    const char *file, const char *objname, struct lm_err *err)
{
    if (H5Aexists(obj, name) <= 0)
        return lm_err_set(err, "%s: attribute %s/%s is missing", file, objname, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    H5T_class_t cls;
    int64_t count;
    type_info(t, s, &cls, &count);
    bool ok = false;
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        lm_err_set(err, "%s: attribute %s/%s has type %s, expected a number", file, objname, name,
                   h5io_class_name(cls));
    else if (count != n)
        lm_err_set(err, "%s: attribute %s/%s has %lld element(s), expected %d", file, objname, name,
                   (long long)count, n);
    else if (H5Aread(a, mem_type, value) < 0)
        lm_err_set(err, "%s: cannot read attribute %s/%s", file, objname, name);
    else
        ok = true;
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return ok;
}

char *h5io_attr_read_string(hid_t obj, const char *name, const char *file, struct lm_err *err)
{
    if (H5Aexists(obj, name) <= 0) {
        lm_err_set(err, "%s: attribute %s is missing", file, name);
        return NULL;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(t) != H5T_STRING) {
        lm_err_set(err, "%s: attribute %s has type %s, expected a string", file, name,
                   h5io_class_name(H5Tget_class(t)));
    } else if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) < 0 || !s)
            lm_err_set(err, "%s: cannot read attribute %s", file, name);
        else
            out = lm_strdup("h5io.string", s);
        H5free_memory(s);
        H5Tclose(mt);
    } else {
        size_t size = H5Tget_size(t);
        out = lm_calloc("h5io.string", size + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, size);
        if (H5Aread(a, mt, out) < 0) {
            lm_err_set(err, "%s: cannot read attribute %s", file, name);
            lm_free(out);
            out = NULL;
        }
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

static void shape_text(char *buf, size_t cap, int rank, const int64_t *d, bool want)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)(want && d[i] < 0 ? snprintf(buf + len, cap - len, "%s*", i ? ", " : "")
                                         : snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "",
                                                    (long long)d[i]));
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* Check an open dataset's rank and shape; fills dims. */
static bool check_shape(hid_t ds, int rank, const int64_t *want, int64_t *dims, const char *path,
                        const char *name, struct lm_err *err)
{
    hid_t s = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(s);
    hsize_t d[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(s, d, NULL);
    H5Sclose(s);
    int64_t found[H5S_MAX_RANK];
    for (int i = 0; i < r; i++)
        found[i] = (int64_t)d[i];
    bool ok = r == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = !want || want[i] < 0 || want[i] == found[i];
    if (ok) {
        for (int i = 0; i < rank; i++)
            dims[i] = found[i];
        return true;
    }
    char fs[160], ws[160];
    shape_text(fs, sizeof fs, r, found, false);
    if (want)
        shape_text(ws, sizeof ws, rank, want, true);
    else
        snprintf(ws, sizeof ws, "%d dimensions", rank);
    return lm_err_set(err, "%s: dataset %s has shape %s, expected %s", path, name, fs, ws);
}

bool h5io_exists(hid_t loc, const char *name)
{
    char buf[H5IO_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf)
        return false;
    /* Check every intermediate link: H5Lexists fails on a path through a missing group. */
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        bool ok = H5Lexists(loc, buf, H5P_DEFAULT) > 0;
        *p = '/';
        if (!ok)
            return false;
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

hid_t h5io_dataset_open(hid_t file, const char *name, int rank, const int64_t *want,
                        enum h5io_class cls, int64_t *dims, const char *path, struct lm_err *err)
{
    if (!h5io_exists(file, name)) {
        lm_err_set(err, "%s: dataset %s is missing", path, name);
        return H5I_INVALID_HID;
    }
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0) {
        lm_err_set(err, "%s: %s is not a readable dataset", path, name);
        return H5I_INVALID_HID;
    }
    hid_t t = H5Dget_type(ds);
    H5T_class_t c = H5Tget_class(t);
    H5Tclose(t);
    H5T_class_t want_c = cls == H5IO_FLOAT ? H5T_FLOAT : H5T_INTEGER;
    if (c != want_c) {
        lm_err_set(err, "%s: dataset %s has type %s, expected %s", path, name, h5io_class_name(c),
                   h5io_class_name(want_c));
        H5Dclose(ds);
        return H5I_INVALID_HID;
    }
    if (!check_shape(ds, rank, want, dims, path, name, err)) {
        H5Dclose(ds);
        return H5I_INVALID_HID;
    }
    return ds;
}

hid_t h5io_dcpl(int rank, const hsize_t *chunk)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (chunk)
        H5Pset_chunk(dcpl, rank, chunk);
    return dcpl;
}

hid_t h5io_dxpl_collective(void)
{
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    return dxpl;
}
