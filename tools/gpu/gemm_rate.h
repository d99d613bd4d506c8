/*
 * gemm_rate — the measured matrix-multiply rate of the device, the yardstick of lemur's emulator
 * benchmark: a cuBLAS GEMM of n x n x n on random data in one of the backend's precisions (fp32:
 * FMA units; tf32, bf16, fp16: tensor cores with fp32 accumulation), median of timed repeats after
 * a warm-up.
 */
#ifndef LEMUR_TOOLS_GEMM_RATE_H
#define LEMUR_TOOLS_GEMM_RATE_H

#include <stddef.h>

#include "gpu/nn_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/** TFLOP/s (2 n^3 per product) of the median of reps products; 0 with a reason in why on failure.
 *  Local (current device). */
double gemm_rate_tflops(enum nn_cuda_precision p, int n, int reps, char *why, size_t n_why);

#ifdef __cplusplus
}
#endif

#endif
