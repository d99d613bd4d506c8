/* power_io — the HDF5 and nbodykit/FastPM text outputs of spectra (see power_io.h). */
#include "mpi/power_io.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mpi/h5io.h"

static bool write_dataset(hid_t file, const char *name, int n_rows, int n_bins,
                          const double *const *rows)
{
    hsize_t dims[2] = {(hsize_t)n_rows, (hsize_t)n_bins};
    int rank = n_rows > 1 ? 2 : 1;
    hid_t space = H5Screate_simple(rank, rank == 2 ? dims : dims + 1, NULL);
    hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = ds >= 0;
    for (int r = 0; ok && r < n_rows; r++) {
        hsize_t start[2] = {(hsize_t)r, 0}, count[2] = {1, (hsize_t)n_bins};
        hid_t mem = H5Screate_simple(1, count + 1, NULL);
        if (rank == 2)
            H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
        ok = H5Dwrite(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, rows[r]) >= 0;
        H5Sclose(mem);
    }
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    return ok;
}

static bool write_attr_double(hid_t f, const char *name, int n, const double *v)
{
    return h5io_attr_write(f, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, n, v);
}

static bool write_attributes(hid_t f, const struct power_meta *m)
{
    static const char *const axes[] = {"x", "y", "z"};
    const int one = 1, zero = 0;
    double volume = m->box[0] * m->box[1] * m->box[2];
    bool ok = write_attr_double(f, "box", 3, m->box);
    ok &= h5io_attr_write(f, "N_mesh", H5T_NATIVE_INT, H5T_STD_I32LE, 3, m->n_mesh);
    ok &= write_attr_double(f, "N_part", 0, &m->n_part[0]);
    ok &= write_attr_double(f, "N_part_B", 0, &m->n_part[1]);
    ok &= write_attr_double(f, "volume", 0, &volume);
    ok &= write_attr_double(f, "shot_noise", 0, &m->shot_noise);
    ok &= h5io_attr_write(f, "shot_noise_subtracted", H5T_NATIVE_INT, H5T_STD_I32LE, 0,
                          m->shotnoise_subtracted ? &one : &zero);
    ok &= h5io_attr_write_string(f, "compensation", m->compensated ? "cic sinc^2" : "none");
    ok &= h5io_attr_write_string(f, "window", "cic");
    ok &= h5io_attr_write(f, "interlacing", H5T_NATIVE_INT, H5T_STD_I32LE, 0,
                          m->interlaced ? &one : &zero);
    ok &= write_attr_double(f, "z", 0, &m->redshift);
    ok &= h5io_attr_write_string(f, "los", m->los >= 0 ? axes[m->los] : "none");
    ok &= write_attr_double(f, "kmin", 0, &m->kmin);
    ok &= write_attr_double(f, "dk", 0, &m->dk);
    ok &= write_attr_double(f, "kmax", 0, &m->kmax);
    ok &= h5io_attr_write_string(f, "input", m->input ? m->input : "");
    ok &= h5io_attr_write_string(f, "reference", m->reference ? m->reference : "");
    ok &= h5io_attr_write_string(f, "config", m->config ? m->config : "");
    return ok;
}

/** "<path>.tmp" into tmp; false when the name does not fit. */
static bool tmp_name(const char *path, char *tmp, size_t cap, struct lm_err *err)
{
    if ((size_t)snprintf(tmp, cap, "%s.tmp", path) < cap)
        return true;
    return lm_err_set(err, "output file name is too long: %s", path);
}

static bool commit(const char *tmp, const char *path, bool ok, struct lm_err *err)
{
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    if (ok)
        return lm_err_set(err, "cannot rename %s to %s", tmp, path);
    return lm_err_set(err, "cannot write %s (check that output.dir exists and is writable)", path);
}

bool power_io_write_hdf5(const char *path, const struct power_table *t, struct lm_err *err)
{
    char tmp[H5IO_PATH_MAX + 8];
    if (!tmp_name(path, tmp, sizeof tmp, err))
        return false;
    h5io_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    bool ok = f >= 0;
    ok = ok && write_dataset(f, "k", 1, t->n_bins, &t->k);
    ok = ok && write_dataset(f, "N_modes", 1, t->n_bins, &t->n_modes);
    for (int c = 0; ok && c < t->n_cols; c++)
        ok = write_dataset(f, t->cols[c].name, t->cols[c].n_rows, t->n_bins, t->cols[c].rows);
    ok = ok && write_attributes(f, &t->meta);
    if (f >= 0)
        ok &= H5Fclose(f) >= 0;
    return commit(tmp, path, ok, err);
}

static const char *label_of(const struct power_column *c, int r)
{
    return c->labels[r] ? c->labels[r] : c->name;
}

static void text_header(FILE *fp, const struct power_table *t, int n_sel, const int *sel)
{
    const struct power_column *first = &t->cols[sel[0]];
    fprintf(fp, "# k %s N", label_of(first, 0));
    for (int r = 1; r < first->n_rows; r++)
        fprintf(fp, " %s", label_of(first, r));
    for (int s = 1; s < n_sel; s++)
        for (int r = 0; r < t->cols[sel[s]].n_rows; r++)
            fprintf(fp, " %s", label_of(&t->cols[sel[s]], r));
    fputc('\n', fp);
}

static void text_rows(FILE *fp, const struct power_table *t, int n_sel, const int *sel)
{
    for (int i = 0; i < t->n_bins; i++) {
        const struct power_column *first = &t->cols[sel[0]];
        fprintf(fp, "%.10e %.10e %.10e", t->k[i], first->rows[0][i], t->n_modes[i]);
        for (int r = 1; r < first->n_rows; r++)
            fprintf(fp, " %.10e", first->rows[r][i]);
        for (int s = 1; s < n_sel; s++)
            for (int r = 0; r < t->cols[sel[s]].n_rows; r++)
                fprintf(fp, " %.10e", t->cols[sel[s]].rows[r][i]);
        fputc('\n', fp);
    }
}

static void text_trailer(FILE *fp, const struct power_meta *m)
{
    fprintf(fp, "# metadata 7\n");
    fprintf(fp, "# volume %.10e float64\n", m->box[0] * m->box[1] * m->box[2]);
    fprintf(fp, "# shotnoise %.10e float64\n", m->shot_noise);
    fprintf(fp, "# N1 %.0f int\n", m->n_part[0]);
    fprintf(fp, "# N2 %.0f int\n", m->n_part[1]);
    fprintf(fp, "# Lz %.10e float64\n", m->box[2]);
    fprintf(fp, "# Lx %.10e float64\n", m->box[0]);
    fprintf(fp, "# Ly %.10e float64\n", m->box[1]);
}

bool power_io_write_text(const char *path, const struct power_table *t, int n_sel, const int *sel,
                         struct lm_err *err)
{
    char tmp[H5IO_PATH_MAX + 8];
    if (!tmp_name(path, tmp, sizeof tmp, err))
        return false;
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return commit(tmp, path, false, err);
    text_header(fp, t, n_sel, sel);
    text_rows(fp, t, n_sel, sel);
    text_trailer(fp, &t->meta);
    bool ok = !ferror(fp);
    ok &= fclose(fp) == 0;
    return commit(tmp, path, ok, err);
}
