/*
 * manifest (tier: base) — the record of a run in <output.dir>/manifest.yml: for every stage its
 * status (running or complete), the configuration hash it ran with, its wall time, and the files it
 * wrote (path relative to output.dir, size, FNV-1a 64-bit checksum). The run's effective
 * configuration is kept beside it in manifest_config.yml so that a resume with a different
 * configuration can say which keys differ.
 *
 * A stage's files are found by comparing the output directory before and after the stage (new or
 * changed regular files), so stages need not declare them. The manifest is rewritten through a
 * temporary name at every change: a killed run leaves a valid manifest whose last stage is
 * "running", and that stage is redone on resume. Everything here is Local (rank 0 calls it).
 */
#ifndef LEMUR_MANIFEST_H
#define LEMUR_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct manifest_file {
    char *path; /**< relative to the output directory */
    uint64_t bytes;
    uint64_t checksum; /**< FNV-1a 64 of the content */
    double mtime;
};

struct manifest_stage {
    char name[32];
    bool complete;
    bool failed;      /**< the stage stopped with an error (reason says which) */
    bool interrupted; /**< the error was a SIGTERM/SIGINT (status "interrupted") */
    char reason[512]; /**< the error of a failed stage */
    uint64_t config_hash;
    double seconds;
    int n_files;
    struct manifest_file *files;
};

struct manifest {
    char dir[4096];
    uint64_t config_hash;
    int n_stages;
    struct manifest_stage stages[16];
};

/** FNV-1a 64-bit hash of n bytes, continuing from h (start with MANIFEST_FNV_SEED). Local. */
#define MANIFEST_FNV_SEED 0xcbf29ce484222325ull
uint64_t manifest_fnv1a(uint64_t h, const void *data, size_t n);
/** The hash of a run's configuration: its effective YAML without the run section. Local. */
uint64_t manifest_config_hash(const char *effective_yaml);

/** Read dir/manifest.yml into m. Returns false when there is none (m empty, err untouched) or
 *  when it is malformed (err set). Local. */
bool manifest_read(struct manifest *m, const char *dir, struct lm_err *err);
/** Write m to dir/manifest.yml through a temporary name. Local. */
bool manifest_write(const struct manifest *m, struct lm_err *err);
/** Free the file lists of m. Local. */
void manifest_free(struct manifest *m);

/** The stage called name, or NULL. Local. */
struct manifest_stage *manifest_stage(struct manifest *m, const char *name);
/** Mark stage name running (creating its entry, dropping its old files). Local. */
void manifest_begin(struct manifest *m, const char *name, uint64_t config_hash);
/** List the regular files under m->dir (recursively) with sizes and mtimes. Local. */
int manifest_scan(const struct manifest *m, struct manifest_file **files);
/** Mark stage name complete: its files are those of after that are new or changed relative to
 *  before (checksummed now); manifest bookkeeping files are ignored. Local. */
bool manifest_complete(struct manifest *m, const char *name, double seconds,
                       const struct manifest_file *before, int n_before, struct lm_err *err);
/** Mark stage name failed after seconds with the error reason (no files); with interrupted, its
 *  status is "interrupted" (stopped by a signal) rather than "failed". Local. */
void manifest_fail(struct manifest *m, const char *name, double seconds, const char *reason,
                   bool interrupted);
/** True when stage name is complete with config_hash and every file still has its size and
 *  checksum; else false with the reason in why. Local. */
bool manifest_stage_valid(struct manifest *m, const char *name, uint64_t config_hash, char *why,
                          size_t n_why);
/** Free a file list from manifest_scan. Local. */
void manifest_files_free(struct manifest_file *files, int n);

#endif
