/* field_file — lemur's field files: collective hyperslab I/O of distributed 3-D float fields, and
 * the root attributes of each kind from one descriptor table (see field_file.h). */
#include "mpi/field_file.h"

#include "alloc.h"
#include "finite.h"
#include "mpi/comm.h"
#include "mpi/h5io.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define CHUNK_MAX 512

struct field_file_block field_file_block_make(const int n[3], const struct box3 *box,
                                              const int64_t *dims)
{
    struct field_file_block b = {.box = *box};
    for (int a = 0; a < 3; a++) {
        b.n[a] = n[a];
        b.dims[a] = dims ? dims[a] : box3_extent(box, a);
    }
    return b;
}

/* File and memory selections of a block: the owned box in the file, the same cells at the origin
 * of the local array in memory (none when the box is empty). */
static void select_block(const struct field_file_block *b, hid_t fs, hid_t ms)
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

static hid_t memory_space(const struct field_file_block *b)
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

bool field_file_write_dataset(struct h5io_file *f, const char *name,
                              const struct field_file_block *b, const float *data,
                              struct lm_err *err)
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

/* Refuse a block read from a file that holds NaN or infinity, naming its first global cell. */
static void check_finite(const struct field_file_block *b, const float *data, const char *path,
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

bool field_file_read(const char *path, const char *name, const struct field_file_block *b,
                     float *data, MPI_Comm comm, struct lm_err *err)
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

/* ---- kinds and their attributes ------------------------------------------------------------ */

const char *const field_file_psi_names[3] = {"psi_x", "psi_y", "psi_z"};
const char *const field_file_vel_names[3] = {"vel_x", "vel_y", "vel_z"};

enum attr_type { ATTR_F64, ATTR_I64, ATTR_I32, ATTR_STRING };

/* One root attribute: its name, type, member of struct field_file_meta and the kinds carrying it.
 */
struct attr_desc {
    const char *name;
    enum attr_type type;
    size_t offset;
    unsigned kinds;
};

#define KIND_IC   (1u << FIELD_FILE_IC)
#define KIND_EMU  (1u << FIELD_FILE_EMULATED)
#define KIND_BOTH (KIND_IC | KIND_EMU)
#define META(m)   offsetof(struct field_file_meta, m)

static const struct attr_desc attr_table[] = {
    {"BoxSize", ATTR_F64, META(box_size), KIND_BOTH},
    {"Nmesh", ATTR_I64, META(n_mesh), KIND_BOTH},
    {"Redshift", ATTR_F64, META(redshift), KIND_BOTH},
    {"Seed", ATTR_I64, META(seed), KIND_IC},
    {"Paired", ATTR_I32, META(paired), KIND_IC},
    {"Omega_m", ATTR_F64, META(omega_m), KIND_BOTH},
    {"sigma8", ATTR_F64, META(sigma8), KIND_IC},
    {"Amplitude", ATTR_STRING, META(amplitude), KIND_IC},
    {"units", ATTR_STRING, META(units), KIND_BOTH},
    {"lemur_config", ATTR_STRING, META(config), KIND_BOTH},
};
#define N_ATTRS ((int)(sizeof attr_table / sizeof attr_table[0]))

static const char *const units_text[] = {
    [FIELD_FILE_IC] = "psi_x, psi_y, psi_z: Mpc/h (Zel'dovich displacement at z = 0); delta: 1",
    [FIELD_FILE_EMULATED] = "psi_x, psi_y, psi_z: Mpc/h (emulated nonlinear displacement "
                            "Psi_NL(q), x = q + Psi_NL); vel_x, vel_y, vel_z: km/s (peculiar "
                            "velocity)",
};

static bool attr_write(hid_t obj, const struct attr_desc *a, const struct field_file_meta *m)
{
    const void *v = (const char *)m + a->offset;
    switch (a->type) {
    case ATTR_F64:
        return h5io_attr_write(obj, a->name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, v);
    case ATTR_I64:
        return h5io_attr_write(obj, a->name, H5T_NATIVE_INT64, H5T_STD_I64LE, 0, v);
    case ATTR_I32:
        return h5io_attr_write(obj, a->name, H5T_NATIVE_INT32, H5T_STD_I32LE, 0, v);
    case ATTR_STRING: {
        const char *s = *(const char *const *)v;
        return h5io_attr_write_string(obj, a->name, s ? s : "");
    }
    }
    return false;
}

/* Read attribute a into m when present (strings into new blocks); false with err on a bad one. */
static bool attr_read(hid_t obj, const struct attr_desc *a, struct field_file_meta *m,
                      const char *path, struct lm_err *err)
{
    void *v = (char *)m + a->offset;
    if (!h5io_attr_exists(obj, a->name))
        return true;
    switch (a->type) {
    case ATTR_F64:
        return h5io_attr_read(obj, a->name, H5T_NATIVE_DOUBLE, 1, v, path, "", err);
    case ATTR_I64:
        return h5io_attr_read(obj, a->name, H5T_NATIVE_INT64, 1, v, path, "", err);
    case ATTR_I32:
        return h5io_attr_read(obj, a->name, H5T_NATIVE_INT32, 1, v, path, "", err);
    case ATTR_STRING:
        return (*(char **)v = h5io_attr_read_string(obj, a->name, path, err)) != NULL;
    }
    return false;
}

struct field_file {
    struct h5io_file h;
};

struct field_file *field_file_create(const char *path, enum field_file_kind kind,
                                     const struct field_file_meta *meta, MPI_Comm comm,
                                     struct lm_err *err)
{
    struct field_file *f = lm_calloc("field_file", 1, sizeof *f);
    if (!h5io_create(&f->h, path, comm, err)) {
        lm_free(f);
        return NULL;
    }
    struct field_file_meta m = *meta;
    m.units = units_text[kind];
    bool ok = true;
    for (int i = 0; i < N_ATTRS && ok; i++)
        if (attr_table[i].kinds & (1u << kind))
            ok = attr_write(f->h.id, &attr_table[i], &m);
    if (!ok)
        lm_err_set(err, "%s: writing the attributes failed", f->h.tmp);
    if (comm_agree_soft(comm, err))
        return f;
    h5io_discard(&f->h, 1, comm);
    lm_free(f);
    return NULL;
}

bool field_file_write(struct field_file *f, const char *name, const struct field_file_block *b,
                      const float *data, struct lm_err *err)
{
    return field_file_write_dataset(&f->h, name, b, data, err);
}

bool field_file_close(struct field_file **f, bool ok, struct lm_err *err)
{
    if (!f || !*f)
        return false;
    ok = h5io_finish(&(*f)->h, ok, err);
    lm_free(*f);
    *f = NULL;
    return ok;
}

void field_file_meta_free(struct field_file_meta *meta)
{
    lm_free((char *)meta->amplitude);
    lm_free((char *)meta->config);
    lm_free((char *)meta->units);
    *meta = (struct field_file_meta){0};
}

/* Every string member of meta (in table order), for the broadcast. */
static void bcast_strings(struct field_file_meta *m, MPI_Comm comm)
{
    for (int i = 0; i < N_ATTRS; i++) {
        if (attr_table[i].type != ATTR_STRING)
            continue;
        char **s = (char **)((char *)m + attr_table[i].offset);
        int has = *s != NULL;
        MPI_CHECK(MPI_Bcast(&has, 1, MPI_INT, 0, comm));
        if (has)
            comm_bcast_string(comm, s, 0);
    }
}

bool field_file_read_meta(const char *path, struct field_file_meta *meta, MPI_Comm comm,
                          struct lm_err *err)
{
    *meta = (struct field_file_meta){0};
    if (comm_rank(comm) == 0) {
        hid_t f = h5io_open(path, MPI_COMM_NULL, err);
        if (f >= 0 && !h5io_attr_exists(f, "BoxSize"))
            lm_err_set(err, "%s: attribute /BoxSize is missing", path);
        for (int i = 0; i < N_ATTRS && f >= 0 && lm_err_ok(err); i++)
            attr_read(f, &attr_table[i], meta, path, err);
        if (f >= 0)
            H5Fclose(f);
    }
    if (!comm_agree_soft(comm, err)) {
        field_file_meta_free(meta);
        return false;
    }
    struct field_file_meta numbers = *meta;
    MPI_CHECK(MPI_Bcast(&numbers, (int)sizeof numbers, MPI_BYTE, 0, comm));
    if (comm_rank(comm) != 0) { /* numbers only: the strings follow */
        *meta = numbers;
        meta->amplitude = meta->config = meta->units = NULL;
    }
    bcast_strings(meta, comm);
    return true;
}

bool field_file_read_psi(const char *path, const int n[3], double box_size, const struct box3 *box,
                         const int64_t *dims, float *const psi[3], MPI_Comm comm,
                         struct lm_err *err)
{
    struct field_file_meta m;
    if (!field_file_read_meta(path, &m, comm, err))
        return false;
    if (fabs(m.box_size - box_size) > 1e-9 * box_size)
        lm_err_set(err, "%s: attribute BoxSize = %g Mpc/h, but box.size = %g", path, m.box_size,
                   box_size);
    field_file_meta_free(&m);
    if (!comm_agree_soft(comm, err))
        return false;
    struct field_file_block b = field_file_block_make(n, box, dims);
    for (int d = 0; d < 3; d++)
        if (!field_file_read(path, field_file_psi_names[d], &b, psi[d], comm, err))
            return false;
    return true;
}
