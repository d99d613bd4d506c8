/*
 * harness — the small test harness shared by lemur's unit and MPI tests.
 *
 *   static void test_something(void) { T_CHECK(x == 1, "x was %d", x); T_CLOSE(a, b, 1e-6); }
 *   int main(int argc, char **argv) { T_RUN(test_something); return t_finish(); }
 *
 * MPI tests call t_mpi_init(&argc, &argv) first: then each case's failure count is summed over the
 * ranks, only rank 0 prints, and t_finish finalizes MPI. Every binary ends with the line
 *   cases: passed=N failed=M
 * which tests/run.sh adds up into the final "N passed, N failed".
 */
#ifndef LEMUR_TEST_HARNESS_H
#define LEMUR_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef T_USE_MPI
#include <mpi.h>
#endif

static int t_failures_in_case = 0;
static int t_passed = 0, t_failed = 0;
static int t_rank = 0, t_size = 1;

#define T_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (t_failures_in_case++ < 8) {                                                        \
                fprintf(stderr, "  [rank %d] %s:%d: check failed: %s: ", t_rank, __FILE__,         \
                        __LINE__, #cond);                                                          \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fputc('\n', stderr);                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* |a - b| <= atol + rtol |b| */
#define T_CLOSE_TOL(a, b, rtol, atol)                                                              \
    do {                                                                                           \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                             \
        T_CHECK(fabs(t_a_ - t_b_) <= (atol) + (rtol)*fabs(t_b_) && !isnan(t_a_),                   \
                "%s = %.12g, %s = %.12g (rtol %g, atol %g)", #a, t_a_, #b, t_b_, (double)(rtol),   \
                (double)(atol));                                                                   \
    } while (0)
#define T_CLOSE(a, b, rtol) T_CLOSE_TOL(a, b, rtol, 0.0)

static inline void t_run_case(const char *name, void (*fn)(void))
{
    t_failures_in_case = 0;
    fn();
    int failed = t_failures_in_case;
#ifdef T_USE_MPI
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
#endif
    if (failed)
        t_failed++;
    else
        t_passed++;
    if (t_rank == 0) {
        printf("%s %s", failed ? "FAIL" : "ok  ", name);
        if (t_size > 1)
            printf(" (%d ranks)", t_size);
        printf("\n");
        fflush(stdout);
    }
}
#define T_RUN(fn) t_run_case(#fn, fn)

#ifdef T_USE_MPI
static inline void t_mpi_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &t_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &t_size);
}
#endif

static inline int t_finish(void)
{
    if (t_rank == 0)
        printf("cases: passed=%d failed=%d\n", t_passed, t_failed);
#ifdef T_USE_MPI
    MPI_Finalize();
#endif
    return t_failed ? 1 : 0;
}

#endif
