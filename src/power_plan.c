/* power_plan — power spectra of particle sets on distributed meshes (power_plan.h). */
#include "power_plan.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "cic.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/paint.h"
#include "timer.h"
struct power_plan {
    struct power_options o;
    struct fft_plan *fft;
    struct paint_plan *paint;
    double h[3], volume;
    int n_bins;
    double kmin, dk, kmax;
    float *scratch;   /**< second mesh of interlacing (NULL without) */
    double *win[3];   /**< per-axis CIC window sinc^2(k h / 2), by global index */
    double *phase[3]; /**< per-axis interlacing phase e^{-i k h / 2} as (cos, sin) pairs */
    double *acc;      /**< (2 + POWER_N_ELL) n_bins sums: weight, weight |k|, weight P_ℓ */
    int64_t n_blocks, block_rows; /**< binning blocks of the local k-space rows */
    double *partial;              /**< n_blocks x (2 + POWER_N_ELL) n_bins sums per block */
    double *sum_blocks;           /**< 3 particle sums per block of POWER_SUM_BLOCK particles */
    int64_t cap_sum_blocks;       /**< blocks sum_blocks has room for */
    struct {
        bool valid;        /**< the last painting was power_density of the points below and
                                left the painter with their order at shift 0 */
        int64_t n;         /**< their count */
        const float *x[3]; /**< their position arrays */
    } kept;                /**< what power_momentum_same_points may reuse */
};

/** Most blocks the local k-space rows are binned in (their partial sums are kept). */
#define POWER_MAX_BLOCKS 256

static void make_tables(struct power_plan *p)
{
    const struct fft_layout *l = fft_layout(p->fft);
    for (int d = 0; d < 3; d++) {
        int len = d == 2 ? (int)l->nkz : l->n[d];
        p->win[d] = lm_malloc("power.tables", (size_t)len * sizeof(double));
        p->phase[d] = lm_malloc("power.tables", 2 * (size_t)len * sizeof(double));
        for (int i = 0; i < len; i++) {
            int m = d == 2 ? i : fft_signed_index(i, l->n[d]);
            double k = 2 * M_PI * m / l->box[d];
            double one[3] = {0, 0, 0}, kk[3] = {0, 0, 0};
            one[d] = p->h[d];
            kk[d] = k;
            p->win[d][i] = cic_window(kk, one);
            p->phase[d][2 * i] = cos(-0.5 * k * p->h[d]);
            p->phase[d][2 * i + 1] = sin(-0.5 * k * p->h[d]);
        }
    }
}

struct power_plan *power_plan_create(const int n[3], const double box[3],
                                     const struct power_options *o, MPI_Comm comm)
{
    struct lm_err err = {{0}};
    power_options_check(o, n, box, &err);
    comm_agree(comm, &err);
    struct power_plan *p = lm_calloc("power.plan", 1, sizeof *p);
    p->o = *o;
    p->fft = fft_plan_create(n, box, FFT_PRECISION_FLOAT, o->fft_flags, NULL, comm);
    p->paint = paint_plan_create(p->fft, 3, comm);
    if (o->interlace)
        paint_plan_interlace(p->paint);
    p->volume = box[0] * box[1] * box[2];
    for (int d = 0; d < 3; d++)
        p->h[d] = box[d] / n[d];
    p->n_bins = power_bins(o, n, box, &p->kmin, &p->dk, &p->kmax);
    p->scratch = o->interlace ? power_mesh_alloc(p, "power.interlace") : NULL;
    size_t n_sums = (size_t)(2 + POWER_N_ELL) * p->n_bins;
    p->acc = lm_malloc("power.bins", n_sums * sizeof(double));
    int64_t rows = fft_kiter_n_rows(fft_layout(p->fft));
    p->block_rows = (rows + POWER_MAX_BLOCKS - 1) / POWER_MAX_BLOCKS;
    p->block_rows = p->block_rows > 0 ? p->block_rows : 1;
    p->n_blocks = (rows + p->block_rows - 1) / p->block_rows;
    p->partial = lm_malloc("power.bins",
                           (size_t)(p->n_blocks > 0 ? p->n_blocks : 1) * n_sums * sizeof(double));
    make_tables(p);
    return p;
}

void power_plan_destroy(struct power_plan **plan)
{
    struct power_plan *p = *plan;
    if (!p)
        return;
    for (int d = 0; d < 3; d++) {
        lm_free(p->win[d]);
        lm_free(p->phase[d]);
    }
    lm_free(p->acc);
    lm_free(p->partial);
    lm_free(p->sum_blocks);
    lm_free(p->scratch);
    paint_plan_destroy(&p->paint);
    fft_plan_destroy(&p->fft);
    lm_free(p);
    *plan = NULL;
}

const struct decomp *power_plan_decomp(const struct power_plan *p)
{
    return paint_plan_decomp(p->paint);
}
const struct fft_plan *power_plan_fft(const struct power_plan *p) { return p->fft; }
int power_plan_n_bins(const struct power_plan *p) { return p->n_bins; }
double power_plan_kmin(const struct power_plan *p) { return p->kmin; }
double power_plan_dk(const struct power_plan *p) { return p->dk; }
double power_plan_kmax(const struct power_plan *p) { return p->kmax; }
double power_plan_volume(const struct power_plan *p) { return p->volume; }

float *power_mesh_alloc(const struct power_plan *p, const char *label)
{
    return fft_alloc(p->fft, label);
}

/** Normalise, interlace and compensate the mode it of c. */
static inline void finish_mode(const struct power_plan *p, const struct fft_kiter *it, float *c,
                               const float *c2, double norm)
{
    ptrdiff_t j = 2 * it->index;
    double re = c[j], im = c[j + 1];
    if (c2) {
        const double *px = &p->phase[0][2 * it->i[0]], *py = &p->phase[1][2 * it->i[1]],
                     *pz = &p->phase[2][2 * it->i[2]];
        double a = px[0] * py[0] - px[1] * py[1], b = px[0] * py[1] + px[1] * py[0];
        double cr = a * pz[0] - b * pz[1], ci = a * pz[1] + b * pz[0];
        re = 0.5 * (re + c2[j] * cr - c2[j + 1] * ci);
        im = 0.5 * (im + c2[j] * ci + c2[j + 1] * cr);
    }
    double f = norm;
    if (p->o.compensate)
        f /= p->win[0][it->i[0]] * p->win[1][it->i[1]] * p->win[2][it->i[2]];
    if (it->i[0] == 0 && it->i[1] == 0 && it->i[2] == 0)
        f = 0; /* δ = ρ/ρ̄ - 1 has no mean */
    c[j] = (float)(re * f);
    c[j + 1] = (float)(im * f);
}

/* Compute kernel: normalise, interlace and compensate every local mode of c in one pass
 * (threads take rows of modes). */
static void field_finish(const struct power_plan *p, float *c, const float *c2, double norm)
{
    const struct fft_layout *l = fft_layout(p->fft);
    const ptrdiff_t n_rows = fft_kiter_n_rows(l);
#pragma omp parallel for schedule(static)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        struct fft_kiter it;
        for (fft_kiter_begin_rows(&it, l, r, r + 1); !it.done; fft_kiter_next(&it))
            finish_mode(p, &it, c, c2, norm);
    }
}

/** Paint the interlacing copy (shift -0.5) of field f of pts into the scratch mesh, in the
 *  painter's order of pts at shift 0 (no sort). */
static void paint_shifted(struct power_plan *p, const struct cic_points *pts, int f)
{
    struct cic_points one = {.n = pts->n, .w = pts->w, .fw = {pts->fw[f]}};
    memcpy(one.x, pts->x, sizeof one.x);
    timer_start("power.paint");
    paint_execute_same_points(p->paint, 1, &p->scratch, &one, -0.5);
    timer_stop("power.paint");
}

/* Paint n_fields weightings of pts in one pass and take them to k space. With interlacing the
 * shifted copies follow one field at a time through the single scratch mesh, painted in the
 * order of the unshifted pass: one sort serves both shifts. reuse: the painter holds the order
 * of pts at shift 0 (from the last call, see p->kept), so no sort at all. The painter is left
 * with the order of pts at shift 0. */
static void paint_to_k(struct power_plan *p, const struct cic_points *pts, int n_fields,
                       float *const out[], double norm, bool reuse)
{
    timer_start("power.paint");
    if (reuse)
        paint_execute_same_points(p->paint, n_fields, out, pts, 0.0);
    else
        paint_execute(p->paint, n_fields, out, pts, 0.0);
    timer_stop("power.paint");
    for (int f = 0; f < n_fields; f++) {
        if (p->o.interlace)
            paint_shifted(p, pts, f);
        timer_start("power.fft");
        fft_r2c(p->fft, out[f]);
        if (p->scratch)
            fft_r2c(p->fft, p->scratch);
        timer_stop("power.fft");
        timer_start("power.kspace");
        field_finish(p, out[f], p->scratch, norm);
        timer_stop("power.kspace");
    }
}

/** Particles per block of the particle sums: a constant, so the blocks (and the order of every
 *  double sum) do not depend on the thread count. */
#define POWER_SUM_BLOCK 16384

/** Σ w, Σ w^2, Σ w^2 |v|^2 (vel) of particles [a, b) in index order, into s[0..2]. */
static void block_sums(const struct particles *parts, bool vel, int64_t a, int64_t b, double s[3])
{
    double sw = 0, sw2 = 0, sw2v2 = 0;
    for (int64_t i = a; i < b; i++) {
        double w = parts->w ? parts->w[i] : 1.0, v2 = 0;
        for (int d = 0; vel && d < 3; d++)
            v2 += (double)parts->v[d][i] * parts->v[d][i];
        sw += w;
        sw2 += w * w;
        sw2v2 += w * w * v2;
    }
    s[0] = sw;
    s[1] = sw2;
    s[2] = sw2v2;
}

/* Compute kernel: the local particle sums. Threads take blocks of POWER_SUM_BLOCK particles, each
 * summed in index order into its own slot; one thread adds the slots in block order, so the sums
 * are bitwise the same for any number of threads. The slots are grown and kept in the plan. */
static void local_sums(struct power_plan *p, const struct particles *parts, bool vel,
                       struct power_sums *s)
{
    const int64_t n = parts->n, n_blocks = (n + POWER_SUM_BLOCK - 1) / POWER_SUM_BLOCK;
    if (n_blocks > p->cap_sum_blocks) {
        lm_free(p->sum_blocks);
        p->sum_blocks = lm_malloc("power.sums", (size_t)n_blocks * 3 * sizeof(double));
        p->cap_sum_blocks = n_blocks;
    }
    double *slots = p->sum_blocks;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n_blocks; k++) {
        int64_t b = (k + 1) * POWER_SUM_BLOCK;
        block_sums(parts, vel, k * POWER_SUM_BLOCK, b < n ? b : n, slots + 3 * k);
    }
    memset(s, 0, sizeof *s);
    s->n_part = (double)n;
    for (int64_t k = 0; k < n_blocks; k++) {
        s->sum_w += slots[3 * k];
        s->sum_w2 += slots[3 * k + 1];
        s->sum_w2v2 += slots[3 * k + 2];
    }
}

static void global_sums(struct power_plan *p, const struct particles *parts, bool vel,
                        struct power_sums *out)
{
    struct power_sums s;
    local_sums(p, parts, vel, &s);
    double v[4] = {s.n_part, s.sum_w, s.sum_w2, s.sum_w2v2};
    comm_sum_double(fft_comm(p->fft), v, 4);
    *out = (struct power_sums){v[0], v[1], v[2], v[3]};
    CHECK(out->sum_w > 0,
          "power: the particles' total weight is %g (%g particles); nothing to "
          "paint",
          out->sum_w, out->n_part);
}

static struct cic_points points_of(const struct particles *parts)
{
    struct cic_points pts = {.n = parts->n, .w = parts->w};
    for (int d = 0; d < 3; d++)
        pts.x[d] = parts->x[d];
    return pts;
}

void power_density(struct power_plan *p, const struct particles *parts, float *out,
                   struct power_sums *sums)
{
    struct power_sums s;
    global_sums(p, parts, false, &s);
    struct cic_points pts = points_of(parts);
    paint_to_k(p, &pts, 1, &out, 1.0 / s.sum_w, false);
    p->kept.valid = true;
    p->kept.n = pts.n;
    memcpy(p->kept.x, pts.x, sizeof p->kept.x);
    if (sums)
        *sums = s;
}

static void momentum(struct power_plan *p, const struct particles *parts, float *const out[3],
                     struct power_sums *sums, bool same_points)
{
    CHECK(parts->fields & PARTICLES_VEL, "power: the momentum spectrum needs velocities");
    struct power_sums s;
    global_sums(p, parts, true, &s);
    struct cic_points pts = points_of(parts);
    for (int d = 0; d < 3; d++)
        pts.fw[d] = parts->v[d];
    paint_to_k(p, &pts, 3, out, 1.0 / s.sum_w, same_points);
    p->kept.valid = false; /* power_momentum_same_points follows power_density only */
    if (sums)
        *sums = s;
}

void power_momentum(struct power_plan *p, const struct particles *parts, float *const out[3],
                    struct power_sums *sums)
{
    momentum(p, parts, out, sums, false);
}

void power_momentum_same_points(struct power_plan *p, const struct particles *parts,
                                float *const out[3], struct power_sums *sums)
{
    bool same = p->kept.valid && p->kept.n == parts->n;
    for (int d = 0; d < 3; d++)
        same = same && p->kept.x[d] == parts->x[d];
    CHECK(same,
          "power: power_momentum_same_points on %lld particles that are not those of the last "
          "power_density on this plan (%lld); use power_momentum",
          (long long)parts->n, (long long)p->kept.n);
    momentum(p, parts, out, sums, true);
}

/** The running sums of one bin (weight, weight k, weight P_ell), held in registers while
 *  consecutive modes fall in it. */
struct bin_run {
    int bin;
    double w, wk, wp[POWER_N_ELL];
};

static void run_load(struct bin_run *r, int bin, const double *sums, int nb, int n_ell)
{
    r->bin = bin;
    r->w = sums[bin];
    r->wk = sums[nb + bin];
    for (int e = 0; e < n_ell; e++)
        r->wp[e] = sums[(2 + e) * nb + bin];
}

static void run_store(const struct bin_run *r, double *sums, int nb, int n_ell)
{
    if (r->bin < 0)
        return;
    sums[r->bin] = r->w;
    sums[nb + r->bin] = r->wk;
    for (int e = 0; e < n_ell; e++)
        sums[(2 + e) * nb + r->bin] = r->wp[e];
}

/** Modes of a row whose bins and values are computed at once (vectorisable loops). */
enum { BIN_CHUNK = 256 };

/** Bin Σ_c Re a_c b_c* over the modes of the row it stands at (z index 0) into the sums of one
 *  block, chunk by chunk: first |k|, bin and value of every mode of the chunk, then the sums in z
 *  order. Each bin's sums take the modes in walk order; while consecutive modes share a bin (most
 *  neighbours along kz do) its sums stay in registers: the same additions in the same order as
 *  adding in memory, and the same arithmetic per mode as fft_kiter_next's. */
static void bin_row(const struct power_plan *p, const struct fft_kiter *it, int n_comp,
                    float *const a[], float *const b[], int n_ell, double *sums, struct bin_run *r)
{
    const int nb = p->n_bins, los = p->o.los;
    const ptrdiff_t nkz = it->l->nkz;
    const double inv_dk = 1 / p->dk, kmin = p->kmin, kxy2 = it->kxy2, kf2 = it->kf[2];
    const double k_row = los < 2 ? it->k[los] : 0;
    double kk[BIN_CHUNK], k2[BIN_CHUNK], klos[BIN_CHUNK], v[BIN_CHUNK];
    int bin[BIN_CHUNK];
    for (ptrdiff_t z0 = 0; z0 < nkz; z0 += BIN_CHUNK) {
        const int m = nkz - z0 < BIN_CHUNK ? (int)(nkz - z0) : BIN_CHUNK;
        const ptrdiff_t j0 = 2 * (it->index + z0);
        for (int q = 0; q < m; q++) {
            double kz = kf2 * (int)(z0 + q);
            k2[q] = kxy2 + kz * kz;
            kk[q] = sqrt(k2[q]);
            double u = (kk[q] - kmin) * inv_dk;
            u += 1e-12 * (fabs(u) + 1);
            bool in = (k2[q] != 0) & (u >= 0) & (u < nb); /* branch-free: the loop vectorises */
            bin[q] = (int)(in ? u : -1.0);
            klos[q] = los == 2 ? kz : k_row;
        }
        for (int q = 0; q < m; q++)
            v[q] = 0;
        for (int c = 0; c < n_comp; c++) {
            const float *ac = a[c] + j0, *bc = b[c] + j0;
            for (int q = 0; q < m; q++)
                v[q] += (double)ac[2 * q] * bc[2 * q] + (double)ac[2 * q + 1] * bc[2 * q + 1];
        }
        for (int q = 0; q < m; q++) {
            if (bin[q] < 0)
                continue;
            if (bin[q] != r->bin) {
                run_store(r, sums, nb, n_ell);
                run_load(r, bin[q], sums, nb, n_ell);
            }
            ptrdiff_t iz = z0 + q;
            double w = iz == 0 ? 1 : (iz == nkz - 1 ? it->w_last : 2);
            r->w += w;
            r->wk += w * kk[q];
            r->wp[0] += w * v[q];
            if (n_ell > 1) {
                double mu2 = klos[q] * klos[q] / k2[q];
                r->wp[1] += w * v[q] * 0.5 * (3 * mu2 - 1);
                r->wp[2] += w * v[q] * 0.125 * ((35 * mu2 - 30) * mu2 + 3);
            }
        }
    }
}

/* Compute kernel: bin the local modes into p->acc. The rows are cut into blocks fixed by the
 * layout alone; threads take blocks, each block sums its modes in row order, and the blocks'
 * sums are added in block order, so the result is bitwise the same for any number of threads. */
static void accumulate(struct power_plan *p, int n_comp, float *const a[], float *const b[],
                       int n_ell)
{
    const struct fft_layout *l = fft_layout(p->fft);
    const size_t n_sums = (size_t)(2 + POWER_N_ELL) * p->n_bins;
    const int64_t n_blocks = p->n_blocks, block = p->block_rows;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < n_blocks; k++) {
        double *sums = p->partial + (size_t)k * n_sums;
        memset(sums, 0, n_sums * sizeof(double));
        struct bin_run r = {.bin = -1};
        for (int64_t row = k * block; row < (k + 1) * block; row++) {
            struct fft_kiter it;
            fft_kiter_begin_rows(&it, l, row, row + 1);
            if (!it.done)
                bin_row(p, &it, n_comp, a, b, n_ell, sums, &r);
        }
        run_store(&r, sums, (int)p->n_bins, n_ell);
    }
    memset(p->acc, 0, n_sums * sizeof(double));
    for (int64_t k = 0; k < n_blocks; k++) {
        const double *sums = p->partial + (size_t)k * n_sums;
        for (size_t i = 0; i < n_sums; i++)
            p->acc[i] += sums[i];
    }
}

void power_measure(struct power_plan *p, int n_comp, float *const a[], float *const b[],
                   struct power_spectrum *out)
{
    CHECK(out->n_bins == p->n_bins, "power: spectrum of %d bins for a plan of %d", out->n_bins,
          p->n_bins);
    timer_start("power.bin");
    accumulate(p, n_comp, a, b, out->n_ell);
    int nb = p->n_bins;
    comm_sum_double(fft_comm(p->fft), p->acc, (2 + out->n_ell) * nb);
    timer_stop("power.bin");
    const double *sw = p->acc, *swk = sw + nb, *swp = swk + nb;
    for (int i = 0; i < nb; i++) {
        out->n_modes[i] = sw[i];
        out->k[i] = sw[i] > 0 ? swk[i] / sw[i] : p->kmin + (i + 0.5) * p->dk;
        for (int e = 0; e < out->n_ell; e++)
            out->P[e][i] = sw[i] > 0 ? (4 * e + 1) * p->volume * swp[e * nb + i] / sw[i] : NAN;
    }
}
