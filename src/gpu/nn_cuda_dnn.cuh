/*
 * nn_cuda_dnn (tier: gpu) — cuDNN convolutions of the CUDA NN backend.
 *
 * Tensors are NDHWC (cuDNN's CUDNN_TENSOR_NHWC format with 5 dimensions), filters KTRSC
 * ([cout][kd][kh][kw][cin]), no padding, cross-correlation, fp32 accumulation. A convolution whose
 * input or output would exceed NN_CUDA_MAX_ELEMS elements runs as slabs of output rows along the
 * first spatial axis: a slab of a packed NDHWC tensor is itself a packed tensor, so every slab is
 * an ordinary cuDNN call at an offset.
 */
#ifndef LEMUR_NN_CUDA_DNN_CUH
#define LEMUR_NN_CUDA_DNN_CUH

#include "gpu/nn_cuda_internal.cuh"

/** Geometry of one convolution call. */
struct dnn_geom {
    enum nn_cuda_precision prec;
    int elem;          /**< bytes per element */
    int n[3], m[3];    /**< input and output spatial shapes */
    int k, s;          /**< kernel, stride */
    int cin_p, cout_p; /**< channels as stored */
    const char *name;  /**< node name for messages */
};

/** How dnn_setup chooses algorithms. */
enum dnn_mode {
    DNN_HEURISTIC, /**< cuDNN's heuristics */
    DNN_MEASURE,   /**< timed on the device */
    DNN_RESERVE /**< heuristics, but the workspace reserved is the cap a measured choice may use */
};

/** The geometry of CONV node i of a laid-out plan. */
void nn_cuda_conv_geom(const struct nn_backend_plan *p, int i, struct dnn_geom *g);
/** The cuDNN data type of a precision's storage. */
cudnnDataType_t dnn_dtype(enum nn_cuda_precision p);
/** Create the descriptors of d for geometry g and choose algorithms (mode). Returns false with
 *  err filled; d may then hold descriptors that dnn_release frees. */
bool dnn_setup(struct cn_cudnn *d, const struct dnn_geom *g, cudnnHandle_t h, enum dnn_mode mode,
               struct lm_err *err);
/** Destroy the descriptors of d (NULL-safe per descriptor). */
void dnn_release(struct cn_cudnn *d);
/** y = conv(x, w) + beta y over every slab; x and y are element offsets into ws (packed NDHWC
 *  with cin_p / cout_p channels), w a device filter, scratch d->ws_bytes of cuDNN workspace.
 *  Runs on the handle's stream. */
void dnn_forward(cudnnHandle_t h, const struct cn_cudnn *d, const struct dnn_geom *g, char *ws,
                 long long x_off, long long y_off, const void *w, float beta, void *scratch);

#endif
