/*
 * stage_bias (tier: driver) — `lemur bias` (the halo field of the Lagrangian-bias network of
 * Wu, Muñoz & Eisenstein 2023) and `lemur bias-fit` (its training); stage_bias.c and
 * stage_bias_fit.c describe their keys and outputs.
 */
#ifndef LEMUR_STAGE_BIAS_H
#define LEMUR_STAGE_BIAS_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "ic.h"
#include "params.h"

struct run;
struct snapshot_header;

/** `lemur bias`: features, weights f, the weighted halo field and its spectra. @return false
 *  with err agreed on every rank. Collective. */
bool stage_bias(struct run *r, struct lm_err *err);
/** The checks of the bias stage (bias.model set, bias.assignment, bias.n_mesh). Collective. */
bool stage_bias_check(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** `lemur bias-fit`: train the network on a halo catalogue and write the model file. Collective.
 */
bool stage_bias_fit(const struct params *p, MPI_Comm comm, struct lm_err *err);

struct bias_features;
struct bias_model;
/** The features of the linear field at the model's scales (bias_features_create): the field is
 *  the run's (from memory) or, when bias.field is set or the run does not hold it, read from that
 *  file or the run's field file and freed once the features are made.
 *  @return the features (free with bias_features_destroy), NULL with err agreed. Collective. */
struct bias_features *stage_bias_features(struct run *r, const struct bias_model *m,
                                          struct lm_err *err);

struct particles;
/** The final particles with IDs: the run's (borrowed, *owned false) unless bias.input is set, else
 *  those of bias.input or of the run's snapshot (box.n³ of them). input receives the name used in
 *  messages. NULL with err agreed. Collective. */
struct particles *stage_bias_particles(struct run *r, struct snapshot_header *hdr, bool *owned,
                                       char *input, size_t cap, struct lm_err *err);

#endif
