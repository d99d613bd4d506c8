/* emu_gemm_rate — gemm_rate_tflops for the CPU emulation: there is no device rate to measure. */
#include <cstdio>

#include "gemm_rate.h"

extern "C" double gemm_rate_tflops(enum nn_cuda_precision, int, int, char *why, size_t n_why)
{
    snprintf(why, n_why, "(CPU emulation: no device GEMM rate)");
    return 0.0;
}
