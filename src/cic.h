/*
 * cic (tier: kernels) — cloud-in-cell painting and readout on the local x-slab of a periodic mesh
 * (local kernels).
 *
 * Node i of axis d sits at x = i h_d, h_d = L_d / n_d. A particle at u = x / h_d + shift (cells)
 * has lower node floor(u) and deposits weight 1 - t on it and t on the next node, t = u - floor(u),
 * periodically; the 3-D weight is the product over axes. shift is 0 for ordinary painting and -1/2
 * for the second mesh of interlacing (nodes effectively at (i + 1/2) h). The cell arithmetic
 * (double, x * (n / L)) is that of decomp_cell_index, so migration and painting agree on every
 * boundary bit for bit.
 *
 * A struct cic_slab describes the local part of the mesh: owned x planes [x0, x0 + nx) stored as
 * [nx][n1][row] floats (row >= n2: FFTW's padded rows fit), and one ghost plane on each side, lo
 * (global plane x0 - 1) and hi (x0 + nx), each [n1][row]. Painting accepts every particle whose
 * lower x node lies in [x0 - 1, x0 + nx) — i.e. every particle of the slab, with or without the
 * interlacing shift — and writes to owned and ghost planes; the distributed layer (src/mpi/paint.h)
 * then adds the ghost planes onto their owners. Readout is the exact adjoint: it reads owned and
 * ghost planes after the ghosts were filled from their owners.
 *
 * Up to CIC_MAX_FIELDS fields are painted or read in one pass over the particles (the weights are
 * computed once): mass and three velocity components, or three gradient components. The stencils
 * (nodes and the 8 weights) of a block of points are computed first in vectorisable loops, then
 * the nodes are added to or read. Everything here is Local. cic_paint is serial (a fixed order
 * of the sums). The threaded painter sorts the points by lower x node (cic_order_points, the
 * stable counting sort of sort.h) and paints plane by plane
 * bucket by bucket (cic_paint_bucket) into double planes; the distributed painter fixes the order
 * of every node's sum independently of the threads (the result is the same for any number of
 * threads; in double the order of the points changes a
 * node's sum by ~1e-16 relative, so the float map does not depend on the rank count either).
 * Readout, free of write conflicts, is OpenMP-parallel over blocks of points; each point's 8
 * products are summed in double in a fixed order.
 */
#ifndef LEMUR_CIC_H
#define LEMUR_CIC_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/** Most fields painted or read in one pass. */
#define CIC_MAX_FIELDS 4

/** Geometry of the local slab of a periodic mesh. */
struct cic_slab {
    int n[3];       /**< global nodes per axis */
    double box[3];  /**< box sides L_d (Mpc/h) */
    int64_t x0, nx; /**< owned planes [x0, x0 + nx) */
    int64_t row;    /**< floats per z row (>= n[2]) */
};

/** One field on the slab: owned planes and the two ghost planes. */
struct cic_field {
    float *data; /**< [nx][n1][row] owned planes */
    float *lo;   /**< [n1][row] ghost plane x0 - 1 */
    float *hi;   /**< [n1][row] ghost plane x0 + nx */
};

/** Particles to paint or read: positions and optional weights (any NULL weight counts as 1).
 *  Field f of a paint receives w[i] * fw[f][i] per particle. */
struct cic_points {
    int64_t n;
    const float *x[3];               /**< positions (Mpc/h), x[d][i] */
    const float *w;                  /**< common weight (mass), or NULL */
    const float *fw[CIC_MAX_FIELDS]; /**< per-field weight (velocity component), or NULL */
};

/** Floats of one plane (n1 * row). Local. */
static inline int64_t cic_plane_size(const struct cic_slab *s) { return s->n[1] * s->row; }

/** Set the owned and ghost planes of n_fields fields to zero. Local. */
void cic_zero(const struct cic_slab *s, int n_fields, const struct cic_field *fields);

/** Paint the points onto n_fields fields (adding to what they hold).
 *  @param shift  cell shift of the positions (0, or -0.5 for interlacing)
 *  @return the number of points whose lower x node lies outside [x0 - 1, x0 + nx) (not painted;
 *          0 when the points were migrated to this slab). Local. */
int64_t cic_paint(const struct cic_slab *s, int n_fields, const struct cic_field *fields,
                  const struct cic_points *pts, double shift);

/** Order the points for plane-by-plane painting: a stable sort by lower x node, or with halves
 *  by lower x node and half cell. Key b (b in [0, nx]) holds the points whose lower x node is
 *  x0 - 1 + b, key nx + 1 those outside the slab. With halves, key 2 b + h holds the points of
 *  lower node x0 - 1 + b in the lower (h = 0) or upper (h = 1) half of that cell, key 2 nx + 2
 *  those outside: at shift - 0.5 (the interlaced copy) the points of lower node x0 - 1 + b are
 *  keys 2 b + 1 and 2 b + 2, so one order serves both shifts. Key k is idx[start[k] ..
 *  start[k + 1]). The order is the same for any number of threads.
 *  @param n_threads  OpenMP threads to use (at most; >= 1)
 *  @param work       n_threads (2 nx + 3) counts (scratch)
 *  @param idx        out: pts->n point indices (pts->n < 2^32)
 *  @param start      out: 2 nx + 4 offsets (nx + 3 without halves)
 *  @return the number of points outside the slab. Local. */
int64_t cic_order_points(const struct cic_slab *s, const struct cic_points *pts, double shift,
                         bool halves, int n_threads, int64_t *work, uint32_t *idx, int64_t *start);

/** Paint the points idx[start[b] .. start[b + 1]) (a bucket of points ordered by
 *  cic_order_points) in double: in that order, the corners of each point whose lower x node is
 *  x0 - 1 + b are added, those on its lower x plane to lo[f] and those on the next plane to hi[f]
 *  ([n1][row] doubles each; lo or hi NULL: those corners are skipped). Field f receives
 *  w[i] fw[f][i] times the stencil weight. Run over the buckets in a fixed order, the double
 *  sums of every node run in a fixed order too, whichever thread paints which bucket.
 *  @return the number of points of the bucket with another lower node (not painted). Local. */
int64_t cic_paint_bucket(const struct cic_slab *s, int64_t b, const uint32_t *idx,
                         const int64_t *start, const struct cic_points *pts, double shift,
                         int n_fields, double *const lo[], double *const hi[]);

/** Read n_fields fields (owned and filled ghost planes) at the points: out[f][i] receives the
 *  CIC-weighted sum of the 8 nodes of point i (weights of pts are ignored).
 *  @return the number of points outside the slab (their out values are set to 0). Local. */
int64_t cic_readout(const struct cic_slab *s, int n_fields, const struct cic_field *fields,
                    const struct cic_points *pts, double shift, float *const out[]);

/** CIC window of the mode with wave vector k on a mesh of spacings h:
 *  prod_d sinc^2(k_d h_d / 2), sinc x = sin x / x. Local. */
double cic_window(const double k[3], const double h[3]);

#endif
