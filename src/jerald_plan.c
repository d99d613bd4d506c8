/* jerald_plan — displacement layers and final maps on the distributed mesh (jerald_plan.h). */
#include "jerald_plan.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "cic.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/migrate.h"
#include "mpi/paint.h"
#include "power_plan.h"
#include "timer.h"

/** Default number of particles read out per collective call. */
#define READOUT_CHUNK ((int64_t)1 << 22)

/** Largest radial table (entries) a plan keeps; larger meshes evaluate per mode. */
#define RADIAL_TABLE_MAX ((int64_t)1 << 26)

/** A radial k-space factor: scale · G(|k|) of a term, or scale · the depletion filter. */
struct radial {
    bool filter;                  /**< depletion filter instead of a Green's function */
    enum jerald_green form;       /**< Green's function form */
    struct jerald_term term;      /**< its parameters */
    struct jerald_depletion depl; /**< filter parameters */
    double scale;                 /**< overall factor */
};

struct jerald_plan {
    struct power_plan *power;        /**< spectra; owns the FFT plan every mesh uses */
    const struct fft_plan *fft;      /**< power's FFT plan */
    const struct fft_layout *layout; /**< its layout */
    struct paint_plan *paint;        /**< CIC paint / readout of up to 3 fields */
    MPI_Comm comm;                   /**< the FFT's communicator (not owned) */
    int n;                           /**< mesh side */
    double box, kf;                  /**< box side, fundamental frequency 2π/L */
    bool compensate;                 /**< spectra divided by the CIC window */
    float *mesh[3];                  /**< working meshes (real / complex views) */
    double *grad[3];                 /**< D(k_d) by global index on each axis */
    double *win[3];                  /**< CIC window factor by global index on each axis */
    int64_t n_m2;                    /**< radial table length: max m_x² + m_y² + m_z² + 1 */
    double *table[2];                /**< radial factors by m², NULL: evaluated per mode */
    struct radial radial[2];         /**< the radial factors of the running pass */
    float *disp[3];                  /**< readout of the gradient at a chunk of particles */
    int64_t chunk;                   /**< particles per readout call (the size of disp) */
    struct migrate_plan *migrate;    /**< kept across layers (re-planned, buffers reused) */
};

/* ---- set-up ---------------------------------------------------------------------------------- */

static void make_axis_tables(struct jerald_plan *p, int order)
{
    const struct fft_layout *l = p->layout;
    double h = p->box / p->n;
    for (int d = 0; d < 3; d++) {
        int len = d == 2 ? (int)l->nkz : l->n[d];
        p->grad[d] = lm_malloc("jerald.tables", (size_t)len * sizeof(double));
        p->win[d] = lm_malloc("jerald.tables", (size_t)len * sizeof(double));
        for (int i = 0; i < len; i++) {
            double k = p->kf * (d == 2 ? i : fft_signed_index(i, l->n[d]));
            double kk[3] = {k, 0, 0}, hh[3] = {h, h, h};
            p->grad[d][i] = jerald_gradient_kernel(order, k, h);
            p->win[d][i] = cic_window(kk, hh);
        }
    }
}

/* A table costs n_m2 evaluations on every rank; per-mode evaluation costs one per local mode.
 * Take the cheaper (the values are the same function of m² either way). */
static void make_radial_tables(struct jerald_plan *p)
{
    int64_t half = p->n / 2;
    p->n_m2 = 3 * half * half + 1;
    int64_t modes =
        (int64_t)p->layout->nk * p->layout->n[p->layout->transposed ? 0 : 1] * p->layout->nkz;
    bool use = p->n_m2 <= RADIAL_TABLE_MAX && p->n_m2 <= modes;
    for (int s = 0; s < 2; s++)
        p->table[s] = use ? lm_malloc("jerald.tables", (size_t)p->n_m2 * sizeof(double)) : NULL;
}

struct jerald_plan *jerald_plan_create(int n_mesh, double box_size, int gradient_order,
                                       const struct power_options *power, MPI_Comm comm)
{
    struct jerald_plan *p = lm_calloc("jerald.plan", 1, sizeof *p);
    int n[3] = {n_mesh, n_mesh, n_mesh};
    double box[3] = {box_size, box_size, box_size};
    struct power_options o = *power;
    o.interlace = false;
    p->power = power_plan_create(n, box, &o, comm);
    p->fft = power_plan_fft(p->power);
    p->layout = fft_layout(p->fft);
    p->comm = fft_comm(p->fft);
    p->paint = paint_plan_create(p->fft, 3, comm);
    p->n = n_mesh;
    p->box = box_size;
    p->kf = 2 * M_PI / box_size;
    p->compensate = power->compensate;
    for (int f = 0; f < 3; f++)
        p->mesh[f] = fft_alloc(p->fft, "jerald.mesh");
    jerald_plan_set_readout_chunk(p, READOUT_CHUNK);
    make_axis_tables(p, gradient_order);
    make_radial_tables(p);
    return p;
}

void jerald_plan_destroy(struct jerald_plan **plan)
{
    struct jerald_plan *p = *plan;
    if (!p)
        return;
    for (int d = 0; d < 3; d++) {
        lm_free(p->mesh[d]);
        lm_free(p->grad[d]);
        lm_free(p->win[d]);
        lm_free(p->disp[d]);
    }
    for (int s = 0; s < 2; s++)
        lm_free(p->table[s]);
    migrate_plan_destroy(&p->migrate);
    paint_plan_destroy(&p->paint);
    power_plan_destroy(&p->power);
    lm_free(p);
    *plan = NULL;
}

void jerald_plan_set_readout_chunk(struct jerald_plan *plan, int64_t n)
{
    CHECK(n >= 1, "jerald: readout chunk of %lld particles", (long long)n);
    for (int d = 0; d < 3; d++) {
        lm_free(plan->disp[d]);
        plan->disp[d] = lm_calloc("jerald.readout", (size_t)n, sizeof(float)); /* touched now */
    }
    plan->chunk = n;
}

void jerald_plan_reserve(struct jerald_plan *plan, struct particles *parts)
{
    paint_plan_reserve(plan->paint, parts->cap);
    if (comm_size(plan->comm) == 1 || plan->migrate)
        return; /* one rank migrates nothing; a plan made earlier keeps its room */
    plan->migrate = migrate_plan_create(jerald_plan_decomp(plan), parts, plan->box);
    migrate_plan_reserve(plan->migrate, parts->cap);
}

const struct decomp *jerald_plan_decomp(const struct jerald_plan *plan)
{
    return paint_plan_decomp(plan->paint);
}

const struct fft_plan *jerald_plan_fft(const struct jerald_plan *plan) { return plan->fft; }

int jerald_plan_n_bins(const struct jerald_plan *plan) { return power_plan_n_bins(plan->power); }

void jerald_plan_bins(const struct jerald_plan *plan, double *kmin, double *dk, double *kmax)
{
    *kmin = power_plan_kmin(plan->power);
    *dk = power_plan_dk(plan->power);
    *kmax = power_plan_kmax(plan->power);
}

float *jerald_mesh_alloc(const struct jerald_plan *plan, const char *label)
{
    return fft_alloc(plan->fft, label);
}

float *jerald_plan_scratch(struct jerald_plan *plan, int i)
{
    CHECK(i >= 0 && i < 3, "jerald: scratch mesh %d of 3", i);
    return plan->mesh[i];
}

/* ---- k space --------------------------------------------------------------------------------- */

static double radial_value(const struct radial *r, double k)
{
    double v =
        r->filter ? jerald_depletion_filter(&r->depl, k) : jerald_green(r->form, &r->term, k);
    return r->scale * v;
}

/** Install radial factor s for the next pass (filling its table when the plan keeps one). */
static void set_radial(struct jerald_plan *p, int s, const struct radial *r)
{
    p->radial[s] = *r;
    if (!p->table[s])
        return;
#pragma omp parallel for schedule(static)
    for (int64_t m2 = 0; m2 < p->n_m2; m2++)
        p->table[s][m2] = radial_value(r, p->kf * sqrt((double)m2));
}

static inline double radial_at(const struct jerald_plan *p, int s, int64_t m2)
{
    return p->table[s] ? p->table[s][m2] : radial_value(&p->radial[s], p->kf * sqrt((double)m2));
}

static inline int64_t mode_m2(const struct fft_kiter *it)
{
    return (int64_t)it->m[0] * it->m[0] + (int64_t)it->m[1] * it->m[1] +
           (int64_t)it->m[2] * it->m[2];
}

/* Compute kernel: φ_k = r0 A_k (+ r1 B_k), then the three gradient components −i D(k_d) φ_k
 * into mesh[1] (x), mesh[2] (y) and mesh[0] (z) in one pass. B is mesh[1] (read before it is
 * overwritten at each mode). */
static void kspace_gradient(struct jerald_plan *p, bool two_terms)
{
    float *a = p->mesh[0], *b = p->mesh[1], *c = p->mesh[2];
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            int64_t m2 = mode_m2(&it);
            double f0 = radial_at(p, 0, m2);
            double re = f0 * a[j], im = f0 * a[j + 1];
            if (two_terms) {
                double f1 = radial_at(p, 1, m2);
                re += f1 * b[j];
                im += f1 * b[j + 1];
            }
            double dx = p->grad[0][it.i[0]], dy = p->grad[1][it.i[1]], dz = p->grad[2][it.i[2]];
            b[j] = (float)(dx * im);
            b[j + 1] = (float)(-dx * re);
            c[j] = (float)(dy * im);
            c[j + 1] = (float)(-dy * re);
            a[j] = (float)(dz * im);
            a[j + 1] = (float)(-dz * re);
        }
    }
}

/* Compute kernel: A_k *= r0(|k|). */
static void kspace_scale(struct jerald_plan *p, float *a)
{
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            double f = radial_at(p, 0, mode_m2(&it));
            a[j] = (float)(f * a[j]);
            a[j + 1] = (float)(f * a[j + 1]);
        }
    }
}

/* ---- real space ------------------------------------------------------------------------------ */

/** Floats of the local real slab, padding of the z rows included. */
static size_t slab_floats(const struct jerald_plan *p)
{
    return (size_t)p->layout->rnx * (size_t)p->layout->n[1] * (size_t)p->layout->row;
}

static int64_t global_count(const struct jerald_plan *p, const struct particles *parts)
{
    int64_t n = parts->n;
    comm_sum_int64(p->comm, &n, 1);
    return n;
}

/** mesh[0] = CIC paint of the particles (unit mass) · N^3 / N_part. */
static void paint_density(struct jerald_plan *p, const struct particles *parts)
{
    double n3 = (double)p->n * p->n * p->n;
    float norm = (float)(n3 / (double)global_count(p, parts));
    struct cic_points pts = {.n = parts->n};
    for (int d = 0; d < 3; d++)
        pts.x[d] = parts->x[d];
    timer_start("jerald.paint");
    paint_execute(p->paint, 1, &p->mesh[0], &pts, 0.0);
    float *m = p->mesh[0];
    size_t n = slab_floats(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        m[i] *= norm;
    timer_stop("jerald.paint");
}

/* Compute kernel: out = (in + eps)^γ over the slab (padding included: it is never read). */
static void source_power(const struct jerald_plan *p, const float *in, float *out, double gamma,
                         float eps)
{
    size_t n = slab_floats(p);
    if (gamma == 0.5) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            out[i] = sqrtf(in[i] + eps);
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            out[i] = jerald_powf(in[i] + eps, gamma);
    }
}

/* The sum runs plane by plane (each plane's rows in order, threads take planes) and the plane
 * sums are added in plane order: the same for any number of threads. */
double jerald_mesh_mean(const struct jerald_plan *p, const float *mesh)
{
    const struct fft_layout *l = p->layout;
    double *plane = lm_malloc("jerald.mean", (size_t)(l->rnx > 0 ? l->rnx : 1) * sizeof(double));
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < l->rnx; i++) {
        double sum = 0;
        for (int j = 0; j < l->n[1]; j++) {
            const float *row = mesh + (i * l->n[1] + j) * l->row;
            double s = 0;
            for (int k = 0; k < l->n[2]; k++)
                s += row[k];
            sum += s;
        }
        plane[i] = sum;
    }
    double sum = 0;
    for (ptrdiff_t i = 0; i < l->rnx; i++)
        sum += plane[i];
    lm_free(plane);
    comm_sum_double(p->comm, &sum, 1);
    return sum / ((double)l->n[0] * l->n[1] * l->n[2]);
}

/* ---- one layer ------------------------------------------------------------------------------- */

static inline float wrap_coord(double x, double box)
{
    if (x < 0)
        x += box;
    else if (x >= box)
        x -= box;
    if (x < 0 || x >= box)
        x -= box * floor(x / box);
    float f = (float)x;
    return f >= (float)box ? 0.0f : f;
}

/** Particles displaced at once (a vectorisable loop). */
enum { DISPLACE_BLOCK = 256 };

/* Compute kernel: x += g for n particles from first, wrapped into [0, L) as wrap_coord does:
 * block by block, the one-box wrap as selects in a vectorisable loop, and a point still outside
 * (a displacement beyond a box length) wrapped by wrap_coord afterwards. */
static void displace(const struct jerald_plan *p, struct particles *parts, int64_t first, int64_t n)
{
    const double box = p->box;
    const float fbox = (float)box;
    for (int d = 0; d < 3; d++) {
        float *x = parts->x[d] + first;
        const float *g = p->disp[d];
#pragma omp parallel for schedule(static)
        for (int64_t i0 = 0; i0 < n; i0 += DISPLACE_BLOCK) {
            const int m = n - i0 < DISPLACE_BLOCK ? (int)(n - i0) : DISPLACE_BLOCK;
            float out[DISPLACE_BLOCK];
            int far = 0;
            for (int k = 0; k < m; k++) {
                double y = (double)x[i0 + k] + g[i0 + k];
                y = y < 0 ? y + box : y >= box ? y - box : y;
                far |= (y < 0) | (y >= box);
                float f = (float)y;
                out[k] = f >= fbox ? 0.0f : f;
            }
            for (int k = 0; far && k < m; k++) {
                double y = (double)x[i0 + k] + g[i0 + k];
                out[k] = wrap_coord(y, box);
            }
            memcpy(x + i0, out, (size_t)m * sizeof(float));
        }
    }
}

/** Read the gradient (mesh[1], mesh[2], mesh[0] = x, y, z) at the particles, the three
 *  components in one pass, chunk by chunk (every rank makes the same number of collective
 *  readouts), displace them periodically and migrate those that left this rank's slab. */
static void readout_displace(struct jerald_plan *p, struct particles *parts)
{
    int64_t chunk = p->chunk;
    double n_calls = (double)((parts->n + chunk - 1) / chunk);
    comm_max_double(p->comm, &n_calls, 1);
    float *fields[3] = {p->mesh[1], p->mesh[2], p->mesh[0]};
    for (int64_t c = 0, first = 0; c < (int64_t)n_calls; c++, first += chunk) {
        int64_t n = first < parts->n ? parts->n - first : 0;
        struct cic_points pts = {.n = n < chunk ? n : chunk};
        for (int d = 0; d < 3; d++)
            pts.x[d] = parts->x[d] + (first < parts->n ? first : 0);
        timer_start("jerald.readout");
        paint_readout(p->paint, 3, fields, &pts, 0.0, p->disp);
        timer_stop("jerald.readout");
        timer_start("jerald.displace");
        displace(p, parts, first, pts.n);
        timer_stop("jerald.displace");
    }
    if (comm_size(p->comm) == 1)
        return; /* one rank owns every slab: nothing can leave */
    timer_start("jerald.migrate");
    if (p->migrate)
        migrate_plan_update(p->migrate, jerald_plan_decomp(p), parts, p->box);
    else
        p->migrate = migrate_plan_create(jerald_plan_decomp(p), parts, p->box);
    migrate_execute(p->migrate, parts);
    timer_stop("jerald.migrate");
}

static void fft_forward(struct jerald_plan *p, int n, float *const m[])
{
    timer_start("jerald.fft");
    for (int i = 0; i < n; i++)
        fft_r2c(p->fft, m[i]);
    timer_stop("jerald.fft");
}

static void fft_backward(struct jerald_plan *p, int n, float *const m[])
{
    timer_start("jerald.fft");
    for (int i = 0; i < n; i++)
        fft_c2r(p->fft, m[i]);
    timer_stop("jerald.fft");
}

/** The radial factors of layer l of map m: s α G(k) / N^3 per term (the HI stellar term with its
 *  minus sign: it repels). */
static void layer_radials(struct jerald_plan *p, const struct jerald_map *m,
                          const struct jerald_layer *l)
{
    double n3 = (double)p->n * p->n * p->n;
    bool hi = m->model == JERALD_MODEL_HI;
    double s = hi ? JERALD_SCALE_HI : JERALD_SCALE;
    struct radial r = {.form = hi ? JERALD_GREEN_SM : m->green,
                       .term = l->density,
                       .scale = s * l->density.alpha / n3};
    set_radial(p, 0, &r);
    if (!hi)
        return;
    r.form = JERALD_GREEN_SM;
    r.term = l->repel;
    r.scale = -s * l->repel.alpha / n3;
    set_radial(p, 1, &r);
}

void jerald_layer_execute(struct jerald_plan *p, const struct jerald_map *m, int layer,
                          struct particles *parts, const float *stellar)
{
    const struct jerald_layer *l = &m->layer[layer];
    bool hi = m->model == JERALD_MODEL_HI;
    CHECK(!hi || stellar, "jerald: the hi map '%s' runs without its stellar map", m->name);
    paint_density(p, parts);
    timer_start("jerald.source");
    source_power(p, p->mesh[0], p->mesh[0], l->density.gamma, (float)JERALD_RHO_EPS);
    if (hi)
        source_power(p, stellar, p->mesh[1], l->repel.gamma, 0.0f);
    timer_stop("jerald.source");
    fft_forward(p, hi ? 2 : 1, p->mesh);
    timer_start("jerald.kspace");
    layer_radials(p, m, l);
    kspace_gradient(p, hi);
    timer_stop("jerald.kspace");
    fft_backward(p, 3, p->mesh);
    readout_displace(p, parts);
}

/* ---- final maps ------------------------------------------------------------------------------ */

/* Compute kernel: mesh[0] = M* from ρ in place. */
static void final_stellar(struct jerald_plan *p, const struct jerald_map *m)
{
    float *a = p->mesh[0];
    size_t n = slab_floats(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        a[i] = jerald_stellar_value(&m->final, a[i]);
}

/** Global mean of max(M*, 1e-12) over the mesh. */
static double stellar_floor_mean(struct jerald_plan *p, const float *stellar, float *scratch)
{
    size_t n = slab_floats(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        scratch[i] = stellar[i] > (float)JERALD_FLOOR ? stellar[i] : (float)JERALD_FLOOR;
    return jerald_mesh_mean(p, scratch);
}

/* mesh[0] (ρ_out) becomes the HI map; mesh[1] holds the filtered normalised stellar map. */
static void final_hi(struct jerald_plan *p, const struct jerald_map *m, const float *stellar)
{
    float *rho = p->mesh[0], *f = p->mesh[1];
    double mean = stellar_floor_mean(p, stellar, f);
    CHECK(mean > 0, "jerald: the stellar map of '%s' has mean %g", m->name, mean);
    float inv = (float)(1.0 / mean);
    size_t n = slab_floats(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        f[i] *= inv;
    fft_forward(p, 1, &f);
    struct radial r = {.filter = true, .depl = m->depletion};
    r.scale = 1.0 / ((double)p->n * p->n * p->n);
    timer_start("jerald.kspace");
    set_radial(p, 0, &r);
    kspace_scale(p, f);
    timer_stop("jerald.kspace");
    fft_backward(p, 1, &f);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float s = stellar[i] > (float)JERALD_FLOOR ? stellar[i] : (float)JERALD_FLOOR;
        rho[i] = jerald_hi_value(&m->final, &m->depletion, rho[i], f[i], s * inv);
    }
}

float *jerald_map_execute(struct jerald_plan *p, const struct jerald_map *m,
                          struct particles *parts, const float *stellar)
{
    for (int i = 0; i < m->n_layers; i++) {
        double t0 = timer_now();
        jerald_layer_execute(p, m, i, parts, stellar);
        msg_info("jerald: map %s: layer %d/%d in %.3f s", m->name, i + 1, m->n_layers,
                 timer_now() - t0);
    }
    paint_density(p, parts);
    timer_start("jerald.final");
    if (m->model == JERALD_MODEL_STELLAR)
        final_stellar(p, m);
    else if (m->model == JERALD_MODEL_HI)
        final_hi(p, m, stellar);
    timer_stop("jerald.final");
    return p->mesh[0];
}

/* ---- spectra --------------------------------------------------------------------------------- */

/* Compute kernel: δ_k = FFT(map)/(N^3 mean), compensated, DC removed. */
static void spectrum_normalise(struct jerald_plan *p, float *c, double mean)
{
    double norm = 1.0 / ((double)p->n * p->n * p->n * mean);
    const ptrdiff_t n_rows = fft_kiter_n_rows(p->layout);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, p->layout, r, r + 1); !it.done; fft_kiter_next(&it)) {
            ptrdiff_t j = 2 * it.index;
            double f = norm;
            if (p->compensate)
                f /= p->win[0][it.i[0]] * p->win[1][it.i[1]] * p->win[2][it.i[2]];
            if (it.k2 == 0)
                f = 0;
            c[j] = (float)(c[j] * f);
            c[j + 1] = (float)(c[j + 1] * f);
        }
    }
}

bool jerald_map_spectrum(struct jerald_plan *p, float *map, struct power_spectrum *out)
{
    double mean = jerald_mesh_mean(p, map);
    if (!(mean > 0))
        return false;
    fft_forward(p, 1, &map);
    timer_start("jerald.power");
    spectrum_normalise(p, map, mean);
    power_measure(p->power, 1, &map, &map, out);
    timer_stop("jerald.power");
    return true;
}
