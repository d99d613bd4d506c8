/*
 * libFuzzer target for lemur's parameter-file parser (clang -fsanitize=fuzzer,address,undefined).
 *
 * Input: the bytes of a parameter file, parsed with lemur's own schema. Properties checked on
 * every input: no crash, leak or undefined behaviour (the sanitizers); a failure always carries a
 * message; an accepted file's effective configuration (config_to_yaml) parses back and echoes
 * identically. Bytes after a first NUL are a command-line override ("key.path=value").
 *
 *   make fuzz                        build build-fuzz/fuzz_config and run it for FUZZ_SECONDS (600)
 *   tests/cli/fuzz.sh                the short run (20 s) of make check
 */
#include "alloc.h"
#include "config.h"
#include "params.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *echo_of(const char *text, const char *override, struct lm_err *err)
{
    struct config *c = config_create(params_schema, params_n_schema);
    bool ok = config_load_string(c, text, "fuzz.yml", err);
    if (ok && override)
        ok = config_override(c, override, err);
    ok = ok && config_finalize(c, err);
    char *out = ok ? config_to_yaml(c) : NULL;
    config_destroy(&c);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    size_t len = strlen(text);
    const char *override = len + 1 < size ? text + len + 1 : NULL;
    struct lm_err err = {{0}};
    char *echo = echo_of(text, override, &err);
    if (!echo && lm_err_ok(&err)) {
        fprintf(stderr, "refused without a message\n");
        abort();
    }
    if (echo) {
        struct lm_err err2 = {{0}};
        char *again = echo_of(echo, NULL, &err2);
        if (!again || strcmp(again, echo) != 0) {
            fprintf(stderr, "the effective configuration does not parse back (%s):\n%s\n", err2.msg,
                    echo);
            abort();
        }
        lm_free(again);
        lm_free(echo);
    }
    free(text);
    return 0;
}
