#include "linear_power.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "params.h"
#include "quad.h"

/* The σ(R) integral of the EH sources runs over [SIGMA_KMIN, SIGMA_KMAX] h/Mpc, to SIGMA_EPSREL. */
#define SIGMA_KMIN   1e-5
#define SIGMA_KMAX   1e3
#define SIGMA_EPSREL 1e-10
/* A table normalised to σ8 must reach below NORM_KMIN and above NORM_KMAX (h/Mpc): the parts of
 * the σ8 integral it would miss are then below 1e-4 of σ8^2 for ΛCDM spectra. */
#define NORM_KMIN 2e-3
#define NORM_KMAX 2.0
/* π, and the radius of σ8 [Mpc/h]. */
#define LP_PI    3.14159265358979323846
#define SIGMA8_R 8.0

static const struct {
    enum linear_power_source source;
    const char *name;
} source_names[] = {
    {LINEAR_POWER_EH, "eh"},
    {LINEAR_POWER_EH_NOWIGGLE, "eh_nowiggle"},
    {LINEAR_POWER_TABLE_POWER, "table_power"},
    {LINEAR_POWER_TABLE_TRANSFER, "table_transfer"},
};
enum { N_SOURCE_NAMES = sizeof source_names / sizeof source_names[0] };

bool linear_power_source_parse(const char *name, enum linear_power_source *out)
{
    for (int i = 0; i < N_SOURCE_NAMES; i++)
        if (strcmp(name, source_names[i].name) == 0) {
            *out = source_names[i].source;
            return true;
        }
    return false;
}

const char *linear_power_source_name(enum linear_power_source source)
{
    for (int i = 0; i < N_SOURCE_NAMES; i++)
        if (source_names[i].source == source)
            return source_names[i].name;
    return "unknown";
}

static bool source_is_table(enum linear_power_source s)
{
    return s == LINEAR_POWER_TABLE_POWER || s == LINEAR_POWER_TABLE_TRANSFER;
}

double linear_power_window_tophat(double x)
{
    if (fabs(x) < 0.1) {
        /* 3(sin x − x cos x)/x^3 = 1 − x^2/10 + x^4/280 − x^6/15120 + x^8/1330560 − ... */
        double y = x * x;
        return 1.0 + y * (-1.0 / 10 + y * (1.0 / 280 + y * (-1.0 / 15120 + y / 1330560)));
    }
    return 3.0 * (sin(x) - x * cos(x)) / (x * x * x);
}

double linear_power_eval(const struct linear_power *lp, double k)
{
    if (!(k > 0))
        return 0.0;
    double T = 0.0;
    switch (lp->source) {
    case LINEAR_POWER_EH:
        T = linear_power_eh_transfer(&lp->eh, k);
        break;
    case LINEAR_POWER_EH_NOWIGGLE:
        T = linear_power_eh_nowiggle(&lp->eh, k);
        break;
    case LINEAR_POWER_TABLE_TRANSFER:
        T = exp(linear_power_table_interp(&lp->table, log(k)));
        break;
    case LINEAR_POWER_TABLE_POWER:
        return lp->amplitude * exp(linear_power_table_interp(&lp->table, log(k)));
    }
    return lp->amplitude * pow(k, lp->cosmo.n_s) * T * T;
}

bool linear_power_check_range(const struct linear_power *lp, double kmin, double kmax,
                              struct lm_err *err)
{
    const double slack = 1e-9;
    if (kmin >= lp->k_min * (1.0 - slack) && kmax <= lp->k_max * (1.0 + slack))
        return true;
    return lm_err_set(err,
                      "power table '%s' covers k = %g to %g h/Mpc, but k = %g to %g h/Mpc is "
                      "needed: extend the table to cover that range",
                      lp->table.name ? lp->table.name : "(none)", lp->k_min, lp->k_max, kmin, kmax);
}

struct sigma_ctx {
    const struct linear_power *lp;
    double R;
};

/* dσ^2/dln k = k^3 P(k) W(kR)^2 / (2π^2). */
static double sigma_integrand(double ln_k, void *p)
{
    const struct sigma_ctx *s = p;
    double k = exp(ln_k), W = linear_power_window_tophat(k * s->R);
    return k * k * k * linear_power_eval(s->lp, k) * W * W / (2.0 * LP_PI * LP_PI);
}

/* σ^2(R) over the source's range; tables are integrated row segment by row segment (the integrand
 * is smooth within each). Returns false when the quadrature misses its accuracy noticeably. */
static bool sigma2_integrate(const struct linear_power *lp, double R, double *sigma2)
{
    struct sigma_ctx s = {lp, R};
    double sum = 0.0, err_sum = 0.0, part = 0.0, abserr = 0.0;
    if (!source_is_table(lp->source)) {
        quad_integrate(sigma_integrand, &s, log(SIGMA_KMIN), log(SIGMA_KMAX), SIGMA_EPSREL, &sum,
                       &err_sum);
    } else {
        for (int i = 0; i + 1 < lp->table.n_rows; i++) {
            quad_integrate(sigma_integrand, &s, lp->table.ln_k[i], lp->table.ln_k[i + 1],
                           SIGMA_EPSREL, &part, &abserr);
            sum += part;
            err_sum += abserr;
        }
    }
    *sigma2 = sum;
    return err_sum <= 1e-8 * fabs(sum);
}

double linear_power_sigma(const struct linear_power *lp, double R)
{
    double sigma2 = 0.0;
    if (!sigma2_integrate(lp, R, &sigma2))
        msg_warn_local("sigma(R = %g Mpc/h) of the %s power spectrum is inaccurate", R,
                       linear_power_source_name(lp->source));
    return sqrt(sigma2);
}

/* A transfer table in CLASS's native format (δ/R without CAMB's division by k^2) rises as k^2 at
 * small k; CAMB's convention is flat there. Reject the former instead of silently mis-tilting. */
static bool table_check_transfer_convention(const struct linear_power *lp, struct lm_err *err)
{
    const struct linear_power_table *t = &lp->table;
    if (t->ln_k[0] > log(1e-2))
        return true; /* no rows on the flat part: nothing to tell from */
    int j = 1;
    while (j + 1 < t->n_rows && t->ln_k[j] < t->ln_k[0] + log(10.0))
        j++;
    double slope = (t->ln_v[j] - t->ln_v[0]) / (t->ln_k[j] - t->ln_k[0]);
    if (slope < 1.0)
        return true;
    return lm_err_set(err,
                      "%s: T(k) rises as k^%.2f at the low-k end; expected CAMB's convention (T "
                      "flat at small k). CLASS writes that with format = camb",
                      t->name, slope);
}

/* Scale the amplitude so that σ8 equals the cosmology's. */
static bool power_normalise(struct linear_power *lp, struct lm_err *err)
{
    if (source_is_table(lp->source) && (lp->k_min > NORM_KMIN || lp->k_max < NORM_KMAX))
        return lm_err_set(err,
                          "%s: normalising to sigma8 needs the table to cover k = %g to %g h/Mpc, "
                          "but it covers %g to %g h/Mpc (extend it, or take the power table as "
                          "is with normalise = false)",
                          lp->table.name, NORM_KMIN, NORM_KMAX, lp->k_min, lp->k_max);
    double sigma2 = 0.0;
    lp->amplitude = 1.0;
    if (!sigma2_integrate(lp, SIGMA8_R, &sigma2) || !(sigma2 > 0))
        return lm_err_set(err, "%s: the sigma8 integral of the %s power spectrum did not converge",
                          lp->table.name ? lp->table.name : "linear power",
                          linear_power_source_name(lp->source));
    lp->amplitude = lp->cosmo.sigma8 * lp->cosmo.sigma8 / sigma2;
    lp->sigma8 = lp->cosmo.sigma8;
    return true;
}

/* Everything after the table (if any) is in place: coefficients, range, normalisation. */
static bool power_setup(struct linear_power *lp, const struct linear_power_params *p,
                        struct lm_err *err)
{
    linear_power_eh_setup(&lp->eh, &lp->cosmo);
    lp->amplitude = 1.0;
    lp->k_min = 0.0;
    lp->k_max = HUGE_VAL;
    if (source_is_table(lp->source)) {
        lp->k_min = exp(lp->table.ln_k[0]);
        lp->k_max = exp(lp->table.ln_k[lp->table.n_rows - 1]);
    }
    if (lp->source == LINEAR_POWER_TABLE_TRANSFER && !table_check_transfer_convention(lp, err))
        return false;
    if (lp->source != LINEAR_POWER_TABLE_POWER || p->normalise)
        return power_normalise(lp, err);
    lp->sigma8 = linear_power_sigma(lp, SIGMA8_R);
    return true;
}

/* Create from an already parsed table (or none); takes the table's rows. */
static struct linear_power *power_create(const struct cosmology *c,
                                         const struct linear_power_params *p,
                                         struct linear_power_table *table, struct lm_err *err)
{
    struct linear_power *lp = lm_calloc("linear_power", 1, sizeof *lp);
    lp->cosmo = *c;
    lp->source = p->source;
    if (table) {
        lp->table = *table;
        *table = (struct linear_power_table){0};
    }
    if (!power_setup(lp, p, err))
        linear_power_destroy(&lp);
    return lp;
}

/* The value column and kind of a table source; false (with err) when the options are unusable. */
static bool table_options(const struct linear_power_params *p, int *column, struct lm_err *err)
{
    *column = p->column ? p->column : 2;
    if (!p->table || !p->table[0])
        return lm_err_set(err, "the %s source of the linear power needs a table file",
                          linear_power_source_name(p->source));
    if (*column < 2)
        return lm_err_set(err, "%s: column %d: expected the value column, 2 or above (k is 1)",
                          p->table, *column);
    return true;
}

struct linear_power *linear_power_create(const struct cosmology *c,
                                         const struct linear_power_params *p, struct lm_err *err)
{
    if (!source_is_table(p->source))
        return power_create(c, p, NULL, err);
    int column = 0;
    struct linear_power_table t;
    if (!table_options(p, &column, err) ||
        !linear_power_table_read(&t, p->table, column, p->source == LINEAR_POWER_TABLE_TRANSFER,
                                 err))
        return NULL;
    return power_create(c, p, &t, err);
}

struct linear_power *linear_power_create_from_text(const struct cosmology *c,
                                                   const struct linear_power_params *p,
                                                   const char *text, struct lm_err *err)
{
    ASSERT(source_is_table(p->source));
    int column = 0;
    struct linear_power_table t;
    if (!table_options(p, &column, err) ||
        !linear_power_table_parse(&t, text, p->table, column,
                                  p->source == LINEAR_POWER_TABLE_TRANSFER, err))
        return NULL;
    return power_create(c, p, &t, err);
}

void linear_power_destroy(struct linear_power **lp)
{
    if (!lp || !*lp)
        return;
    linear_power_table_free(&(*lp)->table);
    lm_free(*lp);
    *lp = NULL;
}

struct linear_power_params linear_power_params_from(const struct params *p)
{
    const struct cosmology_params *c = &p->cosmology;
    struct linear_power_params lp = {.source =
                                         c->wiggles ? LINEAR_POWER_EH : LINEAR_POWER_EH_NOWIGGLE,
                                     .table = c->power_table,
                                     .column = (int)c->power_table_column,
                                     .normalise = c->normalise};
    if (*c->power_table)
        lp.source = strcmp(c->power_table_kind, "transfer") == 0 ? LINEAR_POWER_TABLE_TRANSFER
                                                                 : LINEAR_POWER_TABLE_POWER;
    return lp;
}
