/*
 * bias_fit_plan (tier: plans) — training of the Lagrangian-bias network (Wu, Muñoz & Eisenstein
 * 2023, sec. 2.3; the loss in bias.h) over the ranks.
 *
 * The training set: the sampled particles (a fixed fraction s of all), each with its θ_in and the
 * training-mesh cell it ends in; every rank holds the particles of its own cells (slabs of the
 * training mesh), sorted by batch, cell and ID. Batches are fixed sets of cells.
 *
 * One step per batch: the forward pass of the batch's particles in blocks of BIAS_FIT_BLOCK rows
 * (OpenMP threads take blocks), the cell sums (local: a cell's particles are on one rank), the
 * batch's Σ f and loss summed over the ranks in rank order, dL/dy per particle, the backward pass
 * per block (activations recomputed) with one double gradient per block added in block order,
 * the ranks' gradients added in rank order, and Adam on every rank. The result is the same for
 * any thread count, and for any rank count to rounding.
 */
#ifndef LEMUR_BIAS_FIT_PLAN_H
#define LEMUR_BIAS_FIT_PLAN_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "bias.h"
#include "error.h"
#include "mesh.h"
#include "mpi/decomp.h"
#include "particles.h"

#define BIAS_FIT_BLOCK 1024 /**< rows per block of the training passes */

/** This rank's training set (arrays owned by the caller, lm_malloc). */
struct bias_fit_data {
    int n_in;             /**< inputs per particle */
    int64_t n;            /**< sampled particles here */
    const float *x;       /**< [n][n_in] θ_in */
    const int64_t *cell;  /**< [n] local cell of each particle */
    int n_batches;        /**< batches (global) */
    const int64_t *start; /**< [n_batches + 1] particles of batch b: start[b] ... start[b + 1] */
    const double *delta_true; /**< [local cells] target δ of each cell */
    const double *empty; /**< [n_batches] Σ (−1 − δ_true)² of this rank's cells of batch b that
                          *   hold no sampled particle */
    const double *n_batch; /**< [n_batches] sampled particles of batch b over all ranks */
    const double *f_batch; /**< [n_batches] ⟨f⟩ of batch b that its cells' target asks for:
                            *   Σ_{c in b} (1 + δ_true,c) / (A n_batch[b]), all ranks */
    double A;              /**< N_cells / (N_part s): 1 + δ_c = A Σ_{i in c} f_i */
};

/** Settings of a fit. */
struct bias_fit_options {
    int epochs;
    double lr, lr_decay; /**< learning rate lr decay^(e − 1) in epoch e = 1, 2, ... */
    uint64_t seed;       /**< the order of the batches in every epoch */
};

/** Loss of batch b and its gradient (added into grad, bias_n_params doubles; may be NULL) at the
 *  parameters theta with ε (0: no integral term). The same value on every rank. Collective. */
double bias_fit_batch(const struct bias_fit_data *d, int b, const double *theta, double eps,
                      double *grad, MPI_Comm comm);

/** Train: theta (bias_n_params doubles, the initial values in, the fitted out), loss[e] the mean
 *  batch loss of epoch e + 1 (o->epochs values). Collective on comm. */
void bias_fit_train(const struct bias_fit_data *d, const struct bias_fit_options *o, int n_params,
                    double *theta, double *loss, MPI_Comm comm);

/** What a training set is made from. */
struct bias_fit_setup {
    int n_mesh;           /**< training mesh cells per side */
    double subsample;     /**< fraction s of the particles sampled */
    long batch_particles; /**< sampled particles per batch (about) */
    uint64_t seed;        /**< sampling and batches */
    double box;           /**< box side [Mpc/h] */
    double n_part;        /**< particles in the box (all ranks) */
};

/** A training set: the data of struct bias_fit_data and the arrays behind it. */
struct bias_fit_set {
    struct bias_fit_data d;
    float *x;
    int64_t *cell, *start;
    double *delta_true, *empty, *n_batch, *f_batch;
    struct decomp dec; /**< the slabs of the training mesh */
};

/** Build this rank's training set: sample the particles (ID hash below s), move them to the slabs
 *  of the training mesh, fetch their θ_in from the Lagrangian sites (site_in, n_in per site, of
 *  layout), bin the haloes (every rank passes all n_haloes) mass-weighted NGP into δ_true, and
 *  draw the cells into about N_sampled / batch_particles batches (a hash of cell and seed).
 *  @return false with err agreed (an ID outside the grid). Collective. Free with
 *  bias_fit_set_destroy. */
bool bias_fit_set_create(struct bias_fit_set *fs, const struct bias_fit_setup *s,
                         const struct particles *parts, const struct fft_layout *layout,
                         const float *site_in, int n_in, int64_t n_haloes, const float *halo_pos,
                         const double *halo_mass, MPI_Comm comm, struct lm_err *err);
/** Free the arrays of fs (safe on a zeroed or already freed set). Collective (the decomposition).
 */
void bias_fit_set_destroy(struct bias_fit_set *fs);

#endif
