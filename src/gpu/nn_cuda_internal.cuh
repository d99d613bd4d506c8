/*
 * nn_cuda_internal (tier: gpu) — definitions shared by the translation units of the CUDA NN
 * backend: return-code checks, device tensor views, the per-node execution records and the plan.
 *
 * Memory model. A plan owns no activation memory: every node's buffer and scratch has a byte
 * offset (nn_memplan) in the caller's device workspace. Offsets are 256-byte aligned, so element
 * offsets (in units of the storage type) are exact. A view names where a node's activation lives:
 * element (slot t, i, j, k, channel ch) is at off + t ts + i st[0] + j st[1] + k st[2] + ch, with
 * slot 0 the value and slot 1 the tangent. st[2] is the pixel stride (>= c): crops are views of
 * their input and a transposed convolution may write its half of a concatenation in place.
 */
#ifndef LEMUR_NN_CUDA_INTERNAL_CUH
#define LEMUR_NN_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "nn.h"
extern "C" {
#include "alloc.h"
}
#include "gpu/nn_cuda.h"

/* Fatal checks for execution paths (a failure there is a bug or a broken device). */
#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t cuda_rc_ = (call);                                                             \
        if (cuda_rc_ != cudaSuccess)                                                               \
            lm_fatal("CUDA call failed: %s: %s", #call, cudaGetErrorString(cuda_rc_));             \
    } while (0)
#define CUDNN_CHECK(call)                                                                          \
    do {                                                                                           \
        cudnnStatus_t cudnn_rc_ = (call);                                                          \
        if (cudnn_rc_ != CUDNN_STATUS_SUCCESS)                                                     \
            lm_fatal("cuDNN call failed: %s: %s", #call, cudnnGetErrorString(cudnn_rc_));          \
    } while (0)
#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t cublas_rc_ = (call);                                                        \
        if (cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                                   \
            lm_fatal("cuBLAS call failed: %s: %s", #call, cublasGetStatusString(cublas_rc_));      \
    } while (0)
/* After every kernel launch: launch-configuration errors surface at once. */
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

/* Soft checks for plan creation: record the failure in err (a struct lm_err *) and return false. */
#define CUDA_TRY(err, call)                                                                        \
    do {                                                                                           \
        cudaError_t cuda_rc_ = (call);                                                             \
        if (cuda_rc_ != cudaSuccess) {                                                             \
            cudaGetLastError();                                                                    \
            return lm_err_set(err, "CUDA call failed: %s: %s", #call,                              \
                              cudaGetErrorString(cuda_rc_));                                       \
        }                                                                                          \
    } while (0)
#define CUDNN_TRY(err, call)                                                                       \
    do {                                                                                           \
        cudnnStatus_t cudnn_rc_ = (call);                                                          \
        if (cudnn_rc_ != CUDNN_STATUS_SUCCESS)                                                     \
            return lm_err_set(err, "cuDNN call failed: %s: %s", #call,                             \
                              cudnnGetErrorString(cudnn_rc_));                                     \
    } while (0)
#define CUBLAS_TRY(err, call)                                                                      \
    do {                                                                                           \
        cublasStatus_t cublas_rc_ = (call);                                                        \
        if (cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                                   \
            return lm_err_set(err, "cuBLAS call failed: %s: %s", #call,                            \
                              cublasGetStatusString(cublas_rc_));                                  \
    } while (0)

/** Alignment of every buffer and scratch offset in the workspace, in bytes. */
#define NN_CUDA_ALIGN 256
/** Bytes of the cuBLAS workspace a plan with transposed convolutions holds. */
#define NN_CUDA_CUBLAS_WS ((size_t)32 << 20)
/** Largest element count of one tensor handed to cuDNN or cuBLAS (their indices are 32-bit):
 *  larger convolutions are split into slabs along the first spatial axis. */
#define NN_CUDA_MAX_ELEMS ((long long)2147483647 - (1 << 20))

/** Where an activation lives in the workspace (elements of the storage type; see the overview). */
struct gview {
    long long off;
    long long st[3];
    long long ts;
    int c;
    int n[3];
};

/** How a convolution obtains the tangent-side input of its second (tangent) convolution. */
enum cn_tan {
    CN_TAN_NONE,     /**< no tangents */
    CN_TAN_SCRATCH,  /**< dx + x ratio written to scratch */
    CN_TAN_INPLACE,  /**< dx + x ratio written over the input's tangent slot (last reader) */
    CN_TAN_PRODUCER, /**< the producer's epilogue already wrote dx + x ratio (only reader) */
    CN_TAN_PACKED    /**< the input is copied to scratch with the tangent side prepared there */
};

/** The cuDNN side of one CONV node: descriptors per slab shape, algorithm and workspace. */
struct cn_cudnn {
    cudnnFilterDescriptor_t wdesc;
    /* index 0: a full slab, 1: the last slab (the same shape when there is one slab) */
    cudnnConvolutionDescriptor_t cdesc[2];
    cudnnTensorDescriptor_t xd[2], yd[2];
    cudnnConvolutionFwdAlgo_t algo[2];
    int n_chunks, rows; /**< output rows (axis 0) per slab; the last slab may have fewer */
    size_t ws_bytes;    /**< workspace of the larger of the two */
};

/** Execution record of a CONV or TCONV node. */
struct cn_conv {
    int slot;
    int cin_p, cout_p; /**< channel counts as computed (padded for tensor cores) */
    bool pack;         /**< the input is copied (and padded) into scratch first */
    enum cn_tan tan;
    bool out_scratch; /**< the raw convolution goes to scratch (padded output channels, TCONV) */
    int resid;        /**< node added in the epilogue (a fused ADD), -1 */
    size_t scr_in, scr_out, scr_ws; /**< byte offsets inside the node's scratch */
    struct cn_cudnn dnn;
};

/** Execution record of one node. */
struct cnode {
    struct gview view; /**< where the node's output lives */
    int root;          /**< node owning the buffer */
    bool exec;         /**< false for views (CROP) and ADDs fused into a convolution */
    int fused_into;    /**< ADD: the CONV/TCONV whose epilogue computes it, -1 */
    int host_of;       /**< TCONV or ADD whose buffer holds concat node host_of, -1 */
    int hosted_in;     /**< CONCAT: input (0 or 1) written in place by its producer, -1 */
    enum nn_act act;   /**< activation applied by this node's epilogue */
    int pre_for;       /**< CONV/TCONV whose ratio this node's writer applies to the tangent, -1 */
    struct cn_conv cv; /**< CONV, TCONV */
};

/** Device weights of one convolution slot (byte offsets into the plan's weight block). */
struct cslot {
    size_t w, dw, bias, ratio, c;
    size_t n_w; /**< elements of w (padded layout) */
    int cin_p, cout_p;
    bool ratio_ok;
};

/** Raw parameters on the device for nn_cuda_plan_restyle. */
struct craw {
    int n_style;
    float *d_raw;      /**< per slot: weight, bias (fp32, nn_styled_params layouts) */
    size_t *off_w;     /**< per slot element offsets into d_raw */
    float *h_style;    /**< per slot: style_weight [cin][n_style], style_bias [cin] (host) */
    size_t *off_style; /**< per slot element offsets into h_style */
    double *d_u, *h_u; /**< per slot: u [cin], du [cin] */
    size_t *off_u;     /**< per slot element offsets into d_u */
    size_t n_u;        /**< doubles in d_u */
};

/** One execution in flight: where its outputs go. */
struct cflight {
    struct nn_tensor y, dy;
    bool has_dx, has_dy;
    float x_scale, dx_scale, y_scale;
    bool prof_pending; /**< its per-node times are still to be collected */
};

struct nn_backend_plan {
    struct nn_cuda_options opt;
    int elem; /**< bytes per stored element */
    int device;
    bool tangents;
    int slots; /**< 2 with tangents, else 1 */
    int n_nodes, input, output;
    struct nn_node *nodes;
    int n_convs;
    struct nn_conv_desc *convs;
    struct cnode *cn;
    struct nn_buf *buf;
    size_t workspace;
    /* handles and streams */
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *cublas_ws;
    size_t cublas_ws_bytes;
    cudaStream_t s_comp, s_up, s_down;
    /* weights */
    struct cslot *slot;
    void *d_weights, *h_weights;
    size_t weight_bytes;
    struct craw raw;
    bool have_raw;
    /* staging: inputs fp32 [c][n0][n1][n2] (x then dx), outputs likewise (y then dy) */
    float *d_in, *d_out, *h_in[2], *h_out[2];
    size_t in_elems, out_elems; /**< per slot (in_elems: every input) */
    int n_inputs;
    int inputs[NN_MAX_INPUTS];    /**< the INPUT nodes in the graph's order (plan positions) */
    size_t in_off[NN_MAX_INPUTS]; /**< element offset of each input in the staging */
    cudaEvent_t ev_in_consumed, ev_out_ready, ev_h2d[2], ev_d2h[2];
    struct cflight flight[2];
    long long n_begun, n_ended;
    /* profiling */
    bool profiling;
    cudaEvent_t *ev_node; /**< n_nodes + 1 */
    double *node_ms;
    long long n_profiled;
    size_t cudnn_ws_max;
};

/** Storage element size of a precision (bytes). */
int nn_cuda_elem_bytes(enum nn_cuda_precision p);
/** The options of a CUDA backend instance (which must be one). */
struct nn_cuda_options nn_cuda_backend_options(const struct nn_backend *be);
/** The CUDA plan behind a generic plan (fatal when p is not a CUDA plan). */
struct nn_backend_plan *nn_cuda_impl(const struct nn_plan *p);

/* Plan creation and destruction (nn_cuda_backend.cu), layout (nn_cuda_plan.cu). */
/** Create a plan of g for options opt on the current device (NULL with err on failure). */
struct nn_backend_plan *nn_cuda_plan_create(const struct nn_cuda_options *opt,
                                            const struct nn_graph *g, bool tangents,
                                            struct lm_err *err);
/** Free everything of *p (NULL-safe) and set *p = NULL. */
void nn_cuda_plan_destroy(struct nn_backend_plan **p);
/** Analysis, layout and cuDNN algorithm choice (mode: an enum dnn_mode) of graph g into p, whose
 *  opt, elem, tangents and slots are set. No device allocation except for DNN_MEASURE. */
bool nn_cuda_plan_layout(struct nn_backend_plan *p, const struct nn_graph *g, cudnnHandle_t h,
                         int mode, struct lm_err *err);
/** Bytes of the plan-held device memory (weights, staging, cuBLAS workspace) of a laid-out plan. */
size_t nn_cuda_plan_held_bytes(const struct nn_backend_plan *p);
/** True when the plan has a transposed convolution (needs cuBLAS). */
bool nn_cuda_plan_has_tconv(const struct nn_backend_plan *p);
/** Release the host-side layout records and cuDNN descriptors of p (not its device memory). */
void nn_cuda_plan_free_layout(struct nn_backend_plan *p);

/** Device bytes of a plan of g for options opt, computed with an existing cuDNN handle without
 *  allocating device memory (the layout and cuDNN's workspace queries): *workspace the
 *  caller-owned workspace, *memory what the plan would hold (weights, staging, cuBLAS workspace).
 *  Exact with heuristic algorithm choice; with measured choice the workspace is the cap a measured
 *  algorithm may use. The backends' plan_size (nn_plan_size). */
bool nn_cuda_size_with(cudnnHandle_t h, const struct nn_cuda_options *opt, const struct nn_graph *g,
                       bool tangents, size_t *workspace, size_t *memory, struct lm_err *err);
/** Free the raw parameters of on-device premodulation (when present). */
void nn_cuda_plan_free_raw(struct nn_backend_plan *p);
/** Destroy the profiling events and tables of p. */
void nn_cuda_plan_free_profiling(struct nn_backend_plan *p);

/* Execution (nn_cuda_exec.cu). */
/** Reorder and convert premodulated weights into the plan's device layout (vtable entry). */
void nn_cuda_set_weights(struct nn_backend_plan *p, const struct nn_weights *w);
/** Synchronous execution (vtable entry): begin and end of one execution. */
void nn_cuda_execute(struct nn_backend_plan *p, const struct nn_io *io, void *workspace);

/** True when view v is densely packed (pixel stride c, rows and planes contiguous). */
static inline bool gview_packed(const struct gview *v)
{
    return v->st[2] == v->c && v->st[1] == (long long)v->n[2] * v->c &&
           v->st[0] == (long long)v->n[1] * v->n[2] * v->c;
}
/** A packed view at element offset off with tangent-slot stride ts. */
static inline struct gview gview_make(long long off, int c, const int n[3], long long ts)
{
    struct gview v;
    v.off = off;
    v.c = c;
    for (int a = 0; a < 3; a++)
        v.n[a] = n[a];
    v.st[2] = c;
    v.st[1] = (long long)n[2] * c;
    v.st[0] = (long long)n[1] * n[2] * c;
    v.ts = ts;
    return v;
}
/** Spatial cells of a view. */
__host__ __device__ static inline long long gview_cells(const struct gview *v)
{
    return (long long)v->n[0] * v->n[1] * v->n[2];
}

#endif
