/*
 * bias (tier: kernels) — the Lagrangian-bias network of Wu, Muñoz & Eisenstein 2023 (JCAP 05 040):
 * a weight f per particle from features of the linear density field at its Lagrangian site.
 *
 * Features. For each smoothing scale R_s the features are δ_R, ∇²δ_R and
 * G2_R = Σ_ij (∂i∂jφ)² − (∇²φ)² of the linear field smoothed by W(k) = exp(−k²R²/2), each divided
 * by its standard deviation over the box; θ_orig = (δ_1, L_1, G2_1, δ_2, L_2, G2_2, ...), 3 n_R
 * values per site (bias_plan.h computes them).
 *
 * Orthogonalisation (Wu et al. 2023, eq. 2.2). With Σ = ⟨θ θᵀ⟩ (uncentred) over the training box,
 * the 2 n_R × 2 n_R block of the δ and ∇²δ features keeps its n_R + 1 eigenvectors of largest
 * eigenvalue and the n_R × n_R block of G2 keeps all n_R: θ_in = Λ^(−1/2) Vᵀ θ_orig, 2 n_R + 1
 * values, V [3 n_R][n_in] holding each kept eigenvector in the rows of its block (zero elsewhere),
 * columns in decreasing eigenvalue within each block (δ/∇²δ first).
 *
 * Network. (2 n_R + 1) → 64 → 64 → 64 → 64 → 64 → 1, fully connected, exact GELU
 * x Φ(x) = x (1 + erf(x/√2)) / 2 after each hidden layer (erf from glibc's vector math library),
 * linear output y = log10 f. Layer l has
 * weights W_l [out][in] (PyTorch's nn.Linear layout) and biases b_l [out]. Inference runs in float
 * with OpenBLAS sgemm; training in double (dgemm) with a hand-written backward pass.
 *
 * Training loss of one batch (Wu et al. 2023, sec. 2.3), over the cells c of the batch and its
 * sampled particles i (a fraction s of all, their sums scaled by 1/s):
 *   L = Σ_c (δ_c − δ_true,c)² + Σ_i max(0, −5 − y_i)⁴ + (Σ_i f_i / N_batch − F_b)² / ε²,
 *   1 + δ_c = A Σ_{i in c} f_i,  A = (N_cells / N_part) (1/s),
 *   F_b = Σ_c (1 + δ_true,c) / (A N_batch)   (all cells of the batch, empty ones included);
 * the middle term keeps log10 f from running below −5 in empty regions (the paper's (y + 5)⁴,
 * one-sided: taken literally it would pull every y to −5); the last is off in the first epoch
 * (bias_epsilon). The paper writes the integral term with F_b = 1, the box's mean of f; lemur
 * asks each batch for the mean f its own cells' target implies, which is 1 for a batch as dense
 * as the box. A batch is a random set of cells whose halo mass scatters about its matter by far
 * more than ε = 1e−4 (tens of % for batches of a few hundred cells of a biased target), and
 * F_b = 1 in every batch can then only be met by f = 1 everywhere: a fit drifts to b = 1. With
 * F_b the term is Σ_c (δ_c − δ_true,c) / (A N_batch), zero at the least-squares optimum.
 */
#ifndef LEMUR_BIAS_H
#define LEMUR_BIAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define BIAS_MAX_SCALES 8    /**< most smoothing scales */
#define BIAS_WIDTH      64   /**< hidden width */
#define BIAS_N_LAYERS   6    /**< linear layers (5 hidden + output) */
#define BIAS_BLOCK      1024 /**< rows per GEMM block of inference */

/** A model: scales, orthogonalisation and layers (all arrays owned, lm_malloc). */
struct bias_model {
    int n_scales;                   /**< n_R */
    double scales[BIAS_MAX_SCALES]; /**< R [Mpc/h] */
    int n_feat;                     /**< 3 n_R */
    int n_in;                       /**< 2 n_R + 1 */
    double *V;                      /**< [n_feat][n_in] kept eigenvectors */
    double *lambda;                 /**< [n_in] their eigenvalues */
    int32_t *kept;           /**< [n_in] index of each in its block, by decreasing eigenvalue */
    float *w[BIAS_N_LAYERS]; /**< W_l [out][in] */
    float *b[BIAS_N_LAYERS]; /**< b_l [out] */
    int n_loss;              /**< epochs of the fit that made it (0: none) */
    double *loss;            /**< [n_loss] mean batch loss per epoch, or NULL */
};

/** A zeroed model for n_scales scales (1 ... BIAS_MAX_SCALES). Local. Free with
 *  bias_model_destroy. */
struct bias_model *bias_model_create(int n_scales, const double *scales);
/** Free m (NULL-safe); sets *m = NULL. Local. */
void bias_model_destroy(struct bias_model **m);

/** Inputs and outputs of layer l. Local. */
int bias_layer_in(const struct bias_model *m, int l);
int bias_layer_out(int l);

/** Number of trainable parameters (all W_l and b_l). Local. */
size_t bias_n_params(const struct bias_model *m);
/** Copy the layers to / from a flat double vector (per layer: W_l row-major, then b_l). Local. */
void bias_params_get(const struct bias_model *m, double *theta);
void bias_params_set(struct bias_model *m, const double *theta);

/** PyTorch's default initialisation law for nn.Linear: W and b uniform in ±1/sqrt(in), drawn from
 *  a splitmix64 stream of seed (the same values on every rank). Local. */
void bias_params_init(const struct bias_model *m, uint64_t seed, double *theta);

/** First non-finite value of the model as "mlp/weight_<l>[i]" etc. into what; false when all are
 *  finite. Local. */
bool bias_model_first_bad(const struct bias_model *m, char *what, size_t cap);

/** The orthogonalisation from Σ (n_feat × n_feat, row-major, double): eigen-decompose the δ/∇²δ
 *  and G2 blocks (LAPACK dsyev) and fill m->V, m->lambda, m->kept. @return false with err when an
 *  eigenvalue kept is not positive or dsyev fails. Local. */
bool bias_orth_from_cov(struct bias_model *m, const double *cov, struct lm_err *err);

/** θ_in of n sites: in[i][j] = Σ_f feat[i][f] V[f][j] / sqrt(λ_j). feat is [n][n_feat]. Local. */
void bias_orth_apply(const struct bias_model *m, int64_t n, const float *feat, float *in);

/** y = log10 f of n rows of θ_in (in [n][n_in]) in float: blocks of BIAS_BLOCK rows over the
 *  OpenMP threads (sgemm single-threaded inside). The rows are numbered from g0 (e.g. the global
 *  index of the first site) and the blocks are aligned to multiples of BIAS_BLOCK in that
 *  numbering, a cut block padded with zero rows, so a row's y is bitwise the same however the
 *  rows are split between ranks and threads. Local. */
void bias_forward(const struct bias_model *m, int64_t g0, int64_t n, const float *in, float *y);

/** Double network for training: parameters theta (bias_params_get layout). */
struct bias_dnet {
    int n_in;
    const double *theta;
    const double *w[BIAS_N_LAYERS], *b[BIAS_N_LAYERS];
};
/** Point net's layers into theta. Local. */
void bias_dnet_bind(struct bias_dnet *net, int n_in, const double *theta);
/** Doubles of activation storage per row for bias_dnet_forward. Local. */
size_t bias_dnet_act_size(void);
/** Forward n rows of x [n][n_in] in double, keeping the activations in act (n rows of
 *  bias_dnet_act_size doubles, layer-major) for the backward pass; y [n]. Local (sequential). */
void bias_dnet_forward(const struct bias_dnet *net, int n, const double *x, double *act, double *y);
/** Add to grad (bias_n_params doubles, theta's layout) the gradient of Σ_i dy[i] y_i over the n
 *  rows of the last bias_dnet_forward (x, act unchanged). ws: 2 n BIAS_WIDTH doubles. Local. */
void bias_dnet_backward(const struct bias_dnet *net, int n, const double *x, const double *act,
                        const double *dy, double *grad, double *ws);

/** ε of the integral term in 1-based epoch e: 0 (term off) for e = 1, else
 *  max(10^(−1 − 3 log10 e), 1e−4). Local. */
double bias_epsilon(int epoch);

/** One Adam step (Kingma & Ba 2015, PyTorch's form: β = (0.9, 0.999), eps 1e-8) at 1-based step t
 *  on n parameters with moments m, v. Local. */
void bias_adam_step(int64_t n, double *theta, const double *grad, double *m, double *v, double lr,
                    int64_t t);

/** splitmix64 of x (Steele et al. 2014): the hashes behind sampling and batches. Local. */
uint64_t bias_hash(uint64_t x);

#endif
