/*
 * alloc (tier: base) — the labelled allocator. Every allocation of size goes through here so that
 * the run can report, per label ("ic.noise", "emulator.tile", "mesh.density", ...), the current and
 * peak bytes.
 *
 * Blocks are 64-byte aligned (AVX-512 and cache lines) and carry a small header with their size
 * and label slot. Failure to allocate is fatal with the label and size in the message, since no
 * caller can continue without its memory. Not thread-safe: allocate outside OpenMP regions.
 */
#ifndef LEMUR_ALLOC_H
#define LEMUR_ALLOC_H

#include <stddef.h>
#include <stdio.h>

/** Allocate bytes (64-byte aligned) under label. Local. Free with lm_free. */
void *lm_malloc(const char *label, size_t bytes);
/** As lm_malloc, zero-filled. Local. */
void *lm_calloc(const char *label, size_t n, size_t size);
/** Grow or shrink a block from lm_malloc (contents kept up to the smaller size). Local. */
void *lm_realloc(void *ptr, size_t bytes);
/** Free a block from lm_malloc/lm_calloc; NULL is ignored. Local. */
void lm_free(void *ptr);
/** Duplicate a string under label. Local. */
char *lm_strdup(const char *label, const char *s);

/** Bytes currently held by this process through lm_malloc. */
size_t alloc_current(void);
/** Peak of alloc_current since start. */
size_t alloc_peak(void);
/** Restart the peak from the current total (to measure one phase of a program). Local. */
void alloc_peak_reset(void);
/** Peak bytes of one label (0 when the label was never used). Local. */
size_t alloc_label_peak(const char *label);

/** Print the per-label table of this process (labels with a non-zero peak) to f. Local. */
void alloc_report(FILE *f);

#endif
