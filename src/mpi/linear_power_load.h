/*
 * linear_power_load (tier: mpi) — the run's linear power spectrum, built identically on every rank
 * from the parameters: rank 0 reads a CLASS/CAMB table once and broadcasts its text, then every
 * rank makes the same struct linear_power. Errors (bad cosmology, missing or malformed table) are
 * agreed and reported once.
 */
#ifndef LEMUR_LINEAR_POWER_LOAD_H
#define LEMUR_LINEAR_POWER_LOAD_H

#include <mpi.h>

#include "linear_power.h"
#include "params.h"

/** The linear P(k) at z = 0 of p->cosmology (σ8-normalised as configured). Collective on comm;
 *  exits cleanly with one message on a bad table. Free with linear_power_destroy. */
struct linear_power *linear_power_load(const struct params *p, MPI_Comm comm);

#endif
