/* snapshot — Gadget-4-style HDF5 snapshots: parallel writer and multi-file reader. */
#include "mpi/snapshot.h"

#include "alloc.h"
#include "finite.h"
#include "mpi/comm.h"
#include "mpi/h5io.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MPC_IN_CM 3.085678e24
#define MSUN_IN_G 1.989e33
/* Particles per piece when converting between the file's [n, 3] rows and lemur's columns. */
#define PIECE ((int64_t)1 << 20)

/* ---------------------------------------------------------------------------------------------- */
/* names */

/* base name: path without a trailing ".hdf5" */
static void base_of(const char *path, char *base, size_t cap)
{
    snprintf(base, cap, "%s", path);
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".hdf5") == 0)
        base[len - 5] = 0;
}

static void file_name(const char *base, int i, int n_files, char *out, size_t cap)
{
    if (n_files == 1)
        snprintf(out, cap, "%s.hdf5", base);
    else
        snprintf(out, cap, "%s.%d.hdf5", base, i);
}

/* ---------------------------------------------------------------------------------------------- */
/* writing */

/* Global layout of a write: this rank's range [o, o + n) and file f's range [F_f, F_f+1). */
struct write_layout {
    int64_t n_total, offset, n_local;
    int n_files;
};

/* This rank's share of one file: m rows from local particle i0 to file row first_row, in rounds
 * (the same count on every rank) of at most PIECE rows. */
struct write_piece {
    int64_t n_rows, first_row, i0, m, rounds;
};

static int64_t file_start(const struct write_layout *w, int f)
{
    return w->n_total * f / w->n_files;
}

static bool write_header(hid_t file, const struct snapshot_header *hdr, int part_type,
                         uint64_t n_this, uint64_t n_total, int n_files)
{
    uint64_t this_file[6] = {0}, total[6] = {0};
    uint32_t high[6] = {0};
    this_file[part_type] = n_this;
    total[part_type] = n_total;
    high[part_type] = (uint32_t)(n_total >> 32);
    int flag = 0;
    hid_t g = H5Gcreate2(file, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = g >= 0;
    ok = ok &&
         h5io_attr_write(g, "NumPart_ThisFile", H5T_NATIVE_UINT64, H5T_STD_U64LE, 6, this_file);
    ok = ok && h5io_attr_write(g, "NumPart_Total", H5T_NATIVE_UINT64, H5T_STD_U64LE, 6, total);
    ok = ok &&
         h5io_attr_write(g, "NumPart_Total_HighWord", H5T_NATIVE_UINT32, H5T_STD_U32LE, 6, high);
    ok = ok && h5io_attr_write(g, "MassTable", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 6, hdr->mass);
    ok =
        ok && h5io_attr_write(g, "NumFilesPerSnapshot", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &n_files);
    ok = ok && h5io_attr_write(g, "Flag_DoublePrecision", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &flag);
    const char *names[6] = {"Time", "Redshift", "BoxSize", "Omega0", "OmegaLambda", "HubbleParam"};
    const double vals[6] = {hdr->time,   hdr->redshift,     hdr->box_size,
                            hdr->omega0, hdr->omega_lambda, hdr->hubble_param};
    for (int i = 0; i < 6; i++)
        ok = ok && h5io_attr_write(g, names[i], H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &vals[i]);
    if (g >= 0)
        H5Gclose(g);
    return ok;
}

static bool write_parameters(hid_t file, const struct snapshot_header *hdr, const char *config)
{
    hid_t g = H5Gcreate2(file, "Parameters", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *names[7] = {"HubbleParam",  "Omega0",           "OmegaLambda",
                            "BoxSize",      "UnitLength_in_cm", "UnitVelocity_in_cm_per_s",
                            "UnitMass_in_g"};
    const double vals[7] = {hdr->hubble_param, hdr->omega0, hdr->omega_lambda, hdr->box_size,
                            MPC_IN_CM,         1e5,         1e10 * MSUN_IN_G};
    bool ok = g >= 0;
    for (int i = 0; i < 7; i++)
        ok = ok && h5io_attr_write(g, names[i], H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &vals[i]);
    if (g >= 0)
        H5Gclose(g);
    if (config)
        ok = ok && h5io_attr_write_string(file, "lemur_config", config);
    return ok;
}

/* What one dataset of a particle group holds: the rows of this rank's particles [i0, i0 + m),
 * written in file rows [first_row, first_row + m) of a dataset of n_rows x cols elements. */
struct block_write {
    const char *name;
    hid_t mem_type, file_type;
    int cols;          /**< 3: [n, 3] float32 (positions, velocities); 1: [n] uint64 (IDs) */
    float *const *src; /**< the three columns (cols 3) */
    const uint64_t *ids;
    double scale; /**< factor on the values (cols 3) */
};

/* Rows [i, i + k) of this rank's part of the block into buf (interleaved [k][3], or IDs). */
static void fill_rows(const struct block_write *w, int64_t i, int64_t k, void *buf)
{
    if (w->cols == 1) {
        memcpy(buf, w->ids + i, (size_t)k * sizeof *w->ids);
        return;
    }
    float *out = buf;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < k; r++)
        for (int d = 0; d < 3; d++)
            out[3 * r + d] = (float)(w->src[d][i + r] * w->scale);
}

/* Collective write of one dataset in rounds of at most PIECE rows per rank (every rank takes part
 * in every round, with an empty selection once its rows are done), so that the staging buffer
 * stays small whatever the particle count. */
static bool write_block(hid_t group, const struct block_write *w, const struct write_piece *pc,
                        void *buf, MPI_Comm comm)
{
    hsize_t dims[2] = {(hsize_t)pc->n_rows, (hsize_t)w->cols};
    int rank = w->cols > 1 ? 2 : 1;
    hid_t fs = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = h5io_dcpl(rank, NULL);
    hid_t ds = H5Dcreate2(group, w->name, w->file_type, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    hid_t dxpl = h5io_dxpl_collective();
    bool ok = comm_all(comm, ds >= 0);
    /* Agree after every round: a rank whose write failed (disk full) must not leave the others
     * waiting in the next collective write. */
    for (int64_t r = 0; r < pc->rounds && ok; r++) {
        int64_t done = r * PIECE, k = pc->m - done < PIECE ? pc->m - done : PIECE;
        k = k > 0 ? k : 0;
        hsize_t start[2] = {(hsize_t)(pc->first_row + done), 0};
        hsize_t count[2] = {(hsize_t)k, (hsize_t)w->cols};
        hsize_t mdims[2] = {(hsize_t)(k ? k : 1), (hsize_t)w->cols};
        hid_t ms = H5Screate_simple(rank, mdims, NULL);
        if (k > 0) {
            fill_rows(w, pc->i0 + done, k, buf);
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        } else {
            H5Sselect_none(fs);
            H5Sselect_none(ms);
        }
        ok = H5Dwrite(ds, w->mem_type, ms, fs, dxpl, buf) >= 0;
        H5Sclose(ms);
        ok = comm_all(comm, ok);
    }
    H5Pclose(dxpl);
    H5Sclose(fs);
    if (ds >= 0)
        H5Dclose(ds);
    return ok;
}

static bool write_particles(hid_t file, const struct snapshot_header *hdr, int part_type,
                            const struct particles *p, const struct write_piece *pc, MPI_Comm comm)
{
    char name[32];
    snprintf(name, sizeof name, "PartType%d", part_type);
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const struct block_write blocks[3] = {
        {"Coordinates", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 3, p->x, NULL, 1.0},
        {"Velocities", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 3, p->v, NULL, 1.0 / sqrt(hdr->time)},
        {"ParticleIDs", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, NULL, p->id, 1.0},
    };
    int64_t rows = pc->m < PIECE ? (pc->m > 0 ? pc->m : 1) : PIECE;
    void *buf = lm_malloc("snapshot.buffer", (size_t)rows * 3 * sizeof(float));
    bool ok = comm_all(comm, g >= 0);
    for (int b = 0; b < 3 && ok; b++)
        ok = write_block(g, &blocks[b], pc, buf, comm);
    lm_free(buf);
    if (g >= 0) {
        ok = ok && h5io_attr_write_string(g, "units",
                                          "Coordinates: Mpc/h (comoving); Velocities: "
                                          "km/s divided by sqrt(a); ParticleIDs: "
                                          "(i n + j) n + k");
        H5Gclose(g);
    }
    return ok;
}

/* Write file f of a snapshot (created as a temporary file, left closed but not committed). */
static bool write_file(struct h5io_file *file, const char *name, const struct write_layout *w,
                       int f, const struct snapshot_header *hdr, const struct particles *p,
                       const struct snapshot_write_opts *o, MPI_Comm comm, struct lm_err *err)
{
    if (!h5io_create(file, name, comm, err))
        return false;
    int64_t f0 = file_start(w, f), f1 = file_start(w, f + 1);
    int64_t a = w->offset > f0 ? w->offset : f0;
    int64_t b = w->offset + w->n_local < f1 ? w->offset + w->n_local : f1;
    struct write_piece pc = {.n_rows = f1 - f0, .m = b > a ? b - a : 0};
    pc.first_row = pc.m > 0 ? a - f0 : 0;
    pc.i0 = pc.m > 0 ? a - w->offset : 0;
    pc.rounds = (pc.m + PIECE - 1) / PIECE;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &pc.rounds, 1, MPI_INT64_T, MPI_MAX, comm));
    bool ok = write_header(file->id, hdr, o->part_type, (uint64_t)(f1 - f0), (uint64_t)w->n_total,
                           w->n_files) &&
              write_parameters(file->id, hdr, o->config);
    ok = comm_all(comm, ok) && write_particles(file->id, hdr, o->part_type, p, &pc, comm);
    if (!ok)
        lm_err_set(err,
                   "writing snapshot file %s failed (HDF5 error: disk full or file system "
                   "error?)",
                   file->tmp);
    return h5io_close(file, ok, err);
}

static bool check_write_args(const struct particles *p, const struct snapshot_header *hdr,
                             const struct snapshot_write_opts *o, struct lm_err *err)
{
    unsigned need = PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID;
    if ((p->fields & need) != need)
        return lm_err_set(err, "snapshot_write: the particles lack positions, velocities or IDs");
    if (o->n_files < 1 || o->part_type < 0 || o->part_type > 5)
        return lm_err_set(err,
                          "snapshot_write: %d files of particle type %d requested (expected "
                          ">= 1 file, type 0 ... 5)",
                          o->n_files, o->part_type);
    if (!(hdr->time > 0))
        return lm_err_set(err, "snapshot_write: scale factor Time = %g must be positive",
                          hdr->time);
    return true;
}

bool snapshot_write(const char *path, const struct snapshot_header *hdr, const struct particles *p,
                    const struct snapshot_write_opts *opts, MPI_Comm comm, struct lm_err *err)
{
    struct snapshot_write_opts o = opts ? *opts : (struct snapshot_write_opts){0};
    o.n_files = o.n_files > 0 ? o.n_files : 1;
    o.part_type = o.part_type > 0 ? o.part_type : 1;
    check_write_args(p, hdr, &o, err);
    if (!comm_agree_soft(comm, err))
        return false;
    struct write_layout w = {.n_local = p->n, .n_files = o.n_files};
    MPI_CHECK(MPI_Exscan(&w.n_local, &w.offset, 1, MPI_INT64_T, MPI_SUM, comm));
    if (comm_rank(comm) == 0)
        w.offset = 0;
    MPI_CHECK(MPI_Allreduce(&w.n_local, &w.n_total, 1, MPI_INT64_T, MPI_SUM, comm));
    char base[H5IO_PATH_MAX], name[H5IO_PATH_MAX + 32];
    base_of(path, base, sizeof base);
    struct h5io_file *files = lm_calloc("snapshot.files", (size_t)o.n_files, sizeof *files);
    bool ok = true;
    for (int f = 0; f < o.n_files && ok; f++) {
        file_name(base, f, o.n_files, name, sizeof name);
        ok = write_file(&files[f], name, &w, f, hdr, p, &o, comm, err);
    }
    ok = ok && h5io_commit(files, o.n_files, comm, err);
    if (!ok)
        h5io_discard(files, o.n_files, comm);
    lm_free(files);
    return ok;
}

/* ---------------------------------------------------------------------------------------------- */
/* reading */

/* What rank 0 learns about the file set and broadcasts. */
struct file_set {
    char base[H5IO_PATH_MAX]; /**< base name (multi-file) or the single file's name */
    int n_files;
    int64_t *counts; /**< particles of the type per file (n_files entries) */
};

static void set_file_name(const struct file_set *s, int i, char *out, size_t cap)
{
    if (s->n_files == 1)
        snprintf(out, cap, "%s", s->base);
    else
        snprintf(out, cap, "%s.%d.hdf5", s->base, i);
}

/* Find the first file of the set: path itself, path.hdf5 or path.0.hdf5. */
static bool find_first(const char *path, char *first, size_t cap, struct lm_err *err)
{
    const char *fmt[3] = {"%s", "%s.hdf5", "%s.0.hdf5"};
    for (int i = 0; i < 3; i++) {
        snprintf(first, cap, fmt[i], path);
        if (access(first, F_OK) == 0)
            return true;
    }
    snprintf(first, cap, "%s", path);
    return lm_err_set(err,
                      "cannot open snapshot %s: no such file (also tried %s.hdf5 and "
                      "%s.0.hdf5)",
                      path, path, path);
}

/* The base of a multi-file set from the name of one of its files ("<base>.<i>.hdf5"). */
static bool multi_base(const char *first, char *base, size_t cap, int n_files, struct lm_err *err)
{
    snprintf(base, cap, "%s", first);
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".hdf5") == 0) {
        base[len - 5] = 0;
        char *dot = strrchr(base, '.');
        if (dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1)) {
            *dot = 0;
            return true;
        }
    }
    return lm_err_set(err,
                      "%s: NumFilesPerSnapshot = %d but the name is not of the form "
                      "<base>.<i>.hdf5",
                      first, n_files);
}

/* Length unit of a file in Mpc/h (see snapshot.h). */
static double detect_unit(hid_t file, double box_in_file, double forced, const char *name)
{
    if (forced > 0)
        return forced;
    const char *groups[2] = {"Parameters", "Header"};
    for (int i = 0; i < 2; i++) {
        if (!h5io_exists(file, groups[i]))
            continue;
        hid_t g = H5Gopen2(file, groups[i], H5P_DEFAULT);
        double cm = 0;
        struct lm_err e = {0};
        bool have =
            h5io_attr_exists(g, "UnitLength_in_cm") &&
            h5io_attr_read(g, "UnitLength_in_cm", H5T_NATIVE_DOUBLE, 1, &cm, name, groups[i], &e);
        H5Gclose(g);
        if (have && cm > 0)
            return cm / MPC_IN_CM;
    }
    return box_in_file > 20000 ? 1e-3 : 1.0;
}

static bool read_header_attrs(hid_t g, const char *name, struct snapshot_header *h,
                              uint64_t this_file[6], struct lm_err *err)
{
    uint32_t high[6] = {0};
    bool ok =
        h5io_attr_read(g, "NumPart_ThisFile", H5T_NATIVE_UINT64, 6, this_file, name, "/Header",
                       err) &&
        h5io_attr_read(g, "NumPart_Total", H5T_NATIVE_UINT64, 6, h->n_total, name, "/Header",
                       err) &&
        h5io_attr_read(g, "MassTable", H5T_NATIVE_DOUBLE, 6, h->mass, name, "/Header", err) &&
        h5io_attr_read(g, "Time", H5T_NATIVE_DOUBLE, 1, &h->time, name, "/Header", err) &&
        h5io_attr_read(g, "BoxSize", H5T_NATIVE_DOUBLE, 1, &h->box_size, name, "/Header", err) &&
        h5io_attr_read(g, "NumFilesPerSnapshot", H5T_NATIVE_INT, 1, &h->n_files, name, "/Header",
                       err);
    if (!ok)
        return false;
    struct lm_err ignore = {0};
    h->redshift = 1.0 / h->time - 1.0;
    h5io_attr_read(g, "Redshift", H5T_NATIVE_DOUBLE, 1, &h->redshift, name, "/Header", &ignore);
    h5io_attr_read(g, "Omega0", H5T_NATIVE_DOUBLE, 1, &h->omega0, name, "/Header", &ignore);
    h5io_attr_read(g, "OmegaLambda", H5T_NATIVE_DOUBLE, 1, &h->omega_lambda, name, "/Header",
                   &ignore);
    h5io_attr_read(g, "HubbleParam", H5T_NATIVE_DOUBLE, 1, &h->hubble_param, name, "/Header",
                   &ignore);
    if (h5io_attr_exists(g, "NumPart_Total_HighWord") &&
        h5io_attr_read(g, "NumPart_Total_HighWord", H5T_NATIVE_UINT32, 6, high, name, "/Header",
                       &ignore))
        for (int t = 0; t < 6; t++)
            if (h->n_total[t] < ((uint64_t)1 << 32))
                h->n_total[t] += (uint64_t)high[t] << 32;
    return true;
}

/* Read /Header of an open file; this_file gets NumPart_ThisFile. */
static bool read_header(hid_t file, const char *name, double forced_unit, struct snapshot_header *h,
                        uint64_t this_file[6], struct lm_err *err)
{
    *h = (struct snapshot_header){0};
    if (!h5io_exists(file, "Header"))
        return lm_err_set(err, "%s: group /Header is missing (not a Gadget snapshot)", name);
    hid_t g = H5Gopen2(file, "Header", H5P_DEFAULT);
    bool ok = read_header_attrs(g, name, h, this_file, err);
    H5Gclose(g);
    if (!ok)
        return false;
    if (h->n_files < 1 || !(h->time > 0) || !(h->box_size > 0))
        return lm_err_set(err,
                          "%s: /Header has NumFilesPerSnapshot = %d, Time = %g, BoxSize = %g "
                          "(expected >= 1 and positive values)",
                          name, h->n_files, h->time, h->box_size);
    h->length_unit = detect_unit(file, h->box_size, forced_unit, name);
    h->box_size *= h->length_unit;
    return true;
}

/* Particle counts of type t in every file of the set (rank 0). */
static bool read_counts(struct file_set *s, int t, double unit, struct lm_err *err)
{
    for (int i = 0; i < s->n_files; i++) {
        char name[H5IO_PATH_MAX + 32];
        set_file_name(s, i, name, sizeof name);
        hid_t f = h5io_open(name, MPI_COMM_NULL, err);
        if (f < 0)
            return false;
        struct snapshot_header h;
        uint64_t this_file[6];
        bool ok = read_header(f, name, unit, &h, this_file, err);
        H5Fclose(f);
        if (!ok)
            return false;
        s->counts[i] = (int64_t)this_file[t];
    }
    return true;
}

/* Rank 0: locate the file set, read the header, the per-file counts, and check them. */
static bool scan_set(const char *path, int t, double unit, struct file_set *s,
                     struct snapshot_header *hdr, struct lm_err *err)
{
    char first[H5IO_PATH_MAX];
    if (!find_first(path, first, sizeof first, err))
        return false;
    hid_t f = h5io_open(first, MPI_COMM_NULL, err);
    if (f < 0)
        return false;
    uint64_t this_file[6];
    bool ok = read_header(f, first, unit, hdr, this_file, err);
    H5Fclose(f);
    if (!ok)
        return false;
    s->n_files = hdr->n_files;
    if (s->n_files == 1)
        snprintf(s->base, sizeof s->base, "%s", first);
    else if (!multi_base(first, s->base, sizeof s->base, s->n_files, err))
        return false;
    s->counts = lm_calloc("snapshot.counts", (size_t)s->n_files, sizeof *s->counts);
    if (!read_counts(s, t, unit, err))
        return false;
    int64_t sum = 0;
    for (int i = 0; i < s->n_files; i++)
        sum += s->counts[i];
    if ((uint64_t)sum != hdr->n_total[t])
        return lm_err_set(err,
                          "%s: NumPart_Total[%d] = %llu but the %d file(s) hold %lld "
                          "particles of that type",
                          first, t, (unsigned long long)hdr->n_total[t], s->n_files,
                          (long long)sum);
    return true;
}

static void bcast_set(struct file_set *s, struct snapshot_header *hdr, MPI_Comm comm)
{
    MPI_CHECK(MPI_Bcast(hdr, (int)sizeof *hdr, MPI_BYTE, 0, comm));
    MPI_CHECK(MPI_Bcast(s->base, (int)sizeof s->base, MPI_CHAR, 0, comm));
    MPI_CHECK(MPI_Bcast(&s->n_files, 1, MPI_INT, 0, comm));
    if (comm_rank(comm) != 0)
        s->counts = lm_calloc("snapshot.counts", (size_t)s->n_files, sizeof *s->counts);
    MPI_CHECK(MPI_Bcast(s->counts, s->n_files, MPI_INT64_T, 0, comm));
}

/* Header and file set, agreed on every rank (s->counts allocated on success). */
static bool open_set(const char *path, const struct snapshot_read_opts *o, MPI_Comm comm,
                     struct file_set *s, struct snapshot_header *hdr, struct lm_err *err)
{
    *s = (struct file_set){0};
    h5io_quiet();
    if (comm_rank(comm) == 0)
        scan_set(path, o->part_type, o->length_unit, s, hdr, err);
    if (!comm_agree_soft(comm, err)) {
        lm_free(s->counts);
        s->counts = NULL;
        return false;
    }
    bcast_set(s, hdr, comm);
    return true;
}

/* Read rows [r0, r0 + m) of a dataset of n_rows x cols (cols 3: [n, 3]; cols 1: [n]). */
static bool read_rows(hid_t ds, hid_t mem_type, int cols, int64_t r0, int64_t m, void *buf)
{
    int rank = cols > 1 ? 2 : 1;
    hid_t fs = H5Dget_space(ds);
    hsize_t start[2] = {(hsize_t)r0, 0}, count[2] = {(hsize_t)m, (hsize_t)cols};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    bool ok = H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, buf) >= 0;
    H5Sclose(ms);
    H5Sclose(fs);
    return ok;
}

/* Where a dataset is read from, for messages. */
struct block_source {
    const char *file, *group, *what;
};

/* Refuse rows [r0, r0 + k) of an [n, 3] dataset that hold NaN or infinity. */
static bool rows_finite(const float *buf, int64_t r0, int64_t k, const struct block_source *src,
                        struct lm_err *err)
{
    int64_t i = finite_first_bad_float(buf, 3 * k);
    if (i < 0)
        return true;
    return lm_err_set(err,
                      "%s: dataset %s/%s holds a non-finite value (%g) at row %lld, column %lld; "
                      "expected finite values",
                      src->file, src->group, src->what, buf[i], (long long)(r0 + i / 3),
                      (long long)(i % 3));
}

/* Read rows [r0, r0 + m) of an [n, 3] float dataset into columns c at entry at, times scale. */
static bool read_vec3(hid_t ds, int64_t r0, int64_t m, float *const c[3], int64_t at, double scale,
                      const struct block_source *src, struct lm_err *err)
{
    float *buf = lm_malloc("snapshot.buffer", (size_t)(m < PIECE ? m : PIECE) * 3 * sizeof(float));
    bool ok = true;
    for (int64_t done = 0; done < m && ok; done += PIECE) {
        int64_t k = m - done < PIECE ? m - done : PIECE;
        ok = read_rows(ds, H5T_NATIVE_FLOAT, 3, r0 + done, k, buf);
        if (ok && !rows_finite(buf, r0 + done, k, src, err)) {
            lm_free(buf);
            return false;
        }
        for (int64_t i = 0; i < k && ok; i++)
            for (int d = 0; d < 3; d++)
                c[d][at + done + i] = (float)(buf[3 * i + d] * scale);
    }
    lm_free(buf);
    return ok;
}

/* Open one of the three datasets of a particle group with its shape checked. */
static hid_t open_block(hid_t file, const char *group, const char *what, int64_t n_rows,
                        const char *name, struct lm_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s", group, what);
    bool ids = strcmp(what, "ParticleIDs") == 0;
    int64_t want[2] = {n_rows, 3}, dims[2];
    return h5io_dataset_open(file, path, ids ? 1 : 2, want, ids ? H5IO_INTEGER : H5IO_FLOAT, dims,
                             name, err);
}

/* Read rows [r0, r0 + m) of file `name` (n_rows particles of the type) into p at entry at. */
static bool read_piece(const char *name, const struct snapshot_read_opts *o,
                       const struct snapshot_header *hdr, int64_t n_rows, int64_t r0, int64_t m,
                       struct particles *p, int64_t at, struct lm_err *err)
{
    hid_t f = h5io_open(name, MPI_COMM_NULL, err);
    if (f < 0)
        return false;
    char group[32];
    snprintf(group, sizeof group, "PartType%d", o->part_type);
    const char *what[3] = {"Coordinates", "Velocities", "ParticleIDs"};
    const unsigned field[3] = {PARTICLES_POS, PARTICLES_VEL, PARTICLES_ID};
    bool ok = true;
    for (int b = 0; b < 3 && ok; b++) {
        if (!(o->fields & field[b]))
            continue;
        hid_t ds = open_block(f, group, what[b], n_rows, name, err);
        struct block_source src = {name, group, what[b]};
        ok = ds >= 0;
        if (ok && b == 0)
            ok = read_vec3(ds, r0, m, p->x, at, hdr->length_unit, &src, err);
        else if (ok && b == 1)
            ok = read_vec3(ds, r0, m, p->v, at, sqrt(hdr->time), &src, err);
        else if (ok)
            ok = read_rows(ds, H5T_NATIVE_UINT64, 1, r0, m, p->id + at);
        if (ds >= 0 && !ok && lm_err_ok(err))
            lm_err_set(err, "%s: cannot read %s/%s (file truncated or corrupt?)", name, group,
                       what[b]);
        if (ds >= 0)
            H5Dclose(ds);
    }
    H5Fclose(f);
    return ok;
}

/* Read this rank's global range [g0, g1) from the files that hold it. */
static bool read_range(const struct file_set *s, const struct snapshot_read_opts *o,
                       const struct snapshot_header *hdr, int64_t g0, int64_t g1,
                       struct particles *p, struct lm_err *err)
{
    int64_t f0 = 0;
    bool ok = true;
    for (int i = 0; i < s->n_files && ok; f0 += s->counts[i], i++) {
        int64_t a = g0 > f0 ? g0 : f0, b = g1 < f0 + s->counts[i] ? g1 : f0 + s->counts[i];
        if (b <= a)
            continue;
        char name[H5IO_PATH_MAX + 32];
        set_file_name(s, i, name, sizeof name);
        ok = read_piece(name, o, hdr, s->counts[i], a - f0, b - a, p, a - g0, err);
    }
    return ok;
}

static struct snapshot_read_opts read_defaults(const struct snapshot_read_opts *opts)
{
    struct snapshot_read_opts o = opts ? *opts : (struct snapshot_read_opts){0};
    o.part_type = o.part_type > 0 ? o.part_type : 1;
    unsigned all = PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID;
    o.fields = o.fields ? (o.fields & all) : all;
    return o;
}

bool snapshot_read_header(const char *path, MPI_Comm comm, struct snapshot_header *hdr,
                          struct lm_err *err)
{
    struct snapshot_read_opts o = read_defaults(NULL);
    struct file_set s;
    if (!open_set(path, &o, comm, &s, hdr, err))
        return false;
    lm_free(s.counts);
    return true;
}

bool snapshot_read(const char *path, const struct snapshot_read_opts *opts, MPI_Comm comm,
                   struct snapshot_header *hdr, struct particles **out, struct lm_err *err)
{
    struct snapshot_read_opts o = read_defaults(opts);
    struct file_set s;
    *out = NULL;
    if (o.part_type > 5)
        lm_err_set(err, "snapshot_read: particle type %d requested (expected 0 ... 5)",
                   o.part_type);
    if (!comm_agree_soft(comm, err) || !open_set(path, &o, comm, &s, hdr, err))
        return false;
    int64_t n = (int64_t)hdr->n_total[o.part_type];
    int rank = comm_rank(comm), size = comm_size(comm);
    int64_t g0 = n * rank / size, g1 = n * (rank + 1) / size;
    struct particles *p = particles_create(o.fields, g1 - g0);
    particles_resize(p, g1 - g0);
    read_range(&s, &o, hdr, g0, g1, p, err);
    lm_free(s.counts);
    if (comm_agree_soft(comm, err)) {
        *out = p;
        return true;
    }
    particles_destroy(&p);
    return false;
}
