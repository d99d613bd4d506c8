/*
 * run (tier: driver) — the run's data in memory and the one table of lemur's stages.
 *
 * A struct run owns what one `lemur <stage>` or `lemur run` holds between its stages and lends it
 * to them:
 *   RUN_FIELD      the linear field on the FFT's x-slabs (struct ic_fields: Ψ at z = 0 in three
 *                  components, and δ_lin when it was made), made by ic, read by emulate;
 *   RUN_PARTICLES  the run's particles and their snapshot header: the emulated particles of the
 *                  first redshift when emulator.model is set, else the IC (LPT) particles; read by
 *                  power and jerald, which borrow them (they may migrate them in place, never
 *                  displace them).
 * A stage puts a product into the run only when a later stage of the same run reads it
 * (run_wants); the run frees it after the last stage that reads it (or earlier, when that stage
 * calls run_release). A stage that finds a product missing reads its file instead: files are the
 * products and checkpoints of a run, never the hand-off between stages.
 *
 * The stage table (run_stages) is the single list of stages: it drives `lemur --help`, the command
 * dispatch, the validation of run.stages and the manifest. Each entry names the stage, its
 * function, what it reads and makes, and its help. Adding a stage is one entry.
 *
 * `lemur run` (run_pipeline) runs the stages of run.stages in order, recording each in
 * output.dir/manifest.yml (running, complete with its files and checksums, or failed with the
 * reason). With run.resume a stage complete under the same configuration is skipped, unless a
 * later stage needs one of its products in memory and that product was not written to a file:
 * then the stage runs again, with a message saying why.
 */
#ifndef LEMUR_RUN_H
#define LEMUR_RUN_H

#include <mpi.h>
#include <stdbool.h>

#include "error.h"
#include "ic.h"
#include "mpi/snapshot.h"
#include "params.h"
#include "particles.h"

/** What the stages of a run hand to each other (bit set). */
enum run_product {
    RUN_FIELD = 1u << 0,     /**< the linear field on x-slabs (struct ic_fields) */
    RUN_PARTICLES = 1u << 1, /**< the run's particles and their header */
};

/** The data of one run. Stages use the functions below; the fields are the driver's. */
struct run {
    const struct params *p;     /**< the parameters (not owned) */
    MPI_Comm comm;              /**< the run's communicator (not owned) */
    unsigned held;              /**< products in memory */
    unsigned wanted;            /**< products a later stage reads: set before each stage */
    const struct stage *stage;  /**< the running stage */
    struct ic_fields field;     /**< RUN_FIELD: arrays owned by the run (lm_free) */
    struct particles *parts;    /**< RUN_PARTICLES (owned) */
    struct snapshot_header hdr; /**< their header; n_total[1] is the global count */
};

/** A stage: one entry of the table. */
struct stage {
    const char *name; /**< command name and run.stages item */
    /** Run the stage on r. @return true on success; false with err set identically on every
     *  rank (agreed). Collective on r->comm. */
    bool (*run)(struct run *r, struct lm_err *err);
    unsigned reads;                           /**< products it may read from memory */
    unsigned makes;                           /**< products it may put into memory */
    unsigned (*uses)(const struct params *p); /**< the part of reads | makes it uses under p
                                               *   (NULL: all of them) */
    /** The checks the stage makes before it reads or writes anything (NULL: none); false with
     *  err agreed on every rank. Collective on comm. */
    bool (*check)(const struct params *p, MPI_Comm comm, struct lm_err *err);
    const char *summary; /**< one line for lemur --help */
    const char *help;    /**< lemur <stage> --help */
};

/** The stages, in the order they run. */
extern const struct stage run_stages[];
extern const int run_n_stages;

/** The stage called name, or NULL. Local. */
const struct stage *run_stage_find(const char *name);

/** Check run.stages: not empty, every name a stage of the table (an unknown one suggests the
 *  nearest), none twice, in the table's order. @return false with err naming the item. Local. */
bool run_stages_check(const struct params *p, struct lm_err *err);

/** Everything that can be checked before a run starts: run.stages (run_stages_check), box.n
 *  as an FFT mesh, and the check of every stage of run.stages (struct stage). `lemur info` and
 *  `lemur run` call it before any stage. @return false with err agreed on every rank.
 *  Collective on comm. */
bool run_check(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** `lemur run`: the stages of run.stages in order, with the manifest and resume (see the
 *  overview); stops at the first failure, which the manifest records. @return false with err
 *  agreed on every rank. Collective on comm. */
bool run_pipeline(const struct params *p, MPI_Comm comm, struct lm_err *err);

/** `lemur <stage>`: the stage alone, reading its inputs from files and keeping nothing.
 *  @return false with err agreed on every rank. Collective on comm. */
bool run_stage_alone(const struct stage *s, const struct params *p, MPI_Comm comm,
                     struct lm_err *err);

/* ---- for the stages -------------------------------------------------------------------------- */

/** True when the running stage makes product under the parameters and a later stage of this run
 *  reads it from memory: the stage then puts it into the run. Local (the same on every rank). */
bool run_wants(const struct run *r, enum run_product product);

/** The run takes the arrays of f (psi, delta; layout copied; psi2 must be NULL) as RUN_FIELD; f is
 *  zeroed. Local. */
void run_put_field(struct run *r, struct ic_fields *f);

/** The linear field, or NULL when the run does not hold it. Local. */
const struct ic_fields *run_field(const struct run *r);

/** The run takes *parts (set to NULL) as RUN_PARTICLES with header hdr, whose n_total[1] it sets
 *  to the global count. Collective on r->comm. */
void run_put_particles(struct run *r, struct particles **parts, const struct snapshot_header *hdr);

/** Borrow the run's particles: NULL when it does not hold them; else the particles (still the
 *  run's; the borrower may migrate them in place) and *hdr their header. Local. */
struct particles *run_particles(struct run *r, struct snapshot_header *hdr);

/** The running stage is done with product: the run frees it now unless a later stage reads it.
 *  Local. */
void run_release(struct run *r, enum run_product product);

#endif
