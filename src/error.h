/*
 * error (tier: base) — fatal errors, assertions and rank-tagged messages.
 *
 * One _Noreturn fatal function sits behind the macros:
 *   CHECK(cond, fmt, ...)   always on; for input and usage errors. The message names the key,
 *                           file or dataset, the value, and what was expected.
 *   ASSERT(cond)            debug builds only (NDEBUG removes it); for bugs.
 *   CUDA_CHECK / CUDNN_CHECK / MPI_CHECK live beside the code that needs them (src/gpu, src/mpi).
 *
 * Messages are "[rank] time file:func():line level: text" on stderr (SWIFT style) at verbosity 2,
 * plain "lemur: level: text" otherwise. Rank and verbosity are set once by the driver; this module
 * itself never calls MPI, so it also builds in MPI-free targets (the GPU bench).
 *
 * For expected failures that may differ between ranks (a file one rank cannot open), code fills a
 * struct lm_err and the MPI layer agrees on it (comm_agree in src/mpi/comm.h), so that the message
 * is printed once, by rank 0, and every rank exits cleanly with a non-zero status.
 */
#ifndef LEMUR_ERROR_H
#define LEMUR_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

/** An expected failure, carried until the ranks agree on it. ok when msg[0] == 0. */
struct lm_err {
    char msg[1024];
};

/** Record a failure in *err (keeps the first one). Local. Returns false for `return` chaining. */
bool lm_err_set(struct lm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** True when no failure was recorded. Local. */
bool lm_err_ok(const struct lm_err *err);

/** Print "lemur: error: msg" (with location at verbosity >= 2) and leave through the exit hook. */
_Noreturn void lm_fatal_at(const char *file, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Exit hook used by lm_fatal_at: default exit(EXIT_FAILURE); the MPI driver installs MPI_Abort. */
void lm_set_exit_hook(void (*hook)(int status));
/** Leave the program with status through the installed hook. Local. */
_Noreturn void lm_exit(int status);

/** Set this process's rank (for message tags) and the world size. Local. */
void msg_set_rank(int rank, int size);
/** Verbosity: 0 errors and warnings only, 1 info (default), 2 debug with locations. Local. */
void msg_set_verbosity(int level);
int msg_verbosity(void);

/** Informational message printed by rank 0 only. Local. */
void msg_info_at(const char *file, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Warning printed by rank 0 only (pass all=true from code where only some ranks warn). */
void msg_warn_at(const char *file, const char *func, int line, bool all, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** Debug message (verbosity 2), printed by every rank with its tag. Local. */
void msg_debug_at(const char *file, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define lm_fatal(...)       lm_fatal_at(__FILE__, __func__, __LINE__, __VA_ARGS__)
#define msg_info(...)       msg_info_at(__FILE__, __func__, __LINE__, __VA_ARGS__)
#define msg_warn(...)       msg_warn_at(__FILE__, __func__, __LINE__, false, __VA_ARGS__)
#define msg_warn_local(...) msg_warn_at(__FILE__, __func__, __LINE__, true, __VA_ARGS__)
#define msg_debug(...)      msg_debug_at(__FILE__, __func__, __LINE__, __VA_ARGS__)

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            lm_fatal_at(__FILE__, __func__, __LINE__, __VA_ARGS__);                                \
    } while (0)

#ifdef NDEBUG
#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        (void)sizeof(cond);                                                                        \
    } while (0)
#else
#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            lm_fatal_at(__FILE__, __func__, __LINE__, "internal error: assertion '%s' failed",     \
                        #cond);                                                                    \
    } while (0)
#endif

#endif
