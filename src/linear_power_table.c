/*
 * Text tables of P(k) or T(k) (CLASS, CAMB and hand-written files): parsing with line-accurate
 * messages, checks, and log-log interpolation.
 */
#include "linear_power.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

enum { TABLE_MAX_COLUMN = 64 };

/* State of one parse, for the per-line checks. */
struct table_parse {
    struct linear_power_table *t;
    const char *name;
    int column;
    bool transfer;
    double sign; /* sign of the first T value (transfer tables) */
};

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == ','; }

/* Does a number end here (a separator, a comment or the end of the line)? */
static bool is_token_end(const char *p, const char *end)
{
    return p == end || is_blank(*p) || *p == '#';
}

/* Read up to n_want numbers from the line [p, end). Returns how many were read; *bad points at
 * the first token that is not a finite number (NULL when none was met). */
static int line_scan(const char *p, const char *end, double *vals, int n_want, const char **bad)
{
    int n = 0;
    *bad = NULL;
    while (n < n_want) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end || *p == '#')
            break;
        char *q = NULL;
        double v = strtod(p, &q);
        if (q == p || q > end || !is_token_end(q, end) || !isfinite(v)) {
            *bad = p;
            break;
        }
        vals[n++] = v;
        p = q;
    }
    return n;
}

/* Length of the token starting at p (for messages). */
static int token_len(const char *p, const char *end)
{
    int n = 0;
    while (p + n < end && !is_blank(p[n]) && p[n] != '#' && n < 40)
        n++;
    return n;
}

/* Check one row's values against the previous rows and append it. */
static bool table_add_row(struct table_parse *s, int line, double k, double v, struct lm_err *err)
{
    struct linear_power_table *t = s->t;
    if (!(k > 0))
        return lm_err_set(err, "%s:%d: k = %g: expected k > 0 (h/Mpc)", s->name, line, k);
    if (t->n_rows > 0 && !(log(k) > t->ln_k[t->n_rows - 1]))
        return lm_err_set(err,
                          "%s:%d: k = %g does not exceed the previous row's k = %g: rows must be "
                          "sorted by strictly increasing k",
                          s->name, line, k, exp(t->ln_k[t->n_rows - 1]));
    if (s->transfer && t->n_rows == 0 && v != 0)
        s->sign = v > 0 ? 1.0 : -1.0;
    if (!s->transfer && !(v > 0))
        return lm_err_set(err, "%s:%d: P = %g (column %d): expected P > 0", s->name, line, v,
                          s->column);
    if (s->transfer && !(v * s->sign > 0))
        return lm_err_set(err,
                          "%s:%d: T = %g (column %d): expected a non-zero value of the same "
                          "sign as the first row's",
                          s->name, line, v, s->column);
    t->ln_k[t->n_rows] = log(k);
    t->ln_v[t->n_rows] = log(fabs(v));
    t->n_rows++;
    return true;
}

/* Parse the line [p, end) (number line_no): a header, a comment, a blank or a data row. */
static bool table_parse_line(struct table_parse *s, int line_no, const char *p, const char *end,
                             struct lm_err *err)
{
    double vals[TABLE_MAX_COLUMN];
    const char *bad = NULL;
    int n = line_scan(p, end, vals, s->column, &bad);
    if (n == 0 && !bad)
        return true; /* blank or comment */
    if (n == 0 && s->t->n_rows == 0)
        return true; /* a header line before the data */
    if (bad)
        return lm_err_set(err, "%s:%d: '%.*s' is not a number (column %d)", s->name, line_no,
                          token_len(bad, end), bad, n + 1);
    if (n < s->column)
        return lm_err_set(err, "%s:%d: found %d column%s, expected at least %d", s->name, line_no,
                          n, n == 1 ? "" : "s", s->column);
    return table_add_row(s, line_no, vals[0], vals[s->column - 1], err);
}

bool linear_power_table_parse(struct linear_power_table *t, const char *text, const char *name,
                              int column, bool transfer, struct lm_err *err)
{
    ASSERT(column >= 2);
    *t = (struct linear_power_table){0};
    if (column > TABLE_MAX_COLUMN)
        return lm_err_set(err, "%s: column %d: expected a column from 2 to %d", name, column,
                          TABLE_MAX_COLUMN);
    size_t n_lines = 1;
    for (const char *c = text; *c; c++)
        n_lines += *c == '\n';
    t->ln_k = lm_malloc("linear_power.table", 2 * n_lines * sizeof(double));
    t->ln_v = t->ln_k + n_lines;
    t->name = lm_strdup("linear_power.table", name);
    struct table_parse s = {.t = t, .name = name, .column = column, .transfer = transfer};
    int line_no = 1;
    bool ok = true;
    for (const char *p = text; ok && *p; line_no++) {
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        ok = table_parse_line(&s, line_no, p, end, err);
        p = *end ? end + 1 : end;
    }
    if (ok && t->n_rows < 2)
        ok = lm_err_set(err, "%s: found %d data row%s, expected at least 2 rows of k and %s", name,
                        t->n_rows, t->n_rows == 1 ? "" : "s", transfer ? "T(k)" : "P(k)");
    if (!ok)
        linear_power_table_free(t);
    return ok;
}

/* Read the whole file into a NUL-terminated lm_malloc block, or NULL with err set. */
static char *file_slurp(const char *path, struct lm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        lm_err_set(err, "cannot open power table '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got = 0;
    char *buf = lm_malloc("linear_power.text", cap);
    while ((got = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = lm_realloc(buf, cap *= 2);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        lm_free(buf);
        lm_err_set(err, "cannot read power table '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

bool linear_power_table_read(struct linear_power_table *t, const char *path, int column,
                             bool transfer, struct lm_err *err)
{
    *t = (struct linear_power_table){0};
    char *text = file_slurp(path, err);
    if (!text)
        return false;
    bool ok = linear_power_table_parse(t, text, path, column, transfer, err);
    lm_free(text);
    return ok;
}

double linear_power_table_interp(const struct linear_power_table *t, double ln_k)
{
    ASSERT(t->n_rows >= 2);
    int lo = 0, hi = t->n_rows - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (t->ln_k[mid] <= ln_k)
            lo = mid;
        else
            hi = mid;
    }
    double u = (ln_k - t->ln_k[lo]) / (t->ln_k[hi] - t->ln_k[lo]);
    return t->ln_v[lo] + u * (t->ln_v[hi] - t->ln_v[lo]);
}

void linear_power_table_free(struct linear_power_table *t)
{
    lm_free(t->ln_k);
    lm_free(t->name);
    *t = (struct linear_power_table){0};
}
