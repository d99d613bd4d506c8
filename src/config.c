/* config — schema matching, validation, lookups and YAML emission. Parsing is in config_yaml.c. */
#include "config.h"

#include "alloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- paths and patterns ------------------------------------------------------------------- */

static int n_segments(const char *path)
{
    int n = 1;
    for (const char *p = path; *p; p++)
        n += *p == '.';
    return n;
}

/* Copy segment i of path into out. */
static void segment(const char *path, int i, char *out, size_t cap)
{
    const char *p = path;
    for (; i > 0 && p; i--) {
        p = strchr(p, '.');
        p = p ? p + 1 : NULL;
    }
    size_t n = 0;
    if (p)
        for (; p[n] && p[n] != '.'; n++)
            ;
    n = n < cap - 1 ? n : cap - 1;
    memcpy(out, p ? p : "", n);
    out[n] = 0;
}

static bool is_index(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Does the first n segments of path match the first n segments of pattern? */
static bool prefix_matches(const char *pattern, const char *path, int n)
{
    char a[128], b[128];
    for (int i = 0; i < n; i++) {
        segment(pattern, i, a, sizeof a);
        segment(path, i, b, sizeof b);
        if (strcmp(a, "#") == 0   ? !is_index(b)
            : strcmp(a, "*") == 0 ? (!*b || is_index(b))
                                  : strcmp(a, b) != 0)
            return false;
    }
    return true;
}

static const struct config_key *schema_leaf(const struct config *c, const char *path)
{
    int n = n_segments(path);
    for (int i = 0; i < c->n_schema; i++)
        if (n_segments(c->schema[i].path) == n && prefix_matches(c->schema[i].path, path, n))
            return &c->schema[i];
    return NULL;
}

static bool schema_section(const struct config *c, const char *path)
{
    int n = n_segments(path);
    for (int i = 0; i < c->n_schema; i++)
        if (n_segments(c->schema[i].path) > n && prefix_matches(c->schema[i].path, path, n))
            return true;
    return false;
}

bool config_is_leaf(const struct config *c, const char *path)
{
    return schema_leaf(c, path) != NULL;
}

bool config_known_path(const struct config *c, const char *path)
{
    return schema_leaf(c, path) || schema_section(c, path);
}

/* ---- suggestions ---------------------------------------------------------------------------- */

int config_edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b), row[128];
    if (la > 120 || lb > 120)
        return 1000;
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : tolower(a[i - 1]) == tolower(b[j - 1]) ? 0 : 1;
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void config_suggest(const struct config *c, const char *path, char *out, size_t cap)
{
    /* Candidates: the schema's names at the same depth under the same parent. */
    int n = n_segments(path);
    char name[128], cand[128], best[128] = "", valid[1024] = "";
    segment(path, n - 1, name, sizeof name);
    int best_d = 1000;
    for (int i = 0; i < c->n_schema; i++) {
        const char *k = c->schema[i].path;
        if (n_segments(k) < n || !prefix_matches(k, path, n - 1))
            continue;
        segment(k, n - 1, cand, sizeof cand);
        if (strcmp(cand, "*") == 0 || strcmp(cand, "#") == 0 || strstr(valid, cand))
            continue;
        if (strlen(valid) + strlen(cand) + 3 < sizeof valid)
            strcat(strcat(valid, *valid ? ", " : ""), cand);
        int d = config_edit_distance(name, cand);
        if (d < best_d)
            best_d = d, snprintf(best, sizeof best, "%s", cand);
    }
    int len = (int)strlen(name);
    if (*best && strcmp(name, "?") != 0 && best_d <= (len < 6 ? 2 : len / 3 + 1)) {
        char parent[512] = "";
        for (int i = 0; i < n - 1; i++) {
            segment(path, i, cand, sizeof cand);
            strcat(strcat(parent, cand), ".");
        }
        snprintf(out, cap, "did you mean '%s%s'?", parent, best);
    } else {
        snprintf(out, cap, "valid keys here: %s", *valid ? valid : "(none)");
    }
}

/* ---- entries -------------------------------------------------------------------------------- */

struct config *config_create(const struct config_key *schema, int n_schema)
{
    struct config *c = lm_calloc("config", 1, sizeof *c);
    c->schema = schema;
    c->n_schema = n_schema;
    snprintf(c->source, sizeof c->source, "<string>");
    return c;
}

static void entry_free(struct config_entry *e)
{
    for (int i = 0; i < e->n_values; i++)
        lm_free(e->values[i]);
    lm_free(e->values);
    lm_free(e->path);
}

void config_destroy(struct config **c)
{
    if (!c || !*c)
        return;
    for (int i = 0; i < (*c)->n_entries; i++)
        entry_free(&(*c)->entries[i]);
    lm_free((*c)->entries);
    lm_free(*c);
    *c = NULL;
}

const struct config_entry *config_entry(const struct config *c, const char *path)
{
    for (int i = 0; i < c->n_entries; i++)
        if (strcmp(c->entries[i].path, path) == 0)
            return &c->entries[i];
    return NULL;
}

void config_remove_prefix(struct config *c, const char *path)
{
    size_t n = strlen(path);
    int j = 0;
    for (int i = 0; i < c->n_entries; i++) {
        struct config_entry *e = &c->entries[i];
        if (strncmp(e->path, path, n) == 0 && (e->path[n] == 0 || e->path[n] == '.'))
            entry_free(e);
        else
            c->entries[j++] = *e;
    }
    c->n_entries = j;
}

struct config_entry *config_add(struct config *c, const char *path, int n_values,
                                const char *const *values, bool is_list, int line,
                                enum config_origin origin)
{
    if (c->n_entries == c->cap_entries) {
        c->cap_entries = c->cap_entries ? 2 * c->cap_entries : 64;
        c->entries = c->entries ? lm_realloc(c->entries, c->cap_entries * sizeof *c->entries)
                                : lm_malloc("config", c->cap_entries * sizeof *c->entries);
    }
    struct config_entry *e = &c->entries[c->n_entries++];
    e->path = lm_strdup("config", path);
    e->n_values = n_values;
    e->values = lm_malloc("config", (n_values ? n_values : 1) * sizeof(char *));
    for (int i = 0; i < n_values; i++)
        e->values[i] = lm_strdup("config", values[i]);
    e->is_list = is_list;
    e->line = line;
    e->origin = origin;
    e->key = schema_leaf(c, path);
    return e;
}

/* ---- strict scalars ------------------------------------------------------------------------- */

bool config_parse_real(const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    while (end != s && isspace((unsigned char)*end))
        end++;
    if (end == s || *end || errno == ERANGE || !isfinite(x) || isspace((unsigned char)*s))
        return false;
    *v = x;
    return true;
}

bool config_parse_int(const char *s, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || isspace((unsigned char)*s))
        return false;
    *v = x;
    return true;
}

bool config_parse_bool(const char *s, bool *v)
{
    static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *v = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *v = false, true;
    }
    return false;
}

/* ---- validation ----------------------------------------------------------------------------- */

static const char *type_name(enum config_type t)
{
    static const char *names[] = {
        "a boolean (true/false)", "an integer",        "a number",         "a string",
        "a list of integers",     "a list of numbers", "a list of strings"};
    return names[t];
}

static bool is_list_type(enum config_type t) { return t >= CONFIG_INT_LIST; }

static bool in_range(const char *range, double x)
{
    char lo_b, hi_b, lo_s[32], hi_s[32];
    if (!range || sscanf(range, " %c %31[^,], %31[^])] %c", &lo_b, lo_s, hi_s, &hi_b) != 4)
        return true;
    double lo = strcmp(lo_s, "-inf") == 0 ? -INFINITY : atof(lo_s);
    double hi = strcmp(hi_s, "inf") == 0 ? INFINITY : atof(hi_s);
    return (lo_b == '[' ? x >= lo : x > lo) && (hi_b == ']' ? x <= hi : x < hi);
}

static bool in_choices(const char *range, const char *s)
{
    if (!range || !strchr(range, '|'))
        return true;
    size_t n = strlen(s);
    for (const char *p = range; p; p = strchr(p, '|'), p = p ? p + 1 : NULL)
        if (strncmp(p, s, n) == 0 && (p[n] == '|' || p[n] == 0))
            return true;
    return false;
}

static bool where(const struct config *c, const struct config_entry *e, char *out, size_t cap)
{
    if (e->origin == CONFIG_FROM_FILE && e->line > 0)
        snprintf(out, cap, "%s:%d: ", c->source, e->line);
    else if (e->origin == CONFIG_FROM_OVERRIDE)
        snprintf(out, cap, "command line: ");
    else
        snprintf(out, cap, "%s", "");
    return true;
}

static bool check_value(const struct config *c, const struct config_entry *e, const char *v,
                        struct lm_err *err)
{
    const struct config_key *k = e->key;
    enum config_type t = is_list_type(k->type) ? k->type - (CONFIG_INT_LIST - CONFIG_INT) : k->type;
    char at[600];
    where(c, e, at, sizeof at);
    double x;
    long i;
    bool b;
    bool ok = t == CONFIG_BOOL   ? config_parse_bool(v, &b)
              : t == CONFIG_INT  ? config_parse_int(v, &i) && (x = (double)i, true)
              : t == CONFIG_REAL ? config_parse_real(v, &x)
                                 : true;
    if (!ok && t == CONFIG_INT && config_parse_real(v, &x) && x == floor(x))
        return lm_err_set(err, "%s%s = %s is out of range: expected an integer in %s", at, e->path,
                          v, k->range ? k->range : "[-2^63, 2^63)");
    if (!ok)
        return lm_err_set(err, "%s%s: '%s' is not %s", at, e->path, v,
                          type_name(is_list_type(k->type) ? t : k->type));
    if ((t == CONFIG_INT || t == CONFIG_REAL) && !in_range(k->range, x))
        return lm_err_set(err, "%s%s = %s is out of range: expected a value in %s", at, e->path, v,
                          k->range);
    if (t == CONFIG_STRING && !in_choices(k->range, v))
        return lm_err_set(err, "%s%s = '%s' is not allowed: expected one of %s", at, e->path, v,
                          k->range);
    return true;
}

static bool check_entry(const struct config *c, const struct config_entry *e, struct lm_err *err)
{
    char at[600];
    where(c, e, at, sizeof at);
    if (!e->key)
        return lm_err_set(err, "%sunknown key '%s'", at, e->path);
    if (e->is_list && !is_list_type(e->key->type))
        return lm_err_set(err, "%s%s: expected %s, found a list", at, e->path,
                          type_name(e->key->type));
    if (!e->is_list && is_list_type(e->key->type))
        return lm_err_set(err, "%s%s: expected %s such as [a, b], found '%s'", at, e->path,
                          type_name(e->key->type), e->n_values ? e->values[0] : "");
    for (int i = 0; i < e->n_values; i++)
        if (!check_value(c, e, e->values[i], err))
            return false;
    return true;
}

/* Add the default of key k at concrete path, or report it missing. */
static bool fill_default(struct config *c, const struct config_key *k, const char *path,
                         struct lm_err *err)
{
    if (config_entry(c, path))
        return true;
    if (!k->def)
        return lm_err_set(err, "%s: missing required key '%s' (%s)", c->source, path, k->help);
    return config_set_yaml_value(c, path, k->def, CONFIG_FROM_DEFAULT, err);
}

/* Concrete instances of the parent of pattern key k present in c (e.g. "jerald.maps.dm"). */
static bool fill_pattern_defaults(struct config *c, const struct config_key *k, struct lm_err *err)
{
    int depth = n_segments(k->path) - 1;
    int n0 = c->n_entries;
    for (int i = 0; i < n0; i++) {
        const char *p = c->entries[i].path;
        if (n_segments(p) <= depth || !prefix_matches(k->path, p, depth))
            continue;
        char path[512] = "", seg[128];
        for (int s = 0; s < depth; s++) {
            segment(p, s, seg, sizeof seg);
            strcat(strcat(path, seg), ".");
        }
        segment(k->path, depth, seg, sizeof seg);
        strcat(path, seg);
        if (!fill_default(c, k, path, err))
            return false;
    }
    return true;
}

bool config_finalize(struct config *c, struct lm_err *err)
{
    for (int i = 0; i < c->n_entries; i++)
        if (!check_entry(c, &c->entries[i], err))
            return false;
    for (int i = 0; i < c->n_schema; i++) {
        const struct config_key *k = &c->schema[i];
        bool pattern = strchr(k->path, '*') || strchr(k->path, '#');
        if (!(pattern ? fill_pattern_defaults(c, k, err) : fill_default(c, k, k->path, err)))
            return false;
    }
    for (int i = 0; i < c->n_entries; i++)
        if (!check_entry(c, &c->entries[i], err))
            return false;
    return true;
}

/* ---- lookups -------------------------------------------------------------------------------- */

bool config_has(const struct config *c, const char *path) { return config_entry(c, path) != 0; }

static const char *scalar(const struct config *c, const char *path)
{
    const struct config_entry *e = config_entry(c, path);
    CHECK(e && !e->is_list && e->n_values == 1, "internal error: no scalar parameter '%s'", path);
    return e->values[0];
}

double config_real(const struct config *c, const char *path)
{
    double x = 0;
    CHECK(config_parse_real(scalar(c, path), &x), "%s is not a number", path);
    return x;
}

long config_int(const struct config *c, const char *path)
{
    long x = 0;
    CHECK(config_parse_int(scalar(c, path), &x), "%s is not an integer", path);
    return x;
}

bool config_bool(const struct config *c, const char *path)
{
    bool x = false;
    CHECK(config_parse_bool(scalar(c, path), &x), "%s is not a boolean", path);
    return x;
}

const char *config_string(const struct config *c, const char *path) { return scalar(c, path); }

int config_list_n(const struct config *c, const char *path)
{
    const struct config_entry *e = config_entry(c, path);
    return e ? e->n_values : 0;
}

const char *config_list_item(const struct config *c, const char *path, int i)
{
    const struct config_entry *e = config_entry(c, path);
    CHECK(e && i >= 0 && i < e->n_values, "internal error: %s[%d] does not exist", path, i);
    return e->values[i];
}

int config_children(const struct config *c, const char *prefix, char (*names)[64], int max)
{
    int depth = n_segments(prefix), n = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < c->n_entries; i++) {
        const char *p = c->entries[i].path;
        if (strncmp(p, prefix, len) != 0 || p[len] != '.')
            continue;
        char seg[64];
        segment(p, depth, seg, sizeof seg);
        bool seen = false;
        for (int j = 0; j < n; j++)
            seen |= strcmp(names[j], seg) == 0;
        if (!seen && n < max)
            snprintf(names[n++], 64, "%s", seg);
    }
    return n;
}

/* ---- schema documentation ------------------------------------------------------------------- */

void config_schema_markdown(const struct config_key *schema, int n_schema, FILE *f)
{
    static const char *short_type[] = {"bool",     "int",       "real",       "string",
                                       "int list", "real list", "string list"};
    fprintf(f, "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n_schema; i++) {
        const struct config_key *k = &schema[i];
        char range[128];
        snprintf(range, sizeof range, "%s", k->range ? k->range : "");
        for (char *p = range; *p; p++)
            if (*p == '|')
                *p = '/';
        fprintf(f, "| `%s` | %s | %s%s%s | %s | %s |\n", k->path, short_type[k->type],
                k->def ? "`" : "", k->def ? (*k->def ? k->def : "\"\"") : "required",
                k->def ? "`" : "", range, k->help);
    }
}
