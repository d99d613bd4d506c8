/*
 * Tests of the cosmology and linear_power modules: growth in two independent forms and against
 * the spec's check values, the Eisenstein & Hu transfer functions, σ8 normalisation checked by an
 * independent quadrature, table round trips and every class of table error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cosmology.h"
#include "harness.h"
#include "linear_power.h"

static const double omegas[] = {0.1, 0.3175, 0.5, 1.0};

/* Directory for temporary files ($LEMUR_TMP or tests/tmp), created when missing. */
static const char *tmp_dir(void)
{
    const char *d = getenv("LEMUR_TMP");
    if (!d || !d[0])
        d = "tests/tmp";
    if (mkdir(d, 0755) != 0 && errno != EEXIST)
        fprintf(stderr, "cannot create %s: %s\n", d, strerror(errno));
    return d;
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmp_dir(), name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        T_CHECK(0, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static struct cosmology with_omega_m(double om)
{
    struct cosmology c = cosmo_quijote_fiducial();
    c.Omega_m = om;
    c.Omega_b = om < 0.2 ? 0.02 : 0.049;
    return c;
}

static void test_growth_check_values(void)
{
    struct cosmology c = cosmo_quijote_fiducial();
    /* Spec values (ics.md, emulator.md), to half a unit in their last digit. */
    T_CLOSE_TOL(cosmo_growth_D(&c, 0.5), 0.605938, 0, 5e-7);
    T_CLOSE_TOL(cosmo_growth_f(&c, 1.0), 0.529457, 0, 5e-7);
    T_CLOSE_TOL(cosmo_growth_f(&c, 0.5), 0.877891, 0, 5e-7);
    T_CLOSE_TOL(cosmo_growth_D(&c, 1.0 / 128) / cosmo_growth_D(&c, 1.0), 0.0098987, 0, 5e-8);
    T_CLOSE_TOL(cosmo_growth_D_integral(&c, 0.5), 0.605938, 0, 5e-7);
    T_CLOSE_TOL(cosmo_growth_f_integral(&c, 1.0), 0.529457, 0, 5e-7);
    T_CLOSE_TOL(cosmo_growth_f_integral(&c, 0.5), 0.877891, 0, 5e-7);
    T_CLOSE_TOL(cosmo_growth_D_integral(&c, 1.0 / 128), 0.0098987, 0, 5e-8);
    T_CLOSE(cosmo_growth_D(&c, 1.0), 1.0, 1e-15);
}

static void test_growth_forms_agree(void)
{
    double worst_D = 0, worst_f = 0;
    for (int m = 0; m < 4; m++) {
        struct cosmology c = with_omega_m(omegas[m]);
        for (int i = 0; i <= 80; i++) {
            double a = 0.005 * pow(1.5 / 0.005, i / 80.0);
            double D = cosmo_growth_D(&c, a), Di = cosmo_growth_D_integral(&c, a);
            double f = cosmo_growth_f(&c, a), fi = cosmo_growth_f_integral(&c, a);
            T_CLOSE(D, Di, 1e-12);
            T_CLOSE(f, fi, 1e-12);
            worst_D = fmax(worst_D, fabs(D / Di - 1));
            worst_f = fmax(worst_f, fabs(f / fi - 1));
        }
    }
    printf("  closed vs integral growth: max relative difference D %.1e, f %.1e\n", worst_D,
           worst_f);
}

/* f = dlnD/dlna against a 5-point central difference of ln D in ln a. */
static void test_growth_f_is_dlnD_dlna(void)
{
    const double h = 1e-3;
    for (int m = 0; m < 4; m++) {
        struct cosmology c = with_omega_m(omegas[m]);
        for (int i = 0; i <= 20; i++) {
            double lna = log(0.005) + i * (log(1.5) - log(0.005)) / 20;
            double d[4];
            const double off[4] = {-2, -1, 1, 2};
            for (int j = 0; j < 4; j++)
                d[j] = log(cosmo_growth_D(&c, exp(lna + off[j] * h)));
            double deriv = (d[0] - 8 * d[1] + 8 * d[2] - d[3]) / (12 * h);
            T_CLOSE(cosmo_growth_f(&c, exp(lna)), deriv, 1e-9);
        }
    }
}

static void test_growth_limits(void)
{
    struct cosmology eds = with_omega_m(1.0);
    T_CHECK(cosmo_growth_D(&eds, 0.37) == 0.37, "EdS D(a) = a");
    T_CHECK(cosmo_growth_f(&eds, 0.37) == 1.0, "EdS f = 1");
    T_CLOSE(cosmo_growth_D_integral(&eds, 0.37), 0.37, 1e-13);
    T_CLOSE(cosmo_growth_f_integral(&eds, 0.37), 1.0, 1e-13);
    /* Early times: matter domination, D ∝ a and f -> 1. */
    struct cosmology c = cosmo_quijote_fiducial();
    T_CLOSE(cosmo_growth_f(&c, 1e-3), 1.0, 1e-8);
    T_CLOSE(cosmo_growth_D(&c, 2e-3) / cosmo_growth_D(&c, 1e-3), 2.0, 1e-8);
    /* Growth is suppressed by Λ: D(a) > a for a < 1. */
    T_CHECK(cosmo_growth_D(&c, 0.5) > 0.5, "D(0.5) = %g", cosmo_growth_D(&c, 0.5));
}

/* 2F1 against 30-digit values (mpmath.hyp2f1), on both sides of the Pfaff/connection switch. */
static void test_hyp2f1(void)
{
    const double x[4] = {0.5, 4.0, 100.0, 1e5};
    const double ref1[4] = {0.9256144872703611067, 0.70686943947767821205, 0.29871011499124706119,
                            0.03095298029050545668};
    const double ref2[4] = {0.67672846220487033805, 0.19200970768878326801,
                            0.0051038886906374762622, 5.67021488560347584e-7};
    for (int i = 0; i < 4; i++) {
        T_CLOSE(cosmo_hyp2f1_neg(1, 1.0 / 3, 11.0 / 6, x[i]), ref1[i], 5e-15);
        T_CLOSE(cosmo_hyp2f1_neg(2, 4.0 / 3, 17.0 / 6, x[i]), ref2[i], 5e-15);
    }
    T_CHECK(cosmo_hyp2f1_neg(1, 1.0 / 3, 11.0 / 6, 0) == 1.0, "2F1(0) = 1");
    /* Either side of the switch from the series in w to the connection formula (w = 0.8). */
    const double xs[2] = {3.9999, 4.0001};
    const double side1[2] = {0.70687293060182676719, 0.70686594843063704486};
    const double side2[2] = {0.19201394868007489897, 0.19200546686910334869};
    for (int i = 0; i < 2; i++) {
        T_CLOSE(cosmo_hyp2f1_neg(1, 1.0 / 3, 11.0 / 6, xs[i]), side1[i], 5e-15);
        T_CLOSE(cosmo_hyp2f1_neg(2, 4.0 / 3, 17.0 / 6, xs[i]), side2[i], 5e-15);
    }
}

static void test_hubble_and_velocity(void)
{
    struct cosmology c = cosmo_quijote_fiducial();
    T_CLOSE(cosmo_E(&c, 1.0), 1.0, 1e-15);
    T_CLOSE(cosmo_H(&c, 0.0), 100.0, 1e-15);
    T_CLOSE(cosmo_H(&c, 1.0), 100 * sqrt(8 * c.Omega_m + 1 - c.Omega_m), 1e-14);
    T_CLOSE(cosmo_velocity_factor(&c, 0.5), 0.5 * cosmo_H(&c, 1.0) * cosmo_growth_f(&c, 0.5),
            1e-14);
    const double z = 1.0, h = 1e-4;
    double dD =
        (cosmo_growth_D(&c, 1 / (1 + z + h)) - cosmo_growth_D(&c, 1 / (1 + z - h))) / (2 * h);
    T_CLOSE(cosmo_growth_dDdz(&c, z), dD, 1e-7);
    struct lm_err err = {{0}};
    T_CHECK(cosmo_check(&c, &err), "fiducial rejected: %s", err.msg);
    c.Omega_b = 0.5;
    T_CHECK(!cosmo_check(&c, &err) && strstr(err.msg, "Omega_b"), "bad Omega_b: %s", err.msg);
}

static void test_eh_transfer_values(void)
{
    struct cosmology c = cosmo_quijote_fiducial();
    struct linear_power_eh e;
    linear_power_eh_setup(&e, &c);
    const double k[7] = {0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0};
    const double T[7] = {0.99246, 0.78366, 0.27648, 0.13480, 0.05667, 0.014570, 0.004851};
    for (int i = 0; i < 7; i++)
        T_CLOSE(linear_power_eh_transfer(&e, k[i]), T[i], 1e-4);
    /* Both forms tend to 1 on large scales; the no-wiggle form follows the wiggly one's trend. */
    T_CLOSE(linear_power_eh_transfer(&e, 1e-6), 1.0, 1e-5);
    T_CLOSE(linear_power_eh_nowiggle(&e, 1e-6), 1.0, 1e-5);
    for (double kk = 1e-3; kk < 10; kk *= 1.1)
        T_CLOSE(linear_power_eh_nowiggle(&e, kk), linear_power_eh_transfer(&e, kk), 0.06);
}

static struct linear_power *eh_power(enum linear_power_source source)
{
    struct cosmology c = cosmo_quijote_fiducial();
    struct linear_power_params p = {.source = source};
    struct lm_err err = {{0}};
    struct linear_power *lp = linear_power_create(&c, &p, &err);
    T_CHECK(lp != NULL, "create failed: %s", err.msg);
    return lp;
}

static void test_power_check_values(void)
{
    struct linear_power *lp = eh_power(LINEAR_POWER_EH);
    struct linear_power *nw = eh_power(LINEAR_POWER_EH_NOWIGGLE);
    if (!lp || !nw)
        return;
    T_CLOSE(linear_power_eval(lp, 0.1), 5945, 1e-3);
    T_CLOSE(linear_power_eval(nw, 0.1), 6072, 1e-3);
    T_CHECK(linear_power_eval(lp, 0) == 0, "P(0) = 0");
    linear_power_destroy(&lp);
    linear_power_destroy(&nw);
    T_CHECK(lp == NULL && nw == NULL, "destroy sets NULL");
    linear_power_destroy(&lp);
}

/* σ(R) by composite Simpson in ln k with the plain window formula (independent of the module's
 * quadrature and small-x series). */
static double sigma_simpson(const struct linear_power *lp, double R, double kmin, double kmax)
{
    const int n = 1 << 18;
    double lo = log(kmin), dx = (log(kmax) - lo) / n, sum = 0;
    for (int i = 0; i <= n; i++) {
        double k = exp(lo + i * dx), x = k * R;
        double W = x < 1e-3 ? 1 - x * x / 10 : 3 * (sin(x) - x * cos(x)) / (x * x * x);
        double g = k * k * k * linear_power_eval(lp, k) * W * W;
        sum += (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2)) * g;
    }
    return sqrt(sum * dx / 3 / (2 * 3.14159265358979323846 * 3.14159265358979323846));
}

static void test_sigma8_normalisation(void)
{
    enum linear_power_source s[2] = {LINEAR_POWER_EH, LINEAR_POWER_EH_NOWIGGLE};
    for (int i = 0; i < 2; i++) {
        struct linear_power *lp = eh_power(s[i]);
        if (!lp)
            return;
        T_CLOSE(sigma_simpson(lp, 8.0, 1e-5, 1e3), 0.834, 1e-6);
        T_CLOSE(linear_power_sigma(lp, 8.0), 0.834, 1e-9);
        T_CLOSE(lp->sigma8, 0.834, 1e-15);
        /* A second radius, to catch a window or integrand that is only right at R = 8. */
        T_CLOSE(linear_power_sigma(lp, 20.0), sigma_simpson(lp, 20.0, 1e-5, 1e3), 1e-6);
        linear_power_destroy(&lp);
    }
}

static void test_window(void)
{
    T_CHECK(linear_power_window_tophat(0) == 1.0, "W(0) = 1");
    const double x[4] = {1e-3, 0.05, 0.0999999, 0.1000001};
    for (int i = 0; i < 4; i++) {
        double direct = 3 * (sin(x[i]) - x[i] * cos(x[i])) / (x[i] * x[i] * x[i]);
        T_CLOSE(linear_power_window_tophat(x[i]), direct, 1e-14 / (x[i] * x[i]));
    }
    T_CLOSE(linear_power_window_tophat(3.0), 3 * (sin(3.0) - 3 * cos(3.0)) / 27, 1e-15);
}

/* Write the normalised EH spectrum (or transfer function) on n log-spaced rows to path, with a
 * header and comments like CLASS/CAMB files, and the value in column col of ncol. */
static void write_eh_table(const char *path, const struct linear_power *lp, bool transfer, int n,
                           int col, int ncol)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        T_CHECK(0, "cannot write %s", path);
        return;
    }
    fprintf(f, "# lemur test table\n#  k [h/Mpc]   value\n\n");
    for (int i = 0; i < n; i++) {
        double k = 1e-4 * pow(1e5, i / (n - 1.0));
        double v = transfer ? linear_power_eh_transfer(&lp->eh, k) : linear_power_eval(lp, k);
        fprintf(f, "%.15e", k);
        for (int c = 2; c <= ncol; c++)
            fprintf(f, " %.15e", c == col ? v : -1.0);
        fprintf(f, i == n / 2 ? "   # a trailing comment\n" : "\n");
    }
    fclose(f);
}

static struct linear_power *table_power(const char *path, enum linear_power_source source,
                                        int column, bool normalise, struct lm_err *err)
{
    struct cosmology c = cosmo_quijote_fiducial();
    struct linear_power_params p = {
        .source = source, .table = path, .column = column, .normalise = normalise};
    return linear_power_create(&c, &p, err);
}

/* P of the table at k between rows against the EH values. */
static void compare_to_eh(const struct linear_power *t, const struct linear_power *eh, double rtol)
{
    for (int i = 0; i < 500; i++) {
        double k = 1.1e-4 * pow(9e4, (i + 0.37) / 500.0);
        T_CLOSE(linear_power_eval(t, k), linear_power_eval(eh, k), rtol);
    }
}

static void test_table_round_trip(void)
{
    struct linear_power *eh = eh_power(LINEAR_POWER_EH);
    if (!eh)
        return;
    char path[512], tpath[512];
    tmp_path(path, sizeof path, "cosmology_pk.txt");
    tmp_path(tpath, sizeof tpath, "cosmology_tk.txt");
    write_eh_table(path, eh, false, 4000, 2, 2);
    write_eh_table(tpath, eh, true, 4000, 7, 9); /* CAMB-like: total matter in column 7 */
    struct lm_err err = {{0}};
    struct linear_power *as_is = table_power(path, LINEAR_POWER_TABLE_POWER, 0, false, &err);
    struct linear_power *norm = table_power(path, LINEAR_POWER_TABLE_POWER, 2, true, &err);
    struct linear_power *tk = table_power(tpath, LINEAR_POWER_TABLE_TRANSFER, 7, true, &err);
    T_CHECK(as_is && norm && tk, "table read failed: %s", err.msg);
    if (as_is && norm && tk) {
        compare_to_eh(as_is, eh, 1e-4);
        compare_to_eh(norm, eh, 1e-4);
        compare_to_eh(tk, eh, 1e-4);
        T_CLOSE(as_is->sigma8, 0.834, 1e-5);
        T_CLOSE(sigma_simpson(norm, 8, norm->k_min, norm->k_max), 0.834, 1e-6);
        T_CLOSE(sigma_simpson(tk, 8, tk->k_min, tk->k_max), 0.834, 1e-6);
        T_CHECK(linear_power_check_range(norm, 1e-4, 10, &err), "full range: %s", err.msg);
    }
    linear_power_destroy(&as_is);
    linear_power_destroy(&norm);
    linear_power_destroy(&tk);
    linear_power_destroy(&eh);
}

static void test_table_from_text(void)
{
    const char *text = "k P\n1e-3 100\n1e-2 1000\n\n1e-1 5000 # peak\n1 100\n";
    struct cosmology c = cosmo_quijote_fiducial();
    struct linear_power_params p = {.source = LINEAR_POWER_TABLE_POWER, .table = "mem.txt"};
    struct lm_err err = {{0}};
    struct linear_power *lp = linear_power_create_from_text(&c, &p, text, &err);
    T_CHECK(lp != NULL, "parse failed: %s", err.msg);
    if (!lp)
        return;
    T_CHECK(lp->table.n_rows == 4, "rows %d", lp->table.n_rows);
    T_CLOSE(linear_power_eval(lp, 0.1), 5000, 1e-14);
    T_CLOSE(linear_power_eval(lp, sqrt(1e-3 * 1e-2)), sqrt(100.0 * 1000.0), 1e-12); /* log-log */
    linear_power_destroy(&lp);
}

/* Expect table creation from text to fail with a message containing every string in want. */
static void expect_error(const char *text, enum linear_power_source source, int column,
                         bool normalise, const char *want1, const char *want2)
{
    char path[512];
    tmp_path(path, sizeof path, "cosmology_bad.txt");
    write_file(path, text);
    struct lm_err err = {{0}};
    struct linear_power *lp = table_power(path, source, column, normalise, &err);
    T_CHECK(lp == NULL, "accepted a bad table: %s", text);
    T_CHECK(strstr(err.msg, path) != NULL, "message lacks the file name: %s", err.msg);
    T_CHECK(!want1 || strstr(err.msg, want1), "message lacks '%s': %s", want1, err.msg);
    T_CHECK(!want2 || strstr(err.msg, want2), "message lacks '%s': %s", want2, err.msg);
    linear_power_destroy(&lp);
}

static void test_table_errors(void)
{
    char missing[512];
    tmp_path(missing, sizeof missing, "cosmology_no_such_table.txt");
    remove(missing);
    struct lm_err err = {{0}};
    struct linear_power *lp = table_power(missing, LINEAR_POWER_TABLE_POWER, 2, true, &err);
    T_CHECK(lp == NULL && strstr(err.msg, missing), "missing file: %s", err.msg);
    const enum linear_power_source P = LINEAR_POWER_TABLE_POWER, T = LINEAR_POWER_TABLE_TRANSFER;
    expect_error("# c\n1e-3 1\n1e-2 x2\n1 3\n", P, 2, false, ":3:", "x2");
    expect_error("1e-3 1\n1e-2 2\nfoo bar\n", P, 2, false, ":3:", "foo");
    expect_error("1e-3 1\n1e-2\n", P, 2, false, ":2:", "column");
    expect_error("1e-3 1 2\n1e-2 2\n", P, 3, false, ":2:", "column");
    expect_error("1e-3 1\n-1e-2 2\n", P, 2, false, ":2:", "k > 0");
    expect_error("1e-3 1\n1e-2 0\n", P, 2, false, ":2:", "P > 0");
    expect_error("1e-3 1\n1e-2 nan\n", P, 2, false, ":2:", NULL);
    expect_error("1e-2 1\n1e-3 2\n", P, 2, false, ":2:", "sorted");
    expect_error("1e-2 1\n1e-2 2\n", P, 2, false, ":2:", "sorted");
    expect_error("# only a comment\n1e-2 1\n", P, 2, false, "1 data row", NULL);
    expect_error("1e-3 1\n1e-2 -2\n", T, 2, true, ":2:", "sign");
    expect_error("1e-4 1e-8\n1e-3 1e-6\n1e-2 1e-4\n10 1\n", T, 2, true, "format = camb", NULL);
    expect_error("1e-2 1\n1e-1 2\n1 1\n10 0.1\n", P, 2, true, "sigma8", "cover");
    /* Range: a valid table asked for more than it holds. */
    char path[512];
    tmp_path(path, sizeof path, "cosmology_range.txt");
    write_file(path, "1e-3 10\n1e-2 100\n0.1 1000\n1 10\n");
    err.msg[0] = 0;
    lp = table_power(path, P, 2, false, &err);
    T_CHECK(lp != NULL, "range table: %s", err.msg);
    if (lp) {
        T_CHECK(linear_power_check_range(lp, 1e-3, 1.0, &err), "exact range: %s", err.msg);
        T_CHECK(!linear_power_check_range(lp, 6e-3, 2.5, &err), "range 2.5 accepted");
        T_CHECK(strstr(err.msg, path) && strstr(err.msg, "2.5"), "range message: %s", err.msg);
    }
    linear_power_destroy(&lp);
    struct linear_power *eh = eh_power(LINEAR_POWER_EH);
    err.msg[0] = 0;
    T_CHECK(eh && linear_power_check_range(eh, 1e-6, 1e4, &err), "EH has no range limit");
    linear_power_destroy(&eh);
}

static void test_source_names(void)
{
    enum linear_power_source all[4] = {LINEAR_POWER_EH, LINEAR_POWER_EH_NOWIGGLE,
                                       LINEAR_POWER_TABLE_POWER, LINEAR_POWER_TABLE_TRANSFER};
    for (int i = 0; i < 4; i++) {
        enum linear_power_source s = LINEAR_POWER_EH;
        T_CHECK(linear_power_source_parse(linear_power_source_name(all[i]), &s) && s == all[i],
                "round trip of %s", linear_power_source_name(all[i]));
    }
    enum linear_power_source s;
    T_CHECK(!linear_power_source_parse("camb", &s), "unknown name accepted");
}

int main(void)
{
    T_RUN(test_growth_check_values);
    T_RUN(test_growth_forms_agree);
    T_RUN(test_growth_f_is_dlnD_dlna);
    T_RUN(test_growth_limits);
    T_RUN(test_hyp2f1);
    T_RUN(test_hubble_and_velocity);
    T_RUN(test_eh_transfer_values);
    T_RUN(test_power_check_values);
    T_RUN(test_sigma8_normalisation);
    T_RUN(test_window);
    T_RUN(test_table_round_trip);
    T_RUN(test_table_from_text);
    T_RUN(test_table_errors);
    T_RUN(test_source_names);
    return t_finish();
}
