/* Snapshot I/O at any rank count: round trips (one and several files), a Quijote-style Gadget
 * set (kpc/h, uint32 IDs, Gadget-2 header types) written here with plain HDF5, and bad input
 * (missing, corrupt, missing dataset, wrong shape, wrong type, unwritable directory). */
#define T_USE_MPI
#include "harness.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/h5io.h"
#include "mpi/snapshot.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[512];

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/snapshot_np%d_%s", tmp_dir, t_size, name);
}

/* The particle with global index g: position, velocity and ID as functions of g. */
static void particle_of(int64_t g, float x[3], float v[3], uint64_t *id)
{
    for (int d = 0; d < 3; d++) {
        x[d] = (float)((g * 7 + d * 13) % 1000) * 0.25f + 0.125f;
        v[d] = (float)((g * 11 + d * 5) % 977) - 488.5f;
    }
    *id = (uint64_t)g * 3 + 5000000000ull;
}

/* Particles on rank r: 50 + 37 r, or with g_big, 2^20 + 1000 on rank 0 (more than one staging
 * piece of the writer) and 10 elsewhere. */
static bool g_big = false, g_tiny = false;

static int64_t count_of(int r)
{
    if (g_tiny)
        return 1;
    return g_big ? (r == 0 ? (1 << 20) + 1000 : 10) : 50 + 37 * r;
}

/* Uneven local counts (global order = rank order). */
static struct particles *make_local(int64_t *first)
{
    int64_t n = count_of(t_rank), off = 0;
    for (int r = 0; r < t_rank; r++)
        off += count_of(r);
    struct particles *p = particles_create(PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID, n);
    particles_resize(p, n);
    for (int64_t i = 0; i < n; i++) {
        float x[3], v[3];
        particle_of(off + i, x, v, &p->id[i]);
        for (int d = 0; d < 3; d++) {
            p->x[d][i] = x[d];
            p->v[d][i] = v[d];
        }
    }
    *first = off;
    return p;
}

static int64_t total_count(void)
{
    int64_t n = 0;
    for (int r = 0; r < t_size; r++)
        n += count_of(r);
    return n;
}

static struct snapshot_header test_header(double a)
{
    struct snapshot_header h = {.time = a,
                                .redshift = 1 / a - 1,
                                .box_size = 250.0,
                                .omega0 = 0.3175,
                                .omega_lambda = 0.6825,
                                .hubble_param = 0.6711};
    h.mass[1] = 65.7;
    return h;
}

/* Check that q (read back) holds this rank's even share of the global sequence. */
static void check_share(const struct particles *q, int64_t n_total, double vel_rtol)
{
    int64_t g0 = n_total * t_rank / t_size, g1 = n_total * (t_rank + 1) / t_size;
    T_CHECK(q->n == g1 - g0, "rank holds %lld particles, expected %lld", (long long)q->n,
            (long long)(g1 - g0));
    int bad_x = 0, bad_v = 0, bad_id = 0;
    for (int64_t i = 0; i < q->n && i < g1 - g0; i++) {
        float x[3], v[3];
        uint64_t id;
        particle_of(g0 + i, x, v, &id);
        bad_id += q->id[i] != id;
        for (int d = 0; d < 3; d++) {
            bad_x += q->x[d][i] != x[d];
            bad_v += fabs(q->v[d][i] - v[d]) > vel_rtol * fabs(v[d]);
        }
    }
    T_CHECK(bad_x == 0 && bad_v == 0 && bad_id == 0, "mismatches: x %d, v %d, id %d", bad_x, bad_v,
            bad_id);
}

static void round_trip(const char *name, int n_files, double a, const char *read_name,
                       double vel_rtol)
{
    char path[700], rpath[700];
    tmp_path(path, sizeof path, name);
    tmp_path(rpath, sizeof rpath, read_name);
    int64_t first;
    struct particles *p = make_local(&first);
    struct snapshot_header h = test_header(a), r;
    struct snapshot_write_opts wo = {.n_files = n_files, .config = "box:\n  size: 250\n"};
    struct lm_err err = {0};
    bool ok = snapshot_write(path, &h, p, &wo, MPI_COMM_WORLD, &err);
    T_CHECK(ok, "write failed: %s", err.msg);
    struct particles *q = NULL;
    ok = snapshot_read(rpath, NULL, MPI_COMM_WORLD, &r, &q, &err);
    T_CHECK(ok && q, "read of %s failed: %s", rpath, err.msg);
    if (ok) {
        T_CHECK(r.n_total[1] == (uint64_t)total_count() && r.n_files == n_files,
                "header: %llu particles, %d files", (unsigned long long)r.n_total[1], r.n_files);
        T_CLOSE(r.box_size, 250.0, 0);
        T_CLOSE(r.time, a, 0);
        T_CLOSE(r.mass[1], 65.7, 0);
        T_CLOSE(r.length_unit, 1.0, 0);
        check_share(q, total_count(), vel_rtol);
    }
    particles_destroy(&q);
    particles_destroy(&p);
}

static void test_round_trip_one_file(void) { round_trip("one.hdf5", 1, 1.0, "one.hdf5", 0); }

static void test_round_trip_in_pieces(void)
{
    g_big = true;
    round_trip("big.hdf5", 2, 1.0, "big", 0);
    g_big = false;
}

static void test_round_trip_velocity_scaling(void)
{
    /* v/sqrt(a) in float and back: identical up to one rounding of each conversion. */
    round_trip("half.hdf5", 1, 0.5, "half", 2.5e-7);
}

static void test_round_trip_multi_file(void)
{
    round_trip("multi.hdf5", 3, 1.0, "multi", 0);
    round_trip("multi2.hdf5", 3, 1.0, "multi2.2.hdf5", 0);
    /* more files than some ranks have particles for: still every particle exactly once */
    round_trip("many.hdf5", 7, 1.0, "many.0.hdf5", 0);
    char leftover[700];
    tmp_path(leftover, sizeof leftover, "multi.0.hdf5.tmp");
    T_CHECK(access(leftover, F_OK) != 0, "temporary file %s left behind", leftover);
    /* more files than particles: some files hold none */
    g_tiny = true;
    round_trip("tiny.hdf5", 6, 1.0, "tiny", 0);
    g_tiny = false;
}

/* A Quijote-like set written with plain HDF5 on rank 0: two files, kpc/h, uint32 IDs, Gadget-2
 * header types (uint32 counts, HighWord), double-precision coordinates in file 1. */
static void write_quijote_file(const char *base, int f, int64_t n0, int64_t n_this, int64_t n_all)
{
    char name[800];
    snprintf(name, sizeof name, "%s.%d.hdf5", base, f);
    hid_t file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(file, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    uint32_t this_file[6] = {0, (uint32_t)n_this}, total[6] = {0, (uint32_t)n_all}, hw[6] = {0};
    double mass[6] = {0, 65.7}, a = 0.5, box = 250000.0, z = 1.0;
    int nf = 2;
    h5io_attr_write(g, "NumPart_ThisFile", H5T_NATIVE_UINT32, H5T_STD_U32LE, 6, this_file);
    h5io_attr_write(g, "NumPart_Total", H5T_NATIVE_UINT32, H5T_STD_U32LE, 6, total);
    h5io_attr_write(g, "NumPart_Total_HighWord", H5T_NATIVE_UINT32, H5T_STD_U32LE, 6, hw);
    h5io_attr_write(g, "MassTable", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 6, mass);
    h5io_attr_write(g, "Time", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &a);
    h5io_attr_write(g, "Redshift", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &z);
    h5io_attr_write(g, "BoxSize", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &box);
    h5io_attr_write(g, "NumFilesPerSnapshot", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &nf);
    H5Gclose(g);
    g = H5Gcreate2(file, "PartType1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double *x = malloc((size_t)n_this * 3 * sizeof *x), *v = malloc((size_t)n_this * 3 * sizeof *v);
    uint32_t *id = malloc((size_t)n_this * sizeof *id);
    for (int64_t i = 0; i < n_this; i++)
        for (int d = 0; d < 3; d++) {
            x[3 * i + d] = 1000.0 * (double)(n0 + i + d) / 8.0;
            v[3 * i + d] = (double)(n0 + i) - d;
            id[i] = (uint32_t)(n0 + i + 1);
        }
    hsize_t dims[2] = {(hsize_t)n_this, 3};
    hid_t s2 = H5Screate_simple(2, dims, NULL), s1 = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(g, "Coordinates", f ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, s2, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds);
    ds = H5Dcreate2(g, "Velocities", H5T_IEEE_F32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    ds = H5Dcreate2(g, "ParticleIDs", H5T_STD_U32LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, id);
    H5Dclose(ds);
    H5Sclose(s1);
    H5Sclose(s2);
    H5Gclose(g);
    H5Fclose(file);
    free(x);
    free(v);
    free(id);
}

static void test_quijote_layout(void)
{
    char base[700];
    tmp_path(base, sizeof base, "quijote");
    if (t_rank == 0) {
        write_quijote_file(base, 0, 0, 40, 101);
        write_quijote_file(base, 1, 40, 61, 101);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    struct snapshot_header h;
    struct particles *q = NULL;
    struct lm_err err = {0};
    bool ok = snapshot_read(base, NULL, MPI_COMM_WORLD, &h, &q, &err);
    T_CHECK(ok, "read failed: %s", err.msg);
    if (!ok)
        return;
    T_CLOSE(h.length_unit, 1e-3, 0);
    T_CLOSE(h.box_size, 250.0, 1e-15);
    T_CHECK(h.n_total[1] == 101 && h.n_files == 2, "n_total %llu",
            (unsigned long long)h.n_total[1]);
    int64_t g0 = 101 * t_rank / t_size;
    int bad = 0;
    for (int64_t i = 0; i < q->n; i++) {
        int64_t g = g0 + i;
        bad += q->id[i] != (uint64_t)(g + 1);
        for (int d = 0; d < 3; d++) {
            bad += fabs(q->x[d][i] - (double)(g + d) / 8.0) > 1e-6 * (1 + (double)g);
            bad += fabs(q->v[d][i] - ((double)g - d) * sqrt(0.5)) > 1e-5 * (1 + (double)g);
        }
    }
    T_CHECK(bad == 0, "%d mismatching values", bad);
    particles_destroy(&q);
}

/* Expect a failed read of path with a message containing want, identical on every rank. */
static void expect_read_error(const char *path, const char *want)
{
    struct snapshot_header h;
    struct particles *q = NULL;
    struct lm_err err = {0};
    bool ok = snapshot_read(path, NULL, MPI_COMM_WORLD, &h, &q, &err);
    T_CHECK(!ok && q == NULL, "reading %s succeeded", path);
    T_CHECK(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    int len = (int)strlen(err.msg), mx = len;
    MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    T_CHECK(mx == len, "ranks disagree on the message");
}

static void test_missing_and_corrupt(void)
{
    char path[700];
    tmp_path(path, sizeof path, "does_not_exist");
    expect_read_error(path, "no such file");
    tmp_path(path, sizeof path, "corrupt.hdf5");
    if (t_rank == 0) {
        FILE *f = fopen(path, "wb");
        fputs("this is not an HDF5 file at all, just text pretending to be a snapshot\n", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_read_error(path, "not an HDF5 file");
}

/* Write a good one-file snapshot, then damage it on rank 0 with plain HDF5 via edit(). */
static void damaged(const char *name, void (*edit)(hid_t file), const char *want)
{
    char path[700];
    tmp_path(path, sizeof path, name);
    int64_t first;
    struct particles *p = make_local(&first);
    struct snapshot_header h = test_header(1.0);
    struct lm_err err = {0};
    T_CHECK(snapshot_write(path, &h, p, NULL, MPI_COMM_WORLD, &err), "write: %s", err.msg);
    particles_destroy(&p);
    if (t_rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        edit(f);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_read_error(path, want);
}

static void drop_velocities(hid_t f) { H5Ldelete(f, "PartType1/Velocities", H5P_DEFAULT); }

static void replace_coordinates(hid_t f, hid_t type, int cols)
{
    H5Ldelete(f, "PartType1/Coordinates", H5P_DEFAULT);
    hsize_t dims[2] = {(hsize_t)total_count(), (hsize_t)cols};
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t d =
        H5Dcreate2(f, "PartType1/Coordinates", type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(s);
}

static void coords_two_columns(hid_t f) { replace_coordinates(f, H5T_IEEE_F32LE, 2); }
static void coords_integer(hid_t f) { replace_coordinates(f, H5T_STD_I32LE, 3); }

static void test_bad_datasets(void)
{
    damaged("novel.hdf5", drop_velocities, "dataset PartType1/Velocities is missing");
    damaged("shape.hdf5", coords_two_columns, "expected [");
    damaged("shape.hdf5", coords_two_columns, ", 2], expected");
    damaged("type.hdf5", coords_integer, "has type integer, expected float");
}

static void test_unwritable(void)
{
    char path[700];
    tmp_path(path, sizeof path, "no_such_dir/snap.hdf5");
    int64_t first;
    struct particles *p = make_local(&first);
    struct snapshot_header h = test_header(1.0);
    struct lm_err err = {0};
    bool ok = snapshot_write(path, &h, p, NULL, MPI_COMM_WORLD, &err);
    T_CHECK(!ok && strstr(err.msg, "cannot create") != NULL, "ok %d, message '%s'", ok, err.msg);
    particles_destroy(&p);
}

static size_t g_bytes_at_start;

/* Every plan, store and buffer made by the cases was freed (labelled allocator). */
static void test_no_leaks(void)
{
    T_CHECK(alloc_current() == g_bytes_at_start, "%zu bytes still held (%zu at start)",
            alloc_current(), g_bytes_at_start);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    const char *d = getenv("LEMUR_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s", d ? d : "tests/tmp");
    mkdir(tmp_dir, 0755);
    g_bytes_at_start = alloc_current();
    T_RUN(test_round_trip_one_file);
    T_RUN(test_round_trip_velocity_scaling);
    T_RUN(test_round_trip_in_pieces);
    T_RUN(test_round_trip_multi_file);
    T_RUN(test_quijote_layout);
    T_RUN(test_missing_and_corrupt);
    T_RUN(test_bad_datasets);
    T_RUN(test_unwritable);
    T_RUN(test_no_leaks);
    return t_finish();
}
