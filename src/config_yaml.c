/* config — YAML input (libyaml document API) flattened along the schema, and YAML output. */
#include "config.h"

#include "alloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* Limits checked on the raw text before libyaml parses it: libyaml's simple-key bookkeeping is
 * quadratic in the nesting depth, and lemur's schema is at most a few levels deep. */
#define CONFIG_MAX_BYTES ((size_t)4 << 20)
#define CONFIG_MAX_DEPTH 32
#define CONFIG_MAX_KEY   64

struct flatten {
    struct config *c;
    yaml_document_t *doc;
    enum config_origin origin;
    struct lm_err *err;
};

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static bool fail_at(struct flatten *f, const yaml_node_t *n, const char *fmt, const char *path,
                    const char *detail)
{
    char at[600] = "";
    if (f->origin == CONFIG_FROM_FILE)
        snprintf(at, sizeof at, "%s:%d: ", f->c->source, line_of(n));
    else if (f->origin == CONFIG_FROM_OVERRIDE)
        snprintf(at, sizeof at, "command line: ");
    return lm_err_set(f->err, "%s%s '%s'%s%s", at, fmt, path, detail ? "; " : "",
                      detail ? detail : "");
}

static void join(char *out, size_t cap, const char *parent, const char *name)
{
    snprintf(out, cap, "%s%s%s", parent, *parent ? "." : "", name);
}

static bool flatten_node(struct flatten *f, yaml_node_t *n, const char *path);

static bool flatten_mapping(struct flatten *f, yaml_node_t *n, const char *path)
{
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(f->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(f->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return fail_at(f, k, "a key must be a plain name under", path, NULL);
        char child[512], hint[1200];
        join(child, sizeof child, path, (const char *)k->data.scalar.value);
        if (!config_known_path(f->c, child)) {
            config_suggest(f->c, child, hint, sizeof hint);
            return fail_at(f, k, "unknown key", child, hint);
        }
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *kq = yaml_document_get_node(f->doc, q->key);
            if (kq->type == YAML_SCALAR_NODE && strcmp((const char *)kq->data.scalar.value,
                                                       (const char *)k->data.scalar.value) == 0)
                return fail_at(f, k, "duplicate key", child, NULL);
        }
        if (!flatten_node(f, v, child))
            return false;
    }
    return true;
}

static bool flatten_sequence(struct flatten *f, yaml_node_t *n, const char *path)
{
    int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    char first[512];
    join(first, sizeof first, path, "0");
    if (config_known_path(f->c, first)) { /* a list of mappings */
        for (int i = 0; i < count; i++) {
            yaml_node_t *item = yaml_document_get_node(f->doc, n->data.sequence.items.start[i]);
            char child[512], idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            join(child, sizeof child, path, idx);
            if (item->type != YAML_MAPPING_NODE)
                return fail_at(f, item, "expected a mapping as each item of", path, NULL);
            if (!flatten_mapping(f, item, child))
                return false;
        }
        return true;
    }
    const char **values = lm_malloc("config", (count ? count : 1) * sizeof(char *));
    for (int i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(f->doc, n->data.sequence.items.start[i]);
        if (item->type != YAML_SCALAR_NODE) {
            lm_free(values);
            return fail_at(f, item, "expected plain values in the list", path, NULL);
        }
        values[i] = (const char *)item->data.scalar.value;
    }
    config_remove_prefix(f->c, path);
    config_add(f->c, path, count, values, true, line_of(n), f->origin);
    lm_free(values);
    return true;
}

static bool flatten_node(struct flatten *f, yaml_node_t *n, const char *path)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        if (*path && config_is_leaf(f->c, path))
            return fail_at(f, n, "expected a value, found a mapping, for", path, NULL);
        return flatten_mapping(f, n, path);
    case YAML_SEQUENCE_NODE:
        if (!*path)
            return lm_err_set(f->err,
                              "%s:%d: expected a mapping of sections (such as 'box:') at the top "
                              "level, found a list",
                              f->c->source, line_of(n));
        return flatten_sequence(f, n, path);
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)n->data.scalar.value;
        if (!*path)
            return fail_at(f, n, "expected a mapping of sections at the top level, found", v, NULL);
        config_remove_prefix(f->c, path);
        config_add(f->c, path, 1, &v, false, line_of(n), f->origin);
        return true;
    }
    default:
        return fail_at(f, n, "empty value for", path, NULL);
    }
}

/* A scalar given where the schema has a section ("box: 5") leaves an entry without a key. */
static bool check_structure(struct config *c, struct lm_err *err)
{
    for (int i = 0; i < c->n_entries; i++) {
        const struct config_entry *e = &c->entries[i];
        if (e->key)
            continue;
        char at[600] = "", child[600], hint[1200];
        if (e->origin == CONFIG_FROM_OVERRIDE)
            snprintf(at, sizeof at, "command line: ");
        else if (e->line)
            snprintf(at, sizeof at, "%s:%d: ", c->source, e->line);
        snprintf(child, sizeof child, "%s.?", e->path);
        config_suggest(c, child, hint, sizeof hint);
        return lm_err_set(err, "%s'%s' is a section: expected a mapping, not a value (%s)", at,
                          e->path, hint);
    }
    return true;
}

/* ---- limits on the raw text ----------------------------------------------------------------- */

struct prescan {
    const unsigned char *t;
    size_t len, i;
    int line, flow, n_levels, levels[CONFIG_MAX_DEPTH + 2];
    size_t key; /* length of the scalar being read, for the key-length limit */
    const char *source;
    struct lm_err *err;
};

static bool prescan_depth(struct prescan *s, int depth)
{
    if (depth <= CONFIG_MAX_DEPTH)
        return true;
    return lm_err_set(s->err,
                      "%s:%d: nesting deeper than %d levels; lemur's parameters are at most "
                      "a few levels deep",
                      s->source, s->line, CONFIG_MAX_DEPTH);
}

/* Start of a block-context line: indentation levels (a stack of columns) and "- " entries. */
static bool prescan_line_start(struct prescan *s)
{
    size_t j = s->i;
    int col = 0;
    while (j < s->len && s->t[j] == ' ')
        j++, col++;
    if (j >= s->len || s->t[j] == '\n' || s->t[j] == '\r' || s->t[j] == '#')
        return true; /* blank or comment line */
    while (s->n_levels > 0 && s->levels[s->n_levels - 1] > col)
        s->n_levels--;
    if (s->n_levels == 0 || s->levels[s->n_levels - 1] < col) {
        if (!prescan_depth(s, s->n_levels + 1))
            return false;
        s->levels[s->n_levels++] = col;
    }
    int dashes = 0;
    while (j + 1 < s->len && s->t[j] == '-' && (s->t[j + 1] == ' ' || s->t[j + 1] == '\n')) {
        dashes++;
        for (j++; j < s->len && s->t[j] == ' ';)
            j++;
    }
    return prescan_depth(s, s->n_levels + dashes);
}

/* Skip a quoted scalar starting at s->i (the quote); counts its length as a possible key. */
static bool prescan_quoted(struct prescan *s)
{
    unsigned char q = s->t[s->i++];
    for (; s->i < s->len; s->i++, s->key++) {
        unsigned char c = s->t[s->i];
        if (c == '\n')
            s->line++;
        else if (q == '"' && c == '\\')
            s->i++;
        else if (c == q && q == '\'' && s->i + 1 < s->len && s->t[s->i + 1] == '\'')
            s->i++;
        else if (c == q)
            return true;
    }
    return lm_err_set(s->err, "%s:%d: a quoted value is not closed before the end of the file",
                      s->source, s->line);
}

static bool prescan_char(struct prescan *s, unsigned char c)
{
    unsigned char next = s->i + 1 < s->len ? s->t[s->i + 1] : '\n';
    if (c == 0)
        return lm_err_set(s->err, "%s:%d: a NUL byte: expected a YAML text file", s->source,
                          s->line);
    if ((c == '&' || c == '*') && s->key == 0)
        return lm_err_set(s->err,
                          "%s:%d: YAML anchors and aliases (&name, *name) are not supported in "
                          "parameter files; write the values out",
                          s->source, s->line);
    if (c == '[' || c == '{') {
        s->flow++;
        s->key = 0;
        return prescan_depth(s, s->n_levels + s->flow);
    }
    if (c == ']' || c == '}' || c == ',') {
        s->flow -= (c != ',' && s->flow > 0);
        s->key = 0;
        return true;
    }
    if (c == ':' &&
        (next == ' ' || next == '\n' || next == '\r' || (s->flow && strchr(",]}", next)))) {
        if (s->key > CONFIG_MAX_KEY)
            return lm_err_set(s->err, "%s:%d: a key of %zu characters; keys are at most %d",
                              s->source, s->line, s->key, CONFIG_MAX_KEY);
        s->key = 0;
        return true;
    }
    if (c != ' ' || s->key > 0)
        s->key++;
    return true;
}

/* Bound the nesting depth and key length, and refuse anchors, aliases and NUL bytes, in one
 * linear pass over the text (comments and quoted values skipped). */
static bool prescan_text(const unsigned char *t, size_t len, const char *source, struct lm_err *err)
{
    struct prescan s = {.t = t, .len = len, .line = 1, .source = source, .err = err};
    bool line_start = true;
    for (; s.i < len; s.i++) {
        unsigned char c = t[s.i];
        if (line_start && s.flow == 0 && !prescan_line_start(&s))
            return false;
        line_start = false;
        if (c == '\n') {
            s.line++;
            s.key = 0;
            line_start = true;
        } else if (c == '#' && (s.i == 0 || isspace(t[s.i - 1]))) {
            while (s.i + 1 < len && t[s.i + 1] != '\n')
                s.i++;
        } else if ((c == '"' || c == '\'') && s.key == 0) {
            if (!prescan_quoted(&s))
                return false;
        } else if (c != '\r' && c != '\t' && !prescan_char(&s, c)) {
            return false;
        }
    }
    return true;
}

/* ---- parsing -------------------------------------------------------------------------------- */

static bool yaml_failed(const char *where, yaml_parser_t *parser, struct lm_err *err)
{
    return lm_err_set(err, "%s:%d: YAML syntax error: %s %s", where,
                      (int)parser->problem_mark.line + 1, parser->problem ? parser->problem : "",
                      parser->context ? parser->context : "");
}

/* A file holds exactly one document: refuse a second one ("---" after the first). */
static bool single_document(const char *where, yaml_parser_t *parser, struct lm_err *err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc))
        return yaml_failed(where, parser, err);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int line = root ? (int)doc.start_mark.line + 1 : 0;
    yaml_document_delete(&doc);
    if (root)
        return lm_err_set(err, "%s:%d: a second YAML document; expected one document", where, line);
    return true;
}

static bool load(struct config *c, const unsigned char *text, size_t len, const char *path,
                 enum config_origin origin, struct lm_err *err)
{
    const char *where = origin == CONFIG_FROM_OVERRIDE ? "command line" : c->source;
    if (!prescan_text(text, len, where, err))
        return false;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_failed(where, &parser, err);
        yaml_parser_delete(&parser);
        return false;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    bool ok = true;
    if (root) {
        struct flatten f = {c, &doc, origin, err};
        ok = flatten_node(&f, root, path) && check_structure(c, err);
    } else if (!*path) {
        ok = lm_err_set(err,
                        "%s: no parameters (the file is empty or holds only comments); expected a "
                        "mapping of sections such as 'box:'",
                        c->source);
    }
    yaml_document_delete(&doc);
    ok = ok && single_document(where, &parser, err);
    yaml_parser_delete(&parser);
    return ok;
}

bool config_load_string(struct config *c, const char *yaml, const char *name, struct lm_err *err)
{
    snprintf(c->source, sizeof c->source, "%s", name);
    return load(c, (const unsigned char *)yaml, strlen(yaml), "", CONFIG_FROM_FILE, err);
}

/* Read at most CONFIG_MAX_BYTES + 1 bytes of path (a regular file, a pipe or a device). */
static char *read_limited(const char *path, size_t *got, struct lm_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        lm_err_set(err, "cannot open parameter file '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        lm_err_set(err, "'%s' is a directory: expected a YAML parameter file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        lm_err_set(err, "cannot open parameter file '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *text = lm_malloc("config.text", CONFIG_MAX_BYTES + 2);
    *got = 0;
    size_t k;
    while (*got <= CONFIG_MAX_BYTES &&
           (k = fread(text + *got, 1, CONFIG_MAX_BYTES + 1 - *got, f)) > 0)
        *got += k;
    bool failed = ferror(f);
    fclose(f);
    text[*got] = 0;
    if (failed || *got > CONFIG_MAX_BYTES) {
        if (failed)
            lm_err_set(err, "cannot read parameter file '%s'", path);
        else
            lm_err_set(err,
                       "parameter file '%s' is larger than %zu MiB: expected a short YAML file",
                       path, CONFIG_MAX_BYTES >> 20);
        lm_free(text);
        return NULL;
    }
    return text;
}

bool config_load_file(struct config *c, const char *path, struct lm_err *err)
{
    size_t got = 0;
    char *text = read_limited(path, &got, err);
    if (!text)
        return false;
    snprintf(c->source, sizeof c->source, "%s", path);
    bool ok = load(c, (unsigned char *)text, got, "", CONFIG_FROM_FILE, err);
    lm_free(text);
    return ok;
}

bool config_set_yaml_value(struct config *c, const char *path, const char *yaml,
                           enum config_origin origin, struct lm_err *err)
{
    if (!*yaml) { /* an empty default is the empty string */
        config_remove_prefix(c, path);
        config_add(c, path, 1, &yaml, false, 0, origin);
        return true;
    }
    return load(c, (const unsigned char *)yaml, strlen(yaml), path, origin, err);
}

bool config_override(struct config *c, const char *assignment, struct lm_err *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return lm_err_set(err, "command line: '%s' is not an override; expected key.path=value",
                          assignment);
    char path[512], hint[1200];
    snprintf(path, sizeof path, "%.*s", (int)(eq - assignment), assignment);
    if (!config_known_path(c, path)) {
        config_suggest(c, path, hint, sizeof hint);
        return lm_err_set(err, "command line: unknown key '%s'; %s", path, hint);
    }
    if (!eq[1])
        return lm_err_set(err, "command line: empty value for '%s'", path);
    config_remove_prefix(c, path);
    return load(c, (const unsigned char *)eq + 1, strlen(eq + 1), path, CONFIG_FROM_OVERRIDE,
                err) &&
           check_structure(c, err);
}

/* ---- output --------------------------------------------------------------------------------- */

static bool plain_safe(const char *s)
{
    if (!*s)
        return false;
    double x;
    bool b;
    if (config_parse_real(s, &x) || config_parse_bool(s, &b))
        return true; /* numbers and booleans are written as given */
    if (strcasecmp(s, "null") == 0 || s[0] == '-' || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_./-+", *p))
            return false;
    return true;
}

static void put_scalar(FILE *f, const char *s, enum config_type t)
{
    if (t != CONFIG_STRING && t != CONFIG_STRING_LIST) {
        fputs(s, f);
        return;
    }
    if (plain_safe(s) && !config_parse_real(s, &(double){0}) && !config_parse_bool(s, &(bool){0})) {
        fputs(s, f);
        return;
    }
    /* a double-quoted YAML scalar: quotes, backslashes and control characters escaped, so that
     * line breaks and tabs inside a value read back as themselves */
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A tree node of the output: children in first-insertion order. */
struct ynode {
    char name[64];
    const struct config_entry *entry;
    struct ynode *child, *next;
};

static struct ynode *ynode_child(struct ynode *n, const char *name)
{
    struct ynode **at = &n->child;
    for (; *at; at = &(*at)->next)
        if (strcmp((*at)->name, name) == 0)
            return *at;
    *at = lm_calloc("config.tree", 1, sizeof **at);
    snprintf((*at)->name, sizeof(*at)->name, "%s", name);
    return *at;
}

static void ynode_free(struct ynode *n)
{
    while (n) {
        struct ynode *next = n->next;
        ynode_free(n->child);
        lm_free(n);
        n = next;
    }
}

static void emit(FILE *f, const struct ynode *n, int indent, bool dash_first)
{
    for (const struct ynode *c = n->child; c; c = c->next) {
        if (dash_first && c == n->child)
            fprintf(f, "%*s- ", indent - 2, "");
        else
            fprintf(f, "%*s", indent, "");
        if (c->entry) {
            enum config_type t = c->entry->key ? c->entry->key->type : CONFIG_STRING;
            fprintf(f, "%s: ", c->name);
            if (c->entry->is_list) {
                fputc('[', f);
                for (int i = 0; i < c->entry->n_values; i++) {
                    if (i)
                        fputs(", ", f);
                    put_scalar(f, c->entry->values[i], t);
                }
                fputs("]\n", f);
            } else {
                put_scalar(f, c->entry->values[0], t);
                fputc('\n', f);
            }
        } else if (c->child && isdigit((unsigned char)c->child->name[0])) {
            fprintf(f, "%s:\n", c->name);
            for (const struct ynode *item = c->child; item; item = item->next)
                emit(f, item, indent + 4, true);
        } else {
            fprintf(f, "%s:\n", c->name);
            emit(f, c, indent + 2, false);
        }
    }
}

static int schema_index(const struct config *c, const struct config_entry *e)
{
    return e->key ? (int)(e->key - c->schema) : c->n_schema;
}

char *config_to_yaml(const struct config *c)
{
    /* Insert in schema order (stable), so sections come out in documentation order. */
    struct ynode root = {0};
    for (int k = 0; k <= c->n_schema; k++)
        for (int i = 0; i < c->n_entries; i++) {
            const struct config_entry *e = &c->entries[i];
            if (schema_index(c, e) != k)
                continue;
            struct ynode *n = &root;
            char seg[64];
            const char *p = e->path;
            while (*p) {
                size_t len = strcspn(p, ".");
                snprintf(seg, sizeof seg, "%.*s", (int)len, p);
                n = ynode_child(n, seg);
                p += len + (p[len] == '.');
            }
            n->entry = e;
        }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    emit(f, &root, 0, false);
    fclose(f);
    ynode_free(root.child);
    char *out = lm_strdup("config.text", buf ? buf : "");
    free(buf);
    return out;
}
