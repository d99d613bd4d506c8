/* jerald_fit_io — targets, loss history, maps and parameters of `lemur jerald-fit`
 * (jerald_fit_io.h). */
#include "mpi/jerald_fit_io.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/field_file.h"
#include "mpi/h5io.h"

static struct field_file_block slab_block(const struct fft_layout *l)
{
    struct box3 b = {{l->rx0, 0, 0}, {l->rx0 + l->rnx, l->n[1], l->n[2]}};
    int64_t dims[3] = {l->rnx, l->n[1], l->row};
    return field_file_block_make(l->n, &b, dims);
}

bool jerald_fit_io_read_target(const char *key, const char *path, const char *dataset,
                               const struct fft_layout *l, float *mesh, MPI_Comm comm,
                               struct lm_err *err)
{
    struct field_file_block b = slab_block(l);
    struct lm_err e = {{0}};
    if (field_file_read(path, dataset, &b, mesh, comm, &e))
        return true;
    lm_err_set(err, "%s: %s (the target must be a float mesh of jerald.n_mesh^3 = %d^3 cells)", key,
               e.msg, l->n[0]);
    return false;
}

/* ---- rank 0's files ---------------------------------------------------------------------- */

static bool commit(const char *tmp, const char *path, bool ok, struct lm_err *err)
{
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return lm_err_set(err, "cannot write %s (check that output.dir exists and is writable)", path);
}

bool jerald_fit_io_write_text(const char *path, const char *text, MPI_Comm comm, struct lm_err *err)
{
    if (comm_rank(comm) == 0) {
        char tmp[H5IO_PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        bool ok = f && fputs(text, f) >= 0;
        ok = f && fclose(f) == 0 && ok;
        commit(tmp, path, ok, err);
    }
    return comm_agree_soft(comm, err);
}

static void history_text(FILE *f, const struct jerald_fit_history *h)
{
    fprintf(f, "# map %s: %d steps, best validation loss at step %d, stopped: %s\n", h->map,
            h->n_steps, h->best_step, h->stopped ? h->stopped : "");
    fprintf(f, "# step lr loss_train loss_valid loss_test");
    for (int j = 0; j < h->n_params; j++)
        fprintf(f, " %s", h->names[j]);
    fputc('\n', f);
    for (int s = 0; s < h->n_steps; s++) {
        fprintf(f, "%d %.6e %.10e %.10e %.10e", s, h->lr[s], h->loss[3 * s], h->loss[3 * s + 1],
                h->loss[3 * s + 2]);
        for (int j = 0; j < h->n_params; j++)
            fprintf(f, " %.10e", h->theta[(size_t)s * h->n_params + j]);
        fputc('\n', f);
    }
}

static bool write_doubles(hid_t g, const char *name, int rank, const hsize_t *dims, const double *v)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    return ok;
}

static bool history_group(hid_t f, const struct jerald_fit_history *h)
{
    hid_t g = H5Gcreate2(f, h->map, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return false;
    int n = h->n_steps;
    double *col = lm_malloc("jerald_fit.io", (size_t)(n > 0 ? n : 1) * sizeof(double));
    hsize_t d1[1] = {(hsize_t)n}, d2[2] = {(hsize_t)n, (hsize_t)h->n_params};
    for (int s = 0; s < n; s++)
        col[s] = s;
    bool ok = write_doubles(g, "step", 1, d1, col) && write_doubles(g, "lr", 1, d1, h->lr);
    const char *names[3] = {"loss_train", "loss_valid", "loss_test"};
    for (int r = 0; r < 3 && ok; r++) {
        for (int s = 0; s < n; s++)
            col[s] = h->loss[3 * s + r];
        ok = write_doubles(g, names[r], 1, d1, col);
    }
    ok = ok && write_doubles(g, "parameters", 2, d2, h->theta);
    ok = ok && write_doubles(g, "gradient", 2, d2, h->grad);
    lm_free(col);
    size_t len = 1;
    for (int j = 0; j < h->n_params; j++)
        len += strlen(h->names[j]) + 1;
    char *all = lm_calloc("jerald_fit.io", len, 1);
    for (int j = 0; j < h->n_params; j++)
        snprintf(all + strlen(all), len - strlen(all), "%s%s", j ? " " : "", h->names[j]);
    ok = ok && h5io_attr_write_string(g, "parameter_names", all);
    lm_free(all);
    int64_t best = h->best_step;
    ok = ok && h5io_attr_write(g, "best_step", H5T_NATIVE_INT64, H5T_STD_I64LE, 0, &best);
    ok = ok && h5io_attr_write_string(g, "stopped", h->stopped ? h->stopped : "");
    H5Gclose(g);
    return ok;
}

bool jerald_fit_io_write_history(const char *base, const struct jerald_fit_history *h, int n,
                                 MPI_Comm comm, struct lm_err *err)
{
    if (comm_rank(comm) == 0) {
        char path[H5IO_PATH_MAX], tmp[H5IO_PATH_MAX + 8];
        snprintf(path, sizeof path, "%s.txt", base);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        for (int i = 0; f && i < n; i++)
            history_text(f, &h[i]);
        bool ok = f && fclose(f) == 0;
        commit(tmp, path, ok, err);
        snprintf(path, sizeof path, "%s.hdf5", base);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        h5io_quiet();
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
        hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
        ok = file >= 0 && h5io_attr_write_string(file, "lemur_fit_history", "jerald-fit");
        for (int i = 0; ok && i < n; i++)
            ok = history_group(file, &h[i]);
        if (file >= 0)
            ok = H5Fclose(file) >= 0 && ok;
        commit(tmp, path, ok, err);
    }
    return comm_agree_soft(comm, err);
}

bool jerald_fit_io_write_maps(const char *path, const char *config, double box_size,
                              const struct fft_layout *l, int n, char (*names)[64],
                              float *const fitted[], float *const target[], MPI_Comm comm,
                              struct lm_err *err)
{
    struct h5io_file f;
    if (!h5io_create(&f, path, comm, err))
        return false;
    int64_t nm = l->n[0];
    bool ok = h5io_attr_write_string(f.id, "lemur_config", config ? config : "") &&
              h5io_attr_write(f.id, "box_size", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &box_size) &&
              h5io_attr_write(f.id, "n_mesh", H5T_NATIVE_INT64, H5T_STD_I64LE, 0, &nm);
    if (!ok)
        lm_err_set(err, "%s: cannot write the root attributes", f.tmp);
    ok = comm_agree_soft(comm, err);
    struct field_file_block b = slab_block(l);
    for (int i = 0; ok && i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "fitted/%s", names[i]);
        ok = field_file_write_dataset(&f, name, &b, fitted[i], err);
        snprintf(name, sizeof name, "target/%s", names[i]);
        ok = ok && field_file_write_dataset(&f, name, &b, target[i], err);
    }
    return h5io_finish(&f, ok, err);
}
