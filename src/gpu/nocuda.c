/* The GPU interface of a build without CUDA (make CUDA=0, or no nvcc): every query answers that
 * the backend is absent, so `emulator.backend: gpu` fails with a clear message at run time. The
 * CUDA NN backend getters return NULL; functions that need a CUDA plan cannot be reached without
 * one and stop with the same message. */
#include "gpu/gpu.h"
#include "gpu/nn_cuda.h"

#include <stdio.h>
#include <string.h>

#define NO_CUDA "lemur was built without CUDA (make CUDA=0 or no nvcc found)"

bool gpu_compiled(void) { return false; }

bool gpu_query(int device, struct gpu_info *info, char *why, size_t n_why)
{
    memset(info, 0, sizeof *info);
    snprintf(why, n_why, "%s", NO_CUDA);
    return false;
}

int gpu_count(char *why, size_t n_why)
{
    snprintf(why, n_why, "%s", NO_CUDA);
    return 0;
}

bool gpu_set_device(int device, char *why, size_t n_why)
{
    snprintf(why, n_why, "lemur was built without CUDA: no GPU %d", device);
    return false;
}

static const char *const precision_names[NN_CUDA_N_PRECISION] = {"fp32", "tf32", "bf16", "fp16"};

const struct nn_backend *nn_backend_cuda(void) { return NULL; }

const struct nn_backend *nn_backend_cuda_precision(enum nn_cuda_precision p) { return NULL; }

const struct nn_backend *nn_backend_cuda_with(const struct nn_cuda_options *o) { return NULL; }

bool nn_backend_is_cuda(const struct nn_backend *be) { return false; }

const char *nn_cuda_precision_name(enum nn_cuda_precision p)
{
    return (int)p >= 0 && p < NN_CUDA_N_PRECISION ? precision_names[p] : NULL;
}

bool nn_cuda_precision_parse(const char *name, enum nn_cuda_precision *p)
{
    for (int i = 0; i < NN_CUDA_N_PRECISION; i++)
        if (strcmp(name, precision_names[i]) == 0) {
            *p = (enum nn_cuda_precision)i;
            return true;
        }
    return false;
}

void nn_cuda_execute_begin(struct nn_plan *p, const struct nn_io *io, void *workspace)
{
    lm_fatal("nn cuda: " NO_CUDA);
}

void nn_cuda_execute_end(struct nn_plan *p) { lm_fatal("nn cuda: " NO_CUDA); }

int nn_cuda_in_flight(const struct nn_plan *p) { lm_fatal("nn cuda: " NO_CUDA); }

void nn_cuda_plan_set_params(struct nn_plan *p, const struct nn_styled_params *params)
{
    lm_fatal("nn cuda: " NO_CUDA);
}

void nn_cuda_plan_restyle(struct nn_plan *p, const double *s, const double *ds)
{
    lm_fatal("nn cuda: " NO_CUDA);
}

void nn_cuda_plan_set_profiling(struct nn_plan *p, bool on) { lm_fatal("nn cuda: " NO_CUDA); }

void nn_cuda_plan_profile_report(const struct nn_plan *p, FILE *f)
{
    lm_fatal("nn cuda: " NO_CUDA);
}

void nn_cuda_plan_get_info(const struct nn_plan *p, struct nn_cuda_plan_info *info)
{
    lm_fatal("nn cuda: " NO_CUDA);
}
