#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0;
static int g_size = 1;
static int g_verbosity = 1;
static void (*g_exit_hook)(int) = exit;
static struct timespec g_t0;
static bool g_t0_set = false;

static double elapsed(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (!g_t0_set) {
        g_t0 = t;
        g_t0_set = true;
    }
    return (double)(t.tv_sec - g_t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - g_t0.tv_nsec);
}

bool lm_err_set(struct lm_err *err, const char *fmt, ...)
{
    if (err->msg[0])
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (!err->msg[0])
        snprintf(err->msg, sizeof err->msg, "unspecified error");
    return false;
}

bool lm_err_ok(const struct lm_err *err) { return err->msg[0] == 0; }

void lm_set_exit_hook(void (*hook)(int)) { g_exit_hook = hook ? hook : exit; }

_Noreturn void lm_exit(int status)
{
    fflush(stdout);
    fflush(stderr);
    g_exit_hook(status);
    exit(status); /* a hook must not return; make sure */
}

void msg_set_rank(int rank, int size)
{
    g_rank = rank;
    g_size = size;
    elapsed();
}

void msg_set_verbosity(int level) { g_verbosity = level; }
int msg_verbosity(void) { return g_verbosity; }

static void vprint(FILE *f, const char *level, const char *file, const char *func, int line,
                   const char *fmt, va_list ap)
{
    char text[4096];
    vsnprintf(text, sizeof text, fmt, ap);
    if (g_verbosity >= 2)
        fprintf(f, "[%d] %8.3fs %s:%s():%d %s: %s\n", g_rank, elapsed(), file, func, line, level,
                text);
    else if (g_size > 1 && strcmp(level, "info") != 0)
        fprintf(f, "lemur: [rank %d] %s: %s\n", g_rank, level, text);
    else if (strcmp(level, "info") == 0)
        fprintf(f, "%s\n", text);
    else
        fprintf(f, "lemur: %s: %s\n", level, text);
    fflush(f);
}

_Noreturn void lm_fatal_at(const char *file, const char *func, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint(stderr, "error", file, func, line, fmt, ap);
    va_end(ap);
    lm_exit(EXIT_FAILURE);
}

void msg_info_at(const char *file, const char *func, int line, const char *fmt, ...)
{
    if (g_rank != 0 || g_verbosity < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprint(stdout, "info", file, func, line, fmt, ap);
    va_end(ap);
}

void msg_warn_at(const char *file, const char *func, int line, bool all, const char *fmt, ...)
{
    if (g_rank != 0 && !all)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprint(stderr, "warning", file, func, line, fmt, ap);
    va_end(ap);
}

void msg_debug_at(const char *file, const char *func, int line, const char *fmt, ...)
{
    if (g_verbosity < 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprint(stderr, "debug", file, func, line, fmt, ap);
    va_end(ap);
}
