/*
 * stages — the commands of `lemur <command> params.yml`. Each stage reads struct params, does its
 * work collectively on comm, writes its outputs under output.dir and returns 0 on success.
 * The command table (cli.c) maps names to these functions.
 */
#ifndef LEMUR_STAGES_H
#define LEMUR_STAGES_H

#include <mpi.h>

#include "cosmology.h"
#include "params.h"

/** Validate the parameters and print the effective configuration and the cosmology summary
 *  (D, f, H at every output redshift, σ8 of the normalised spectrum). Collective on comm. */
int stage_info(const struct params *p, MPI_Comm comm);

struct cosmology;
/** The flat LCDM parameters of the run. Local. */
struct cosmology stage_cosmology(const struct params *p);

/** Print the cosmology summary only (used by info and at the start of run). Collective. */
void stage_cosmology_summary(const struct params *p, MPI_Comm comm);

#endif
