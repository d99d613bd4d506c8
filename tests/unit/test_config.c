/* Parameter files: parsing, patterns, defaults, overrides, strict values and the YAML echo. */
#include "alloc.h"
#include "config.h"
#include "harness.h"
#include "params.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct config_key schema[] = {
    {"box.size", CONFIG_REAL, "250", "(0, inf)", "side", CONFIG_NO_FIELD},
    {"box.n", CONFIG_INT, NULL, "[2, 64]", "cells", CONFIG_NO_FIELD},
    {"run.stages", CONFIG_STRING_LIST, "[ic, power]", "ic|power|jerald", "stages", CONFIG_NO_FIELD},
    {"run.name", CONFIG_STRING, "", NULL, "free text", CONFIG_NO_FIELD},
    {"maps.*.green", CONFIG_STRING, "dm", "dm|sm", "Green's function", CONFIG_NO_FIELD},
    {"maps.*.layers.#.alpha", CONFIG_REAL, NULL, NULL, "strength", CONFIG_NO_FIELD},
    {"maps.*.layers.#.nu", CONFIG_REAL, "0", NULL, "slope", CONFIG_NO_FIELD},
};
static const int n_schema = sizeof schema / sizeof schema[0];

static struct config *parse(const char *yaml, struct lm_err *err)
{
    struct config *c = config_create(schema, n_schema);
    memset(err, 0, sizeof *err);
    if (!config_load_string(c, yaml, "t.yml", err) || !config_finalize(c, err))
        config_destroy(&c);
    return c;
}

static void test_defaults_and_patterns(void)
{
    struct lm_err err;
    struct config *c = parse("box: {n: 16}\nmaps:\n  stars:\n    green: sm\n    layers:\n"
                             "      - {alpha: 1.5}\n      - {alpha: 2, nu: -0.5}\n  dm:\n"
                             "    layers: [{alpha: 3}]\n",
                             &err);
    T_CHECK(c != NULL, "parse failed: %s", err.msg);
    if (!c)
        return;
    T_CLOSE(config_real(c, "box.size"), 250.0, 0);
    T_CHECK(config_int(c, "box.n") == 16, "box.n");
    T_CHECK(config_list_n(c, "run.stages") == 2, "default list");
    T_CHECK(strcmp(config_string(c, "maps.dm.green"), "dm") == 0, "pattern default");
    T_CLOSE(config_real(c, "maps.stars.layers.0.nu"), 0.0, 0);
    T_CLOSE(config_real(c, "maps.stars.layers.1.nu"), -0.5, 0);
    char names[8][64];
    int n = config_children(c, "maps", names, 8);
    T_CHECK(n == 2 && strcmp(names[0], "stars") == 0 && strcmp(names[1], "dm") == 0, "children: %d",
            n);
    T_CHECK(config_children(c, "maps.stars.layers", names, 8) == 2, "layer count");
    config_destroy(&c);
    T_CHECK(c == NULL, "destroy sets NULL");
}

static void test_echo_round_trip(void)
{
    struct lm_err err;
    struct config *c =
        parse("box: {n: 8, size: 1e3}\nrun: {name: \"a b: c\\n\\td\", stages: [jerald]}\n"
              "maps: {x: {layers: [{alpha: 1}, {alpha: 2}]}}\n",
              &err);
    T_CHECK(c != NULL, "%s", err.msg);
    if (!c)
        return;
    char *y1 = config_to_yaml(c);
    struct config *d = parse(y1, &err);
    T_CHECK(d != NULL, "echo does not parse back: %s\n%s", err.msg, y1);
    if (d) {
        char *y2 = config_to_yaml(d);
        T_CHECK(strcmp(y1, y2) == 0, "echo is not a fixed point:\n%s\n---\n%s", y1, y2);
        T_CHECK(strcmp(config_string(d, "run.name"), "a b: c\n\td") == 0,
                "quoted string with a line break and a tab");
        lm_free(y2);
        config_destroy(&d);
    }
    lm_free(y1);
    config_destroy(&c);
}

static void expect_error(const char *yaml, const char *override, const char *needle)
{
    struct lm_err err = {0};
    struct config *c = config_create(schema, n_schema);
    bool ok = config_load_string(c, yaml, "t.yml", &err);
    if (ok && override)
        ok = config_override(c, override, &err);
    ok = ok && config_finalize(c, &err);
    T_CHECK(!ok, "accepted: %s", yaml);
    T_CHECK(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    config_destroy(&c);
}

static void test_errors(void)
{
    expect_error("box: {n: 8, sise: 3}", NULL, "did you mean 'box.size'");
    expect_error("box: {size: 3}", NULL, "missing required key 'box.n'");
    expect_error("box: {n: 8, size: -1}", NULL, "expected a value in (0, inf)");
    expect_error("box: {n: 8x}", NULL, "'8x' is not an integer");
    expect_error("box: {n: 100}", NULL, "[2, 64]");
    expect_error("box: {n: 8, size: inf}", NULL, "is not a number");
    expect_error("box: {n: 8}\nrun: {stages: [ic, pwer]}", NULL, "expected one of");
    expect_error("box: {n: 8}\nmaps: {a: {layers: [{nu: 1}]}}", NULL, "maps.a.layers.0.alpha");
    expect_error("box: {n: 8}\nmaps: {a: {green: xx, layers: [{alpha: 1}]}}", NULL, "green");
    expect_error("box: {n: 8}", "box.sizr=3", "did you mean 'box.size'");
    expect_error("box: {n: 8}", "box.size=abc", "is not a number");
    expect_error("box: {n: 8}", "box.size", "expected key.path=value");
    expect_error("box: {n: 8}\nbox: {n: 9}", NULL, "duplicate key");
    expect_error("box: 3", NULL, "is a section");
}

static void test_override(void)
{
    struct lm_err err = {0};
    struct config *c = config_create(schema, n_schema);
    bool ok = config_load_string(c, "box: {n: 8}\nmaps: {a: {layers: [{alpha: 1}]}}", "t", &err) &&
              config_override(c, "box.n=32", &err) &&
              config_override(c, "maps.a.layers.0.alpha=2.5", &err) &&
              config_override(c, "run.stages=[power, ic]", &err) && config_finalize(c, &err);
    T_CHECK(ok, "%s", err.msg);
    if (ok) {
        T_CHECK(config_int(c, "box.n") == 32, "override int");
        T_CLOSE(config_real(c, "maps.a.layers.0.alpha"), 2.5, 0);
        T_CHECK(strcmp(config_list_item(c, "run.stages", 0), "power") == 0, "override list");
    }
    config_destroy(&c);
}

static void test_strict_scalars(void)
{
    double x;
    long i;
    bool b;
    T_CHECK(config_parse_real("1e-3", &x) && x == 1e-3, "1e-3");
    T_CHECK(!config_parse_real("1.0.0", &x), "1.0.0");
    T_CHECK(!config_parse_real("", &x), "empty");
    T_CHECK(!config_parse_real("nan", &x), "nan");
    T_CHECK(!config_parse_real(" 1", &x), "leading space");
    T_CHECK(config_parse_int("-7", &i) && i == -7, "-7");
    T_CHECK(!config_parse_int("7.0", &i), "7.0");
    T_CHECK(!config_parse_int("99999999999999999999", &i), "overflow");
    T_CHECK(config_parse_bool("Yes", &b) && b, "Yes");
    T_CHECK(!config_parse_bool("1", &b), "1 is not a boolean");
}

static void test_lemur_schema(void)
{
    /* lemur's own table: all defaults valid, every key documented, the echo parses back. */
    struct lm_err err = {0};
    struct config *c = config_create(params_schema, params_n_schema);
    bool ok = config_load_string(c, "box: {n: 16}", "t", &err) && config_finalize(c, &err);
    T_CHECK(ok, "defaults do not validate: %s", err.msg);
    for (int i = 0; i < params_n_schema; i++)
        T_CHECK(params_schema[i].help && *params_schema[i].help, "%s has no help",
                params_schema[i].path);
    if (ok) {
        struct params p;
        params_fill(&p, c);
        T_CHECK(p.box.n == 16 && p.box.size == 250.0, "typed fill");
        T_CHECK(p.run.stages.n >= 1, "stages");
        params_free(&p);
    } else {
        config_destroy(&c);
    }
}

/* Bounds checked before libyaml: each refused with a message saying what was expected. */
static void test_limits(void)
{
    expect_error("", NULL, "no parameters (the file is empty or holds only comments)");
    expect_error("# nothing here\n\n", NULL, "no parameters");
    expect_error("box: {n: 8}\n---\nbox: {n: 9}\n", NULL, "t.yml:2: a second YAML document");
    expect_error("- box\n- run\n", NULL, "found a list");
    expect_error("box: {n: 99999999999999999999}", NULL,
                 "box.n = 99999999999999999999 is out of range: expected an integer in [2, 64]");
    expect_error("box: {n: 1e20}", NULL, "box.n = 1e20 is out of range");
    expect_error("box: {n: 2.5}", NULL, "'2.5' is not an integer");
    expect_error("box: {n: 8}", "box=3", "command line: 'box' is a section");
    expect_error("box: &a {n: 8}\nrun: *a\n", NULL, "anchors and aliases");
    expect_error("box: {n: 8, size: 1}\nrun: {name: [*x]}\n", NULL, "anchors and aliases");
    char key[200];
    memset(key, 'k', 100);
    snprintf(key + 100, sizeof key - 100, ": 1\n");
    expect_error(key, NULL, "a key of 100 characters; keys are at most 64");
    expect_error("box: {n: 8, size: 'open\n", NULL, "not closed");
    /* quoted '#', '[' and ':' are not structure */
    struct lm_err err;
    struct config *c = parse("box: {n: 8}\nrun: {name: \"a # [b: {c\"}\n", &err);
    T_CHECK(c && strcmp(config_string(c, "run.name"), "a # [b: {c") == 0, "%s", err.msg);
    config_destroy(&c);
    /* deep nesting: flow and block, refused in linear time */
    size_t deep = 100000;
    char *text = malloc(2 * deep + 16);
    memcpy(text, "box: ", 5);
    memset(text + 5, '[', deep);
    memset(text + 5 + deep, ']', deep);
    strcpy(text + 5 + 2 * deep, "\n");
    clock_t t0 = clock();
    expect_error(text, NULL, "t.yml:1: nesting deeper than 32 levels");
    double dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
    T_CHECK(dt < 0.1, "a %zu-deep file took %.3f s to refuse", deep, dt);
    free(text);
    char block[4096] = "";
    for (int i = 0; i < 40; i++)
        snprintf(block + strlen(block), sizeof block - strlen(block), "%*sk%d:\n", i, "", i);
    expect_error(block, NULL, "nesting deeper than 32 levels");
    expect_error("box:\n  - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - 1\n",
                 NULL, "nesting deeper");
}

int main(void)
{
    T_RUN(test_limits);
    T_RUN(test_defaults_and_patterns);
    T_RUN(test_echo_round_trip);
    T_RUN(test_errors);
    T_RUN(test_override);
    T_RUN(test_strict_scalars);
    T_RUN(test_lemur_schema);
    return t_finish();
}
