/*
 * gpu (tier: gpu) — what the rest of lemur knows about the CUDA backend: whether it was compiled
 * in, the devices this process can see, and device selection (binding ranks to devices is the MPI
 * side, src/mpi/gpu_bind.h). The NN backend itself is declared in gpu/nn_cuda.h. This header never
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

#endif
