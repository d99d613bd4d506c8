#include "cic.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <string.h>

/** The 8-node stencil of one point: local plane index of the lower x node (-1 .. nx-1), row
 *  offsets of the two y nodes and the two z indices, and the 8 weights. */
struct cic_stencil {
    int64_t lx;
    int64_t y[2], z[2];
    float w[8];
};

static inline int64_t wrap_index(int64_t i, int64_t n)
{
    if (i < 0)
        i += n;
    else if (i >= n)
        i -= n;
    if (i < 0 || i >= n) /* far outside the box: positions were not wrapped */
        i = ((i % n) + n) % n;
    return i;
}

/** Lower node and weight t of coordinate x along axis d; the arithmetic of decomp_cell_index. */
static inline int64_t axis_node(double x, double scale, double shift, float *t)
{
    double u = x * scale + shift;
    double f = floor(u);
    *t = (float)(u - f);
    return (int64_t)f;
}

/** Fill st for point i; false when its lower x node is outside [x0 - 1, x0 + nx). */
static inline bool cic_locate(const struct cic_slab *s, const double scale[3], double shift,
                              const struct cic_points *pts, int64_t i, struct cic_stencil *st)
{
    float t[3];
    if (s->nx == 0)
        return false;
    int64_t ix = axis_node(pts->x[0][i], scale[0], shift, &t[0]);
    int64_t lx = ix - s->x0;
    if (lx < -1)
        lx += s->n[0];
    else if (lx >= s->nx)
        lx -= s->n[0];
    if (lx < -1 || lx >= s->nx)
        return false;
    st->lx = lx;
    int64_t iy = wrap_index(axis_node(pts->x[1][i], scale[1], shift, &t[1]), s->n[1]);
    int64_t iz = wrap_index(axis_node(pts->x[2][i], scale[2], shift, &t[2]), s->n[2]);
    st->y[0] = iy * s->row;
    st->y[1] = (iy + 1 == s->n[1] ? 0 : iy + 1) * s->row;
    st->z[0] = iz;
    st->z[1] = iz + 1 == s->n[2] ? 0 : iz + 1;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                st->w[(a * 2 + b) * 2 + c] =
                    (a ? t[0] : 1 - t[0]) * (b ? t[1] : 1 - t[1]) * (c ? t[2] : 1 - t[2]);
    return true;
}

/** Plane lx (-1 .. nx) of field f. */
static inline float *field_plane(const struct cic_slab *s, const struct cic_field *f, int64_t lx)
{
    if (lx < 0)
        return f->lo;
    if (lx >= s->nx)
        return f->hi;
    return f->data + lx * cic_plane_size(s);
}

static void axis_scales(const struct cic_slab *s, double scale[3])
{
    for (int d = 0; d < 3; d++)
        scale[d] = (double)s->n[d] / s->box[d];
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

/* Compute kernel: one pass over the points, 8 scattered adds per point and field. */
int64_t cic_paint(const struct cic_slab *s, int n_fields, const struct cic_field *fields,
                  const struct cic_points *pts, double shift)
{
    double scale[3];
    axis_scales(s, scale);
    int64_t n_out = 0;
    for (int64_t i = 0; i < pts->n; i++) {
        struct cic_stencil st;
        if (!cic_locate(s, scale, shift, pts, i, &st)) {
            n_out++;
            continue;
        }
        float w0 = pts->w ? pts->w[i] : 1.0f;
        for (int f = 0; f < n_fields; f++) {
            float w = pts->fw[f] ? w0 * pts->fw[f][i] : w0;
            for (int a = 0; a < 2; a++) {
                float *p = field_plane(s, &fields[f], st.lx + a);
                for (int b = 0; b < 2; b++)
                    for (int c = 0; c < 2; c++)
                        p[st.y[b] + st.z[c]] += w * st.w[(a * 2 + b) * 2 + c];
            }
        }
    }
    return n_out;
}

/** Lower x node of point i relative to the slab, as cic_locate: in [-1, nx) when painted. */
static inline int64_t lower_plane(const struct cic_slab *s, double scale, double shift,
                                  const struct cic_points *pts, int64_t i)
{
    float t;
    int64_t lx = axis_node(pts->x[0][i], scale, shift, &t) - s->x0;
    if (lx < -1)
        lx += s->n[0];
    else if (lx >= s->nx)
        lx -= s->n[0];
    return lx;
}

/** Bucket of point i: lx + 1 in [0, nx], or nx + 1 when the point lies outside the slab. */
static inline int64_t plane_bucket(const struct cic_slab *s, double scale, double shift,
                                   const struct cic_points *pts, int64_t i)
{
    int64_t lx = lower_plane(s, scale, shift, pts, i);
    return lx < -1 || lx >= s->nx ? s->nx + 1 : lx + 1;
}

/* Compute kernel: a stable counting sort. Thread t counts the buckets of its contiguous block of
 * points; the offsets are laid out bucket by bucket, and within a bucket thread by thread, so
 * every point lands where the serial stable sort puts it, whatever the number of threads. */
int64_t cic_order_points(const struct cic_slab *s, const struct cic_points *pts, double shift,
                         int n_threads, int64_t *work, uint32_t *idx, int64_t *start)
{
    double scale = (double)s->n[0] / s->box[0];
    const int64_t nb = s->nx + 2, n = pts->n;
    memset(work, 0, (size_t)n_threads * (size_t)nb * sizeof *work);
#pragma omp parallel num_threads(n_threads)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
        int64_t *cnt = work + t * nb;
        for (int64_t i = i0; i < i1; i++)
            cnt[plane_bucket(s, scale, shift, pts, i)]++;
#pragma omp barrier
#pragma omp single
        {
            int64_t o = 0;
            for (int64_t b = 0; b < nb; b++) {
                start[b] = o;
                for (int u = 0; u < nt; u++) {
                    int64_t c = work[u * nb + b];
                    work[u * nb + b] = o;
                    o += c;
                }
            }
            start[nb] = o;
        }
        for (int64_t i = i0; i < i1; i++)
            idx[cnt[plane_bucket(s, scale, shift, pts, i)]++] = (uint32_t)i;
    }
    return start[nb] - start[nb - 1];
}

/* Compute kernel: one pass over the points of bucket b in sorted order, the a = 0 corners added
 * to lo[f] and the a = 1 corners to hi[f]. Every contribution is the exact double product of the
 * float weight and the float stencil weight. */
void cic_paint_bucket(const struct cic_slab *s, int64_t b, const uint32_t *idx,
                      const int64_t *start, const struct cic_points *pts, double shift,
                      int n_fields, double *const lo[], double *const hi[])
{
    double scale[3];
    axis_scales(s, scale);
    for (int64_t q = start[b]; q < start[b + 1]; q++) {
        int64_t i = idx[q];
        struct cic_stencil st;
        if (!cic_locate(s, scale, shift, pts, i, &st))
            continue; /* not in bucket b's range: cic_order_points put it elsewhere */
        float w0 = pts->w ? pts->w[i] : 1.0f;
        for (int f = 0; f < n_fields; f++) {
            double w = pts->fw[f] ? (double)w0 * pts->fw[f][i] : (double)w0;
            for (int a = 0; a < 2; a++) {
                double *p = a ? (hi ? hi[f] : NULL) : (lo ? lo[f] : NULL);
                if (!p)
                    continue;
                for (int c = 0; c < 2; c++)
                    for (int e = 0; e < 2; e++)
                        p[st.y[c] + st.z[e]] += w * st.w[(a * 2 + c) * 2 + e];
            }
        }
    }
}

int64_t cic_readout(const struct cic_slab *s, int n_fields, const struct cic_field *fields,
                    const struct cic_points *pts, double shift, float *const out[])
{
    double scale[3];
    axis_scales(s, scale);
    int64_t n_out = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_out)
    for (int64_t i = 0; i < pts->n; i++) {
        struct cic_stencil st;
        bool in = cic_locate(s, scale, shift, pts, i, &st);
        n_out += !in;
        for (int f = 0; f < n_fields; f++) {
            double v = 0;
            for (int a = 0; in && a < 2; a++) {
                const float *p = field_plane(s, &fields[f], st.lx + a);
                for (int b = 0; b < 2; b++)
                    for (int c = 0; c < 2; c++)
                        v += (double)st.w[(a * 2 + b) * 2 + c] * p[st.y[b] + st.z[c]];
            }
            out[f][i] = (float)v;
        }
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
