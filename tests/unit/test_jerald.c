/* JERALD layers: Green's functions, gradient kernels, final transformations, and the maps read
 * from parameter files with every validation message (map, layer and parameter named). */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "harness.h"
#include "jerald.h"
#include "params.h"

static const struct jerald_term term = {.alpha = 1, .gamma = 0.5, .kh = 0.7, .kl = 5, .nu = 0.4};

static void test_green_functions(void)
{
    double k = 1.3;
    T_CLOSE(jerald_green(JERALD_GREEN_DM, &term, k), -exp(-k / 5 - 0.7 / k) * pow(k, 0.4), 1e-15);
    T_CLOSE(jerald_green(JERALD_GREEN_SM, &term, k),
            -exp(-k * k / 25 - 0.49 / (k * k)) * pow(k, 0.4), 1e-15);
    T_CHECK(jerald_green(JERALD_GREEN_DM, &term, k) < 0, "G must be negative");
    /* k = 0 is taken as 1e-8, where exp(-kh/k) vanishes */
    T_CHECK(jerald_green(JERALD_GREEN_DM, &term, 0) == 0, "G(0) = %g",
            jerald_green(JERALD_GREEN_DM, &term, 0));
    T_CHECK(jerald_green(JERALD_GREEN_SM, &term, 0) == 0, "G_sm(0)");
    struct jerald_term flat = term;
    flat.kh = 0;
    flat.nu = 0;
    T_CLOSE(jerald_green(JERALD_GREEN_DM, &flat, 0), -exp(-1e-8 / 5), 1e-15);
    /* a steep negative slope must not turn k -> 0 into 0 * inf */
    flat.kh = 1;
    flat.nu = -60;
    T_CHECK(jerald_green(JERALD_GREEN_DM, &flat, 0) == 0, "G(0) with nu = -60 is %g",
            jerald_green(JERALD_GREEN_DM, &flat, 0));
}

static void test_gradient_kernels(void)
{
    double h = 2.0;
    for (int order = 4; order <= 6; order += 2) {
        /* small k: D(k) = k (1 + O((kh)^order)) */
        double k = 1e-3;
        T_CLOSE(jerald_gradient_kernel(order, k, h), k, 1e-12);
        /* Nyquist: the central difference cannot see the alternating mode */
        T_CHECK(fabs(jerald_gradient_kernel(order, M_PI / h, h)) < 1e-14, "D(k_Nyq) order %d",
                order);
        /* odd in k */
        T_CLOSE(jerald_gradient_kernel(order, -0.7, h), -jerald_gradient_kernel(order, 0.7, h),
                1e-15);
    }
    double k = 0.9, x = k * h;
    T_CLOSE(jerald_gradient_kernel(6, k, h), (45 * sin(x) - 9 * sin(2 * x) + sin(3 * x)) / (30 * h),
            1e-15);
    T_CLOSE(jerald_gradient_kernel(4, k, h), (8 * sin(x) - sin(2 * x)) / (6 * h), 1e-15);
    /* the 6th-order kernel is closer to the exact derivative than the 4th-order one */
    T_CHECK(fabs(jerald_gradient_kernel(6, 0.5, h) - 0.5) <
                fabs(jerald_gradient_kernel(4, 0.5, h) - 0.5),
            "order 6 more accurate");
}

static void test_final_transforms(void)
{
    struct jerald_final f = {.w = 2, .mu = 1.5, .b = -0.1, .z_s = 0.2};
    T_CLOSE(jerald_stellar_value(&f, 3.0f), 2 * pow(3 + 1e-8, 1.5) - 0.1, 1e-6);
    T_CHECK(jerald_stellar_value(&f, 0.0f) == (float)JERALD_FLOOR, "floored at 1e-12");
    struct jerald_depletion d = {.beta1 = 0.5, .beta2 = 0.3, .gamma3 = 2, .eta = -0.2};
    double v = 2 * pow(1.5 + 0.2, 1.5) - (fmax(0.5 * 0.8 - 0.2, 0) + 0.3 * 1.2 * 1.2) - 0.1;
    T_CLOSE(jerald_hi_value(&f, &d, 1.5f, 0.8f, 1.2f), v, 1e-6);
    T_CHECK(jerald_hi_value(&f, &d, 0.0f, 50.0f, 3.0f) == 0, "HI is a ReLU");
    /* the depletion ReLU clips beta1 filtered + eta at 0 */
    T_CLOSE(jerald_hi_value(&f, &d, 1.5f, -5.0f, 1.2f), 2 * pow(1.7, 1.5) - 0.3 * 1.44 - 0.1, 1e-6);
    struct jerald_depletion filt = {.kh = 0.5, .kl = 2, .nu = 0.3, .xi = 0.05};
    T_CLOSE(jerald_depletion_filter(&filt, 1.1), exp(-1.1 / 2 - 0.5 / 1.1) * pow(1.1, 0.3) + 0.05,
            1e-15);
    T_CLOSE(jerald_depletion_filter(&filt, 0), 0.05, 1e-15);
    T_CHECK(jerald_powf(9.0f, 0.5) == 3.0f && jerald_powf(7.0f, 1) == 7.0f, "fast paths");
}

/** Parse yaml with lemur's schema and read the jerald set; returns false with err. */
static bool read_set(const char *yaml, struct jerald_set *s, struct lm_err *err)
{
    memset(err, 0, sizeof *err);
    struct config *c = config_create(params_schema, params_n_schema);
    bool ok = config_load_string(c, yaml, "t.yml", err) && config_finalize(c, err) &&
              jerald_set_read(c, 16, s, err);
    config_destroy(&c);
    return ok;
}

static const char *hi_yaml =
    "jerald:\n  maps:\n"
    "    hi:\n      model: hi\n      stellar_map: stars\n"
    "      layers: [{alpha: 2, repel: {alpha: 3, gamma: 0.7}}]\n"
    "      final: {w: 1, mu: 1.6, b: 0, z_s: 0.1}\n"
    "      depletion: {beta1: 1, beta2: 2, gamma3: 1, eta: 0, kh: 0.1, kl: 2, nu: 0, xi: 0}\n"
    "    dm:\n      layers: [{alpha: 1}, {alpha: 0.5, gamma: 0.8, kh: 0.3, kl: 4, nu: -1}]\n"
    "    stars:\n      model: stellar\n      layers: [{alpha: 1}]\n"
    "      final: {w: 1, mu: 1.5, b: 0}\n";

static void test_read_maps(void)
{
    struct jerald_set *s = lm_calloc("test", 1, sizeof *s);
    struct lm_err err;
    T_CHECK(read_set(hi_yaml, s, &err), "%s", err.msg);
    T_CHECK(s->n_maps == 3 && s->n_mesh == 16 && s->gradient_order == 6, "set %d %d %d", s->n_maps,
            s->n_mesh, s->gradient_order);
    const struct jerald_map *hi = &s->map[0], *dm = &s->map[1], *st = &s->map[2];
    T_CHECK(hi->model == JERALD_MODEL_HI && hi->stellar == 2, "hi -> stars");
    T_CHECK(dm->green == JERALD_GREEN_DM && st->green == JERALD_GREEN_SM, "green auto");
    T_CHECK(dm->n_layers == 2, "dm layers");
    T_CLOSE(dm->layer[1].density.nu, -1, 0);
    T_CLOSE(dm->layer[0].density.kl, 8, 0); /* JERALD's starting values as defaults */
    T_CLOSE(dm->layer[0].density.gamma, 0.5, 0);
    T_CLOSE(hi->layer[0].repel.gamma, 0.7, 0);
    T_CLOSE(hi->layer[0].repel.kl, 8, 0);
    T_CLOSE(hi->final.z_s, 0.1, 0);
    /* the HI map is evaluated after its stellar source, which is kept */
    T_CHECK(s->order[0] == 1 && s->order[1] == 2 && s->order[2] == 0, "order %d %d %d", s->order[0],
            s->order[1], s->order[2]);
    T_CHECK(s->keep[2] && !s->keep[0] && !s->keep[1], "keep");
    lm_free(s);
}

/** Replace the first occurrence of from in hi_yaml by to, then expect a failure whose message
 *  contains needle. */
static void expect_error(const char *from, const char *to, const char *needle)
{
    char yaml[2048];
    const char *at = strstr(hi_yaml, from);
    T_CHECK(at != NULL, "'%s' not in the test text", from);
    if (!at)
        return;
    snprintf(yaml, sizeof yaml, "%.*s%s%s", (int)(at - hi_yaml), hi_yaml, to, at + strlen(from));
    struct jerald_set *s = lm_calloc("test", 1, sizeof *s);
    struct lm_err err;
    T_CHECK(!read_set(yaml, s, &err) && strstr(err.msg, needle), "wanted '%s', got '%s'", needle,
            err.msg);
    lm_free(s);
}

static void test_file_errors(void)
{
    expect_error("{alpha: 1}, {alpha: 0.5", "{alpha: 1}, {alpha: .nan",
                 "jerald.maps.dm.layers.1.alpha: '.nan' is not a number");
    expect_error("kl: 4", "kl: 0", "jerald.maps.dm.layers.1.kl = 0 is out of range");
    expect_error("kh: 0.3", "kh: -1", "jerald.maps.dm.layers.1.kh = -1 is out of range");
    expect_error("nu: -1", "nu: inf", "jerald.maps.dm.layers.1.nu: 'inf' is not a number");
    expect_error("gamma: 0.8", "gamma: .inf", "jerald.maps.dm.layers.1.gamma");
    expect_error("      stellar_map: stars\n", "",
                 "jerald.maps.hi.stellar_map: the hi map 'hi' needs a stellar map");
    expect_error("stellar_map: stars", "stellar_map: galaxies",
                 "jerald.maps.hi.stellar_map = 'galaxies': no such map (stellar maps defined: "
                 "stars)");
    expect_error("stellar_map: stars", "stellar_map: dm", "that map has model dm");
    expect_error(", repel: {alpha: 3, gamma: 0.7}", "",
                 "jerald.maps.hi.layers.0.repel: an HI layer needs its repulsive stellar term");
    expect_error("[{alpha: 1}, {alpha: 0.5", "[{alpha: 1, repel: {alpha: 1}}, {alpha: 0.5",
                 "jerald.maps.dm.layers.0.repel: only layers of HI maps");
    expect_error("      final: {w: 1, mu: 1.5, b: 0}\n", "",
                 "jerald.maps.stars.final: a stellar map needs its final parameters");
    expect_error("depletion: {beta1: 1,", "depletion: {", "jerald.maps.hi.depletion.beta1");
    expect_error("model: stellar", "model: dm", "jerald.maps.stars.final: a dm map has no final");
    expect_error("kh: 0.1, kl: 2", "kh: 0.1, kl: -2", "jerald.maps.hi.depletion.kl = -2");
    expect_error("jerald:\n", "jerald:\n  n_mesh: 1\n", "jerald.n_mesh = 1");
    expect_error("jerald:\n", "jerald:\n  gradient_order: 5\n", "jerald.gradient_order = 5");
}

/** Maps built in code go through the same checks (NaN and inf cannot come from a file). */
static void test_map_check(void)
{
    struct jerald_map m = {.name = "dm", .model = JERALD_MODEL_DM, .n_layers = 2, .stellar = -1};
    m.layer[0].density = term;
    m.layer[1].density = term;
    struct lm_err err = {{0}};
    T_CHECK(jerald_map_check(&m, &err), "%s", err.msg);
    m.layer[1].density.gamma = NAN;
    memset(&err, 0, sizeof err);
    T_CHECK(!jerald_map_check(&m, &err) &&
                strstr(err.msg, "jerald.maps.dm.layers.1.gamma = nan: expected a finite number"),
            "%s", err.msg);
    m.layer[1].density.gamma = 0.5;
    m.layer[1].density.nu = INFINITY;
    memset(&err, 0, sizeof err);
    T_CHECK(!jerald_map_check(&m, &err) && strstr(err.msg, "layers.1.nu = inf"), "%s", err.msg);
    m.layer[1].density.nu = 0;
    m.layer[0].density.kl = 0;
    memset(&err, 0, sizeof err);
    T_CHECK(!jerald_map_check(&m, &err) && strstr(err.msg, "layers.0.kl = 0: expected kl > 0"),
            "%s", err.msg);
    m.layer[0].density.kl = 8;
    m.model = JERALD_MODEL_STELLAR;
    m.final.w = NAN;
    memset(&err, 0, sizeof err);
    T_CHECK(!jerald_map_check(&m, &err) && strstr(err.msg, "jerald.maps.dm.final.w = nan"), "%s",
            err.msg);
}

int main(void)
{
    T_RUN(test_green_functions);
    T_RUN(test_gradient_kernels);
    T_RUN(test_final_transforms);
    T_RUN(test_read_maps);
    T_RUN(test_file_errors);
    T_RUN(test_map_check);
    return t_finish();
}
