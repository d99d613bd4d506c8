/* gpu_bind — ranks to devices (see gpu_bind.h). */
#include "mpi/gpu_bind.h"

#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"

/* Choose and set this rank's device; its UUID goes to uuid. Records a failure in e. */
static void bind_local(int rank, struct gpu_binding *b, unsigned char uuid[16], struct lm_err *e)
{
    char why[512];
    b->n_devices = gpu_count(why, sizeof why);
    if (b->n_devices == 0) {
        lm_err_set(e, "rank %d cannot use a GPU: %s", rank, why);
        return;
    }
    int dev = b->node_rank % b->n_devices;
    struct gpu_info info;
    if (!gpu_set_device(dev, why, sizeof why) || !gpu_query(dev, &info, why, sizeof why)) {
        lm_err_set(e, "rank %d: %s", rank, why);
        return;
    }
    b->device = dev;
    memcpy(uuid, info.uuid, 16);
}

/* Lowest node rank before this one whose device has the same UUID, or -1. */
static int bind_shared_with(MPI_Comm node, int node_rank, int node_size,
                            const unsigned char uuid[16])
{
    unsigned char *all = lm_malloc("gpu.bind", 16 * (size_t)node_size);
    MPI_CHECK(MPI_Allgather(uuid, 16, MPI_BYTE, all, 16, MPI_BYTE, node));
    int with = -1;
    for (int r = 0; r < node_rank && with < 0; r++)
        if (memcmp(all + 16 * (size_t)r, uuid, 16) == 0)
            with = r;
    lm_free(all);
    return with;
}

bool gpu_bind(MPI_Comm comm, bool allow_shared, struct gpu_binding *b, struct lm_err *err)
{
    memset(b, 0, sizeof *b);
    b->device = b->shared_with = -1;
    int rank = comm_rank(comm);
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    b->node_rank = comm_rank(node);
    b->node_size = comm_size(node);
    struct lm_err e = {{0}};
    unsigned char uuid[16] = {0};
    bind_local(rank, b, uuid, &e);
    bool ok = comm_agree_soft(comm, &e);
    if (ok) {
        b->shared_with = bind_shared_with(node, b->node_rank, b->node_size, uuid);
        char host[MPI_MAX_PROCESSOR_NAME] = "";
        int len = 0;
        MPI_CHECK(MPI_Get_processor_name(host, &len));
        if (b->shared_with >= 0 && !allow_shared)
            lm_err_set(&e,
                       "ranks %d and %d of node %s would share GPU %d: %d ranks on the node "
                       "but only %d distinct GPUs visible (run at most one rank per GPU, or allow "
                       "GPU sharing)",
                       b->shared_with, b->node_rank, host, b->device, b->node_size, b->n_devices);
        ok = comm_agree_soft(comm, &e);
    }
    MPI_CHECK(MPI_Comm_free(&node));
    if (!ok)
        *err = e;
    return ok;
}
