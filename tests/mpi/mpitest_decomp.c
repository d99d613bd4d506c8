/*
 * Decomposition tests (run at 1, 2, 3 and 4 ranks): slab and block decompositions tile the mesh
 * exactly (non-cubic meshes, uneven splits, ranks with no planes), ownership lookups agree with the
 * boxes for every cell and for wrapped indices and positions, and the default slab split is
 * FFTW-MPI's (checked against fftw_mpi_local_size_3d).
 */
#define T_USE_MPI
#include <fftw3-mpi.h>
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "mpi/decomp.h"

static const int meshes[][3] = {{10, 7, 13}, {3, 7, 5}, {1, 2, 3}, {16, 16, 16}};
#define N_MESHES ((int)(sizeof meshes / sizeof meshes[0]))

/* Every cell is owned by exactly the rank whose box holds it; boxes tile the mesh. */
static void check_tiling(const struct decomp *d, const char *what)
{
    int64_t total = 0;
    for (int r = 0; r < d->n_ranks; r++) {
        struct box3 b = decomp_box_of(d, r);
        total += box3_volume(&b);
        for (int a = 0; a < 3; a++)
            T_CHECK(box3_empty(&b) || (b.lo[a] >= 0 && b.hi[a] <= d->n[a]), "%s: box outside",
                    what);
    }
    T_CHECK(total == (int64_t)d->n[0] * d->n[1] * d->n[2], "%s: boxes hold %lld cells", what,
            (long long)total);
    struct box3 mine = decomp_box_of(d, d->rank);
    T_CHECK(box3_equal(&mine, &d->box), "%s: own box differs from decomp_box_of", what);
    for (int i = 0; i < d->n[0]; i++)
        for (int j = 0; j < d->n[1]; j++)
            for (int k = 0; k < d->n[2]; k++) {
                int r = decomp_owner_cell(d, i, j, k);
                struct box3 b = decomp_box_of(d, r);
                bool in = i >= b.lo[0] && i < b.hi[0] && j >= b.lo[1] && j < b.hi[1] &&
                          k >= b.lo[2] && k < b.hi[2];
                T_CHECK(in, "%s: cell (%d,%d,%d) owner %d does not hold it", what, i, j, k, r);
                int rw = decomp_owner_cell(d, i - 3 * d->n[0], j + 2 * d->n[1], k - d->n[2]);
                T_CHECK(rw == r, "%s: wrapped lookup %d != %d", what, rw, r);
            }
}

static void test_blocks(void)
{
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int grids[][3] = {{0, 0, 0}, {1, 1, 0}, {0, 1, 1}};
    for (int m = 0; m < N_MESHES; m++)
        for (int g = 0; g < 3; g++) {
            struct decomp d;
            decomp_create_blocks(&d, MPI_COMM_WORLD, meshes[m], grids[g]);
            T_CHECK(d.kind == DECOMP_BLOCKS && d.dims[0] * d.dims[1] * d.dims[2] == size,
                    "grid %dx%dx%d", d.dims[0], d.dims[1], d.dims[2]);
            for (int a = 0; a < 3; a++)
                for (int c = 0; c < d.dims[a]; c++) {
                    int64_t w = d.split[a][c + 1] - d.split[a][c];
                    T_CHECK(w == d.n[a] / d.dims[a] || w == d.n[a] / d.dims[a] + 1,
                            "uneven split by more than one cell");
                }
            check_tiling(&d, "blocks");
            decomp_destroy(&d);
            T_CHECK(d.split[0] == NULL, "destroy leaves tables");
            decomp_destroy(&d); /* a destroyed decomposition may be destroyed again */
        }
}

static void test_slabs_fftw(void)
{
    fftw_mpi_init();
    for (int m = 0; m < N_MESHES; m++) {
        ptrdiff_t n0, s0;
        const ptrdiff_t nn[3] = {meshes[m][0], meshes[m][1], meshes[m][2] / 2 + 1};
        fftw_mpi_local_size_3d(nn[0], nn[1], nn[2], MPI_COMM_WORLD, &n0, &s0);
        struct decomp a, b;
        decomp_create_slabs(&a, MPI_COMM_WORLD, meshes[m], n0, s0);
        decomp_create_slabs_default(&b, MPI_COMM_WORLD, meshes[m]);
        T_CHECK(a.kind == DECOMP_SLABS && a.dims[1] == 1 && a.dims[2] == 1, "slab grid");
        T_CHECK(a.box.hi[0] - a.box.lo[0] == n0 && (n0 == 0 || a.box.lo[0] == s0),
                "mesh %d: slab [%lld, %lld) vs FFTW n0 %td start %td", m, (long long)a.box.lo[0],
                (long long)a.box.hi[0], n0, s0);
        T_CHECK(a.box.lo[1] == 0 && a.box.hi[1] == meshes[m][1] && a.box.hi[2] == meshes[m][2],
                "slab spans y and z");
        T_CHECK(decomp_same(&a, &b), "mesh %d: default split differs from FFTW's", m);
        check_tiling(&a, "slabs");
        decomp_destroy(&a);
        decomp_destroy(&b);
    }
}

static void test_explicit_splits(void)
{
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int n[3] = {9, 4, 6}, dims[3] = {1, size, 1};
    int64_t s0[2] = {0, 9}, s2[2] = {0, 6}, s1[5];
    /* one y cell on every rank but the last, which gets the rest: uneven by design */
    for (int c = 0; c < size; c++)
        s1[c] = c;
    s1[size] = 4;
    const int64_t *const splits[3] = {s0, s1, s2};
    struct decomp d;
    decomp_create_splits(&d, MPI_COMM_WORLD, n, dims, splits);
    check_tiling(&d, "explicit");
    decomp_destroy(&d);
}

static void test_positions(void)
{
    const int n[3] = {10, 7, 13};
    const double L = 250.0;
    struct decomp d;
    decomp_create_blocks(&d, MPI_COMM_WORLD, n, NULL);
    uint64_t s = 12345;
    for (int t = 0; t < 20000; t++) {
        float x[3];
        int64_t c[3];
        for (int a = 0; a < 3; a++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[a] = (float)(((double)(s >> 11) / 9007199254740992.0) * 3 * L - L);
            c[a] = decomp_cell_index(x[a], n[a], L);
            T_CHECK(c[a] >= 0 && c[a] < n[a], "cell %lld out of range", (long long)c[a]);
            double u = (double)x[a] * n[a] / L; /* independent floor, away from boundaries */
            double fl = floor(u);
            if (u - fl > 1e-6 && fl + 1 - u > 1e-6)
                T_CHECK(c[a] == box3_wrap((int64_t)fl, n[a]), "x %g: cell %lld, expected %g", x[a],
                        (long long)c[a], fl);
        }
        T_CHECK(decomp_owner_pos(&d, x, L) == decomp_owner_cell(&d, c[0], c[1], c[2]),
                "owner of position differs from owner of its cell");
    }
    const float edge[3] = {(float)L, 0.0f, -0.0f};
    T_CHECK(decomp_owner_pos(&d, edge, L) == decomp_owner_cell(&d, 0, 0, 0), "x = L wraps to 0");
    decomp_destroy(&d);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_blocks);
    T_RUN(test_slabs_fftw);
    T_RUN(test_explicit_splits);
    T_RUN(test_positions);
    return t_finish();
}
