/*
 * comm (tier: mpi) — process start-up and the small collective services everything else uses:
 * agreement on expected failures, broadcasts of strings and files, reductions of timers and memory
 * tables. This directory (src/mpi/) owns every MPI call of lemur; code in src/ passes communicators
 * around but calls these functions instead of MPI itself.
 */
#ifndef LEMUR_COMM_H
#define LEMUR_COMM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define MPI_CHECK(call)                                                                            \
    do {                                                                                           \
        int mpi_rc_ = (call);                                                                      \
        if (mpi_rc_ != MPI_SUCCESS) {                                                              \
            char mpi_msg_[MPI_MAX_ERROR_STRING];                                                   \
            int mpi_len_ = 0;                                                                      \
            MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);                                        \
            lm_fatal("MPI call failed: %s: %s", #call, mpi_msg_);                                  \
        }                                                                                          \
    } while (0)

/** Initialise MPI (threads: funneled), set message tags and the fatal exit hook. Collective on
 *  MPI_COMM_WORLD. Returns a duplicate of the world communicator for the caller to use. */
MPI_Comm comm_init(int *argc, char ***argv);
/** Free world (from comm_init) and finalise MPI. Collective. */
void comm_finalize(MPI_Comm *world);

int comm_rank(MPI_Comm comm);
int comm_size(MPI_Comm comm);

/** Agree on an expected failure: if any rank's err is set, rank 0 prints the message of the
 *  lowest failing rank once ("lemur: error: ..."), all ranks finalise MPI and exit(1).
 *  Returns normally only when every rank is ok. Collective on comm. */
void comm_agree(MPI_Comm comm, const struct lm_err *err);
/** As comm_agree, but returns false on failure (after copying the message into every rank's err)
 *  instead of exiting, so the caller can clean up first. Collective on comm. */
bool comm_agree_soft(MPI_Comm comm, struct lm_err *err);

/** Has any rank received SIGTERM or SIGINT (handlers installed by comm_init)? Called at safe
 *  points (between stages and phases, where no output is half written): when so, err is set on
 *  every rank to "interrupted by SIGTERM <where>: ..." and the caller removes its temporary files
 *  and agrees (comm_agree), which exits with status 1. @return true when interrupted, the same on
 *  every rank. Collective on comm. */
bool comm_interrupted(MPI_Comm comm, const char *where, struct lm_err *err);

/** True once comm_interrupted has reported an interruption (then on every rank of its
 *  communicator). Local. */
bool comm_was_interrupted(void);

/** Broadcast a NUL-terminated string from root; on other ranks *s is replaced by a new lm_malloc
 *  block (label "comm.string") that the caller frees with lm_free. Collective on comm. */
void comm_bcast_string(MPI_Comm comm, char **s, int root);

/** In-place sums, maxima and minima over comm. Collective. */
void comm_sum_double(MPI_Comm comm, double *v, int n);
void comm_sum_int64(MPI_Comm comm, int64_t *v, int n);
void comm_max_double(MPI_Comm comm, double *v, int n);
void comm_min_double(MPI_Comm comm, double *v, int n);
/** In-place sum of v[0 .. n) over the ranks, added in rank order (rank 0's values first), so the
 *  result is the same from run to run at a given rank count. Collective. */
void comm_sum_double_ordered(MPI_Comm comm, double *v, int n);
/** Logical and of ok over comm. Collective. */
bool comm_all(MPI_Comm comm, bool ok);
void comm_barrier(MPI_Comm comm);

/** Print the phase-timer table (max over ranks, mean, imbalance = max/mean) and the memory
 *  table (max peak over ranks per label) on rank 0. Collective on comm. */
void comm_report(MPI_Comm comm, FILE *f);

/** Write the same tables as comm_report as JSON to path (rank 0 writes; others only reduce):
 *  {"command", "ranks", "phases": [{"name", "max_s", "mean_s", "imbalance"}],
 *   "bytes": [{"name", "total", "max_rank"}], "memory_peak_bytes_max"}. Collective on comm. */
void comm_report_json(MPI_Comm comm, const char *command, const char *path);

#endif
