/*
 * GPU binding tests (run at 1, 2, 3 and 4 ranks): gpu_bind gives every rank the same answer. On a
 * machine without a GPU (or a build without CUDA) every rank gets false and the same message,
 * naming the cause; with GPUs every rank is bound to a visible device, a device shared by two
 * ranks of a node is an error exactly when sharing is not allowed.
 */
#define T_USE_MPI
#include <string.h>

#include "harness.h"
#include "mpi/gpu_bind.h"

/* True on every rank when ok is true on every rank; checks that the ranks agree. */
static bool agreed(bool ok, const struct lm_err *e)
{
    int mine = ok, lo = 0, hi = 0;
    MPI_Allreduce(&mine, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&mine, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    T_CHECK(lo == hi, "ranks disagree on the binding");
    if (!ok) {
        char first[sizeof e->msg];
        memcpy(first, e->msg, sizeof first);
        MPI_Bcast(first, (int)sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
        T_CHECK(strcmp(first, e->msg) == 0, "messages differ: '%s' vs '%s'", first, e->msg);
    }
    return lo == 1;
}

static void test_bind_shared_allowed(void)
{
    struct gpu_binding b;
    struct lm_err e = {{0}};
    bool ok = agreed(gpu_bind(MPI_COMM_WORLD, true, &b, &e), &e);
    T_CHECK(b.node_rank >= 0 && b.node_rank < b.node_size, "node rank %d of %d", b.node_rank,
            b.node_size);
    if (!ok) {
        T_CHECK(strstr(e.msg, "GPU") || strstr(e.msg, "CUDA"), "message '%s'", e.msg);
        T_CHECK(b.device == -1, "unbound rank reports device %d", b.device);
        return;
    }
    T_CHECK(b.device >= 0 && b.device < b.n_devices, "device %d of %d", b.device, b.n_devices);
    T_CHECK(b.shared_with < b.node_rank, "shared with node rank %d", b.shared_with);
}

static void test_bind_strict(void)
{
    struct gpu_binding b;
    struct lm_err e = {{0}};
    bool ok = agreed(gpu_bind(MPI_COMM_WORLD, false, &b, &e), &e);
    if (!ok) {
        bool no_gpu = strstr(e.msg, "cannot use a GPU") != NULL;
        T_CHECK(no_gpu || strstr(e.msg, "share"), "message '%s'", e.msg);
        return;
    }
    T_CHECK(b.shared_with == -1, "strict binding shares with node rank %d", b.shared_with);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_bind_shared_allowed);
    T_RUN(test_bind_strict);
    return t_finish();
}
