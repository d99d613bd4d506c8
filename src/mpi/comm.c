#include "mpi/comm.h"

#include "alloc.h"
#include "timer.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t g_signal = 0;

static bool g_reported = false; /* comm_interrupted has reported a signal */

static void on_signal(int sig) { g_signal = sig; }

/* SIGTERM and SIGINT only raise a flag that comm_interrupted reads at safe points; a second
 * signal takes the default action (SA_RESETHAND). */
static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static _Noreturn void abort_hook(int status)
{
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size == 1) {
        MPI_Finalize();
        exit(status);
    }
    MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

MPI_Comm comm_init(int *argc, char ***argv)
{
    int provided = 0, rank = 0, size = 1;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    msg_set_rank(rank, size);
    lm_set_exit_hook(abort_hook);
    install_signal_handlers();
    MPI_Comm world;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &world));
    return world;
}

void comm_finalize(MPI_Comm *world)
{
    if (*world != MPI_COMM_NULL)
        MPI_Comm_free(world);
    lm_set_exit_hook(NULL);
    MPI_Finalize();
}

int comm_rank(MPI_Comm comm)
{
    int r;
    MPI_CHECK(MPI_Comm_rank(comm, &r));
    return r;
}

int comm_size(MPI_Comm comm)
{
    int s;
    MPI_CHECK(MPI_Comm_size(comm, &s));
    return s;
}

bool comm_agree_soft(MPI_Comm comm, struct lm_err *err)
{
    int rank = comm_rank(comm), size = comm_size(comm);
    int mine = lm_err_ok(err) ? size : rank, first;
    MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm));
    if (first == size)
        return true;
    MPI_CHECK(MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, first, comm));
    return false;
}

void comm_agree(MPI_Comm comm, const struct lm_err *err)
{
    struct lm_err e = *err;
    if (comm_agree_soft(comm, &e))
        return;
    if (comm_rank(comm) == 0) {
        fprintf(stderr, "lemur: error: %s\n", e.msg);
        fflush(stderr);
    }
    MPI_Barrier(comm);
    MPI_Finalize();
    exit(EXIT_FAILURE);
}

bool comm_interrupted(MPI_Comm comm, const char *where, struct lm_err *err)
{
    int sig = (int)g_signal;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &sig, 1, MPI_INT, MPI_MAX, comm));
    if (sig == 0)
        return false;
    g_reported = true;
    lm_err_set(err,
               "interrupted by %s %s: stopped with the temporary files removed (run.resume: true "
               "continues from the last completed stage)",
               sig == SIGINT    ? "SIGINT"
               : sig == SIGTERM ? "SIGTERM"
                                : "a signal",
               where);
    return true;
}

bool comm_was_interrupted(void) { return g_reported; }

void comm_bcast_string(MPI_Comm comm, char **s, int root)
{
    long n = comm_rank(comm) == root ? (long)strlen(*s) + 1 : 0;
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG, root, comm));
    if (comm_rank(comm) != root)
        *s = lm_malloc("comm.string", (size_t)n);
    MPI_CHECK(MPI_Bcast(*s, (int)n, MPI_CHAR, root, comm));
}

void comm_sum_double(MPI_Comm comm, double *v, int n)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, comm));
}

void comm_sum_int64(MPI_Comm comm, int64_t *v, int n)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_SUM, comm));
}

void comm_sum_double_ordered(MPI_Comm comm, double *v, int n)
{
    int P = comm_size(comm);
    double *all = lm_malloc("comm.ordered", (size_t)P * (n ? n : 1) * sizeof *all);
    MPI_CHECK(MPI_Allgather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, comm));
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int r = 0; r < P; r++)
            s += all[(size_t)r * n + i];
        v[i] = s;
    }
    lm_free(all);
}

void comm_max_double(MPI_Comm comm, double *v, int n)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MAX, comm));
}

void comm_min_double(MPI_Comm comm, double *v, int n)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MIN, comm));
}

bool comm_all(MPI_Comm comm, bool ok)
{
    int v = ok ? 1 : 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, comm));
    return v != 0;
}

void comm_barrier(MPI_Comm comm) { MPI_CHECK(MPI_Barrier(comm)); }

static void report_timers(MPI_Comm comm, FILE *f)
{
    /* Phases are matched by name: rank 0's list defines the rows. */
    int n = timer_n_phases();
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, comm));
    if (n == 0)
        return;
    int size = comm_size(comm), rank = comm_rank(comm);
    if (rank == 0)
        fprintf(f, "%-32s %10s %10s %10s\n", "phase", "max s", "mean s", "imbalance");
    for (int i = 0; i < n; i++) {
        char name[128] = {0};
        if (rank == 0)
            snprintf(name, sizeof name, "%s", timer_name(i));
        MPI_CHECK(MPI_Bcast(name, (int)sizeof name, MPI_CHAR, 0, comm));
        double t = timer_total(name), mx = t, sum = t;
        comm_max_double(comm, &mx, 1);
        comm_sum_double(comm, &sum, 1);
        double mean = sum / size;
        if (rank == 0)
            fprintf(f, "%-32s %10.3f %10.3f %10.2f\n", name, mx, mean, mean > 0 ? mx / mean : 1.0);
    }
}

/* Every rank: totals of the named entry (phases by rank 0's names). */
static void reduce_named(MPI_Comm comm, char *name, size_t cap, double mine, double *mx,
                         double *sum)
{
    MPI_CHECK(MPI_Bcast(name, (int)cap, MPI_CHAR, 0, comm));
    *mx = *sum = mine;
    comm_max_double(comm, mx, 1);
    comm_sum_double(comm, sum, 1);
}

static void json_phases(MPI_Comm comm, FILE *f)
{
    int n = timer_n_phases(), size = comm_size(comm);
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, comm));
    for (int i = 0; i < n; i++) {
        char name[128] = {0};
        if (comm_rank(comm) == 0)
            snprintf(name, sizeof name, "%s", timer_name(i));
        MPI_CHECK(MPI_Bcast(name, (int)sizeof name, MPI_CHAR, 0, comm));
        double mx, sum;
        reduce_named(comm, name, sizeof name, timer_total(name), &mx, &sum);
        if (f)
            fprintf(f,
                    "%s\n    {\"name\": \"%s\", \"max_s\": %.6f, \"mean_s\": %.6f, "
                    "\"imbalance\": %.4f}",
                    i ? "," : "", name, mx, sum / size, sum > 0 ? mx * size / sum : 1.0);
    }
}

static void json_bytes(MPI_Comm comm, FILE *f)
{
    int n = timer_n_counters();
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, comm));
    for (int i = 0; i < n; i++) {
        char name[128] = {0};
        if (comm_rank(comm) == 0)
            snprintf(name, sizeof name, "%s", timer_counter_name(i));
        double mine = 0, mx, sum;
        MPI_CHECK(MPI_Bcast(name, (int)sizeof name, MPI_CHAR, 0, comm));
        for (int j = 0; j < timer_n_counters(); j++)
            if (strcmp(timer_counter_name(j), name) == 0)
                mine = timer_counter_bytes(j);
        reduce_named(comm, name, sizeof name, mine, &mx, &sum);
        if (f)
            fprintf(f, "%s\n    {\"name\": \"%s\", \"total\": %.0f, \"max_rank\": %.0f}",
                    i ? "," : "", name, sum, mx);
    }
}

void comm_report_json(MPI_Comm comm, const char *command, const char *path)
{
    FILE *f = NULL;
    if (comm_rank(comm) == 0 && !(f = fopen(path, "w")))
        msg_warn("cannot write timings to '%s'", path);
    if (f)
        fprintf(f, "{\n  \"command\": \"%s\",\n  \"ranks\": %d,\n  \"phases\": [", command,
                comm_size(comm));
    json_phases(comm, f);
    if (f)
        fprintf(f, "\n  ],\n  \"bytes\": [");
    json_bytes(comm, f);
    double peak = (double)alloc_peak();
    comm_max_double(comm, &peak, 1);
    if (f) {
        fprintf(f, "\n  ],\n  \"memory_peak_bytes_max\": %.0f\n}\n", peak);
        fclose(f);
    }
}

static void report_bytes(MPI_Comm comm, FILE *f)
{
    int n = timer_n_counters();
    MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, comm));
    if (n && comm_rank(comm) == 0)
        fprintf(f, "%-32s %14s %14s\n", "communication", "total MiB", "max rank MiB");
    for (int i = 0; i < n; i++) {
        char name[128] = {0};
        if (comm_rank(comm) == 0)
            snprintf(name, sizeof name, "%s", timer_counter_name(i));
        MPI_CHECK(MPI_Bcast(name, (int)sizeof name, MPI_CHAR, 0, comm));
        double mine = 0, mx, sum;
        for (int j = 0; j < timer_n_counters(); j++)
            if (strcmp(timer_counter_name(j), name) == 0)
                mine = timer_counter_bytes(j);
        reduce_named(comm, name, sizeof name, mine, &mx, &sum);
        if (comm_rank(comm) == 0)
            fprintf(f, "%-32s %14.3f %14.3f\n", name, sum / 1048576.0, mx / 1048576.0);
    }
}

void comm_report(MPI_Comm comm, FILE *f)
{
    report_timers(comm, f);
    report_bytes(comm, f);
    double peak = (double)alloc_peak();
    comm_max_double(comm, &peak, 1);
    if (comm_rank(comm) == 0) {
        fprintf(f, "memory (rank 0 labels; max peak over ranks %.3f MiB)\n", peak / 1048576.0);
        alloc_report(f);
    }
}
