/* NCCL communicators of the CUDA backend (see gpu.h): creation from an id broadcast by the MPI
 * layer, destruction, and an in-place device sum. Every NCCL and CUDA return code is checked and
 * reported through `why`. (Kept apart from device.cu so that targets without NCCL can leave it
 * out.) */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "alloc.h"
#include "gpu/gpu.h"
}

static_assert(GPU_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "GPU_NCCL_ID_BYTES must match NCCL");

struct gpu_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
};

extern "C" bool gpu_nccl_unique_id(unsigned char id[GPU_NCCL_ID_BYTES], char *why, size_t n_why)
{
    ncclUniqueId u;
    ncclResult_t rc = ncclGetUniqueId(&u);
    if (rc != ncclSuccess) {
        snprintf(why, n_why, "ncclGetUniqueId failed: %s", ncclGetErrorString(rc));
        return false;
    }
    memcpy(id, u.internal, GPU_NCCL_ID_BYTES);
    return true;
}

extern "C" bool gpu_nccl_create(const unsigned char id[GPU_NCCL_ID_BYTES], int n_ranks, int rank,
                                struct gpu_nccl **comm, char *why, size_t n_why)
{
    ncclUniqueId u;
    memcpy(u.internal, id, GPU_NCCL_ID_BYTES);
    struct gpu_nccl *c = (struct gpu_nccl *)lm_calloc("gpu.nccl", 1, sizeof *c);
    cudaError_t crc = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (crc != cudaSuccess) {
        snprintf(why, n_why, "cannot create a stream for NCCL: %s", cudaGetErrorString(crc));
        lm_free(c);
        return false;
    }
    ncclResult_t rc = ncclCommInitRank(&c->comm, n_ranks, u, rank);
    if (rc != ncclSuccess) {
        snprintf(why, n_why, "ncclCommInitRank (rank %d of %d) failed: %s", rank, n_ranks,
                 ncclGetErrorString(rc));
        cudaStreamDestroy(c->stream);
        lm_free(c);
        return false;
    }
    *comm = c;
    return true;
}

extern "C" void gpu_nccl_destroy(struct gpu_nccl **comm)
{
    if (!comm || !*comm)
        return;
    ncclCommDestroy((*comm)->comm);
    cudaStreamDestroy((*comm)->stream);
    lm_free(*comm);
    *comm = NULL;
}

extern "C" bool gpu_nccl_allreduce_sum(struct gpu_nccl *comm, float *dev, size_t n, char *why,
                                       size_t n_why)
{
    ncclResult_t rc = ncclAllReduce(dev, dev, n, ncclFloat32, ncclSum, comm->comm, comm->stream);
    if (rc != ncclSuccess) {
        snprintf(why, n_why, "ncclAllReduce of %zu floats failed: %s", n, ncclGetErrorString(rc));
        return false;
    }
    cudaError_t crc = cudaStreamSynchronize(comm->stream);
    if (crc != cudaSuccess) {
        snprintf(why, n_why, "NCCL all-reduce did not complete: %s", cudaGetErrorString(crc));
        return false;
    }
    return true;
}
