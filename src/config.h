/*
 * config (tier: base) — parameter files: YAML parsed with libyaml, checked against a schema table,
 * with defaults filled in and command-line overrides applied.
 *
 * A file is flattened into entries with dotted paths ("box.size", "emulator.redshifts",
 * "jerald.maps.dm.layers.0.alpha"). The schema is a table of struct config_key; a path segment '*'
 * in a key matches any name (a map of user-named items) and '#' matches a list index (a list of
 * mappings). Leaves are scalars or flow lists of scalars. Values keep the text the user wrote, so
 * the effective configuration echoes them exactly.
 *
 * Errors are reported through struct lm_err with the file, line, key, value and what was expected;
 * an unknown key suggests the nearest valid one. Everything here is local: src/mpi/config_bcast.c
 * parses on rank 0 and broadcasts.
 */
#ifndef LEMUR_CONFIG_H
#define LEMUR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

enum config_type {
    CONFIG_BOOL,
    CONFIG_INT,
    CONFIG_REAL,
    CONFIG_STRING,
    CONFIG_INT_LIST,
    CONFIG_REAL_LIST,
    CONFIG_STRING_LIST,
};

#define CONFIG_NO_FIELD ((size_t)-1)

/** One documented parameter. */
struct config_key {
    const char *path;      /**< dotted path; '*' matches a name, '#' a list index */
    enum config_type type; /**< value type (lists apply the range to every item) */
    const char *def;       /**< default as YAML text; NULL: required */
    const char *range;     /**< "(0, inf)", "[1, 3]" for numbers; "a|b|c" for strings; NULL */
    const char *help;      /**< one line of documentation (units included) */
    size_t offset;         /**< where params_fill stores it in struct params, or CONFIG_NO_FIELD */
};

enum config_origin { CONFIG_FROM_DEFAULT, CONFIG_FROM_FILE, CONFIG_FROM_OVERRIDE };

/** One flattened value. */
struct config_entry {
    char *path;
    int n_values;  /**< 1 for scalars, the length for lists */
    char **values; /**< the text of each value */
    bool is_list;
    int line; /**< line in the source file (1-based), 0 when not from a file */
    enum config_origin origin;
    const struct config_key *key;
};

struct config {
    const struct config_key *schema;
    int n_schema;
    struct config_entry *entries;
    int n_entries, cap_entries;
    char source[512]; /**< the file name (or "<string>") for messages */
};

/** Create an empty configuration over schema (not copied: must outlive the config). Local. */
struct config *config_create(const struct config_key *schema, int n_schema);
/** Free c and everything it owns; NULL-safe; sets *c = NULL. Local. */
void config_destroy(struct config **c);

/** Parse a YAML file into c. Returns false with a message on any error. Local. */
bool config_load_file(struct config *c, const char *path, struct lm_err *err);
/** Parse YAML text (name is used in messages). Local. */
bool config_load_string(struct config *c, const char *yaml, const char *name, struct lm_err *err);
/** Apply "key.path=value" (value is YAML: a scalar or a flow list). Local. */
bool config_override(struct config *c, const char *assignment, struct lm_err *err);
/** Check every value's type and range, fill defaults, report missing required keys. Local. */
bool config_finalize(struct config *c, struct lm_err *err);

/** The effective configuration as YAML text (lm_malloc'd, label "config.text"). Local. */
char *config_to_yaml(const struct config *c);

/** Lookups on a finalized config. Missing keys or wrong types are bugs (ASSERT). Local. */
bool config_has(const struct config *c, const char *path);
double config_real(const struct config *c, const char *path);
long config_int(const struct config *c, const char *path);
bool config_bool(const struct config *c, const char *path);
const char *config_string(const struct config *c, const char *path);
int config_list_n(const struct config *c, const char *path);
const char *config_list_item(const struct config *c, const char *path, int i);
/** Names of the direct children of prefix (e.g. the map names under "jerald.maps", or the list
 *  indices "0", "1", ... under "jerald.maps.dm.layers"), in order of appearance; copies at most
 *  max of them into names and returns how many were copied. Local. */
int config_children(const struct config *c, const char *prefix, char (*names)[64], int max);
/** The entry of path, or NULL. Local. */
const struct config_entry *config_entry(const struct config *c, const char *path);

/** Strict scalar parsers shared with the schema checks: whole string, finite numbers. */
bool config_parse_real(const char *s, double *v);
bool config_parse_int(const char *s, long *v);
bool config_parse_bool(const char *s, bool *v);

/** Internals shared with config_yaml.c. */
bool config_known_path(const struct config *c, const char *path);
bool config_is_leaf(const struct config *c, const char *path);
void config_suggest(const struct config *c, const char *path, char *out, size_t cap);
/** Edit (Levenshtein) distance between a and b, ignoring case; 1000 for names over 120 characters.
 *  Local. */
int config_edit_distance(const char *a, const char *b);
void config_remove_prefix(struct config *c, const char *path);
struct config_entry *config_add(struct config *c, const char *path, int n_values,
                                const char *const *values, bool is_list, int line,
                                enum config_origin origin);
bool config_set_yaml_value(struct config *c, const char *path, const char *yaml,
                           enum config_origin origin, struct lm_err *err);

/** Print the schema as a Markdown table (key, type, default, range, meaning). Local. */
void config_schema_markdown(const struct config_key *schema, int n_schema, FILE *f);

#endif
