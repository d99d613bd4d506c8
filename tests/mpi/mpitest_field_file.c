/*
 * mpitest_field_file — lemur's field files at any rank count (run.sh: 1-4 ranks): a field written
 * from 3-D blocks (padded local rows) reads back exactly into x-slabs and into another block grid;
 * the file is committed under its final name only; an IC field file and an emulated field file of
 * the odd mesh 17^3 round-trip their datasets and every root attribute of their kind (and only
 * those); bad files and datasets (missing, corrupt, wrong shape, wrong type, missing dataset, wrong
 * BoxSize) give agreed messages naming file, dataset or attribute.
 */
#define T_USE_MPI
#include "harness.h"

#include <hdf5.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/field_file.h"
#include "mpi/h5io.h"

static char tmp_dir[512];
static const int mesh[3] = {12, 10, 9};

static float value_of(int64_t i, int64_t j, int64_t k)
{
    return (float)(i * 1000 + j * 31 + k) * 0.5f;
}

/* A local array of box b with extents dims, filled with value_of (padding left at -1). */
static float *fill_block(const struct box3 *b, const int64_t dims[3])
{
    size_t n = (size_t)(dims[0] * dims[1] * dims[2]);
    float *a = lm_malloc("test.field", (n ? n : 1) * sizeof(float));
    for (size_t m = 0; m < n; m++)
        a[m] = -1;
    for (int64_t i = b->lo[0]; i < b->hi[0]; i++)
        for (int64_t j = b->lo[1]; j < b->hi[1]; j++)
            for (int64_t k = b->lo[2]; k < b->hi[2]; k++)
                a[box3_offset(b, dims, i, j, k)] = value_of(i, j, k);
    return a;
}

static long count_wrong(const struct box3 *b, const int64_t dims[3], const float *a)
{
    long bad = 0;
    for (int64_t i = b->lo[0]; i < b->hi[0]; i++)
        for (int64_t j = b->lo[1]; j < b->hi[1]; j++)
            for (int64_t k = b->lo[2]; k < b->hi[2]; k++)
                bad += a[box3_offset(b, dims, i, j, k)] != value_of(i, j, k);
    return bad;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/field_file_np%d_%s", tmp_dir, t_size, name);
}

/* Write dataset "a/field" from a block decomposition with rows padded by 3. */
static bool write_blocks(const char *path)
{
    struct decomp d;
    decomp_create_blocks(&d, MPI_COMM_WORLD, mesh, NULL);
    int64_t dims[3] = {box3_extent(&d.box, 0), box3_extent(&d.box, 1), box3_extent(&d.box, 2) + 3};
    float *a = fill_block(&d.box, dims);
    struct field_file_block b = field_file_block_make(mesh, &d.box, dims);
    struct h5io_file f;
    struct lm_err err = {0};
    bool ok = h5io_create(&f, path, MPI_COMM_WORLD, &err) &&
              h5io_finish(&f, field_file_write_dataset(&f, "a/field", &b, a, &err), &err);
    T_CHECK(ok, "write: %s", err.msg);
    lm_free(a);
    decomp_destroy(&d);
    return ok;
}

static void test_blocks_to_slabs_and_blocks(void)
{
    char path[700], tmp[720];
    path_of(path, sizeof path, "f.hdf5");
    if (!write_blocks(path))
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    T_CHECK(access(path, F_OK) == 0 && access(tmp, F_OK) != 0, "not committed under %s", path);
    struct decomp s;
    decomp_create_slabs_default(&s, MPI_COMM_WORLD, mesh);
    int64_t dims[3] = {box3_extent(&s.box, 0), 10, 2 * (9 / 2 + 1)};
    float *a = fill_block(&s.box, dims);
    memset(a, 0, sizeof(float) * (size_t)(dims[0] > 0 ? dims[0] * dims[1] * dims[2] : 1));
    struct field_file_block b = field_file_block_make(mesh, &s.box, dims);
    struct lm_err err = {0};
    bool ok = field_file_read(path, "a/field", &b, a, MPI_COMM_WORLD, &err);
    T_CHECK(ok && count_wrong(&s.box, dims, a) == 0, "slab read: %s", err.msg);
    lm_free(a);
    decomp_destroy(&s);
    int grid[3] = {1, t_size, 1};
    struct decomp c;
    decomp_create_blocks(&c, MPI_COMM_WORLD, mesh, grid);
    a = fill_block(&c.box, (int64_t[3]){box3_extent(&c.box, 0), box3_extent(&c.box, 1),
                                        box3_extent(&c.box, 2)});
    struct field_file_block bc = field_file_block_make(mesh, &c.box, NULL);
    ok = field_file_read(path, "a/field", &bc, a, MPI_COMM_WORLD, &err);
    T_CHECK(ok && count_wrong(&c.box, bc.dims, a) == 0, "y-block read: %s", err.msg);
    lm_free(a);
    decomp_destroy(&c);
}

static void expect_read_error(const char *path, const char *name, const int n[3], const char *want)
{
    struct box3 none = {{0, 0, 0}, {0, 0, 0}};
    struct field_file_block b = field_file_block_make(n, &none, NULL);
    float dummy;
    struct lm_err err = {0};
    bool ok = field_file_read(path, name, &b, &dummy, MPI_COMM_WORLD, &err);
    T_CHECK(!ok && strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
}

static void test_bad_files(void)
{
    char path[700], bad[700];
    path_of(path, sizeof path, "f.hdf5");
    path_of(bad, sizeof bad, "missing.hdf5");
    expect_read_error(bad, "a/field", mesh, "cannot open");
    path_of(bad, sizeof bad, "text.hdf5");
    if (t_rank == 0) {
        FILE *f = fopen(bad, "w");
        fputs("plain text\n", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_read_error(bad, "a/field", mesh, "not an HDF5 file");
    expect_read_error(path, "a/nothing", mesh, "dataset a/nothing is missing");
    expect_read_error(path, "b/field", mesh, "dataset b/field is missing");
    const int other[3] = {12, 10, 8};
    expect_read_error(path, "a/field", other, "has shape [12, 10, 9], expected [12, 10, 8]");
    path_of(bad, sizeof bad, "int.hdf5");
    if (t_rank == 0) {
        hid_t f = H5Fcreate(bad, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t d[3] = {12, 10, 9};
        hid_t s = H5Screate_simple(3, d, NULL);
        H5Dclose(H5Dcreate2(f, "field", H5T_STD_I16LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        H5Sclose(s);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_read_error(bad, "field", mesh, "dataset field has type integer, expected float");
}

/* ---- field files of both kinds on the odd mesh 17^3 ---- */

static const int odd[3] = {17, 17, 17};

#define FOR_BOX(b, i, j, k)                                                                        \
    for (int64_t i = (b).lo[0]; i < (b).hi[0]; i++)                                                \
        for (int64_t j = (b).lo[1]; j < (b).hi[1]; j++)                                            \
            for (int64_t k = (b).lo[2]; k < (b).hi[2]; k++)

/* Component c of a vector field: a distinct value per cell and component. */
static float comp_value(int c, int64_t i, int64_t j, int64_t k)
{
    return value_of(i, j, k) + 0.25f * (float)c - 3000.0f * (float)c;
}

static float *fill_comp(const struct box3 *b, const int64_t dims[3], int c)
{
    size_t n = (size_t)(dims[0] * dims[1] * dims[2]);
    float *a = lm_malloc("test.field", (n ? n : 1) * sizeof(float));
    for (size_t m = 0; m < n; m++)
        a[m] = -1;
    FOR_BOX(*b, i, j, k)
    a[box3_offset(b, dims, i, j, k)] = comp_value(c, i, j, k);
    return a;
}

static long count_wrong_comp(const struct box3 *b, const int64_t dims[3], const float *a, int c)
{
    long bad = 0;
    FOR_BOX(*b, i, j, k)
    bad += a[box3_offset(b, dims, i, j, k)] != comp_value(c, i, j, k);
    return bad;
}

/* Write psi_x..z (components 0-2) and, for the IC kind, delta (component 3), from blocks with rows
 * padded by 2. */
static bool write_kind(const char *path, enum field_file_kind kind, const struct field_file_meta *m)
{
    struct decomp d;
    decomp_create_blocks(&d, MPI_COMM_WORLD, odd, NULL);
    int64_t dims[3] = {box3_extent(&d.box, 0), box3_extent(&d.box, 1), box3_extent(&d.box, 2) + 2};
    struct field_file_block b = field_file_block_make(odd, &d.box, dims);
    struct lm_err err = {0};
    struct field_file *f = field_file_create(path, kind, m, MPI_COMM_WORLD, &err);
    bool ok = f != NULL;
    int n_comp = kind == FIELD_FILE_IC ? 4 : 6;
    for (int c = 0; c < n_comp && ok; c++) {
        float *a = fill_comp(&d.box, dims, c);
        const char *name = c < 3                   ? field_file_psi_names[c]
                           : kind == FIELD_FILE_IC ? FIELD_FILE_DELTA
                                                   : field_file_vel_names[c - 3];
        ok = field_file_write(f, name, &b, a, &err);
        lm_free(a);
    }
    if (f)
        ok = field_file_close(&f, ok, &err);
    T_CHECK(ok && f == NULL, "write %s: %s", path, err.msg);
    decomp_destroy(&d);
    return ok;
}

/* Read the datasets back into x-slabs with FFTW-padded rows. */
static void check_datasets(const char *path, enum field_file_kind kind, double box_size)
{
    struct decomp s;
    decomp_create_slabs_default(&s, MPI_COMM_WORLD, odd);
    int64_t dims[3] = {box3_extent(&s.box, 0), 17, 2 * (17 / 2 + 1)};
    float *psi[3];
    for (int c = 0; c < 3; c++)
        psi[c] = fill_comp(&s.box, dims, 9);
    struct lm_err err = {0};
    bool ok = field_file_read_psi(path, odd, box_size, &s.box, dims, psi, MPI_COMM_WORLD, &err);
    long bad = 0;
    for (int c = 0; c < 3; c++) {
        bad += ok ? count_wrong_comp(&s.box, dims, psi[c], c) : 0;
        lm_free(psi[c]);
    }
    comm_sum_int64(MPI_COMM_WORLD, (int64_t[]){bad}, 1);
    T_CHECK(ok && bad == 0, "%s: psi read back with %ld wrong cells: %s", path, bad, err.msg);
    struct field_file_block b = field_file_block_make(odd, &s.box, dims);
    float *a = fill_comp(&s.box, dims, 9);
    const char *name = kind == FIELD_FILE_IC ? FIELD_FILE_DELTA : field_file_vel_names[2];
    ok = field_file_read(path, name, &b, a, MPI_COMM_WORLD, &err);
    T_CHECK(ok && count_wrong_comp(&s.box, dims, a, kind == FIELD_FILE_IC ? 3 : 5) == 0,
            "%s: %s read back: %s", path, name, err.msg);
    lm_free(a);
    decomp_destroy(&s);
}

static bool same_string(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static void test_kinds_round_trip(void)
{
    char path[700];
    const char *config = "box:\n  size: 33.2\n  n: 17\n";
    struct field_file_meta in = {.box_size = 33.2,
                                 .n_mesh = 17,
                                 .redshift = 1.5, /* the IC kind writes its own Redshift */
                                 .seed = 4242424242LL,
                                 .paired = 1,
                                 .omega_m = 0.3175,
                                 .sigma8 = 0.834,
                                 .amplitude = "fixed",
                                 .config = config,
                                 .units = "ignored"};
    for (int kind = FIELD_FILE_IC; kind <= FIELD_FILE_EMULATED; kind++) {
        path_of(path, sizeof path, kind == FIELD_FILE_IC ? "ic17.hdf5" : "emu17.hdf5");
        if (!write_kind(path, (enum field_file_kind)kind, &in))
            continue;
        check_datasets(path, (enum field_file_kind)kind, 33.2);
        struct field_file_meta m;
        struct lm_err err = {0};
        T_CHECK(field_file_read_meta(path, &m, MPI_COMM_WORLD, &err), "meta: %s", err.msg);
        bool ic = kind == FIELD_FILE_IC;
        T_CHECK(m.box_size == 33.2 && m.n_mesh == 17 && m.omega_m == 0.3175 && m.redshift == 1.5,
                "%s: BoxSize %g, Nmesh %lld, Omega_m %g, Redshift %g", path, m.box_size,
                (long long)m.n_mesh, m.omega_m, m.redshift);
        T_CHECK(ic ? m.seed == 4242424242LL && m.paired == 1 && m.sigma8 == 0.834
                   : m.seed == 0 && m.paired == 0 && m.sigma8 == 0,
                "%s: Seed %lld, Paired %d, sigma8 %g", path, (long long)m.seed, m.paired, m.sigma8);
        T_CHECK(ic ? same_string(m.amplitude, "fixed") : m.amplitude == NULL, "%s: Amplitude %s",
                path, m.amplitude ? m.amplitude : "(absent)");
        T_CHECK(same_string(m.config, config), "%s: lemur_config differs", path);
        T_CHECK(m.units && !same_string(m.units, "ignored") &&
                    strstr(m.units, ic ? "Zel'dovich" : "km/s") != NULL,
                "%s: units '%s'", path, m.units ? m.units : "(absent)");
        field_file_meta_free(&m);
        T_CHECK(m.units == NULL && m.config == NULL, "meta_free leaves strings");
    }
    /* a file of another box is refused, naming the attribute, on every rank */
    path_of(path, sizeof path, "ic17.hdf5");
    float *psi[3] = {NULL, NULL, NULL};
    struct box3 none = {{0, 0, 0}, {0, 0, 0}};
    struct lm_err err = {0};
    bool ok = field_file_read_psi(path, odd, 50.0, &none, NULL, psi, MPI_COMM_WORLD, &err);
    T_CHECK(!ok && strstr(err.msg, "BoxSize = 33.2 Mpc/h, but box.size = 50"), "message '%s'",
            err.msg);
    /* a missing file: one message on every rank */
    path_of(path, sizeof path, "absent17.hdf5");
    struct field_file_meta m;
    err = (struct lm_err){0};
    T_CHECK(!field_file_read_meta(path, &m, MPI_COMM_WORLD, &err) && strstr(err.msg, "cannot open"),
            "message '%s'", err.msg);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    const char *d = getenv("LEMUR_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s", d ? d : "tests/tmp");
    mkdir(tmp_dir, 0755);
    T_RUN(test_blocks_to_slabs_and_blocks);
    T_RUN(test_bad_files);
    T_RUN(test_kinds_round_trip);
    return t_finish();
}
