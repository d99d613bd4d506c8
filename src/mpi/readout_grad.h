/*
 * readout_grad (tier: mpi) — the derivative of a distributed CIC readout with respect to the
 * particle positions (the position term of the adjoints of paint and readout; Rigo, Trotta & Viel
 * 2025, section II, differentiate through both).
 *
 * The plan keeps one lo and one hi ghost plane per field on the x-slabs of a float FFT layout
 * (the layout src/mpi/paint.h paints on); execution fills them from the owners of planes x0 − 1
 * and x0 + nx (a two-neighbour ring, as paint_readout) and evaluates jerald_cic_readout_grad on
 * the local particles, which must have been migrated to the paint decomposition. Memory: 2
 * n_fields float planes.
 */
#ifndef LEMUR_READOUT_GRAD_H
#define LEMUR_READOUT_GRAD_H

#include <mpi.h>

#include "cic.h"
#include "mpi/fft.h"

struct readout_grad_plan;

/** Plan the position derivative of readouts of up to n_fields (<= CIC_MAX_FIELDS) fields on the
 *  real layout of fft. Collective on comm (duplicated). Free with readout_grad_plan_destroy. */
struct readout_grad_plan *readout_grad_plan_create(const struct fft_plan *fft, int n_fields,
                                                   MPI_Comm comm);

/** Free the plan (NULL-safe) and set *p = NULL. Collective. */
void readout_grad_plan_destroy(struct readout_grad_plan **p);

/** out[e][i] = Σ_f coef[f][i] ∂/∂x_e (CIC readout of fields[f] at point i) (coef[f] NULL: 1).
 *  fields are real FFT buffers of the plan's layout (not modified). A point outside this rank's
 *  slab is fatal (migrate first). Collective on the plan's communicator. */
void readout_grad_execute(struct readout_grad_plan *p, int n_fields, float *const fields[],
                          const float *const coef[], const struct cic_points *pts,
                          float *const out[3]);

#endif
