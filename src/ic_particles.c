/* ic_particles — Lagrangian particles displaced by the Zel'dovich (and 2LPT) fields. */
#include "ic.h"

#include <math.h>

/* x wrapped into [0, L) in double, then rounded to float (a value rounding up to L becomes 0). */
static float wrap_position(double x, double box_size)
{
    if (x < 0 || x >= box_size)
        x -= box_size * floor(x / box_size);
    float xf = (float)x;
    return xf >= (float)box_size ? 0.0f : xf;
}

struct lpt_factors {
    double d1, d2;  /**< position factors: D, D² */
    double v1, v2;  /**< velocity factors: a H f D, 2 a H f D² */
    double spacing; /**< L / n */
    double box_size;
};

static struct lpt_factors lpt_factors(const struct cosmology *c, double box_size, int n,
                                      double redshift)
{
    double a = 1.0 / (1.0 + redshift), D = cosmo_growth_D(c, a);
    double vf = cosmo_velocity_factor(c, a);
    return (struct lpt_factors){.d1 = D,
                                .d2 = D * D,
                                .v1 = vf * D,
                                .v2 = 2 * vf * D * D,
                                .spacing = box_size / n,
                                .box_size = box_size};
}

/* Fill particle m from node (i, j, k) at local field offset o. */
static void fill_one(const struct ic_fields *f, const struct lpt_factors *t, int64_t o, int i,
                     int j, int k, int n, struct particles *p, int64_t m)
{
    const int q[3] = {i, j, k};
    for (int d = 0; d < 3; d++) {
        double psi = f->psi[d][o], psi2 = f->psi2[d] ? f->psi2[d][o] : 0.0;
        p->x[d][m] = wrap_position(q[d] * t->spacing + t->d1 * psi + t->d2 * psi2, t->box_size);
        p->v[d][m] = (float)(t->v1 * psi + t->v2 * psi2);
    }
    p->id[m] = ((uint64_t)i * (uint64_t)n + (uint64_t)j) * (uint64_t)n + (uint64_t)k;
}

struct particles *ic_particles_create(const struct ic_fields *f, const struct cosmology *c,
                                      double box_size, double redshift)
{
    const struct fft_layout *l = &f->layout;
    int n = l->n[0];
    int64_t n_local = (int64_t)l->rnx * n * n;
    struct particles *p = particles_create(PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID, n_local);
    particles_resize(p, n_local);
    struct lpt_factors t = lpt_factors(c, box_size, n, redshift);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < (int64_t)l->rnx * n; r++) {
        int i = (int)(l->rx0 + r / n), j = (int)(r % n);
        for (int k = 0; k < n; k++)
            fill_one(f, &t, fft_real_index(l, i, j, k), i, j, k, n, p, r * n + k);
    }
    return p;
}
