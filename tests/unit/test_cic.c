/*
 * test_cic — the local CIC kernels: weights of one particle against the formula, periodic wrap in
 * y and z, ghost planes, the interlacing shift, readout as the adjoint of painting, many points
 * (several stencil blocks, positions several box lengths outside in y and z) against the formula
 * painted and gathered by brute force, rejection of points outside the slab, the painting order at
 * shift 0 serving the interlacing shift, and the CIC window.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "cic.h"

#define NX  6
#define NY  5
#define NZ  4
#define ROW 6 /* padded like FFTW: 2 (NZ/2 + 1) */

static float data[NX * NY * ROW], lo[NY * ROW], hi[NY * ROW];

static struct cic_slab slab(int64_t x0, int64_t nx)
{
    return (struct cic_slab){{NX, NY, NZ}, {12.0, 10.0, 8.0}, x0, nx, ROW}; /* h = 2 */
}

/** Value at global node (i, j, k) of the slab (owned or ghost plane). */
static float node(const struct cic_slab *s, int64_t i, int j, int k)
{
    int64_t l = i - s->x0;
    if (l == -1)
        return lo[j * ROW + k];
    if (l == s->nx)
        return hi[j * ROW + k];
    return data[(l * NY + j) * ROW + k];
}

static void test_single_particle_weights(void)
{
    struct cic_slab s = slab(0, NX);
    struct cic_field f = {data, lo, hi};
    cic_zero(&s, 1, &f);
    /* x = (2.5, 9.0, 7.0) with h = 2: u = (1.25, 4.5, 3.5): nodes x 1,2; y 4,0 (wrap); z 3,0. */
    float px = 2.5f, py = 9.0f, pz = 7.0f, w = 2.0f;
    struct cic_points pts = {.n = 1, .x = {&px, &py, &pz}, .w = &w};
    T_CHECK(cic_paint(&s, 1, &f, &pts, 0.0) == 0, "point is inside");
    double tx[2] = {0.75, 0.25}, ty[2] = {0.5, 0.5}, tz[2] = {0.5, 0.5};
    int ix[2] = {1, 2}, iy[2] = {4, 0}, iz[2] = {3, 0};
    double total = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                T_CLOSE(node(&s, ix[a], iy[b], iz[c]), 2.0 * tx[a] * ty[b] * tz[c], 1e-6);
    for (size_t i = 0; i < sizeof data / sizeof *data; i++)
        total += data[i];
    T_CLOSE(total, 2.0, 1e-6);
}

static void test_ghost_planes_and_shift(void)
{
    struct cic_slab s = slab(2, 3); /* owns planes 2, 3, 4 */
    struct cic_field f = {data, lo, hi};
    cic_zero(&s, 1, &f);
    /* Particle in the last owned cell (x = 9.0 -> u = 4.5) deposits half on the hi ghost (5). */
    float px[2] = {9.0f, 4.5f}, py[2] = {1.0f, 1.0f}, pz[2] = {0.0f, 0.0f};
    struct cic_points pts = {.n = 1, .x = {px, py, pz}};
    cic_paint(&s, 1, &f, &pts, 0.0);
    T_CLOSE(node(&s, 4, 0, 0), 0.25, 1e-6);
    T_CLOSE(node(&s, 5, 0, 0), 0.25, 1e-6);
    /* With the interlacing shift, x = 4.5 -> u = 2.25 - 0.5 = 1.75: lower node 1 = the lo ghost. */
    cic_zero(&s, 1, &f);
    pts.x[0] = &px[1];
    T_CHECK(cic_paint(&s, 1, &f, &pts, -0.5) == 0, "shifted point is accepted");
    T_CLOSE(node(&s, 1, 0, 0), 0.25 * 0.5, 1e-6);
    T_CLOSE(node(&s, 2, 0, 0), 0.75 * 0.5, 1e-6);
    T_CLOSE(node(&s, 1, 0, NZ - 1), 0.25 * 0.5, 1e-6); /* z = -0.5 cells wraps */
}

static void test_out_of_slab_rejected(void)
{
    struct cic_slab s = slab(2, 2); /* owns planes 2, 3 */
    struct cic_field f = {data, lo, hi};
    cic_zero(&s, 1, &f);
    float px[3] = {1.0f, 10.0f, 5.0f}, py[3] = {0}, pz[3] = {0};
    struct cic_points pts = {.n = 3, .x = {px, py, pz}};
    T_CHECK(cic_paint(&s, 1, &f, &pts, 0.0) == 2, "cells 0 and 5 are outside [1, 4)");
    struct cic_slab empty = slab(6, 0);
    T_CHECK(cic_paint(&empty, 1, &f, &pts, 0.0) == 3, "a slab without planes takes nothing");
}

static double frand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (double)((*state >> 8) & 0xffffff) / 16777216.0;
}

/* <paint(w), g> = Σ_i w_i readout(g)(x_i) for any g, with and without the shift, three fields. */
static void test_readout_is_adjoint(void)
{
    enum { N = 50 };
    unsigned st = 7;
    struct cic_slab s = slab(0, NX);
    static float d2[3][NX * NY * ROW], lo2[3][NY * ROW], hi2[3][NY * ROW];
    float x[3][N], w[N], fw[3][N], out0[N], out1[N], out2[N];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < 3; d++) {
            x[d][i] = (float)(frand(&st) * s.box[d]);
            fw[d][i] = (float)(frand(&st) - 0.5);
        }
        w[i] = (float)frand(&st);
    }
    for (double shift = 0; shift >= -0.5; shift -= 0.5) {
        struct cic_field f[3];
        for (int c = 0; c < 3; c++)
            f[c] = (struct cic_field){d2[c], lo2[c], hi2[c]};
        cic_zero(&s, 3, f);
        struct cic_points pts = {
            .n = N, .x = {x[0], x[1], x[2]}, .w = w, .fw = {fw[0], fw[1], fw[2]}};
        cic_paint(&s, 3, f, &pts, shift);
        /* Fold the ghost planes (periodic single slab) and fill a test field g into all three. */
        static float g[NX * NY * ROW];
        for (int i = 0; i < NX * NY * ROW; i++)
            g[i] = (float)frand(&st);
        double lhs[3] = {0, 0, 0};
        for (int c = 0; c < 3; c++)
            for (int j = 0; j < NY * ROW; j++) {
                d2[c][j] += hi2[c][j]; /* plane NX is plane 0 */
                d2[c][(NX - 1) * NY * ROW + j] += lo2[c][j];
            }
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < NX; i++)
                for (int j = 0; j < NY; j++)
                    for (int k = 0; k < NZ; k++)
                        lhs[c] += (double)d2[c][(i * NY + j) * ROW + k] * g[(i * NY + j) * ROW + k];
        struct cic_field gf[3];
        static float glo[NY * ROW], ghi[NY * ROW];
        memcpy(glo, g + (NX - 1) * NY * ROW, sizeof glo);
        memcpy(ghi, g, sizeof ghi);
        for (int c = 0; c < 3; c++)
            gf[c] = (struct cic_field){g, glo, ghi};
        float *outs[3] = {out0, out1, out2};
        T_CHECK(cic_readout(&s, 3, gf, &pts, shift, outs) == 0, "all points inside");
        for (int c = 0; c < 3; c++) {
            double rhs = 0;
            for (int i = 0; i < N; i++)
                rhs += (double)w[i] * fw[c][i] * outs[c][i];
            T_CLOSE(lhs[c], rhs, 1e-5);
        }
    }
}

/** Brute-force CIC of the documented formula on the periodic NX x NY x NZ mesh, in double. */
static void brute_paint(const struct cic_slab *s, const float *const x[3], const float *w, int n,
                        double shift, double *mesh)
{
    memset(mesh, 0, NX * NY * NZ * sizeof *mesh);
    for (int i = 0; i < n; i++) {
        int64_t node[3];
        double t[3];
        for (int d = 0; d < 3; d++) {
            double u = x[d][i] * ((double)s->n[d] / s->box[d]) + shift, f = floor(u);
            t[d] = u - f;
            node[d] = (int64_t)f;
        }
        for (int c = 0; c < 8; c++) {
            int64_t a = node[0] + (c >> 2), b = node[1] + ((c >> 1) & 1), e = node[2] + (c & 1);
            a = ((a % NX) + NX) % NX;
            b = ((b % NY) + NY) % NY;
            e = ((e % NZ) + NZ) % NZ;
            double wt = ((c >> 2) ? t[0] : 1 - t[0]) * (((c >> 1) & 1) ? t[1] : 1 - t[1]) *
                        ((c & 1) ? t[2] : 1 - t[2]);
            mesh[(a * NY + b) * NZ + e] += w[i] * wt;
        }
    }
}

/* Many points (several blocks of stencils, a partial last one), x within one box length of the
 * slab, y and z up to several box lengths outside (the exact wrap): cic_paint and cic_readout
 * against the brute-force formula, with and without the shift. */
static void test_many_points_brute_force(void)
{
    enum { N = 1031 };
    unsigned st = 11;
    struct cic_slab s = slab(0, NX);
    static float x[3][N], w[N], out[N], g[NX * NY * ROW], glo[NY * ROW], ghi[NY * ROW];
    static double ref[NX * NY * NZ];
    for (int i = 0; i < N; i++) {
        x[0][i] = (float)((frand(&st) * 1.98 - 0.49) * s.box[0]);
        for (int d = 1; d < 3; d++)
            x[d][i] = (float)((frand(&st) + (double)(int)(frand(&st) * 9) - 4) * s.box[d]);
        w[i] = (float)(0.5 + frand(&st));
    }
    for (int i = 0; i < NX * NY * ROW; i++)
        g[i] = (float)(frand(&st) - 0.5);
    memcpy(glo, g + (NX - 1) * NY * ROW, sizeof glo);
    memcpy(ghi, g, sizeof ghi);
    const float *xs[3] = {x[0], x[1], x[2]};
    for (double shift = 0; shift >= -0.5; shift -= 0.5) {
        struct cic_field f = {data, lo, hi};
        cic_zero(&s, 1, &f);
        struct cic_points pts = {.n = N, .x = {x[0], x[1], x[2]}, .w = w};
        T_CHECK(cic_paint(&s, 1, &f, &pts, shift) == 0, "every point within one box length");
        for (int j = 0; j < NY * ROW; j++) {
            data[j] += hi[j];
            data[(NX - 1) * NY * ROW + j] += lo[j];
        }
        brute_paint(&s, xs, w, N, shift, ref);
        double err = 0;
        for (int i = 0; i < NX; i++)
            for (int j = 0; j < NY; j++)
                for (int k = 0; k < NZ; k++)
                    err =
                        fmax(err, fabs(data[(i * NY + j) * ROW + k] - ref[(i * NY + j) * NZ + k]));
        T_CHECK(err < 1e-4, "shift %g: paint differs from the formula by %g", shift, err);
        struct cic_field gf = {g, glo, ghi};
        float *outs[1] = {out};
        T_CHECK(cic_readout(&s, 1, &gf, &pts, shift, outs) == 0, "readout takes every point");
        double rerr = 0;
        for (int i = 0; i < N; i++) {
            /* the gather of the formula: Σ_nodes weight × g, from a one-point brute paint */
            float one = 1.0f;
            const float *xi[3] = {&x[0][i], &x[1][i], &x[2][i]};
            brute_paint(&s, xi, &one, 1, shift, ref);
            double v = 0;
            for (int a = 0; a < NX; a++)
                for (int b = 0; b < NY; b++)
                    for (int e = 0; e < NZ; e++)
                        v += ref[(a * NY + b) * NZ + e] * g[(a * NY + b) * ROW + e];
            rerr = fmax(rerr, fabs(out[i] - v));
        }
        T_CHECK(rerr < 1e-5, "shift %g: readout differs from the formula by %g", shift, rerr);
    }
}

/* The painting order at shift 0 serves shift -0.5: on a slab of planes 2..4 (points on nodes, on
 * half cells and between), every point of the bucket of plane b at either shift has lower node
 * x0 - 1 + b there, no point falls out at -0.5, and each shifted bucket lists the points of a fresh
 * sort at -0.5 in the same order. */
static void test_order_serves_both_shifts(void)
{
    enum { N = 300, X0 = 2, NXS = 3, KEYS = 2 * NXS + 3 };
    unsigned st = 5;
    struct cic_slab s = slab(X0, NXS);
    static float x[3][N];
    for (int i = 0; i < N; i++) {
        double u = X0 + frand(&st) * NXS; /* in cells of h = 2 */
        if (i % 5 == 0)
            u = floor(u); /* a node: u - 0.5 is a half cell */
        else if (i % 5 == 1)
            u = floor(u) + 0.5; /* a half cell: u - 0.5 is a node */
        x[0][i] = (float)(2 * u);
        x[1][i] = (float)(frand(&st) * s.box[1]);
        x[2][i] = (float)(frand(&st) * s.box[2]);
    }
    struct cic_points pts = {.n = N, .x = {x[0], x[1], x[2]}};
    int64_t work[2 * KEYS], start[2][KEYS + 1], bucket[NXS + 2];
    uint32_t idx[2][N];
    T_CHECK(cic_order_points(&s, &pts, 0.0, true, 2, work, idx[0], start[0]) == 0, "in the slab");
    T_CHECK(cic_order_points(&s, &pts, -0.5, true, 2, work, idx[1], start[1]) == 0, "in the slab");
    T_CHECK(start[0][1] == start[0][0], "no point two planes below the slab at -0.5");
    static double plo[NY * ROW], phi[NY * ROW];
    for (int half = 0; half < 2; half++) {
        for (int b = 0; b <= NXS + 1; b++)
            bucket[b] = start[0][2 * b + half];
        int64_t painted = 0;
        for (int b = 0; b <= NXS; b++) {
            double *l[1] = {plo}, *h[1] = {phi};
            T_CHECK(cic_paint_bucket(&s, b, idx[0], bucket, &pts, -0.5 * half, 1, l, h) == 0,
                    "shift %g, bucket %d: every point has the bucket's lower node", -0.5 * half, b);
            painted += bucket[b + 1] - bucket[b];
        }
        T_CHECK(painted == N, "shift %g: %lld of %d points in the buckets", -0.5 * half,
                (long long)painted, N);
    }
    for (int b = 0; b <= NXS; b++) {
        int64_t a0 = start[0][2 * b + 1], a1 = start[0][2 * b + 3], c0 = start[1][2 * b];
        T_CHECK(a1 - a0 == start[1][2 * b + 2] - c0, "bucket %d: as many points", b);
        T_CHECK(memcmp(&idx[0][a0], &idx[1][c0], (size_t)(a1 - a0) * sizeof(uint32_t)) == 0,
                "bucket %d: the order of a sort at -0.5", b);
    }
}

static void test_window(void)
{
    double h[3] = {2, 1, 0.5}, k0[3] = {0, 0, 0}, k[3] = {M_PI / 2, 0, 0};
    T_CLOSE(cic_window(k0, h), 1.0, 1e-15);
    double s = sin(M_PI / 2) / (M_PI / 2);
    T_CLOSE(cic_window(k, h), s * s, 1e-14);
}

int main(void)
{
    T_RUN(test_single_particle_weights);
    T_RUN(test_ghost_planes_and_shift);
    T_RUN(test_out_of_slab_rejected);
    T_RUN(test_readout_is_adjoint);
    T_RUN(test_many_points_brute_force);
    T_RUN(test_order_serves_both_shifts);
    T_RUN(test_window);
    return t_finish();
}
