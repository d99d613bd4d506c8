/*
 * nn_cuda (tier: gpu) — the CUDA backend of lemur's neural-network engine (the nn.h interface on
 * one GPU).
 *
 * Activations live in device memory in channels-last order (N = 1, D x H x W x C, "NDHWC") in the
 * backend's storage precision; a value and its tangent are two slots of one buffer. Convolutions
 * run through cuDNN (tensor cores for bf16 / fp16 / tf32), transposed convolutions as one cuBLAS
 * GEMM [cells x cin] x [cin x k^3 cout] followed by a gather that is fused into the epilogue; bias,
 * LeakyReLU, tangent masks, residual adds, crops (views) and concatenations are fused
 * elementwise kernels. The tangent of a styled convolution uses the one-convolution form
 * conv(dx + x ratio, W'') - c conv(x, W'') (nn.h) wherever the premodulated weights allow it, so a
 * derivative costs one more convolution per convolution.
 *
 * Precisions: fp32 (exact fp32 FMA arithmetic, the conformance yardstick), tf32 (fp32 storage,
 * tensor-core tf32 products), bf16 and fp16 (16-bit storage of activations and weights, fp32
 * accumulation); the style affine, the demodulation, biases and epilogues are fp32 in every mode.
 *
 * Besides the nn_backend table this module offers what a GPU driver needs for throughput:
 * asynchronous execution with pinned double-buffered staging (the next tile's copies overlap this
 * tile's compute), on-device premodulation from the raw parameters, per-node profiling and plan
 * facts. Sizing a plan without allocating it and the device's free memory are the backend table's
 * memory queries (nn_plan_size, nn_backend_mem_available of nn.h).
 * Every function is Local (one process, its current device). This header needs no CUDA headers;
 * in a build without CUDA (make CUDA=0) the backend getters return NULL and the other functions
 * report "built without CUDA".
 */
#ifndef LEMUR_NN_CUDA_H
#define LEMUR_NN_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Storage and arithmetic precision of a CUDA backend instance. */
enum nn_cuda_precision {
    NN_CUDA_FP32, /**< fp32 storage, fp32 FMA arithmetic */
    NN_CUDA_TF32, /**< fp32 storage, tf32 tensor-core products, fp32 accumulation */
    NN_CUDA_BF16, /**< bf16 storage, fp32 accumulation */
    NN_CUDA_FP16, /**< fp16 storage, fp32 accumulation */
    NN_CUDA_N_PRECISION
};

/** How cuDNN convolution algorithms are chosen at plan creation. */
enum nn_cuda_algo_search {
    NN_CUDA_ALGO_HEURISTIC, /**< cuDNN's heuristics (no device run; the default) */
    NN_CUDA_ALGO_MEASURE    /**< time the candidates on the device (cudnnFind...Ex); needs
                             *   temporary device memory for one convolution at plan creation */
};

/** Options that select a CUDA backend instance. */
struct nn_cuda_options {
    enum nn_cuda_precision precision;
    enum nn_cuda_algo_search algo_search;
};

/** The CUDA backend in fp32 with heuristic algorithm choice (NULL without CUDA). Local. */
const struct nn_backend *nn_backend_cuda(void);
/** The CUDA backend instance of precision p with heuristic algorithm choice (NULL without CUDA or
 *  for an invalid p). Distinct precisions are distinct instances. Local. */
const struct nn_backend *nn_backend_cuda_precision(enum nn_cuda_precision p);
/** The CUDA backend instance for options o (NULL without CUDA or for invalid options). Local. */
const struct nn_backend *nn_backend_cuda_with(const struct nn_cuda_options *o);
/** True when be is one of the CUDA backend instances. Local. */
bool nn_backend_is_cuda(const struct nn_backend *be);

/** "fp32", "tf32", "bf16", "fp16" (NULL for an invalid value). Local. */
const char *nn_cuda_precision_name(enum nn_cuda_precision p);
/** Parse a precision name (as printed by nn_cuda_precision_name). Returns false when unknown. */
bool nn_cuda_precision_parse(const char *name, enum nn_cuda_precision *p);

/** Start executing plan p (a CUDA plan) on io and return before the device has finished: the
 *  inputs are copied at once into pinned staging (io->x and io->dx may be reused on return), the
 *  upload, the graph and the download are queued on the plan's streams. The output views io->y and
 *  io->dy are recorded and written by nn_cuda_execute_end; their host memory must stay valid until
 *  then. At most two executions may be in flight: begin(t+1) may be called before end(t), so the
 *  host-side packing and the copies of one tile overlap the compute of the other. Local. */
void nn_cuda_execute_begin(struct nn_plan *p, const struct nn_io *io, void *workspace);
/** Wait for the oldest execution in flight and write its outputs into the views recorded at its
 *  begin. Local. */
void nn_cuda_execute_end(struct nn_plan *p);
/** Number of executions begun and not yet ended. Local. */
int nn_cuda_in_flight(const struct nn_plan *p);

/** Upload the raw parameters of every convolution slot (params[slot], host memory, layouts of
 *  nn_styled_params) to the device once, for on-device premodulation by nn_cuda_plan_restyle. The
 *  plan allocates the device copy here (fp32, about 4 bytes per parameter). Local. */
void nn_cuda_plan_set_params(struct nn_plan *p, const struct nn_styled_params *params);
/** Premodulate every slot on the device for style s and style tangent ds (length n_style of the
 *  parameters): the style affine and the ratio test on the host in double, the demodulation sums
 *  in double on the device. Replaces any weights set before. Needs nn_cuda_plan_set_params. */
void nn_cuda_plan_restyle(struct nn_plan *p, const double *s, const double *ds);

/** Enable or disable per-node device timing of plan executions (events around each node). */
void nn_cuda_plan_set_profiling(struct nn_plan *p, bool on);
/** Print the per-node device times accumulated since profiling was enabled (name, op, shape,
 *  milliseconds per execution, share) to f. Local. */
void nn_cuda_plan_profile_report(const struct nn_plan *p, FILE *f);

/** Plan facts for reports. */
struct nn_cuda_plan_info {
    enum nn_cuda_precision precision;
    int device;
    size_t workspace;       /**< caller-owned device workspace */
    size_t weight_bytes;    /**< device premodulated weights */
    size_t staging_bytes;   /**< device staging of inputs and outputs */
    size_t pinned_bytes;    /**< pinned host staging */
    size_t cudnn_ws_max;    /**< largest cuDNN workspace of one convolution */
    int n_fused_adds;       /**< residual adds fused into convolution epilogues */
    int n_hosted_concats;   /**< concatenations whose second half is written in place */
    int n_producer_tangent; /**< convolutions whose input tangent is prepared by its producer */
};
/** Fill info for CUDA plan p. Local. */
void nn_cuda_plan_get_info(const struct nn_plan *p, struct nn_cuda_plan_info *info);

#ifdef __cplusplus
}
#endif

#endif
