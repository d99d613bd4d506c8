/*
 * mpitest_paint — distributed CIC painting and readout at any rank count (run.sh: 1-4), on cubic,
 * non-cubic with uneven splits, n0 < ranks, and long-row meshes.
 * Properties: total painted mass equals the total weight (1e-6 relative) with and without the
 * interlacing shift; the distributed mesh equals a one-process paint of the same global set node by
 * node, and bit for bit a one-process paint through the same plan (two fields, per-field weights,
 * with and without the shift), and bit for bit the same at 1, 2 and 4 threads; a repaint in the
 * order of the previous paint (paint_execute_same_points) equals a fresh paint, the interlaced copy
 * in the order of the unshifted paint included; readout is the
 * adjoint of painting; readout of a constant field is that constant. Particles include exact
 * lattice positions (slab faces) and positions outside the box.
 */
#define T_USE_MPI
#include "harness.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "mpi/paint.h"
#include "particles.h"

#define BOX 50.0
/* 5 x 160 x 250: long rows, planes of 160 kB */
static const int meshes[][3] = {{16, 16, 16}, {10, 12, 9}, {3, 8, 6}, {5, 160, 250}};
static const int n_meshes = 4;
static const int64_t n_total = 3000;

static double hash01(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/** Global particle g: every 7th sits on a node of mesh n (slab faces), a few lie outside the box;
 *  the rest are uniform. Weight in [0.5, 1.5). */
static void particle(int64_t g, const int n[3], float x[3], float *w)
{
    for (int d = 0; d < 3; d++) {
        double u = hash01((uint64_t)g * 4 + (uint64_t)d);
        if (g % 7 == 0)
            x[d] = (float)(floor(u * n[d]) * (BOX / n[d]));
        else if (g % 11 == 0)
            x[d] = (float)((u - 0.5) * 3 * BOX);
        else
            x[d] = (float)(u * BOX);
    }
    *w = (float)(0.5 + hash01((uint64_t)g * 4 + 3));
}

/** This rank's share [N r/P, N (r+1)/P) of the global set, or all of it when all is true. */
static struct particles *make_particles(const int n[3], bool all)
{
    int r = t_rank, P = t_size;
    int64_t a = all ? 0 : n_total * r / P, b = all ? n_total : n_total * (r + 1) / P;
    struct particles *p = particles_create(PARTICLES_POS | PARTICLES_WEIGHT, b - a);
    particles_resize(p, b - a);
    for (int64_t g = a; g < b; g++) {
        float x[3], w;
        particle(g, n, x, &w);
        for (int d = 0; d < 3; d++)
            p->x[d][g - a] = x[d];
        p->w[g - a] = w;
    }
    return p;
}

static struct cic_points points(const struct particles *p)
{
    return (struct cic_points){.n = p->n, .x = {p->x[0], p->x[1], p->x[2]}, .w = p->w};
}

static double owned_sum(const struct fft_layout *l, const float *f)
{
    double s = 0;
    for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
        for (int j = 0; j < l->n[1]; j++)
            for (int k = 0; k < l->n[2]; k++)
                s += f[fft_real_index(l, i, j, k)];
    return s;
}

static void test_mass_conservation(void)
{
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        double box[3] = {BOX, BOX, BOX};
        struct fft_plan *fft =
            fft_plan_create(n, box, FFT_PRECISION_FLOAT, 0, NULL, MPI_COMM_WORLD);
        struct paint_plan *pp = paint_plan_create(fft, 1, MPI_COMM_WORLD);
        struct particles *p = make_particles(n, false);
        migrate_particles(paint_plan_decomp(pp), p, BOX);
        double want = 0;
        for (int64_t i = 0; i < p->n; i++)
            want += p->w[i];
        comm_sum_double(MPI_COMM_WORLD, &want, 1);
        float *f = fft_alloc(fft, "test.mesh");
        struct cic_points pts = points(p);
        for (double shift = 0; shift >= -0.5; shift -= 0.5) {
            paint_execute(pp, 1, &f, &pts, shift);
            double got = owned_sum(fft_layout(fft), f);
            comm_sum_double(MPI_COMM_WORLD, &got, 1);
            T_CLOSE(got, want, 1e-6);
        }
        lm_free(f);
        particles_destroy(&p);
        paint_plan_destroy(&pp);
        fft_plan_destroy(&fft);
    }
}

/* Reference: every rank paints the whole set alone on a one-slab mesh, ghosts folded by hand. */
static float *serial_paint(const int n[3], double shift)
{
    struct particles *all = make_particles(n, true);
    particles_wrap(all, BOX); /* as migration does */
    int64_t row = 2 * (n[2] / 2 + 1), plane = n[1] * row;
    struct cic_slab s = {{n[0], n[1], n[2]}, {BOX, BOX, BOX}, 0, n[0], row};
    float *data = calloc((size_t)(n[0] * plane), sizeof(float));
    float *lo = calloc((size_t)plane, sizeof(float)), *hi = calloc((size_t)plane, sizeof(float));
    struct cic_field f = {data, lo, hi};
    struct cic_points pts = points(all);
    T_CHECK(cic_paint(&s, 1, &f, &pts, shift) == 0, "serial paint takes every point");
    for (int64_t j = 0; j < plane; j++) {
        data[j] += hi[j];
        data[(n[0] - 1) * plane + j] += lo[j];
    }
    free(lo);
    free(hi);
    particles_destroy(&all);
    return data;
}

static void test_equals_serial_paint(void)
{
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        double box[3] = {BOX, BOX, BOX};
        struct fft_plan *fft =
            fft_plan_create(n, box, FFT_PRECISION_FLOAT, 0, NULL, MPI_COMM_WORLD);
        const struct fft_layout *l = fft_layout(fft);
        struct paint_plan *pp = paint_plan_create(fft, 1, MPI_COMM_WORLD);
        struct particles *p = make_particles(n, false);
        migrate_particles(paint_plan_decomp(pp), p, BOX);
        float *f = fft_alloc(fft, "test.mesh");
        struct cic_points pts = points(p);
        for (double shift = 0; shift >= -0.5; shift -= 0.5) {
            paint_execute(pp, 1, &f, &pts, shift);
            float *ref = serial_paint(n, shift);
            double err = 0;
            for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
                for (int j = 0; j < n[1]; j++)
                    for (int k = 0; k < n[2]; k++) {
                        ptrdiff_t q = fft_real_index(l, i, j, k);
                        err = fmax(
                            err,
                            fabs(f[q] - ref[fft_real_index(l, i, j, k) + l->rx0 * n[1] * l->row]));
                    }
            comm_max_double(MPI_COMM_WORLD, &err, 1);
            T_CHECK(err < 1e-4, "mesh %d shift %g: max node difference %g", m, shift, err);
            free(ref);
        }
        lm_free(f);
        particles_destroy(&p);
        paint_plan_destroy(&pp);
        fft_plan_destroy(&fft);
    }
}

/** Paint the whole set on comm (migrated first) with two fields, mass and mass times a
 *  position-derived weight (the same per particle whatever its rank), and gather the owned planes
 *  of both fields on every rank as [2][n0][n1][n2]. */
static float *paint_two_fields(const int n[3], double shift, MPI_Comm comm, bool all)
{
    double box[3] = {BOX, BOX, BOX};
    struct fft_plan *fft = fft_plan_create(n, box, FFT_PRECISION_FLOAT, 0, NULL, comm);
    const struct fft_layout *l = fft_layout(fft);
    struct paint_plan *pp = paint_plan_create(fft, 2, comm);
    struct particles *p = make_particles(n, all);
    migrate_particles(paint_plan_decomp(pp), p, BOX);
    float *fw = malloc((size_t)(p->n + 1) * sizeof(float));
    for (int64_t i = 0; i < p->n; i++)
        fw[i] = 0.5f + p->x[0][i] * 0.01f - p->x[2][i] * 0.003f;
    float *f[2] = {fft_alloc(fft, "test.mesh"), fft_alloc(fft, "test.mesh")};
    struct cic_points pts = points(p);
    pts.fw[1] = fw;
    paint_execute(pp, 2, f, &pts, shift);
    int64_t cells = (int64_t)n[0] * n[1] * n[2];
    float *out = calloc((size_t)(2 * cells), sizeof(float));
    for (int c = 0; c < 2; c++)
        for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
            for (int j = 0; j < n[1]; j++)
                for (int k = 0; k < n[2]; k++)
                    out[c * cells + ((int64_t)i * n[1] + j) * n[2] + k] =
                        f[c][fft_real_index(l, i, j, k)];
    /* each node is owned by one rank, the others hold 0: a max gathers it bit for bit */
    MPI_Allreduce(MPI_IN_PLACE, out, (int)(2 * cells), MPI_FLOAT, MPI_MAX, comm);
    lm_free(f[0]);
    lm_free(f[1]);
    free(fw);
    particles_destroy(&p);
    paint_plan_destroy(&pp);
    fft_plan_destroy(&fft);
    return out;
}

/* The distributed paint (double sums, rounded once to float) equals a one-process paint of the
 * same particles through the same plan machinery bit for bit, at any rank count. */
static void test_bitwise_one_process(void)
{
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        int64_t cells = 2 * (int64_t)n[0] * n[1] * n[2];
        for (double shift = 0; shift >= -0.5; shift -= 0.5) {
            float *dist = paint_two_fields(n, shift, MPI_COMM_WORLD, false);
            float *ref = paint_two_fields(n, shift, MPI_COMM_SELF, true);
            int64_t differ = 0;
            double worst = 0;
            for (int64_t i = 0; i < cells; i++)
                if (memcmp(&dist[i], &ref[i], sizeof(float)) != 0) {
                    differ++;
                    worst = fmax(worst, fabs((double)dist[i] - ref[i]) / fabs((double)ref[i]));
                }
            T_CHECK(differ == 0,
                    "mesh %d shift %g: %lld nodes differ from a one-process paint "
                    "(worst relative %g)",
                    m, shift, (long long)differ, worst);
            free(dist);
            free(ref);
        }
    }
}

/* The distributed paint is bitwise the same at 1, 2 and 4 OpenMP threads (4 threads exceed the
 * planes of some meshes); the compared meshes are checked to be non-trivial. */
static void test_thread_count_invariance(void)
{
    int saved = omp_get_max_threads();
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        int64_t cells = 2 * (int64_t)n[0] * n[1] * n[2];
        for (double shift = 0; shift >= -0.5; shift -= 0.5) {
            omp_set_num_threads(1);
            float *ref = paint_two_fields(n, shift, MPI_COMM_WORLD, false);
            int64_t nonzero = 0;
            for (int64_t i = 0; i < cells; i++)
                nonzero += ref[i] != 0;
            int64_t want = cells / 2 < n_total ? cells / 2 : n_total; /* 8 nodes a particle */
            T_CHECK(nonzero > want, "mesh %d: only %lld of %lld nodes painted", m,
                    (long long)nonzero, (long long)cells);
            for (int nt = 2; nt <= 4; nt *= 2) {
                omp_set_num_threads(nt);
                float *got = paint_two_fields(n, shift, MPI_COMM_WORLD, false);
                int64_t differ = 0;
                for (int64_t i = 0; i < cells; i++)
                    differ += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
                T_CHECK(differ == 0, "mesh %d shift %g: %lld nodes differ between 1 and %d threads",
                        m, shift, (long long)differ, nt);
                free(got);
            }
            free(ref);
        }
    }
    omp_set_num_threads(saved);
}

/* A repaint in the order of the previous paint (other weights) is bitwise the paint that sorts
 * afresh, at any rank count: at the order's shift (0 or -0.5), on a plain plan and on an
 * interlacing one, and there at -0.5 in the order of 0 (the interlaced copy). */
static void test_same_points_repaint(void)
{
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        double box[3] = {BOX, BOX, BOX};
        struct fft_plan *fft =
            fft_plan_create(n, box, FFT_PRECISION_FLOAT, 0, NULL, MPI_COMM_WORLD);
        const struct fft_layout *l = fft_layout(fft);
        struct paint_plan *pp = paint_plan_create(fft, 1, MPI_COMM_WORLD);
        struct particles *p = make_particles(n, false);
        migrate_particles(paint_plan_decomp(pp), p, BOX);
        float *fw = malloc((size_t)(p->n + 1) * sizeof(float));
        for (int64_t i = 0; i < p->n; i++)
            fw[i] = 1.0f - p->x[1][i] * 0.02f;
        float *a = fft_alloc(fft, "test.mesh"), *b = fft_alloc(fft, "test.mesh");
        struct cic_points pts = points(p), other = points(p);
        other.fw[0] = fw;
        const double order_shift[5] = {0, -0.5, 0, -0.5, 0}, shifts[5] = {0, -0.5, 0, -0.5, -0.5};
        for (int c = 0; c < 5; c++) {
            if (c == 2)
                paint_plan_interlace(pp); /* cases 2-4: orders by half cell */
            double shift = shifts[c];
            paint_execute(pp, 1, &a, &other, shift);
            paint_execute(pp, 1, &b, &pts, order_shift[c]);
            paint_execute_same_points(pp, 1, &b, &other, shift);
            int64_t differ = 0, nonzero = 0;
            for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
                for (int j = 0; j < n[1]; j++)
                    for (int k = 0; k < n[2]; k++) {
                        ptrdiff_t q = fft_real_index(l, i, j, k);
                        differ += memcmp(&a[q], &b[q], sizeof(float)) != 0;
                        nonzero += a[q] != 0;
                    }
            T_CHECK(differ == 0,
                    "mesh %d shift %g in the order of shift %g: %lld nodes differ from a sorted "
                    "paint",
                    m, shift, order_shift[c], (long long)differ);
            comm_sum_int64(MPI_COMM_WORLD, &nonzero, 1);
            T_CHECK(nonzero > 0, "mesh %d: nothing painted", m);
        }
        lm_free(a);
        lm_free(b);
        free(fw);
        particles_destroy(&p);
        paint_plan_destroy(&pp);
        fft_plan_destroy(&fft);
    }
}

/** An analytic test field of global node coordinates. */
static double gfield(int64_t i, int64_t j, int64_t k, const int n[3])
{
    return sin(2 * M_PI * i / n[0]) + 0.5 * cos(2 * M_PI * (2.0 * j / n[1] + (double)k / n[2])) +
           0.1 * (double)k;
}

/* <paint(w), g> = Σ_i w_i readout(g)(x_i) over all ranks, with and without the shift. */
static void test_readout_adjoint(void)
{
    for (int m = 0; m < n_meshes; m++) {
        const int *n = meshes[m];
        double box[3] = {BOX, BOX, BOX};
        struct fft_plan *fft =
            fft_plan_create(n, box, FFT_PRECISION_FLOAT, 0, NULL, MPI_COMM_WORLD);
        const struct fft_layout *l = fft_layout(fft);
        struct paint_plan *pp = paint_plan_create(fft, 2, MPI_COMM_WORLD);
        struct particles *p = make_particles(n, false);
        migrate_particles(paint_plan_decomp(pp), p, BOX);
        float *f = fft_alloc(fft, "test.mesh"), *g = fft_alloc(fft, "test.mesh");
        float *c = fft_alloc(fft, "test.mesh");
        for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
            for (int j = 0; j < n[1]; j++)
                for (int k = 0; k < n[2]; k++) {
                    g[fft_real_index(l, i, j, k)] = (float)gfield(i, j, k, n);
                    c[fft_real_index(l, i, j, k)] = 2.5f;
                }
        float *out0 = lm_malloc("test.out", (size_t)(p->n + 1) * sizeof(float));
        float *out1 = lm_malloc("test.out", (size_t)(p->n + 1) * sizeof(float));
        struct cic_points pts = points(p);
        for (double shift = 0; shift >= -0.5; shift -= 0.5) {
            paint_execute(pp, 1, &f, &pts, shift);
            double lhs = 0, rhs = 0, cerr = 0;
            for (ptrdiff_t i = l->rx0; i < l->rx0 + l->rnx; i++)
                for (int j = 0; j < n[1]; j++)
                    for (int k = 0; k < n[2]; k++)
                        lhs +=
                            (double)f[fft_real_index(l, i, j, k)] * g[fft_real_index(l, i, j, k)];
            float *fields[2] = {g, c}, *outs[2] = {out0, out1};
            paint_readout(pp, 2, fields, &pts, shift, outs);
            for (int64_t i = 0; i < p->n; i++) {
                rhs += (double)p->w[i] * out0[i];
                cerr = fmax(cerr, fabs(out1[i] - 2.5));
            }
            comm_sum_double(MPI_COMM_WORLD, &lhs, 1);
            comm_sum_double(MPI_COMM_WORLD, &rhs, 1);
            comm_max_double(MPI_COMM_WORLD, &cerr, 1);
            T_CLOSE_TOL(lhs, rhs, 1e-5, 1e-3);
            T_CHECK(cerr < 1e-5, "readout of a constant: error %g", cerr);
        }
        lm_free(out0);
        lm_free(out1);
        lm_free(f);
        lm_free(g);
        lm_free(c);
        particles_destroy(&p);
        paint_plan_destroy(&pp);
        fft_plan_destroy(&fft);
    }
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_mass_conservation);
    T_RUN(test_equals_serial_paint);
    T_RUN(test_bitwise_one_process);
    T_RUN(test_thread_count_invariance);
    T_RUN(test_same_points_repaint);
    T_RUN(test_readout_adjoint);
    return t_finish();
}
