/*
 * mpitest_stage_ic — `lemur ic` end to end at any rank count (run.sh: 1-4 ranks): the field file
 * and the 2LPT snapshot written by all ranks are bitwise identical to those of a one-rank run;
 * the field reads back into a 3-D block decomposition; the snapshot holds every ID once with
 * wrapped positions; ic.input reproduces the particles from the field file.
 */
#define T_USE_MPI
#include "harness.h"

#include <hdf5.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/field_file.h"
#include "mpi/params_load.h"
#include "mpi/snapshot.h"
#include "run.h"
#include "stage_ic.h"

static char tmp_dir[512];

static const char *yaml = "box:\n  size: 100\n  n: 24\n"
                          "ic:\n  seed: 777\n  lpt_order: 2\n  redshift: 1.0\n"
                          "  write_particles: true\n"
                          "output:\n  snapshot_files: 2\n"
                          "run:\n  verbosity: 0\n";

static void load(const char *dir, const char *extra, MPI_Comm comm, struct params *p)
{
    char path[700], over[800], over2[1000];
    snprintf(path, sizeof path, "%s/params.yml", tmp_dir);
    snprintf(over, sizeof over, "output.dir=%s/%s", tmp_dir, dir);
    snprintf(over2, sizeof over2, "%s", extra ? extra : "ic.seed=777");
    char *overrides[2] = {over, over2};
    params_load(comm, path, 2, overrides, p);
}

/* `lemur ic`: the ic stage alone. */
static bool ic_alone(const struct params *p, MPI_Comm comm)
{
    struct lm_err err = {0};
    bool ok = run_stage_alone(run_stage_find("ic"), p, comm, &err);
    T_CHECK(ok, "ic failed: %s", err.msg);
    return ok;
}

static void run_ic(const char *dir, const char *extra, MPI_Comm comm)
{
    struct params p;
    load(dir, extra, comm, &p);
    ic_alone(&p, comm);
    params_free(&p);
}

/* Bitwise comparison of one dataset of two files (rank 0, plain HDF5). */
static long diff_dataset(const char *a, const char *b, const char *name)
{
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT),
          fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fa < 0 || fb < 0)
        return -1;
    hid_t da = H5Dopen2(fa, name, H5P_DEFAULT), db = H5Dopen2(fb, name, H5P_DEFAULT);
    hid_t sa = H5Dget_space(da), t = H5Dget_type(da);
    hssize_t n = H5Sget_simple_extent_npoints(sa);
    size_t size = H5Tget_size(t);
    char *va = malloc((size_t)n * size + 1), *vb = malloc((size_t)n * size + 1);
    H5Dread(da, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, va);
    H5Dread(db, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, vb);
    long bad = memcmp(va, vb, (size_t)n * size) != 0 ? 1 : 0;
    free(va);
    free(vb);
    H5Tclose(t);
    H5Sclose(sa);
    H5Dclose(da);
    H5Dclose(db);
    H5Fclose(fa);
    H5Fclose(fb);
    return bad;
}

static void test_rank_invariant_files(void)
{
    run_ic("stage_ic_world", NULL, MPI_COMM_WORLD);
    if (t_rank == 0)
        run_ic("stage_ic_self", NULL, MPI_COMM_SELF);
    MPI_Barrier(MPI_COMM_WORLD);
    if (t_rank != 0)
        return;
    const char *field_sets[4] = {"psi_x", "psi_y", "psi_z", "delta"};
    const char *snap_sets[3] = {"PartType1/Coordinates", "PartType1/Velocities",
                                "PartType1/ParticleIDs"};
    char a[800], b[800];
    long bad = 0;
    snprintf(a, sizeof a, "%s/stage_ic_world/ic_field.hdf5", tmp_dir);
    snprintf(b, sizeof b, "%s/stage_ic_self/ic_field.hdf5", tmp_dir);
    for (int i = 0; i < 4; i++)
        bad += diff_dataset(a, b, field_sets[i]) != 0;
    for (int f = 0; f < 2; f++) {
        snprintf(a, sizeof a, "%s/stage_ic_world/ic_snapshot.%d.hdf5", tmp_dir, f);
        snprintf(b, sizeof b, "%s/stage_ic_self/ic_snapshot.%d.hdf5", tmp_dir, f);
        for (int i = 0; i < 3; i++)
            bad += diff_dataset(a, b, snap_sets[i]) != 0;
    }
    T_CHECK(bad == 0, "%ld datasets differ from the one-rank run", bad);
}

/* Read the field into a 3-D block decomposition and compare with the one-rank file's values. */
static void test_field_reads_into_blocks(void)
{
    char path[800];
    snprintf(path, sizeof path, "%s/stage_ic_world/ic_field.hdf5", tmp_dir);
    int n[3] = {24, 24, 24};
    struct decomp d;
    decomp_create_blocks(&d, MPI_COMM_WORLD, n, NULL);
    int64_t cells = box3_volume(&d.box);
    float *psi[3];
    for (int c = 0; c < 3; c++)
        psi[c] = lm_calloc("test.psi", (size_t)(cells > 0 ? cells : 1), sizeof(float));
    struct lm_err err = {0};
    bool ok = field_file_read_psi(path, n, 100.0, &d.box, NULL, psi, MPI_COMM_WORLD, &err);
    T_CHECK(ok, "field_file_read_psi: %s", err.msg);
    float *all = malloc(sizeof(float) * 24 * 24 * 24);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "psi_y", H5P_DEFAULT);
    H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, all);
    H5Dclose(ds);
    H5Fclose(f);
    long bad = 0;
    int64_t m = 0;
    for (int64_t i = d.box.lo[0]; i < d.box.hi[0]; i++)
        for (int64_t j = d.box.lo[1]; j < d.box.hi[1]; j++)
            for (int64_t k = d.box.lo[2]; k < d.box.hi[2]; k++)
                bad += ok && psi[1][m++] != all[(i * 24 + j) * 24 + k];
    T_CHECK(bad == 0, "%ld block values differ from the file", bad);
    /* a wrong box size is refused with a message naming the attribute */
    ok = field_file_read_psi(path, n, 200.0, &d.box, NULL, psi, MPI_COMM_WORLD, &err);
    T_CHECK(!ok && strstr(err.msg, "BoxSize = 100") != NULL, "message: %s", err.msg);
    free(all);
    for (int c = 0; c < 3; c++)
        lm_free(psi[c]);
    decomp_destroy(&d);
}

static void test_snapshot_content(void)
{
    char base[800];
    snprintf(base, sizeof base, "%s/stage_ic_world/ic_snapshot", tmp_dir);
    struct snapshot_header h;
    struct particles *q = NULL;
    struct lm_err err = {0};
    bool ok = snapshot_read(base, NULL, MPI_COMM_WORLD, &h, &q, &err);
    T_CHECK(ok, "snapshot_read: %s", err.msg);
    if (!ok)
        return;
    T_CLOSE(h.time, 0.5, 1e-15);
    T_CLOSE(h.box_size, 100.0, 0);
    T_CHECK(h.n_total[1] == 24 * 24 * 24 && h.n_files == 2, "header");
    /* particle mass: Omega_m rho_crit (L/n)^3 */
    T_CLOSE(h.mass[1], 0.3175 * 27.7536627 * pow(100.0 / 24, 3), 1e-12);
    int64_t sums[2] = {0, 0};
    long bad = 0;
    for (int64_t i = 0; i < q->n; i++) {
        sums[0] += (int64_t)q->id[i];
        sums[1] += (int64_t)(q->id[i] * q->id[i] % 1000003);
        for (int d = 0; d < 3; d++)
            bad += !(q->x[d][i] >= 0 && q->x[d][i] < 100.0f);
    }
    comm_sum_int64(MPI_COMM_WORLD, sums, 2);
    int64_t n3 = 24 * 24 * 24, s0 = n3 * (n3 - 1) / 2, s1 = 0;
    for (int64_t i = 0; i < n3; i++)
        s1 += i * i % 1000003;
    T_CHECK(sums[0] == s0 && sums[1] == s1, "the IDs are not 0 ... n^3 - 1 once each");
    T_CHECK(bad == 0, "%ld coordinates outside [0, L)", bad);
    particles_destroy(&q);
}

/* ic.input with the field file and ic.lpt_order = 1 gives the Zel'dovich particles of a run
 * that generates the field itself. */
static void test_input_field(void)
{
    char over[900];
    snprintf(over, sizeof over, "ic.input=%s/stage_ic_world/ic_field.hdf5", tmp_dir);
    struct params p;
    load("stage_ic_input", over, MPI_COMM_WORLD, &p);
    p.ic.lpt_order = 1;
    ic_alone(&p, MPI_COMM_WORLD);
    params_free(&p);
    load("stage_ic_za", "ic.lpt_order=1", MPI_COMM_WORLD, &p);
    ic_alone(&p, MPI_COMM_WORLD);
    params_free(&p);
    if (t_rank == 0) {
        char a[800], b[800];
        long bad = 0;
        for (int f = 0; f < 2; f++) {
            snprintf(a, sizeof a, "%s/stage_ic_input/ic_snapshot.%d.hdf5", tmp_dir, f);
            snprintf(b, sizeof b, "%s/stage_ic_za/ic_snapshot.%d.hdf5", tmp_dir, f);
            bad += diff_dataset(a, b, "PartType1/Coordinates") != 0;
            bad += diff_dataset(a, b, "PartType1/Velocities") != 0;
        }
        T_CHECK(bad == 0, "particles from ic.input differ from the generated ones");
    }
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    const char *d = getenv("LEMUR_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s", d ? d : "tests/tmp");
    mkdir(tmp_dir, 0755);
    snprintf(tmp_dir + strlen(tmp_dir), sizeof tmp_dir - strlen(tmp_dir), "/stage_ic_np%d", t_size);
    mkdir(tmp_dir, 0755);
    if (t_rank == 0) {
        char path[700];
        snprintf(path, sizeof path, "%s/params.yml", tmp_dir);
        FILE *f = fopen(path, "w");
        fputs(yaml, f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    T_RUN(test_rank_invariant_files);
    T_RUN(test_field_reads_into_blocks);
    T_RUN(test_snapshot_content);
    T_RUN(test_input_field);
    return t_finish();
}
