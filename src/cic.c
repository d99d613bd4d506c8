#include "cic.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <string.h>

#include "sort.h"

/** Points whose stencils are computed at once (vectorisable loops over the block). */
#define CIC_BLOCK 128
/** lx of a point whose lower x node lies outside [x0 - 1, x0 + nx). */
#define CIC_OUTSIDE INT64_MIN

/** The 8-node stencils of a block of points: local plane index of the lower x node (-1 .. nx-1,
 *  or CIC_OUTSIDE), in-plane offset of the lower (y, z) node, steps to the upper y and z nodes
 *  (periodic), and the 8 weights, corner (a, b, c) at w[(a * 2 + b) * 2 + c]: float products
 *  wx_a wy_b wz_c (wx_0 = 1 - tx, wx_1 = tx, ...) held in double, as paint and readout use them. */
struct cic_block {
    int64_t lx[CIC_BLOCK], off[CIC_BLOCK], dy[CIC_BLOCK], dz[CIC_BLOCK];
    double w[8][CIC_BLOCK];
    float x[3][CIC_BLOCK]; /**< gathered positions (sorted order) */
};

/** Geometry shared by every point of a call. */
struct cic_geom {
    double scale[3], shift;
    int64_t n[3], x0, nx, row;
};

static struct cic_geom geom_of(const struct cic_slab *s, double shift)
{
    struct cic_geom g = {.shift = shift, .x0 = s->x0, .nx = s->nx, .row = s->row};
    for (int d = 0; d < 3; d++) {
        g.scale[d] = (double)s->n[d] / s->box[d];
        g.n[d] = s->n[d];
    }
    return g;
}

/** floor(u) as an integer, written so that loops over it vectorise (floor() does not without
 *  -fno-trapping-math); exact for |u| < 2^53. */
static inline int64_t node_floor(double u)
{
    int64_t i = (int64_t)u;
    return i - ((double)i > u);
}

/** Index i of a point far outside the box (positions not wrapped): the slow exact wrap. */
static inline int64_t wrap_far(int64_t i, int64_t n) { return ((i % n) + n) % n; }

/* Compute kernel: the stencils of the m points at px[k], py[k], pz[k]. The lower node of
 * u = x n / L + shift is floor(u) and t = u - floor(u), in double (the arithmetic of
 * decomp_cell_index, so migration and painting agree on every boundary bit for bit). Branch-free
 * selects keep the loop vectorisable; a point beyond one box length in y or z is wrapped exactly
 * afterwards. */
static void block_stencils(const struct cic_geom *g, const float *restrict px,
                           const float *restrict py, const float *restrict pz, int m,
                           struct cic_block *restrict b)
{
    const int64_t n0 = g->n[0], n1 = g->n[1], n2 = g->n[2], x0 = g->x0, nx = g->nx;
    const int64_t row = g->row;
    const double sx = g->scale[0], sy = g->scale[1], sz = g->scale[2], shift = g->shift;
    int far = 0;
    for (int k = 0; k < m; k++) {
        double ux = px[k] * sx + shift, uy = py[k] * sy + shift, uz = pz[k] * sz + shift;
        int64_t ix = node_floor(ux), iy = node_floor(uy), iz = node_floor(uz);
        float tx = (float)(ux - (double)ix), ty = (float)(uy - (double)iy);
        float tz = (float)(uz - (double)iz);
        int64_t lx = ix - x0;
        lx = lx < -1 ? lx + n0 : lx >= nx ? lx - n0 : lx;
        bool out = lx < -1 || lx >= nx || nx == 0;
        iy = iy < 0 ? iy + n1 : iy >= n1 ? iy - n1 : iy;
        iz = iz < 0 ? iz + n2 : iz >= n2 ? iz - n2 : iz;
        far |= (iy < 0) | (iy >= n1) | (iz < 0) | (iz >= n2);
        b->lx[k] = out ? CIC_OUTSIDE : lx;
        b->off[k] = iy * row + iz;
        b->dy[k] = iy + 1 == n1 ? -(n1 - 1) * row : row;
        b->dz[k] = iz + 1 == n2 ? -(n2 - 1) : 1;
        float wx0 = 1 - tx, wy0 = 1 - ty, wz0 = 1 - tz;
        b->w[0][k] = (float)(wx0 * wy0 * wz0);
        b->w[1][k] = (float)(wx0 * wy0 * tz);
        b->w[2][k] = (float)(wx0 * ty * wz0);
        b->w[3][k] = (float)(wx0 * ty * tz);
        b->w[4][k] = (float)(tx * wy0 * wz0);
        b->w[5][k] = (float)(tx * wy0 * tz);
        b->w[6][k] = (float)(tx * ty * wz0);
        b->w[7][k] = (float)(tx * ty * tz);
    }
    for (int k = 0; far && k < m; k++) {
        int64_t iy = wrap_far(node_floor(py[k] * sy + shift), n1);
        int64_t iz = wrap_far(node_floor(pz[k] * sz + shift), n2);
        b->off[k] = iy * row + iz;
        b->dy[k] = iy + 1 == n1 ? -(n1 - 1) * row : row;
        b->dz[k] = iz + 1 == n2 ? -(n2 - 1) : 1;
    }
}

/** The stencils of points q0 .. q0 + m - 1, or of points idx[q0 .. q0 + m) when idx is given
 *  (gathered into the block first). */
static void block_locate(const struct cic_geom *g, const struct cic_points *pts,
                         const uint32_t *idx, int64_t q0, int m, struct cic_block *b)
{
    if (!idx) {
        block_stencils(g, pts->x[0] + q0, pts->x[1] + q0, pts->x[2] + q0, m, b);
        return;
    }
    for (int k = 0; k < m; k++) {
        uint32_t i = idx[q0 + k];
        b->x[0][k] = pts->x[0][i];
        b->x[1][k] = pts->x[1][i];
        b->x[2][k] = pts->x[2][i];
    }
    block_stencils(g, b->x[0], b->x[1], b->x[2], m, b);
}

/** Plane lx (-1 .. nx) of field f. */
static inline float *field_plane(const struct cic_slab *s, const struct cic_field *f, int64_t lx)
{
    return lx < 0 ? f->lo : lx >= s->nx ? f->hi : f->data + lx * cic_plane_size(s);
}

void cic_zero(const struct cic_slab *s, int n_fields, const struct cic_field *fields)
{
    size_t plane = (size_t)cic_plane_size(s) * sizeof(float);
    for (int f = 0; f < n_fields; f++) {
        if (s->nx > 0)
            memset(fields[f].data, 0, plane * (size_t)s->nx);
        memset(fields[f].lo, 0, plane);
        memset(fields[f].hi, 0, plane);
    }
}

/** Weight of field f at point i: w[i] fw[f][i] (a missing weight counts as 1). */
static inline float point_weight(const struct cic_points *pts, int f, int64_t i)
{
    float w0 = pts->w ? pts->w[i] : 1.0f;
    return pts->fw[f] ? w0 * pts->fw[f][i] : w0;
}

/* Compute kernel: one pass over the points, 8 scattered adds per point and field. */
int64_t cic_paint(const struct cic_slab *s, int n_fields, const struct cic_field *fields,
                  const struct cic_points *pts, double shift)
{
    struct cic_geom g = geom_of(s, shift);
    struct cic_block b;
    int64_t n_out = 0;
    for (int64_t q0 = 0; q0 < pts->n; q0 += CIC_BLOCK) {
        int m = pts->n - q0 < CIC_BLOCK ? (int)(pts->n - q0) : CIC_BLOCK;
        block_locate(&g, pts, NULL, q0, m, &b);
        for (int k = 0; k < m; k++) {
            if (b.lx[k] == CIC_OUTSIDE) {
                n_out++;
                continue;
            }
            const int64_t o = b.off[k], dy = b.dy[k], dz = b.dz[k];
            for (int f = 0; f < n_fields; f++) {
                float w = point_weight(pts, f, q0 + k);
                for (int a = 0; a < 2; a++) {
                    float *p = field_plane(s, &fields[f], b.lx[k] + a) + o;
                    p[0] += w * (float)b.w[4 * a][k];
                    p[dz] += w * (float)b.w[4 * a + 1][k];
                    p[dy] += w * (float)b.w[4 * a + 2][k];
                    p[dy + dz] += w * (float)b.w[4 * a + 3][k];
                }
            }
        }
    }
    return n_out;
}

/** Keys of the counting sort, for a lower x node lx in [x0 - 1, x0 + nx): lx + 1, or with halves
 *  2 (lx + 1) + half (half = 1 when the point lies in the upper half of its cell); outside, the
 *  key after those. */
struct plane_keys {
    const struct cic_geom *g;
    const float *x;
    int64_t halves; /**< 1: keys by half cell, 0: by cell */
};

/* Compute kernel: the keys of points [i0, i0 + m), the lower node as block_stencils finds it (by
 * cell in a loop of its own: without the half-cell arithmetic it runs a fifth faster). */
static void plane_key_block(const void *ctx, int64_t i0, int m, uint32_t *key)
{
    const struct plane_keys *c = ctx;
    const int64_t n0 = c->g->n[0], x0 = c->g->x0, nx = c->g->nx;
    const double scale = c->g->scale[0], shift = c->g->shift;
    const float *x = c->x + i0;
    if (!c->halves) {
        for (int k = 0; k < m; k++) {
            int64_t lx = node_floor(x[k] * scale + shift) - x0;
            lx = lx < -1 ? lx + n0 : lx >= nx ? lx - n0 : lx;
            bool out = lx < -1 || lx >= nx || nx == 0;
            key[k] = (uint32_t)(out ? nx + 1 : lx + 1);
        }
        return;
    }
    for (int k = 0; k < m; k++) {
        int64_t h = node_floor(2 * (x[k] * scale + shift)), half = h & 1; /* 2 u: exact */
        int64_t lx = (h - half) / 2 - x0;                                 /* floor(u) */
        lx = lx < -1 ? lx + n0 : lx >= nx ? lx - n0 : lx;
        bool out = lx < -1 || lx >= nx || nx == 0;
        key[k] = (uint32_t)(out ? 2 * nx + 2 : 2 * (lx + 1) + half);
    }
}

int64_t cic_order_points(const struct cic_slab *s, const struct cic_points *pts, double shift,
                         bool halves, int n_threads, int64_t *work, uint32_t *idx, int64_t *start)
{
    struct cic_geom g = geom_of(s, shift);
    struct plane_keys c = {&g, pts->x[0], halves};
    const int64_t n_keys = (((int64_t)s->nx + 1) << halves) + 1;
    struct sort_keys k = {pts->n, n_keys, plane_key_block, &c};
    sort_counting(&k, n_threads, work, idx, start);
    return start[n_keys] - start[n_keys - 1];
}

/* Compute kernel: one pass over the points of bucket b in sorted order, the a = 0 corners added
 * to lo[f] and the a = 1 corners to hi[f]. Every contribution is the exact double product of the
 * float weight and the float stencil weight. */
int64_t cic_paint_bucket(const struct cic_slab *s, int64_t b, const uint32_t *idx,
                         const int64_t *start, const struct cic_points *pts, double shift,
                         int n_fields, double *const lo[], double *const hi[])
{
    struct cic_geom g = geom_of(s, shift);
    struct cic_block blk;
    int64_t n_other = 0;
    for (int64_t q0 = start[b]; q0 < start[b + 1]; q0 += CIC_BLOCK) {
        int m = start[b + 1] - q0 < CIC_BLOCK ? (int)(start[b + 1] - q0) : CIC_BLOCK;
        block_locate(&g, pts, idx, q0, m, &blk);
        for (int k = 0; k < m; k++)
            n_other += blk.lx[k] != b - 1;
        for (int f = 0; f < n_fields; f++) {
            double *pl = lo ? lo[f] : NULL, *ph = hi ? hi[f] : NULL;
            double wf[CIC_BLOCK];
            for (int k = 0; k < m; k++) {
                uint32_t i = idx[q0 + k];
                float w0 = pts->w ? pts->w[i] : 1.0f;
                wf[k] = pts->fw[f] ? (double)w0 * pts->fw[f][i] : (double)w0;
            }
            for (int k = 0; k < m; k++) {
                if (blk.lx[k] != b - 1)
                    continue; /* not on this bucket's planes: counted, not painted */
                const double w = wf[k];
                const int64_t o = blk.off[k], dy = blk.dy[k], dz = blk.dz[k];
                if (pl) {
                    double *p = pl + o;
                    p[0] += w * blk.w[0][k];
                    p[dz] += w * blk.w[1][k];
                    p[dy] += w * blk.w[2][k];
                    p[dy + dz] += w * blk.w[3][k];
                }
                if (ph) {
                    double *p = ph + o;
                    p[0] += w * blk.w[4][k];
                    p[dz] += w * blk.w[5][k];
                    p[dy] += w * blk.w[6][k];
                    p[dy + dz] += w * blk.w[7][k];
                }
            }
        }
    }
    return n_other;
}

/* Compute kernel: threads take blocks of points; each point's 8-node sum runs in a fixed order,
 * so the values do not depend on the number of threads. */
int64_t cic_readout(const struct cic_slab *s, int n_fields, const struct cic_field *fields,
                    const struct cic_points *pts, double shift, float *const out[])
{
    struct cic_geom g = geom_of(s, shift);
    const int64_t n = pts->n, n_blocks = (n + CIC_BLOCK - 1) / CIC_BLOCK;
    const int64_t plane = cic_plane_size(s), nx = s->nx;
    int64_t n_out = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_out)
    for (int64_t blk_i = 0; blk_i < n_blocks; blk_i++) {
        struct cic_block b;
        int64_t q0 = blk_i * CIC_BLOCK;
        int m = n - q0 < CIC_BLOCK ? (int)(n - q0) : CIC_BLOCK;
        block_locate(&g, pts, NULL, q0, m, &b);
        for (int f = 0; f < n_fields; f++) {
            const struct cic_field *fd = &fields[f];
            float *o_f = out[f] + q0;
            for (int k = 0; k < m; k++) {
                int64_t lx = b.lx[k];
                if (lx == CIC_OUTSIDE) {
                    o_f[k] = 0;
                    continue;
                }
                const float *p0 = (lx < 0 ? fd->lo : fd->data + lx * plane) + b.off[k];
                const float *p1 = (lx + 1 >= nx ? fd->hi : fd->data + (lx + 1) * plane) + b.off[k];
                const int64_t dy = b.dy[k], dz = b.dz[k];
                double v0 = b.w[0][k] * p0[0] + b.w[1][k] * p0[dz];
                double v1 = b.w[2][k] * p0[dy] + b.w[3][k] * p0[dy + dz];
                double v2 = b.w[4][k] * p1[0] + b.w[5][k] * p1[dz];
                double v3 = b.w[6][k] * p1[dy] + b.w[7][k] * p1[dy + dz];
                o_f[k] = (float)((v0 + v1) + (v2 + v3));
            }
        }
        if (n_fields > 0)
            for (int k = 0; k < m; k++)
                n_out += b.lx[k] == CIC_OUTSIDE;
    }
    return n_out;
}

static double sinc(double x) { return fabs(x) < 1e-4 ? 1 - x * x / 6 : sin(x) / x; }

double cic_window(const double k[3], const double h[3])
{
    double w = 1;
    for (int d = 0; d < 3; d++) {
        double s = sinc(0.5 * k[d] * h[d]);
        w *= s * s;
    }
    return w;
}
