/* jerald_adjoint — derivatives of the JERALD formulas, the CIC readout's position derivative and
 * Adam (jerald_adjoint.h). Local and pure. */
#include "jerald_adjoint.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

void jerald_green_grad(enum jerald_green g, const struct jerald_term *t, double k, double out[4])
{
    if (k == 0)
        k = JERALD_K_ZERO;
    double G = jerald_green(g, t, k);
    out[0] = G;
    if (g == JERALD_GREEN_DM) {
        out[1] = -G / k;                  /* ∂/∂kh of −kh/k */
        out[2] = G * k / (t->kl * t->kl); /* ∂/∂kl of −k/kl */
    } else {
        out[1] = -2 * G * t->kh / (k * k);
        out[2] = 2 * G * k * k / (t->kl * t->kl * t->kl);
    }
    out[3] = G * log(k);
}

void jerald_depletion_filter_grad(const struct jerald_depletion *d, double k, double out[5])
{
    if (k == 0)
        k = JERALD_K_ZERO;
    double x = exp(-k / d->kl - d->kh / k);
    double e = x == 0 ? 0.0 : x * pow(k, d->nu);
    out[0] = e + d->xi;
    out[1] = -e / k;
    out[2] = e * k / (d->kl * d->kl);
    out[3] = e * log(k);
    out[4] = 1;
}

/* Compute kernel: per point, the 8-node stencil of cic_readout with the weight of the
 * differentiated axis replaced by ∓1/h; the arithmetic of the cell index is that of cic.c
 * (u = x n / L, lower node floor(u)), so the stencil is the readout's. */
int64_t jerald_cic_readout_grad(const struct cic_slab *s, int n_fields,
                                const struct cic_field *fields, const float *const coef[],
                                const struct cic_points *pts, float *const out[3])
{
    double scale[3];
    for (int d = 0; d < 3; d++)
        scale[d] = (double)s->n[d] / s->box[d];
    const int64_t plane = cic_plane_size(s);
    int64_t n_out = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_out)
    for (int64_t i = 0; i < pts->n; i++) {
        double acc[3] = {0, 0, 0};
        int64_t node[3];
        double t[3];
        for (int d = 0; d < 3; d++) {
            double u = pts->x[d][i] * scale[d];
            double f = floor(u);
            t[d] = (float)(u - f); /* the readout's float weight */
            node[d] = (int64_t)f;
        }
        int64_t lx = node[0] - s->x0;
        if (lx < -1)
            lx += s->n[0];
        else if (lx >= s->nx)
            lx -= s->n[0];
        bool in = s->nx > 0 && lx >= -1 && lx < s->nx;
        n_out += !in;
        for (int d = 1; in && d < 3; d++)
            node[d] = ((node[d] % s->n[d]) + s->n[d]) % s->n[d];
        int64_t y[2], z[2];
        if (in) {
            y[0] = node[1] * s->row;
            y[1] = (node[1] + 1 == s->n[1] ? 0 : node[1] + 1) * s->row;
            z[0] = node[2];
            z[1] = node[2] + 1 == s->n[2] ? 0 : node[2] + 1;
        }
        for (int f = 0; in && f < n_fields; f++) {
            double c = coef[f] ? coef[f][i] : 1.0;
            if (c == 0)
                continue;
            double v[2][2][2];
            for (int a = 0; a < 2; a++) {
                int64_t p = lx + a;
                const float *pl = p < 0        ? fields[f].lo
                                  : p >= s->nx ? fields[f].hi
                                               : fields[f].data + p * plane;
                for (int b = 0; b < 2; b++)
                    for (int e = 0; e < 2; e++)
                        v[a][b][e] = pl[y[b] + z[e]];
            }
            double wx[2] = {1 - t[0], t[0]}, wy[2] = {1 - t[1], t[1]}, wz[2] = {1 - t[2], t[2]};
            double dx = 0, dy = 0, dz = 0;
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++)
                    for (int e = 0; e < 2; e++) {
                        double sx = a ? 1 : -1, sy = b ? 1 : -1, sz = e ? 1 : -1;
                        dx += sx * wy[b] * wz[e] * v[a][b][e];
                        dy += sy * wx[a] * wz[e] * v[a][b][e];
                        dz += sz * wx[a] * wy[b] * v[a][b][e];
                    }
            acc[0] += c * dx * scale[0];
            acc[1] += c * dy * scale[1];
            acc[2] += c * dz * scale[2];
        }
        for (int d = 0; d < 3; d++)
            out[d][i] = (float)acc[d];
    }
    return n_out;
}

double jerald_fit_rate(double t, double eta0, double eta_end, double tau)
{
    return (eta_end - eta0) * (2 / (exp(-t / tau) + 1) - 1) + eta0;
}

void jerald_adam_step(struct jerald_adam *a, double *theta, const double *g, double lr)
{
    a->t++;
    double c1 = 1 - pow(a->beta1, a->t), c2 = 1 - pow(a->beta2, a->t);
    for (int i = 0; i < a->n; i++) {
        a->m[i] = a->beta1 * a->m[i] + (1 - a->beta1) * g[i];
        a->v[i] = a->beta2 * a->v[i] + (1 - a->beta2) * g[i] * g[i];
        theta[i] -= lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + a->eps);
    }
}

/* ---- the trained parameters ------------------------------------------------------------------ */

/** One visit of a trained parameter: its address in m and its name. */
typedef void (*param_visit)(double *v, const char *name, void *ctx);

static void visit_fields(void *base, const struct jerald_field *f, const char *prefix,
                         param_visit fn, void *ctx, bool final_hi)
{
    for (; f->name; f++) {
        if (!final_hi && f == &jerald_final_fields[3])
            continue; /* z_s: HI maps only */
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, f->name);
        fn((double *)((char *)base + f->offset), name, ctx);
    }
}

static void visit_params(struct jerald_map *m, int first, param_visit fn, void *ctx)
{
    bool hi = m->model == JERALD_MODEL_HI;
    for (int l = first; l < m->n_layers; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "layers.%d.", l);
        visit_fields(&m->layer[l].density, jerald_term_fields, prefix, fn, ctx, false);
        if (hi) {
            snprintf(prefix, sizeof prefix, "layers.%d.repel.", l);
            visit_fields(&m->layer[l].repel, jerald_term_fields, prefix, fn, ctx, false);
        }
    }
    if (m->model != JERALD_MODEL_DM)
        visit_fields(&m->final, jerald_final_fields, "final.", fn, ctx, hi);
    if (hi)
        visit_fields(&m->depletion, jerald_depletion_fields, "depletion.", fn, ctx, false);
}

struct pack_ctx {
    double *theta;
    int n, want;
    bool unpack;
    char *name;
    size_t cap;
};

static void pack_one(double *v, const char *name, void *ctx)
{
    struct pack_ctx *c = ctx;
    if (c->name && c->n == c->want)
        snprintf(c->name, c->cap, "%s", name);
    if (c->theta && c->unpack)
        *v = c->theta[c->n];
    else if (c->theta)
        c->theta[c->n] = *v;
    c->n++;
}

static void clamp_scales(double *kh, double *kl)
{
    if (*kh < 0)
        *kh = 0;
    if (*kl < 1e-6)
        *kl = 1e-6;
}

int jerald_fit_pack(const struct jerald_map *m, int first, double *theta)
{
    struct pack_ctx c = {.theta = theta};
    visit_params((struct jerald_map *)m, first, pack_one, &c); /* reads only */
    return c.n;
}

int jerald_fit_unpack(struct jerald_map *m, int first, const double *theta)
{
    struct pack_ctx c = {.theta = (double *)theta, .unpack = true};
    visit_params(m, first, pack_one, &c);
    for (int l = first; l < m->n_layers; l++) {
        clamp_scales(&m->layer[l].density.kh, &m->layer[l].density.kl);
        clamp_scales(&m->layer[l].repel.kh, &m->layer[l].repel.kl);
    }
    if (m->model == JERALD_MODEL_HI)
        clamp_scales(&m->depletion.kh, &m->depletion.kl);
    return c.n;
}

void jerald_fit_param_name(const struct jerald_map *m, int first, int i, char *out, size_t cap)
{
    struct pack_ctx c = {.want = i, .name = out, .cap = cap};
    *out = 0;
    visit_params((struct jerald_map *)m, first, pack_one, &c);
}
