/* Device queries of the CUDA backend. A machine without a GPU or driver gets a clean "no GPU"
 * answer from gpu_query instead of an error. */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "gpu/gpu.h"
}

extern "C" bool gpu_compiled(void) { return true; }

extern "C" bool gpu_query(int device, struct gpu_info *info, char *why, size_t n_why)
{
    memset(info, 0, sizeof *info);
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n == 0) {
        snprintf(why, n_why, "no GPU: %s",
                 rc != cudaSuccess ? cudaGetErrorString(rc) : "no CUDA device visible");
        cudaGetLastError();
        return false;
    }
    info->n_devices = n;
    if (device < 0 || device >= n) {
        snprintf(why, n_why, "GPU %d requested but only %d visible", device, n);
        return false;
    }
    cudaDeviceProp prop;
    if ((rc = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
        snprintf(why, n_why, "cannot query GPU %d: %s", device, cudaGetErrorString(rc));
        return false;
    }
    info->device = device;
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    memcpy(info->uuid, prop.uuid.bytes, sizeof info->uuid);
    cudaSetDevice(device);
    cudaMemGetInfo(&info->mem_free, &info->mem_total);
    cudaRuntimeGetVersion(&info->runtime_version);
    info->cudnn_version = (int)cudnnGetVersion();
    return true;
}

extern "C" int gpu_count(char *why, size_t n_why)
{
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n == 0) {
        snprintf(why, n_why, "no GPU: %s",
                 rc != cudaSuccess ? cudaGetErrorString(rc) : "no CUDA device visible");
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" bool gpu_set_device(int device, char *why, size_t n_why)
{
    cudaError_t rc = cudaSetDevice(device);
    if (rc != cudaSuccess) {
        snprintf(why, n_why, "cannot use GPU %d: %s", device, cudaGetErrorString(rc));
        cudaGetLastError();
        return false;
    }
    return true;
}
