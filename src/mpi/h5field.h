/*
 * h5field — distributed 3-D float32 fields in HDF5, written and read collectively in any
 * decomposition.
 *
 * A field is one dataset of shape [n0, n1, n2] (C order, x slowest), float32, chunked in (1, ≤512,
 * ≤512) blocks. Each rank passes the block of global cells it owns (struct box3, possibly empty)
 * and its local array, whose allocated extents dims may exceed the block (e.g. FFTW's padded rows
 * of 2(n2/2 + 1)); HDF5 hyperslabs select the owned part on both sides, so no copy is made.
 * Blocks of the ranks must not overlap; together they should tile the mesh.
 *
 * Files are written through struct h5io_file (temporary name, committed by a rename when every
 * rank succeeded); the caller adds attributes (the effective configuration, units) with the h5io
 * helpers and commits with h5io_finish. Reading checks that the dataset exists, is a float type and
 * has the expected shape, with messages naming the file, the dataset, the expected and the found
 * shape or type, agreed across ranks.
 */
#ifndef LEMUR_H5FIELD_H
#define LEMUR_H5FIELD_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "box.h"
#include "error.h"
#include "mpi/h5io.h"

/** This rank's part of a distributed field. */
struct h5field_block {
    int64_t n[3];    /**< global mesh [n0, n1, n2] */
    struct box3 box; /**< owned cells (global indices inside [0, n)); may be empty */
    int64_t dims[3]; /**< allocated extents of the local array (>= box extents; row padding) */
};

/** Describe a block: global mesh n, owned box, local array extents dims (NULL: the box's own
 *  extents, a compact array). Local. */
struct h5field_block h5field_block_make(const int n[3], const struct box3 *box,
                                        const int64_t *dims);

/** Write one field as dataset name (created, with parent groups) of an open file.
 *  @param data  the local array (covers b->box with extents b->dims)
 *  @return true when every rank wrote its block (err set identically otherwise). Collective on
 *  f->comm. */
bool h5field_write(struct h5io_file *f, const char *name, const struct h5field_block *b,
                   const float *data, struct lm_err *err);

/** Shape of dataset name in file path (checks it exists and is a 3-D float dataset).
 *  Collective on comm; the outcome is agreed. */
bool h5field_shape(const char *path, const char *name, MPI_Comm comm, int64_t n[3],
                   struct lm_err *err);

/** Read this rank's block of dataset name of file path into data (extents b->dims). The dataset
 *  must be float and of shape b->n. Collective on comm; the outcome is agreed. */
bool h5field_read(const char *path, const char *name, const struct h5field_block *b, float *data,
                  MPI_Comm comm, struct lm_err *err);

#endif
