/*
 * finite (tier: kernels) — the scan that refuses NaN and infinity where values enter lemur (fields,
 * snapshots, power tables) and checks them where they could arise (the emulator's output, JERALD
 * maps).
 *
 * The index returned is the smallest one holding a non-finite value, whatever the number of
 * threads, so messages are the same from run to run.
 */
#ifndef LEMUR_FINITE_H
#define LEMUR_FINITE_H

#include <stdbool.h>
#include <stdint.h>

/** Index of the first non-finite (NaN or infinite) entry of a[0 .. n), or -1 when every entry is
 *  finite. OpenMP-parallel; deterministic. Local. */
int64_t finite_first_bad_float(const float *a, int64_t n);
/** As finite_first_bad_float for doubles. Local. */
int64_t finite_first_bad_double(const double *a, int64_t n);

/** First non-finite entry of the 3-D block a[i stride[0] + j stride[1] + k] for i < count[0],
 *  j < count[1], k < count[2] (rows of padded or sub-box arrays). Returns its cell in cell[3] and
 *  true, or false when every entry is finite. OpenMP-parallel over the rows; deterministic. Local.
 */
bool finite_first_bad_block(const float *a, const int64_t count[3], const int64_t stride[2],
                            int64_t cell[3]);

#endif
