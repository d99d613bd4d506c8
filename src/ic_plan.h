/*
 * ic_plan (tier: plans) — the distributed linear-field plan: white noise on this rank's x-slab
 * (ic.h), δ_k = sqrt(P(k)/V) w_k, and the Zel'dovich (and 2LPT) displacement fields by FFT over the
 * ranks (Springel 2005, N-GenIC conventions; the fields and the noise are described in ic.h).
 */
#ifndef LEMUR_IC_PLAN_H
#define LEMUR_IC_PLAN_H

#include <complex.h>
#include <mpi.h>

#include "error.h"
#include "ic.h"

struct fft_plan;

/** The linear-field plan. */
struct ic_plan;

/** Check the setup (mesh, box, order, seed; the power table must cover the box's k range from
 *  2π/L to the largest non-Nyquist |k|), build the seed table and the FFT plan, and allocate
 *  every buffer. @return the plan, or NULL with err set identically on every rank (the message
 *  names the key and value). Collective on comm. */
struct ic_plan *ic_plan_create(const struct ic_setup *setup, MPI_Comm comm, struct lm_err *err);

/** Make the fields (timed as ic.noise, ic.fft, ic.2lpt). Collective on the plan's communicator. */
void ic_plan_execute(struct ic_plan *plan);

/** The fields of the plan (valid until ic_plan_destroy). Local. */
const struct ic_fields *ic_plan_fields(const struct ic_plan *plan);

/** Move the arrays of the fields Ψ and δ (not the 2LPT term) to the caller, who frees them with
 *  lm_free; the plan keeps NULL in their place. Call after ic_plan_execute. Local. */
void ic_plan_take_fields(struct ic_plan *plan, struct ic_fields *out);

/** δ_k at z = 0 on this rank's modes, in the FFT's complex layout (walk it with fft_kiter);
 *  valid after ic_plan_execute until ic_plan_destroy. Local. */
const float complex *ic_plan_delta_k(const struct ic_plan *plan);

/** The plan's FFT (same layout as the fields). Local. */
const struct fft_plan *ic_plan_fft(const struct ic_plan *plan);

/** Free the plan and its fields; NULL-safe; sets *plan = NULL. Collective. */
void ic_plan_destroy(struct ic_plan **plan);

#endif
