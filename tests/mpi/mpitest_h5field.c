/*
 * mpitest_h5field — distributed fields through HDF5 at any rank count (run.sh: 1-4 ranks): a field
 * written from 3-D blocks (padded local rows) reads back exactly into x-slabs and into another
 * block grid; the file is committed under its final name only; bad files and datasets (missing,
 * corrupt, wrong shape, wrong type, missing dataset) give agreed messages naming file and dataset.
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
#include "mpi/h5field.h"

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
    snprintf(out, cap, "%s/h5field_np%d_%s", tmp_dir, t_size, name);
}

/* Write dataset "a/field" from a block decomposition with rows padded by 3. */
static bool write_blocks(const char *path)
{
    struct decomp d;
    decomp_create_blocks(&d, MPI_COMM_WORLD, mesh, NULL);
    int64_t dims[3] = {box3_extent(&d.box, 0), box3_extent(&d.box, 1), box3_extent(&d.box, 2) + 3};
    float *a = fill_block(&d.box, dims);
    struct h5field_block b = h5field_block_make(mesh, &d.box, dims);
    struct h5io_file f;
    struct lm_err err = {0};
    bool ok = h5io_create(&f, path, MPI_COMM_WORLD, &err) &&
              h5io_finish(&f, h5field_write(&f, "a/field", &b, a, &err), &err);
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
    struct h5field_block b = h5field_block_make(mesh, &s.box, dims);
    struct lm_err err = {0};
    bool ok = h5field_read(path, "a/field", &b, a, MPI_COMM_WORLD, &err);
    T_CHECK(ok && count_wrong(&s.box, dims, a) == 0, "slab read: %s", err.msg);
    lm_free(a);
    decomp_destroy(&s);
    int grid[3] = {1, t_size, 1};
    struct decomp c;
    decomp_create_blocks(&c, MPI_COMM_WORLD, mesh, grid);
    a = fill_block(&c.box, (int64_t[3]){box3_extent(&c.box, 0), box3_extent(&c.box, 1),
                                        box3_extent(&c.box, 2)});
    struct h5field_block bc = h5field_block_make(mesh, &c.box, NULL);
    ok = h5field_read(path, "a/field", &bc, a, MPI_COMM_WORLD, &err);
    T_CHECK(ok && count_wrong(&c.box, bc.dims, a) == 0, "y-block read: %s", err.msg);
    int64_t n[3];
    T_CHECK(h5field_shape(path, "a/field", MPI_COMM_WORLD, n, &err) && n[0] == 12 && n[1] == 10 &&
                n[2] == 9,
            "shape: %s", err.msg);
    lm_free(a);
    decomp_destroy(&c);
}

static void expect_read_error(const char *path, const char *name, const int n[3], const char *want)
{
    struct box3 none = {{0, 0, 0}, {0, 0, 0}};
    struct h5field_block b = h5field_block_make(n, &none, NULL);
    float dummy;
    struct lm_err err = {0};
    bool ok = h5field_read(path, name, &b, &dummy, MPI_COMM_WORLD, &err);
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

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    const char *d = getenv("LEMUR_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s", d ? d : "tests/tmp");
    mkdir(tmp_dir, 0755);
    T_RUN(test_blocks_to_slabs_and_blocks);
    T_RUN(test_bad_files);
    return t_finish();
}
