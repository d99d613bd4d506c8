/*
 * gpu — what the rest of lemur knows about the CUDA backend: whether it was compiled in, the
 * devices this process can see, device selection, and NCCL communicators for device-to-device
 * exchanges (their MPI side, binding ranks to devices and broadcasting the NCCL id, is in
 * src/mpi/gpu_bind.h). The NN backend itself is declared in gpu/nn_cuda.h. This header never
 * needs CUDA headers, so CPU-only code can include it; in a build without CUDA every function
 * answers "built without CUDA".
 */
#ifndef LEMUR_GPU_H
#define LEMUR_GPU_H

#include <stdbool.h>
#include <stddef.h>

/** One device as seen by this process. */
struct gpu_info {
    int n_devices;          /**< devices visible to this process */
    int device;             /**< the device queried */
    char name[256];         /**< its name */
    int cc_major, cc_minor; /**< compute capability */
    size_t mem_total, mem_free;
    int runtime_version, cudnn_version;
    unsigned char uuid[16]; /**< the device's UUID (tells devices apart across processes) */
};

/** True when lemur was built with the CUDA backend (make CUDA=1). */
bool gpu_compiled(void);

/** Query device `device`. Returns false, with a one-line reason in why, when lemur was built
 *  without CUDA, when no device or driver is present, or when device is out of range. Local. */
bool gpu_query(int device, struct gpu_info *info, char *why, size_t n_why);

/** Number of devices visible to this process; 0 with a one-line reason in why when lemur was
 *  built without CUDA or no driver or device is present. Local. */
int gpu_count(char *why, size_t n_why);

/** Make `device` the current device of this process (for every later CUDA call of it). Returns
 *  false with a reason in why. Local. */
bool gpu_set_device(int device, char *why, size_t n_why);

/** Bytes of an NCCL unique id (NCCL_UNIQUE_ID_BYTES). */
#define GPU_NCCL_ID_BYTES 128

/** An NCCL communicator (opaque). */
struct gpu_nccl;

/** Create a new NCCL unique id (on one rank, to be broadcast to all). Returns false with a reason
 *  in why. Local. */
bool gpu_nccl_unique_id(unsigned char id[GPU_NCCL_ID_BYTES], char *why, size_t n_why);
/** Join the NCCL communicator of n_ranks ranks named by id as rank `rank`, on the current device.
 *  Collective over the ranks that share id (each calls it once). Returns false with a reason in
 *  why. Free with gpu_nccl_destroy. */
bool gpu_nccl_create(const unsigned char id[GPU_NCCL_ID_BYTES], int n_ranks, int rank,
                     struct gpu_nccl **comm, char *why, size_t n_why);
/** Destroy (NULL-safe) and set *comm = NULL. Collective over the communicator's ranks. */
void gpu_nccl_destroy(struct gpu_nccl **comm);
/** In-place sum of n floats of device memory over the communicator, complete on return.
 *  Collective. Returns false with a reason in why. */
bool gpu_nccl_allreduce_sum(struct gpu_nccl *comm, float *dev, size_t n, char *why, size_t n_why);

#endif
