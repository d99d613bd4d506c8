/*
 * nn (tier: kernels) — lemur's neural-network engine: activation shapes, a graph of typed ops,
 * premodulated styled-convolution weights, and the interface every compute backend implements.
 *
 * The split follows ggml: the graph DESCRIBES the computation (shapes and ops, no data, no
 * layout); a backend (CPU oneDNN in nn_cpu.c, plain loop-nest reference in nn_ref.c, CUDA in
 * src/gpu/) turns a graph into a plan and executes it. All backends take the same inputs, produce
 * the same outputs and are tested against the reference backend by one harness
 * (tests/unit/test_nn_ops.c).
 *
 * Tensors are single images (N = 1) of shape C x D x H x W ("n[0] x n[1] x n[2]"). Every op can
 * carry a TANGENT alongside each activation (the forward-mode derivative dt/dD with respect to one
 * scalar, the growth factor D for the emulator): plans are created with or without tangents.
 *
 * Ops (every convolution is "valid", i.e. without padding):
 *   INPUT   the graph input; value = x_scale * x, tangent = dx_scale * (dx or x)   (see nn_io)
 *   CONV    styled convolution, kernel k (1, 2 or 3), stride 1 or 2, then + bias, then the
 *           activation act (none or LeakyReLU with slope NN_LEAKY_SLOPE); n_out = (n - k)/s + 1
 *   TCONV   transposed styled convolution, kernel k, stride s (2 and 2 in the emulator), + bias,
 *           act; n_out = (n - 1) s + k
 *   CROP    removes `crop` cells from both ends of every spatial axis
 *   CONCAT  channel concatenation [in0, in1] (in0's channels first)
 *   ADD     in0 + in1 (same shape), then act
 *   ACT     an activation alone: LeakyReLU with the node's slope, ReLU or GELU (erf form)
 *   UPSAMPLE x2 on every spatial axis: NEAREST (n_out = 2n, PyTorch's mode "nearest") or
 *           TRILINEAR, valid (n_out = 2n - 2: PyTorch's mode "trilinear", align_corners=False,
 *           without its first and last cell per axis, the only ones its edge clamping touches)
 * A graph has one or more INPUT nodes, all before every other node; graphs with more than one
 * input, ACT or UPSAMPLE nodes are forward-only (plans with tangents refuse them). Unstyled
 * convolutions (the generic networks of net.h) use the same slots: their weights are set with
 * nn_conv_set_plain instead of premodulated.
 * Tangents: conv  dy = conv(x, dW'') + conv(dx, W''); LeakyReLU passes dt where the
 * pre-activation is > 0 and NN_LEAKY_SLOPE dt elsewhere; crop, concat and add act on tangents as
 * on values. The activation is part of CONV, TCONV and ADD (the "bias + LeakyReLU" epilogue).
 *
 * Styled convolution (Jamieson et al. 2024): u = style_weight s + style_bias; W' = W u (input
 * channels); W''[o] = W'[o] / sqrt(sum W'[o]^2 + NN_DEMOD_EPS). For fixed styles the W'' are
 * computed once ("premodulation", nn_conv_premodulate) with their tangent data, stored in a
 * struct nn_weights and handed to a plan with nn_plan_set_weights.
 *
 * Lifetime: graph (nn_graph_create ... nn_graph_destroy) → plan (nn_plan_create: all set-up and
 * allocation of plan-held memory; nn_plan_workspace: bytes of caller-owned workspace, the peak
 * activation memory, known before running; nn_plan_size: both figures, and where they live,
 * known before creating the plan) → nn_plan_set_weights → nn_plan_execute (no
 * allocation inside; any number of times) → nn_plan_destroy(&plan).
 *
 * Thread-safety: a plan executes one call at a time; distinct plans are independent.
 * This header must not need MPI, HDF5 or CUDA headers; it compiles as C11 and as C++.
 */
#ifndef LEMUR_NN_H
#define LEMUR_NN_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
/* error.h is C11: give C++ (CUDA) translation units its _Noreturn and C linkage. */
#ifndef _Noreturn
#define _Noreturn [[noreturn]]
#endif
extern "C" {
#endif

#include "error.h"

/** Negative slope of every LeakyReLU of the engine. */
#define NN_LEAKY_SLOPE 0.01f
/** The epsilon of the demodulation (spec: sqrt(sum W'^2 + 1e-8)). */
#define NN_DEMOD_EPS 1e-8
/** Maximum number of style parameters of a styled convolution. */
#define NN_MAX_STYLE 4
/** Most INPUT nodes of a graph. */
#define NN_MAX_INPUTS 4
/** Size of the name fields of nodes and convolution slots (including the terminating 0). */
#define NN_NAME_LEN 64

/** Shape of an activation: N = 1, c channels, spatial n[0] x n[1] x n[2] (D, H, W). */
struct nn_shape {
    int c;
    int n[3];
};

/** A host tensor view: element (c, i, j, k) is data[c*stride[0] + i*stride[1] + j*stride[2] +
 *  k*stride[3]] (strides in elements, any non-negative values; plain C order has stride[3] = 1). */
struct nn_tensor {
    float *data;
    struct nn_shape shape;
    ptrdiff_t stride[4];
};

/** The kinds of graph nodes (see the overview). */
enum nn_op {
    NN_OP_INPUT,
    NN_OP_CONV,
    NN_OP_TCONV,
    NN_OP_CROP,
    NN_OP_CONCAT,
    NN_OP_ADD,
    NN_OP_ACT,
    NN_OP_UPSAMPLE
};

/** Activation applied at the end of CONV, TCONV and ADD (LReLU with NN_LEAKY_SLOPE there), or by
 *  an ACT node (LReLU with the node's slope). */
enum nn_act { NN_ACT_NONE, NN_ACT_LRELU, NN_ACT_RELU, NN_ACT_GELU };

/** Interpolation of an UPSAMPLE node. */
enum nn_upsample { NN_UPSAMPLE_NEAREST, NN_UPSAMPLE_TRILINEAR };

/** One styled-convolution slot: the static description of a layer whose premodulated weights
 *  arrive per style. Weight layouts (PyTorch's): CONV W[cout][cin][k][k][k];
 *  TCONV W[cin][cout][k][k][k]. */
struct nn_conv_desc {
    int cin, cout;
    int kernel, stride;
    bool transposed;
    char name[NN_NAME_LEN]; /**< e.g. "conv_l00.convs.0" */
};

/** One node of a graph. Nodes are stored in a valid execution (topological) order. */
struct nn_node {
    enum nn_op op;
    int in[2];             /**< input node indices; -1 where unused */
    struct nn_shape shape; /**< output shape */
    int conv;              /**< CONV, TCONV: slot index in nn_graph.convs; else -1 */
    enum nn_act act;       /**< CONV, TCONV, ADD: activation; else NN_ACT_NONE */
    int crop;              /**< CROP: cells removed at both ends of each axis; else 0 */
    float slope;           /**< ACT with NN_ACT_LRELU: the negative slope */
    enum nn_upsample mode; /**< UPSAMPLE: the interpolation */
    char name[NN_NAME_LEN];
};

/** A computation graph: one INPUT node, nodes in execution order, one output node. Builders
 *  record the first error in err and return -1; a -1 input makes every later builder return -1,
 *  so a whole construction can be checked once at the end with nn_graph_ok. */
struct nn_graph {
    int n_nodes, cap_nodes;
    struct nn_node *nodes;
    int n_convs, cap_convs;
    struct nn_conv_desc *convs;
    int input; /**< the first INPUT node, -1 before nn_graph_input */
    int n_inputs;
    int inputs[NN_MAX_INPUTS]; /**< the INPUT nodes in order of creation */
    int output;                /**< the output node, -1 before nn_graph_set_output */
    struct lm_err err;
};

/** Create an empty graph. Local. Free with nn_graph_destroy. */
struct nn_graph *nn_graph_create(void);
/** Destroy a graph (NULL-safe) and set *g = NULL. Local. */
void nn_graph_destroy(struct nn_graph **g);
/** True when every builder call so far succeeded (else err says why). Local. */
bool nn_graph_ok(const struct nn_graph *g);

/** Add a styled-convolution slot; returns its index, or -1 on invalid parameters. Local. */
int nn_graph_add_conv(struct nn_graph *g, const struct nn_conv_desc *desc);
/** Add an INPUT node of shape s (before any other node, at most NN_MAX_INPUTS); returns its node
 *  index or -1. Local. */
int nn_graph_input(struct nn_graph *g, struct nn_shape s, const char *name);
/** Apply conv slot `conv` to node in (CONV or TCONV after the slot's `transposed`), + bias,
 *  then act. Returns the node index, or -1 when the shapes do not fit. Local. */
int nn_graph_conv(struct nn_graph *g, int in, int conv, enum nn_act act, const char *name);
/** Crop c cells from both ends of every spatial axis of node in. Returns the node or -1. Local. */
int nn_graph_crop(struct nn_graph *g, int in, int c, const char *name);
/** Concatenate channels [a, b] (equal spatial shapes). Returns the node or -1. Local. */
int nn_graph_concat(struct nn_graph *g, int a, int b, const char *name);
/** a + b (equal shapes), then act. Returns the node or -1. Local. */
int nn_graph_add(struct nn_graph *g, int a, int b, enum nn_act act, const char *name);
/** act(in): LeakyReLU (negative slope `slope`), ReLU or GELU. Returns the node or -1. Local. */
int nn_graph_act(struct nn_graph *g, int in, enum nn_act act, float slope, const char *name);
/** x2 upsampling of in (see the overview for the shapes). Returns the node or -1. Local. */
int nn_graph_upsample(struct nn_graph *g, int in, enum nn_upsample mode, const char *name);
/** True when g has only the ops and the single input that tangents support. Local. */
bool nn_graph_has_tangents(const struct nn_graph *g);
/** Mark node as the graph output. Returns false (and records why) for an invalid node. Local. */
bool nn_graph_set_output(struct nn_graph *g, int node);

/** Index of the last node that reads node i's output (i itself when none; the output node is
 *  read "after the end", n_nodes). Local. */
int nn_graph_last_use(const struct nn_graph *g, int i);
/** Multiply-adds of one forward pass over the graph (convolutions only). Local. */
double nn_graph_macs(const struct nn_graph *g);
/** Number of elements of a shape (c n0 n1 n2). Local. */
size_t nn_shape_count(struct nn_shape s);

/** Per-node memory request and placement for nn_memplan (filled in by a backend). */
struct nn_buf {
    size_t bytes;          /**< in: bytes of the node's own buffer (0 for a view) */
    int alias;             /**< in: -1, or the node whose buffer this node lives in (a view, or an
                            *   in-place result); that buffer then lives as long as this node */
    size_t scratch;        /**< in: bytes of temporary memory used only while the node executes */
    size_t offset;         /**< out: byte offset of the node's buffer (of its alias root's) */
    size_t scratch_offset; /**< out: byte offset of the node's scratch */
};
/** Liveness-based placement: give every node buffer and scratch an offset in one workspace so
 *  that buffers that are alive at the same time never overlap (greedy best fit in execution
 *  order, `align`-byte aligned). The input and output nodes are alive from the start / to the end.
 *  Returns the workspace size in bytes (the activation peak). Local. */
size_t nn_memplan(const struct nn_graph *g, struct nn_buf *buf, size_t align);

/** The raw parameters of one styled convolution (host memory, as stored in the model file). */
struct nn_styled_params {
    int n_style;               /**< style vector length (2 for the emulator) */
    const float *style_weight; /**< [cin][n_style] */
    const float *style_bias;   /**< [cin] */
    const float *weight;       /**< CONV [cout][cin][k^3]; TCONV [cin][cout][k^3] */
    const float *bias;         /**< [cout] */
};

/** Premodulated weights of one convolution slot for one style (same layouts as the slot's W).
 *  With u the modulation, du = style_weight ds and n_o the demodulation norm:
 *    w     = W''[o,i] = W[o,i] u[i] / n_o
 *    dw    = dW''[o,i] = W[o,i] du[i] / n_o - c[o] W''[o,i]
 *    ratio = du[i] / u[i]           (meaningful only when ratio_ok)
 *    c     = sum_{i,k} W'[o,i,k] dW'[o,i,k] / n_o^2
 *  so that conv(x, dW'') + conv(dx, W'') = conv(dx + x * ratio, W'') - c * conv(x, W'') when
 *  ratio_ok (every u[i] != 0 and |ratio| below NN_RATIO_MAX): backends may use either form. */
struct nn_conv_weights {
    float *w;
    float *dw;
    float *bias;
    float *ratio;
    float *c;
    bool ratio_ok;
};
/** Largest |du/u| for which the one-convolution tangent form is used. */
#define NN_RATIO_MAX 1e6f

/** Premodulated weights of every slot of a graph. generation increases at every
 *  nn_weights_premodulate so that plans can tell stale copies. */
struct nn_weights {
    int n_convs;
    struct nn_conv_weights *conv;
    unsigned long generation;
};

/** Allocate premodulated-weight storage for every conv slot of g (contents undefined until
 *  nn_conv_premodulate fills them). Local. Free with nn_weights_destroy. */
struct nn_weights *nn_weights_create(const struct nn_graph *g);
/** Free (NULL-safe) and set *w = NULL. Local. */
void nn_weights_destroy(struct nn_weights **w);
/** Compute slot `slot` of w from raw parameters p for style s (length p->n_style) and style
 *  tangent ds (ds/dD; the emulator's is {0, 1}); sums in double. Local. */
void nn_conv_premodulate(const struct nn_conv_desc *desc, const struct nn_styled_params *p,
                         const double *s, const double *ds, struct nn_conv_weights *out);
/** Set slot weights out of an unstyled convolution: w = weight (the slot's layout), bias, and no
 *  tangent (dw = 0, c = 0, ratio = 0, ratio_ok). Local. */
void nn_conv_set_plain(const struct nn_conv_desc *desc, const float *weight, const float *bias,
                       struct nn_conv_weights *out);
/** Mark w as freshly premodulated (bumps w->generation). Local. */
void nn_weights_touch(struct nn_weights *w);

/** Inputs and outputs of one execution (host memory, strided views).
 *  value input  = x_scale * x; tangent input = dx_scale * (dx ? dx : x);
 *  y = y_scale * output value; dy = y_scale * output tangent (dy ignored without tangents, may be
 *  NULL with tangents: the tangent is then computed but not returned). */
struct nn_io {
    const struct nn_tensor *x;
    const struct nn_tensor *dx;
    float x_scale, dx_scale;
    const struct nn_tensor *y;
    const struct nn_tensor *dy;
    float y_scale;
    const struct nn_tensor *more[NN_MAX_INPUTS - 1]; /**< inputs 2, 3, ... of a multi-input
                                                      *   graph in graph order (x_scale too) */
};

struct nn_backend_plan; /* opaque: defined by each backend */

/** Where a backend keeps its plans and workspaces. */
enum nn_mem_space {
    NN_MEM_HOST,   /**< host memory (CPU backends) */
    NN_MEM_DEVICE, /**< the memory of the current accelerator (CUDA backends) */
    NN_MEM_N_SPACES
};

/** The memory a plan takes, known before it is created (nn_plan_size). */
struct nn_plan_mem {
    enum nn_mem_space space; /**< where both figures live */
    size_t workspace;        /**< the caller-owned workspace (what nn_plan_workspace will say) */
    size_t plan;             /**< held by the plan itself (what nn_plan_memory will say) */
};

/** A compute backend: a table of functions, one instance per backend kind (static storage).
 *  Contracts: plan_create does all set-up and allocation (NULL plus err on failure: an unsupported
 *  op or shape, memory); plan_workspace is the byte size of the caller-owned workspace to pass to
 *  plan_execute (to be allocated with workspace_alloc: host memory for CPU backends, device memory
 *  for CUDA); plan_memory the bytes the plan itself holds (weights); plan_set_weights copies or
 *  reorders premodulated weights into the plan (no allocation); plan_execute runs the graph on io
 *  (no allocation, synchronous: outputs are complete on return); plan_destroy frees (NULL-safe).
 *  Memory queries, so that callers size plans without knowing the backend: space is where the
 *  workspace and the plan memory live; plan_size gives the workspace and plan bytes a plan of g
 *  would take without creating it (false plus err when no plan is possible) — never less than
 *  what plan_workspace and plan_memory of the created plan say; mem_available gives the bytes of
 *  space free to this process now, or is NULL when the backend cannot tell (host memory is shared
 *  by the processes of a node, so its budget is the caller's). */
struct nn_backend {
    const char *name;
    struct nn_backend_plan *(*plan_create)(const struct nn_graph *g, bool tangents,
                                           struct lm_err *err);
    size_t (*plan_workspace)(const struct nn_backend_plan *p);
    size_t (*plan_memory)(const struct nn_backend_plan *p);
    void (*plan_set_weights)(struct nn_backend_plan *p, const struct nn_weights *w);
    void (*plan_execute)(struct nn_backend_plan *p, const struct nn_io *io, void *workspace);
    void (*plan_destroy)(struct nn_backend_plan **p);
    void *(*workspace_alloc)(size_t bytes);
    void (*workspace_free)(void *ptr);
    enum nn_mem_space space;
    bool (*plan_size)(const struct nn_graph *g, bool tangents, size_t *workspace, size_t *plan,
                      struct lm_err *err);
    bool (*mem_available)(size_t *bytes, struct lm_err *err);
};

/** The CPU backend (oneDNN convolutions, blocked layouts, OpenMP). Local. */
const struct nn_backend *nn_backend_cpu(void);
/** The plain loop-nest reference backend (slow; the yardstick of the conformance tests). */
const struct nn_backend *nn_backend_ref(void);

/** A plan: a backend plan plus the backend that made it. */
struct nn_plan {
    const struct nn_backend *backend;
    struct nn_backend_plan *impl;
    bool tangents;
    unsigned long generation; /**< generation of the weights last set */
};

/** Create a plan of graph g on backend be, with or without tangents. Returns NULL and fills err
 *  on failure. Local. Free with nn_plan_destroy. */
struct nn_plan *nn_plan_create(const struct nn_backend *be, const struct nn_graph *g, bool tangents,
                               struct lm_err *err);
/** The memory a plan of graph g on backend be, with or without tangents, would take, and where
 *  (host or device), computed without creating the plan or allocating its memory (exact for the
 *  CPU backends; for CUDA, exact with heuristic algorithm choice and an upper bound with measured
 *  choice). Returns false and fills err when no plan is possible (an invalid graph, an op or shape
 *  the backend does not support, no device). Local. */
bool nn_plan_size(const struct nn_backend *be, const struct nn_graph *g, bool tangents,
                  struct nn_plan_mem *mem, struct lm_err *err);
/** Bytes of be's memory space free to this process now (the device's free memory for CUDA);
 *  0 when the backend cannot tell (host backends: host memory is shared by the processes of a
 *  node, so callers budget it from the node's available memory). Returns false and fills err when
 *  the query fails. Local. */
bool nn_backend_mem_available(const struct nn_backend *be, size_t *bytes, struct lm_err *err);
/** Bytes of workspace plan_execute needs (the activation peak). Local. */
size_t nn_plan_workspace(const struct nn_plan *p);
/** Bytes held by the plan itself. Local. */
size_t nn_plan_memory(const struct nn_plan *p);
/** Allocate / free a workspace in the backend's memory (labelled "nn.workspace" on the host). */
void *nn_plan_workspace_alloc(const struct nn_plan *p, size_t bytes);
void nn_plan_workspace_free(const struct nn_plan *p, void *ptr);
/** Load premodulated weights (skipped when w->generation was already loaded). Local. */
void nn_plan_set_weights(struct nn_plan *p, const struct nn_weights *w);
/** Execute on io with workspace (nn_plan_workspace bytes). No allocation. Local. */
void nn_plan_execute(struct nn_plan *p, const struct nn_io *io, void *workspace);
/** Destroy (NULL-safe) and set *p = NULL. Local. */
void nn_plan_destroy(struct nn_plan **p);

/** A plain C-order view of an array of shape s (strides c: n0 n1 n2, ..., 1). Local. */
struct nn_tensor nn_tensor_plain(float *data, struct nn_shape s);

#ifdef __cplusplus
}
#endif

#endif
