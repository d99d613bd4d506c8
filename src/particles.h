/*
 * particles (tier: kernels) — the local particle store: structure of arrays with an optional set of
 * fields.
 *
 * Fields (a bit set of enum particles_field):
 *   PARTICLES_POS     x[3]  float32 positions, comoving Mpc/h
 *   PARTICLES_VEL     v[3]  float32 peculiar velocities, km/s
 *   PARTICLES_ID      id    uint64 IDs (Lagrangian index (i N + j) N + k)
 *   PARTICLES_WEIGHT  w     float32 weights (mass or bias weights)
 * Arrays of absent fields are NULL. Every array has cap entries; n are in use. Storage comes from
 * lm_malloc under the labels "particles.<field>".
 *
 * Generic code (migration, ghosts, I/O) walks the fields through a column table
 * (particles_columns) instead of naming them one by one: a column is one contiguous array of
 * fixed-size elements (positions and velocities are three columns each).
 *
 * Packed records, used for messages: a block of m particles is stored column by column, each
 * column's m elements contiguous, columns in particles_columns order. Local, never calls MPI.
 */
#ifndef LEMUR_PARTICLES_H
#define LEMUR_PARTICLES_H

#include <stddef.h>
#include <stdint.h>

/** Fields a particle store may hold (bit set). */
enum particles_field {
    PARTICLES_POS = 1u << 0,    /**< x[3], float */
    PARTICLES_VEL = 1u << 1,    /**< v[3], float */
    PARTICLES_ID = 1u << 2,     /**< id, uint64_t */
    PARTICLES_WEIGHT = 1u << 3, /**< w, float */
};

/** Every field. */
#define PARTICLES_ALL (PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID | PARTICLES_WEIGHT)
/** Most columns a store can have (3 + 3 + 1 + 1). */
#define PARTICLES_MAX_COLUMNS 8

/** A local particle store (SoA). */
struct particles {
    unsigned fields; /**< bit set of enum particles_field present */
    int64_t n;       /**< particles in use */
    int64_t cap;     /**< allocated entries per array */
    float *x[3];     /**< positions (PARTICLES_POS) */
    float *v[3];     /**< velocities (PARTICLES_VEL) */
    uint64_t *id;    /**< IDs (PARTICLES_ID) */
    float *w;        /**< weights (PARTICLES_WEIGHT) */
};

/** One column: a contiguous array of elements of elem_size bytes. */
struct particles_column {
    unsigned field;   /**< the field it belongs to */
    size_t elem_size; /**< bytes per element */
    void *data;       /**< the array (cap entries) */
};

/** New empty store (n = 0) with the given fields and capacity cap >= 0. Local. Free with
 *  particles_destroy. */
struct particles *particles_create(unsigned fields, int64_t cap);

/** Free the store and its arrays; sets *p = NULL; NULL-safe. Local. */
void particles_destroy(struct particles **p);

/** Make room for at least cap particles, keeping the first n (grows by at least 1/8 to amortise
 *  repeated growth; never shrinks). Local. */
void particles_reserve(struct particles *p, int64_t cap);

/** Set n (reserving when n > cap); new entries are uninitialised. Local. */
void particles_resize(struct particles *p, int64_t n);

/** Wrap every position into [0, box_size) (a value that rounds to box_size becomes 0). Local. */
void particles_wrap(struct particles *p, double box_size);

/** Columns of the fields in mask that p holds, in canonical order (x0 x1 x2 v0 v1 v2 id w); returns
 *  their number. CHECKs that p holds every field of mask. Local. */
int particles_columns(const struct particles *p, unsigned mask,
                      struct particles_column cols[PARTICLES_MAX_COLUMNS]);

/** Bytes per particle of the fields in mask. Local. */
size_t particles_record_bytes(unsigned mask);

/** Pack the fields in mask of particles idx[0..m-1] (or 0..m-1 from `first` when idx is NULL, i.e.
 *  first, first+1, ...) into buf as one column-major block of m records. Local. */
void particles_pack(const struct particles *p, unsigned mask, const int64_t *idx, int64_t first,
                    int64_t m, void *buf);

/** Unpack a column-major block of m records (fields mask) into entries at..at+m-1 of p (which must
 *  have cap >= at + m; n is not changed). Local. */
void particles_unpack(struct particles *p, unsigned mask, int64_t at, int64_t m, const void *buf);

/** Copy particle src to slot dst within p (all fields). Local. */
void particles_move(struct particles *p, int64_t dst, int64_t src);

#endif
