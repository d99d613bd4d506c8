/* The GPU interface of a build without CUDA (make CUDA=0, or no nvcc): every query answers that
 * the backend is absent, so `emulator.backend: gpu` fails with a clear message at run time. */
#include "gpu/gpu.h"

#include <stdio.h>
#include <string.h>

bool gpu_compiled(void) { return false; }

bool gpu_query(int device, struct gpu_info *info, char *why, size_t n_why)
{
    memset(info, 0, sizeof *info);
    snprintf(why, n_why, "lemur was built without CUDA (make CUDA=0 or no nvcc found)");
    return false;
}
