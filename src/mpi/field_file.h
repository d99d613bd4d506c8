/*
 * field_file (tier: mpi) — lemur's field files: distributed 3-D float32 fields in HDF5 with their
 * metadata, written and read collectively in any decomposition.
 *
 * Datasets. A field is one dataset of shape [n0, n1, n2] (C order, x slowest), float32, chunked in
 * (1, ≤512, ≤512) blocks. Each rank passes the block of global cells it owns (struct box3, possibly
 * empty) and its local array, whose allocated extents dims may exceed the block (e.g. FFTW's padded
 * rows of 2(n2/2 + 1)); HDF5 hyperslabs select the owned part on both sides, so no copy is made.
 * Blocks of the ranks must not overlap; together they should tile the mesh.
 *
 * Kinds and attributes. Two kinds of file carry the root attributes of one descriptor table
 * (field_file.c), each attribute a member of struct field_file_meta:
 *   FIELD_FILE_IC        ic_field.hdf5: psi_x, psi_y, psi_z, the Zel'dovich displacement Ψ(q) at
 *                        z = 0 [Mpc/h] (Zel'dovich 1970; N-GenIC, Springel 2005), and delta,
 *                        δ_lin(q) at z = 0; attributes BoxSize [Mpc/h], Nmesh, Redshift (0), Seed,
 *                        Amplitude, Paired, Omega_m, sigma8, units, lemur_config
 *   FIELD_FILE_EMULATED  the emulator's fields: psi_x, psi_y, psi_z, the nonlinear displacement
 *                        Ψ_NL(q) [Mpc/h], and vel_x, vel_y, vel_z [km/s] (Jamieson et al. 2024);
 *                        attributes BoxSize, Nmesh, Redshift, Omega_m, units, lemur_config
 * Other files (the JERALD maps) write their datasets with field_file_write_dataset into a file of
 * their own (src/mpi/h5io.h) and describe them with their own attributes.
 *
 * Files are written through a temporary name and committed by a rename when every rank succeeded
 * (src/mpi/h5io.h). Reading checks that the dataset exists, is a float type and has the expected
 * shape, with messages naming the file, the dataset, the expected and the found shape or type,
 * agreed across ranks.
 */
#ifndef LEMUR_FIELD_FILE_H
#define LEMUR_FIELD_FILE_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "box.h"
#include "error.h"

/** Dataset names of the three components of a displacement and of a velocity, and of δ. */
extern const char *const field_file_psi_names[3]; /**< "psi_x", "psi_y", "psi_z" */
extern const char *const field_file_vel_names[3]; /**< "vel_x", "vel_y", "vel_z" */
#define FIELD_FILE_DELTA "delta"

/** The kind of a field file (which attributes it carries, and its units text). */
enum field_file_kind {
    FIELD_FILE_IC,       /**< the linear fields of `lemur ic` */
    FIELD_FILE_EMULATED, /**< the emulator's nonlinear displacement and velocity */
};

/** The root attributes of a field file (which ones a kind writes: see the overview). */
struct field_file_meta {
    double box_size;       /**< BoxSize [Mpc/h] */
    int64_t n_mesh;        /**< Nmesh */
    double redshift;       /**< Redshift */
    int64_t seed;          /**< Seed */
    int32_t paired;        /**< Paired (0 or 1) */
    double omega_m;        /**< Omega_m */
    double sigma8;         /**< sigma8 */
    const char *amplitude; /**< Amplitude ("rayleigh" or "fixed") */
    const char *config;    /**< lemur_config: the effective configuration (NULL: "") */
    const char *units;     /**< units: set by the kind when writing; read back from the file */
};

/** This rank's part of a distributed field. */
struct field_file_block {
    int64_t n[3];    /**< global mesh [n0, n1, n2] */
    struct box3 box; /**< owned cells (global indices inside [0, n)); may be empty */
    int64_t dims[3]; /**< allocated extents of the local array (>= box extents; row padding) */
};

/** A field file being written (opaque). */
struct field_file;

/** Describe a block: global mesh n, owned box, local array extents dims (NULL: the box's own
 *  extents, a compact array). Local. */
struct field_file_block field_file_block_make(const int n[3], const struct box3 *box,
                                              const int64_t *dims);

/** Create the field file path of kind kind (through "<path>.tmp") and write the root attributes
 *  of meta that the kind carries (meta->units is ignored: the kind's text is written).
 *  @return the open file (close with field_file_close), or NULL on every rank with err set
 *  identically. Collective on comm. */
struct field_file *field_file_create(const char *path, enum field_file_kind kind,
                                     const struct field_file_meta *meta, MPI_Comm comm,
                                     struct lm_err *err);

/** Write dataset name of an open field file from this rank's block b of data.
 *  @return true when every rank wrote its block (err set identically otherwise). Collective. */
bool field_file_write(struct field_file *f, const char *name, const struct field_file_block *b,
                      const float *data, struct lm_err *err);

/** Close *f, and commit it under its final name when ok on every rank (else remove it); sets
 *  *f = NULL. @return true when committed, the same on every rank (err set otherwise).
 *  Collective on the file's communicator. */
bool field_file_close(struct field_file **f, bool ok, struct lm_err *err);

/** Read the root attributes of field file path that are present into meta (absent numbers are
 *  0, absent strings NULL); BoxSize is required. Strings are new lm_malloc blocks, freed by
 *  field_file_meta_free. Rank 0 reads and broadcasts.
 *  @return true with the same meta on every rank, or false with err naming file and attribute.
 *  Collective on comm. */
bool field_file_read_meta(const char *path, struct field_file_meta *meta, MPI_Comm comm,
                          struct lm_err *err);

/** Free the strings of a meta filled by field_file_read_meta and zero it. Local. */
void field_file_meta_free(struct field_file_meta *meta);

/** Read this rank's block of dataset name of file path into data (extents b->dims). The dataset
 *  must be float and of shape b->n. Collective on comm; the outcome is agreed. */
bool field_file_read(const char *path, const char *name, const struct field_file_block *b,
                     float *data, MPI_Comm comm, struct lm_err *err);

/** Read the displacement Ψ (psi_x, psi_y, psi_z) of a field file into this rank's block of any
 *  decomposition of the mesh n (any shape). Checks the datasets (float, shape n) and that the
 *  file's BoxSize equals box_size (relative 1e-9).
 *  @param box, dims  the owned cells and the local array extents (dims NULL: compact)
 *  @param psi        out: three arrays of the block, filled
 *  @return true on success, identically on every rank (err names file, dataset or attribute,
 *  expected and found). Collective on comm. */
bool field_file_read_psi(const char *path, const int n[3], double box_size, const struct box3 *box,
                         const int64_t *dims, float *const psi[3], MPI_Comm comm,
                         struct lm_err *err);

/* ---- for other file kinds of src/mpi/ that hold fields ---- */

struct h5io_file;
/** Write dataset name (created, with parent groups) into an open parallel file of src/mpi/h5io.h
 *  from this rank's block b of data. @return true when every rank wrote its block (err set
 *  identically otherwise). Collective on f->comm. */
bool field_file_write_dataset(struct h5io_file *f, const char *name,
                              const struct field_file_block *b, const float *data,
                              struct lm_err *err);

#endif
