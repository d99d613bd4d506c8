/*
 * pipeline — `lemur run`: chains the stages named in run.stages, in order.
 */
#ifndef LEMUR_PIPELINE_H
#define LEMUR_PIPELINE_H

#include <mpi.h>

#include "params.h"

/** A stage `lemur run` can chain. */
struct pipeline_stage {
    const char *name;
    int (*run)(const struct params *p, MPI_Comm comm);
};

/** The stage called name, or NULL. Local. */
const struct pipeline_stage *pipeline_find(const char *name);

/** Run every stage of p->run.stages in order; stops at the first failure. An unknown stage or one
 *  not available in this build is an error before anything runs. Collective on comm. */
int pipeline_run(const struct params *p, MPI_Comm comm);

#endif
