/*
 * mpitest_fft — distributed r2c/c2r FFTs and the k-space iterator, at any rank count (run.sh: 1-4).
 * Meshes include non-cubic, odd and tiny ones (n0 = 3 < 4 ranks: a rank without planes).
 * Properties: round trip, every mode visited once with the right Hermitian weights, a plane wave
 * lands on its two modes, the shift theorem, Parseval; float and double, transposed or not.
 * lemur's slab path (plane and line transforms and the transpose on the rank's threads) is bitwise
 * FFTW-MPI's transform on P ranks, and the same for any number of ranks and threads.
 */
#define T_USE_MPI
#include "harness.h"

#include <complex.h>
#include <fftw3-mpi.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/fft.h"

static const int meshes[][3] = {{8, 8, 8}, {10, 12, 9}, {5, 6, 7}, {3, 8, 6}};
static const int n_meshes = 4;

/** A deterministic pseudo-random value of a global node (splitmix64). */
static double node_value(int64_t i, int64_t j, int64_t k)
{
    uint64_t z = (uint64_t)((i * 1000003 + j) * 1000033 + k) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 - 0.5;
}

static double get(const void *data, bool dbl, ptrdiff_t i)
{
    return dbl ? ((const double *)data)[i] : ((const float *)data)[i];
}

static void set(void *data, bool dbl, ptrdiff_t i, double v)
{
    if (dbl)
        ((double *)data)[i] = v;
    else
        ((float *)data)[i] = (float)v;
}

/** Fill the owned real nodes with node_value of (i - s0, j - s1, k - s2), periodic. */
static void fill(const struct fft_layout *l, void *data, bool dbl, const int s[3])
{
    for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++) {
                int64_t a = (i - s[0] + l->n[0]) % l->n[0], b = (j - s[1] + l->n[1]) % l->n[1],
                        c = (k - s[2] + l->n[2]) % l->n[2];
                set(data, dbl, fft_real_index(l, i, j, k), node_value(a, b, c));
            }
}

static void check_round_trip(const int *n, enum fft_precision prec, unsigned flags)
{
    bool dbl = prec == FFT_PRECISION_DOUBLE;
    struct fft_plan *p = fft_plan_create(n, NULL, prec, flags, NULL, MPI_COMM_WORLD);
    const struct fft_layout *l = fft_layout(p);
    void *a = fft_alloc(p, "test.fft");
    int s0[3] = {0, 0, 0};
    fill(l, a, dbl, s0);
    fft_r2c(p, a);
    fft_c2r(p, a);
    double nn = (double)n[0] * n[1] * n[2], err = 0;
    for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
        for (int j = 0; j < n[1]; j++)
            for (int k = 0; k < n[2]; k++)
                err = fmax(
                    err, fabs(get(a, dbl, fft_real_index(l, i, j, k)) / nn - node_value(i, j, k)));
    T_CHECK(err < (dbl ? 1e-13 : 1e-6), "round trip %dx%dx%d prec %d flags %u: max error %g", n[0],
            n[1], n[2], (int)prec, flags, err);
    lm_free(a);
    fft_plan_destroy(&p);
    T_CHECK(p == NULL, "destroy sets NULL");
}

static void test_round_trip(void)
{
    for (int m = 0; m < n_meshes; m++)
        for (unsigned flags = 0; flags <= FFT_NOT_TRANSPOSED; flags += FFT_NOT_TRANSPOSED) {
            check_round_trip(meshes[m], FFT_PRECISION_FLOAT, flags);
            check_round_trip(meshes[m], FFT_PRECISION_DOUBLE, flags);
        }
}

/* Every (kx, ky, kz) of the half space is visited exactly once over all ranks, the weights add up
 * to the number of real nodes, and weight 1 sits exactly on the self-conjugate planes. */
static void test_iterator_covers_modes(void)
{
    for (int m = 0; m < n_meshes; m++)
        for (unsigned flags = 0; flags <= FFT_NOT_TRANSPOSED; flags += FFT_NOT_TRANSPOSED) {
            const int *n = meshes[m];
            struct fft_layout l;
            double box[3] = {1.0, 2.0, 3.0};
            fft_local_size(n, box, flags, MPI_COMM_WORLD, &l);
            int nkz = n[2] / 2 + 1;
            int64_t total = (int64_t)n[0] * n[1] * nkz;
            double *seen = calloc((size_t)total, sizeof(double));
            double wsum = 0;
            int bad = 0;
            struct fft_kiter it;
            for (fft_kiter_begin(&it, &l); !it.done; fft_kiter_next(&it)) {
                seen[((int64_t)it.i[0] * n[1] + it.i[1]) * nkz + it.i[2]] += 1;
                wsum += it.weight;
                int want_w = (it.i[2] == 0 || (n[2] % 2 == 0 && it.i[2] == n[2] / 2)) ? 1 : 2;
                bad += it.weight != want_w;
                for (int d = 0; d < 3; d++)
                    bad += fabs(it.k[d] - 2 * M_PI * it.m[d] / box[d]) > 1e-12;
                bad += it.index >= l.alloc_complex;
            }
            comm_sum_double(MPI_COMM_WORLD, seen, (int)total);
            comm_sum_double(MPI_COMM_WORLD, &wsum, 1);
            int missing = 0;
            for (int64_t q = 0; q < total; q++)
                missing += seen[q] != 1.0;
            T_CHECK(missing == 0 && bad == 0, "mesh %d flags %u: %d modes not seen once, %d bad", m,
                    flags, missing, bad);
            T_CLOSE(wsum, (double)n[0] * n[1] * n[2], 1e-15);
            free(seen);
        }
}

/* cos(2π (a·x)) lands on modes ±a with amplitude N^3 / 2; everything else vanishes. */
static void test_plane_wave(void)
{
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        struct fft_plan *p = fft_plan_create(n, NULL, FFT_PRECISION_FLOAT, 0, NULL, MPI_COMM_WORLD);
        const struct fft_layout *l = fft_layout(p);
        float *a = fft_alloc(p, "test.fft");
        int w[3] = {1 % n[0], n[1] > 2 ? 2 : 1, 1};
        for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
            for (int j = 0; j < n[1]; j++)
                for (int k = 0; k < n[2]; k++)
                    a[fft_real_index(l, i, j, k)] =
                        (float)cos(2 * M_PI *
                                   ((double)w[0] * i / n[0] + (double)w[1] * j / n[1] +
                                    (double)w[2] * k / n[2]));
        fft_r2c(p, a);
        double nn = (double)n[0] * n[1] * n[2], err = 0;
        struct fft_kiter it;
        for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
            bool hit = it.m[0] == w[0] && it.m[1] == w[1] && it.m[2] == w[2];
            double want = hit ? nn / 2 : 0;
            err = fmax(err, fabs(a[2 * it.index] - want) + fabs(a[2 * it.index + 1]));
        }
        T_CHECK(err < 1e-4 * nn, "plane wave on %dx%dx%d: max error %g", n[0], n[1], n[2], err);
        lm_free(a);
        fft_plan_destroy(&p);
    }
}

/* f(x - s) has modes e^{-i k·s h} f_k; and Parseval Σ|f|^2 = Σ_k w |f_k|^2 / N^3. */
static void test_shift_and_parseval(void)
{
    for (int m = 0; m < n_meshes; m++)
        for (unsigned flags = 0; flags <= FFT_NOT_TRANSPOSED; flags += FFT_NOT_TRANSPOSED) {
            const int *n = meshes[m];
            double box[3] = {100, 50, 75};
            struct fft_plan *p =
                fft_plan_create(n, box, FFT_PRECISION_DOUBLE, flags, NULL, MPI_COMM_WORLD);
            const struct fft_layout *l = fft_layout(p);
            double *a = fft_alloc(p, "test.fft"), *b = fft_alloc(p, "test.fft");
            int s0[3] = {0, 0, 0}, s[3] = {1, n[1] - 1, 2};
            fill(l, a, true, s0);
            fill(l, b, true, s);
            double real2 = 0;
            for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
                for (int j = 0; j < n[1]; j++)
                    for (int k = 0; k < n[2]; k++)
                        real2 += pow(a[fft_real_index(l, i, j, k)], 2);
            fft_r2c(p, a);
            fft_r2c(p, b);
            double err = 0, k2sum = 0;
            struct fft_kiter it;
            for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
                double complex fa = a[2 * it.index] + I * a[2 * it.index + 1];
                double complex fb = b[2 * it.index] + I * b[2 * it.index + 1];
                double ph = 0;
                for (int d = 0; d < 3; d++)
                    ph += it.k[d] * s[d] * box[d] / n[d];
                err = fmax(err, cabs(fb - cexp(-I * ph) * fa));
                k2sum += it.weight * pow(cabs(fa), 2);
            }
            comm_max_double(MPI_COMM_WORLD, &err, 1);
            comm_sum_double(MPI_COMM_WORLD, &real2, 1);
            comm_sum_double(MPI_COMM_WORLD, &k2sum, 1);
            T_CHECK(err < 1e-10, "shift theorem on %dx%dx%d flags %u: max error %g", n[0], n[1],
                    n[2], flags, err);
            T_CLOSE(k2sum / ((double)n[0] * n[1] * n[2]), real2, 1e-12);
            lm_free(a);
            lm_free(b);
            fft_plan_destroy(&p);
        }
}

/* A failing case must be able to fail: a shift by the wrong amount breaks the theorem. */
static void test_shift_detects_error(void)
{
    const int n[3] = {6, 5, 4};
    struct fft_plan *p = fft_plan_create(n, NULL, FFT_PRECISION_DOUBLE, 0, NULL, MPI_COMM_WORLD);
    const struct fft_layout *l = fft_layout(p);
    double *a = fft_alloc(p, "test.fft"), *b = fft_alloc(p, "test.fft");
    int s0[3] = {0, 0, 0}, s[3] = {1, 0, 0};
    fill(l, a, true, s0);
    fill(l, b, true, s);
    fft_r2c(p, a);
    fft_r2c(p, b);
    double err = 0;
    struct fft_kiter it;
    for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
        double complex fa = a[2 * it.index] + I * a[2 * it.index + 1];
        double complex fb = b[2 * it.index] + I * b[2 * it.index + 1];
        err = fmax(err, cabs(fb - cexp(-I * it.k[0] * 2.0 / n[0]) * fa)); /* shift 2, not 1 */
    }
    comm_max_double(MPI_COMM_WORLD, &err, 1);
    T_CHECK(err > 1e-3, "a wrong shift must be detected (error %g)", err);
    lm_free(a);
    lm_free(b);
    fft_plan_destroy(&p);
}

static void test_size_check(void)
{
    struct lm_err err = {{0}};
    const int bad[3] = {16, 1, 16}, good[3] = {2, 3, 65536};
    T_CHECK(!fft_check_size(bad, "power.n_mesh", &err), "a 1-node axis is rejected");
    T_CHECK(strstr(err.msg, "power.n_mesh") != NULL, "message names the key: %s", err.msg);
    struct lm_err ok = {{0}};
    T_CHECK(fft_check_size(good, "power.n_mesh", &ok), "%s", ok.msg);
}

/** r2c (and then c2r) of node_value on a whole mesh planned on MPI_COMM_SELF, at nt threads. */
static void *self_transform(const int n[3], enum fft_precision prec, int nt, bool backward)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(nt);
    struct fft_plan *p = fft_plan_create(n, NULL, prec, 0, NULL, MPI_COMM_SELF);
    void *a = fft_alloc(p, "test.fft");
    const int s0[3] = {0, 0, 0};
    fill(fft_layout(p), a, prec == FFT_PRECISION_DOUBLE, s0);
    fft_r2c(p, a);
    if (backward)
        fft_c2r(p, a);
    fft_plan_destroy(&p);
    omp_set_num_threads(saved);
    return a;
}

/** FFTW-MPI's own transposed r2c (and then c2r) of node_value on comm: the reference of the slab
 *  path. */
static void *fftw_mpi_transform(const int n[3], enum fft_precision prec, bool backward,
                                MPI_Comm comm)
{
    const bool dbl = prec == FFT_PRECISION_DOUBLE;
    struct fft_layout l;
    fft_local_size(n, NULL, 0, comm, &l);
    void *a = lm_calloc("test.fft", 2 * (size_t)(l.alloc_complex > 0 ? l.alloc_complex : 1),
                        dbl ? sizeof(double) : sizeof(float));
    const unsigned fwd = FFTW_ESTIMATE | FFTW_MPI_TRANSPOSED_OUT;
    const unsigned bwd = FFTW_ESTIMATE | FFTW_MPI_TRANSPOSED_IN;
    const int s0[3] = {0, 0, 0};
    if (dbl) {
        fftw_plan f = fftw_mpi_plan_dft_r2c_3d(n[0], n[1], n[2], a, a, comm, fwd);
        fftw_plan b = fftw_mpi_plan_dft_c2r_3d(n[0], n[1], n[2], a, a, comm, bwd);
        fill(&l, a, true, s0);
        fftw_execute(f);
        if (backward)
            fftw_execute(b);
        fftw_destroy_plan(f);
        fftw_destroy_plan(b);
    } else {
        fftwf_plan f = fftwf_mpi_plan_dft_r2c_3d(n[0], n[1], n[2], a, a, comm, fwd);
        fftwf_plan b = fftwf_mpi_plan_dft_c2r_3d(n[0], n[1], n[2], a, a, comm, bwd);
        fill(&l, a, false, s0);
        fftwf_execute(f);
        if (backward)
            fftwf_execute(b);
        fftwf_destroy_plan(f);
        fftwf_destroy_plan(b);
    }
    return a;
}

/** Local modes (forward) or real nodes (backward) that differ in any bit between the distributed
 *  transform a and b, a whole-mesh one-rank transform (whole) or FFTW-MPI's distributed one
 *  (!whole), over all ranks. */
static int64_t count_differ(const struct fft_layout *l, size_t real, const char *a, const char *b,
                            bool whole, bool backward)
{
    int64_t differ = 0;
    if (backward) {
        for (ptrdiff_t i = 0; i < l->rnx; i++)
            for (int j = 0; j < l->n[1]; j++) {
                int64_t row = (i * l->n[1] + j) * l->row;
                int64_t brow = whole ? ((l->rx0 + i) * l->n[1] + j) * l->row : row;
                differ += memcmp(a + row * real, b + brow * real, (size_t)l->n[2] * real) != 0;
            }
    } else {
        struct fft_kiter it;
        for (fft_kiter_begin(&it, l); !it.done; fft_kiter_next(&it)) {
            int64_t q =
                whole ? ((int64_t)it.i[1] * l->n[0] + it.i[0]) * l->nkz + it.i[2] : it.index;
            differ += memcmp(a + 2 * it.index * real, b + 2 * q * real, 2 * real) != 0;
        }
    }
    comm_sum_int64(MPI_COMM_WORLD, &differ, 1);
    return differ;
}

/* Every rank transforms the whole mesh alone (in-place square transpose) at 1 and 3 threads, and
 * compares its modes and its real planes of the distributed transform (the transpose exchanged
 * between ranks) with them bit for bit; the distributed transform is also compared with FFTW-MPI's.
 * Float and double. Meshes: square x-y with n1 (n2/2+1) modes a multiple of 64 bytes (the slab
 * path; 3x3x14 leaves a fourth rank without planes) and 9x9x8, which takes FFTW-MPI in float. */
static void test_slab_path(void)
{
    static const int cubes[][3] = {{8, 8, 8}, {12, 12, 7}, {8, 8, 13}, {3, 3, 14}, {9, 9, 8}};
    const int P = comm_size(MPI_COMM_WORLD);
    for (int pr = 0; pr < 2; pr++)
        for (int m = 0; m < 5; m++) {
            const enum fft_precision prec = pr ? FFT_PRECISION_DOUBLE : FFT_PRECISION_FLOAT;
            const char *name = pr ? "double" : "float";
            const size_t real = pr ? sizeof(double) : sizeof(float);
            const int *n = cubes[m];
            const int s0[3] = {0, 0, 0};
            struct fft_plan *p = fft_plan_create(n, NULL, prec, 0, NULL, MPI_COMM_WORLD);
            const struct fft_layout *l = fft_layout(p);
            char *a = fft_alloc(p, "test.fft");
            fill(l, a, pr, s0);
            fft_r2c(p, a);
            char *k1 = self_transform(n, prec, 1, false), *k3 = self_transform(n, prec, 3, false);
            char *kf = fftw_mpi_transform(n, prec, false, MPI_COMM_WORLD);
            size_t bytes = (size_t)n[0] * n[1] * l->nkz * 2 * real;
            T_CHECK(memcmp(k1, k3, bytes) == 0,
                    "%s %dx%dx%d: one rank, 1 and 3 threads: same modes", name, n[0], n[1], n[2]);
            T_CHECK(count_differ(l, real, a, k1, true, false) == 0,
                    "%s %dx%dx%d: %d rank(s) give the one-rank modes bit for bit", name, n[0], n[1],
                    n[2], P);
            T_CHECK(count_differ(l, real, a, kf, false, false) == 0,
                    "%s %dx%dx%d: %d rank(s) give FFTW-MPI's modes bit for bit", name, n[0], n[1],
                    n[2], P);
            fft_c2r(p, a);
            char *r1 = self_transform(n, prec, 1, true), *r3 = self_transform(n, prec, 3, true);
            char *rf = fftw_mpi_transform(n, prec, true, MPI_COMM_WORLD);
            T_CHECK(memcmp(r1, r3, (size_t)n[0] * n[1] * l->row * real) == 0,
                    "%s %dx%dx%d: one rank, 1 and 3 threads: same round trip", name, n[0], n[1],
                    n[2]);
            T_CHECK(count_differ(l, real, a, r1, true, true) == 0,
                    "%s %dx%dx%d: the round trip on %d rank(s) is the one-rank one bit for bit",
                    name, n[0], n[1], n[2], P);
            T_CHECK(count_differ(l, real, a, rf, false, true) == 0,
                    "%s %dx%dx%d: the round trip on %d rank(s) is FFTW-MPI's bit for bit", name,
                    n[0], n[1], n[2], P);
            lm_free(k1);
            lm_free(k3);
            lm_free(kf);
            lm_free(r1);
            lm_free(r3);
            lm_free(rf);
            lm_free(a);
            fft_plan_destroy(&p);
        }
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_round_trip);
    T_RUN(test_iterator_covers_modes);
    T_RUN(test_plane_wave);
    T_RUN(test_shift_and_parseval);
    T_RUN(test_slab_path);
    T_RUN(test_shift_detects_error);
    T_RUN(test_size_check);
    return t_finish();
}
