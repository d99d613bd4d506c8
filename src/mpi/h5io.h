/*
 * h5io (tier: mpi) — the HDF5 plumbing shared by lemur's file formats (fields, snapshots): files
 * written in parallel through a temporary name and committed by a rename, checked opening of
 * existing files, attributes, and datasets whose shape and type are verified before use.
 *
 * Messages. HDF5's own error-stack printing is switched off (h5io_quiet); every failure is turned
 * into a struct lm_err naming the file, the object (dataset or attribute) and what was expected
 * versus found. Functions that touch several ranks agree on the outcome (comm_agree_soft) and
 * return the same value on every rank.
 *
 * Temporary names. h5io_create opens "<path>.tmp"; h5io_finish closes it and, if every rank
 * succeeded, renames it to path (rank 0), otherwise removes it, so a failed run never leaves a
 * file that looks finished.
 *
 * Full disks and I/O errors. A new file is given a reserve of 256 KiB (posix_fallocate) and is
 * flushed, with the outcome agreed, before it is closed; a file being discarded is truncated to
 * zero first. Its close then always finds room for HDF5's metadata, so no rank is left with a file
 * HDF5 would try to close again when MPI ends, and the ranks never part ways inside HDF5.
 */
#ifndef LEMUR_H5IO_H
#define LEMUR_H5IO_H

#include <hdf5.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "params.h"

/** Largest path lemur handles in its file names. */
#define H5IO_PATH_MAX PARAMS_PATH_MAX

/** A file being written collectively. */
struct h5io_file {
    hid_t id;                    /**< the open HDF5 file (H5I_INVALID_HID when closed) */
    MPI_Comm comm;               /**< the communicator it was opened on (not owned) */
    char path[H5IO_PATH_MAX];    /**< final name */
    char tmp[H5IO_PATH_MAX + 8]; /**< temporary name being written */
};

/** Switch off HDF5's automatic error printing (idempotent). Local. */
void h5io_quiet(void);

/** Create "<path>.tmp" for parallel writing (MPI-IO driver) on every rank of comm.
 *  @return true when the file is open, identically on every rank (err names the file and the
 *  reason otherwise). Collective on comm. */
bool h5io_create(struct h5io_file *f, const char *path, MPI_Comm comm, struct lm_err *err);

/** Close f and agree on success: ok and err carry this rank's state in, err returns the agreed
 *  failure. On failure the temporary file is removed. @return true when every rank succeeded.
 *  Collective on f->comm. */
bool h5io_close(struct h5io_file *f, bool ok, struct lm_err *err);

/** Rename the temporary files of n closed files to their final names (rank 0).
 *  @return true when every rename succeeded. Collective on comm. */
bool h5io_commit(struct h5io_file *files, int n, MPI_Comm comm, struct lm_err *err);

/** Remove the temporary files of n files (closing any still open). Collective on comm. */
void h5io_discard(struct h5io_file *files, int n, MPI_Comm comm);

/** h5io_close then h5io_commit for one file. @return true when committed. Collective. */
bool h5io_finish(struct h5io_file *f, bool ok, struct lm_err *err);

/** Open an existing file for reading, on this rank alone (sec2 driver) or, when comm is not
 *  MPI_COMM_NULL, collectively with the MPI-IO driver. Checks that path exists and is HDF5.
 *  @return the file id, or H5I_INVALID_HID with err set ("cannot open <path>: ..."). Local when
 *  comm is MPI_COMM_NULL, else collective on comm (but not agreed: callers agree). */
hid_t h5io_open(const char *path, MPI_Comm comm, struct lm_err *err);

/** Write an attribute of n elements (n == 0: a scalar) of mem_type to object obj, stored as
 *  file_type. Replaces an existing attribute of that name. @return false on an HDF5 failure. */
bool h5io_attr_write(hid_t obj, const char *name, hid_t mem_type, hid_t file_type, int n,
                     const void *value);

/** Write a string attribute (fixed length, NUL-terminated). Local (collective when obj belongs to
 *  a parallel file: every rank writes the same value). */
bool h5io_attr_write_string(hid_t obj, const char *name, const char *value);

/** True when obj has an attribute called name. Local. */
bool h5io_attr_exists(hid_t obj, const char *name);

/** Read an attribute of exactly n numeric elements (n == 1 accepts a scalar or a 1-element array)
 *  into value converted to mem_type. The attribute must be numeric (integer or float).
 *  @param file, objname  used in messages ("<file>: attribute <objname>/<name> ...")
 *  @return false with err naming what was expected and found. Local. */
bool h5io_attr_read(hid_t obj, const char *name, hid_t mem_type, int n, void *value,
                    const char *file, const char *objname, struct lm_err *err);

/** Read a string attribute (fixed or variable length) into a new lm_malloc block ("h5io.string";
 *  the caller frees it). @return NULL with err set when absent or not a string. Local. */
char *h5io_attr_read_string(hid_t obj, const char *name, const char *file, struct lm_err *err);

/** True when the object path name (groups separated by '/') exists under loc. Local. */
bool h5io_exists(hid_t loc, const char *name);

/** Expected element class of a dataset. */
enum h5io_class {
    H5IO_FLOAT,   /**< any floating-point type (converted on read) */
    H5IO_INTEGER, /**< any integer type (converted on read) */
};

/** Open dataset name and check its rank and class; dims (rank entries) receive its shape, and a
 *  non-negative want[d] requires dims[d] == want[d].
 *  @return the dataset id, or H5I_INVALID_HID with err naming file, dataset, expected and found.
 *  Local. */
hid_t h5io_dataset_open(hid_t file, const char *name, int rank, const int64_t *want,
                        enum h5io_class cls, int64_t *dims, const char *path, struct lm_err *err);

/** Dataset creation property list for parallel writes: no fill at allocation; chunked with chunk
 *  when chunk is non-NULL, else contiguous. The caller closes it (H5Pclose). Local. */
hid_t h5io_dcpl(int rank, const hsize_t *chunk);

/** Transfer property list for collective MPI-IO transfers (H5Pclose after use). Local. */
hid_t h5io_dxpl_collective(void);

/** Name of an HDF5 type class for messages ("float", "integer", "string", ...). Local. */
const char *h5io_class_name(H5T_class_t cls);

#endif
