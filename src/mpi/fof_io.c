/* fof_io — Gadget-4 fof_tab catalogues and the mass function (see fof_io.h). */
#include "mpi/fof_io.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/h5io.h"

static hid_t create_file(const char *tmp)
{
    h5io_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

/** Dataset name of n rows of `cols` columns (cols 1: a vector). */
static bool write_data(hid_t loc, const char *name, hid_t mem, hid_t file_type, int64_t n, int cols,
                       const void *data)
{
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)cols};
    hid_t space = H5Screate_simple(cols > 1 ? 2 : 1, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = ds >= 0 && (n == 0 || H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    return ok;
}

static bool attr_u64(hid_t o, const char *name, uint64_t v)
{
    return h5io_attr_write(o, name, H5T_NATIVE_UINT64, H5T_STD_U64LE, 0, &v);
}
static bool attr_i32(hid_t o, const char *name, int v)
{
    return h5io_attr_write(o, name, H5T_NATIVE_INT, H5T_STD_I32LE, 0, &v);
}
static bool attr_f64(hid_t o, const char *name, double v)
{
    return h5io_attr_write(o, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &v);
}

static bool write_header(hid_t f, const struct fof_io_header *h, int64_t n_this, int64_t n_total,
                         int64_t ids_this, int64_t ids_total, int n_files)
{
    hid_t g = H5Gcreate2(f, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = g >= 0;
    ok = ok && attr_u64(g, "Ngroups_ThisFile", (uint64_t)n_this);
    ok = ok && attr_u64(g, "Ngroups_Total", (uint64_t)n_total);
    ok = ok && attr_u64(g, "Nids_ThisFile", (uint64_t)ids_this);
    ok = ok && attr_u64(g, "Nids_Total", (uint64_t)ids_total);
    ok = ok && attr_u64(g, "Nsubhalos_ThisFile", 0) && attr_u64(g, "Nsubhalos_Total", 0);
    ok = ok && attr_u64(g, "Nsubgroups_ThisFile", 0) && attr_u64(g, "Nsubgroups_Total", 0);
    ok = ok && attr_i32(g, "NumFiles", n_files);
    ok = ok && attr_f64(g, "BoxSize", h->box) && attr_f64(g, "Time", h->time);
    ok = ok && attr_f64(g, "Redshift", h->redshift) && attr_f64(g, "Omega0", h->omega0);
    ok = ok && attr_f64(g, "OmegaLambda", h->omega_lambda);
    ok = ok && attr_f64(g, "HubbleParam", h->hubble_param);
    ok = ok && attr_f64(g, "LinkingLength", h->link_b);
    ok = ok && attr_f64(g, "LinkingLengthMpc", h->link);
    ok = ok && attr_f64(g, "ParticleMass", h->particle_mass);
    ok = ok && attr_u64(g, "NumPart_Searched", (uint64_t)h->n_particles);
    ok = ok && attr_i32(g, "MinLength", (int)h->min_length);
    ok = ok && attr_i32(g, "FlagDoubleprecision", 0);
    ok = ok && h5io_attr_write_string(g, "Input", h->input ? h->input : "");
    if (g >= 0)
        H5Gclose(g);
    return ok;
}

/** The Group datasets of groups g[0..n) (members: ids of those groups, in order). */
static bool write_groups(hid_t f, const struct fof_group *g, int64_t n, const uint64_t *ids)
{
    size_t m = (size_t)(n > 0 ? n : 1);
    int32_t *len = lm_malloc("fof.io", m * 7 * sizeof *len), *lent = len + m;
    float *fb = lm_malloc("fof.io", m * 15 * sizeof *fb);
    float *mass = fb, *pos = fb + m, *vel = fb + 4 * m, *disp = fb + 7 * m, *rad = fb + 8 * m,
          *masst = fb + 9 * m;
    uint64_t *first = lm_malloc("fof.io", m * sizeof *first);
    int64_t *off = lm_malloc("fof.io", m * sizeof *off), n_ids = 0;
    for (int64_t k = 0; k < n; k++) {
        len[k] = (int32_t)g[k].len;
        mass[k] = (float)g[k].mass;
        for (int d = 0; d < 3; d++) {
            pos[3 * k + d] = (float)g[k].pos[d];
            vel[3 * k + d] = (float)g[k].vel[d];
        }
        disp[k] = (float)g[k].vel_disp;
        rad[k] = (float)g[k].radius;
        first[k] = g[k].first_id;
        off[k] = n_ids;
        n_ids += g[k].len;
    }
    memset(lent, 0, 6 * m * sizeof *lent);
    memset(masst, 0, 6 * m * sizeof *masst);
    for (int64_t k = 0; k < n; k++) {
        lent[6 * k + 1] = len[k];
        masst[6 * k + 1] = mass[k];
    }
    hid_t grp = H5Gcreate2(f, "Group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = grp >= 0;
    ok = ok && write_data(grp, "GroupLen", H5T_NATIVE_INT32, H5T_STD_I32LE, n, 1, len);
    ok = ok && write_data(grp, "GroupMass", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, n, 1, mass);
    ok = ok && write_data(grp, "GroupPos", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, n, 3, pos);
    ok = ok && write_data(grp, "GroupVel", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, n, 3, vel);
    ok = ok && write_data(grp, "GroupVelDisp", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, n, 1, disp);
    ok = ok && write_data(grp, "GroupRadius", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, n, 1, rad);
    ok = ok && write_data(grp, "GroupFirstID", H5T_NATIVE_UINT64, H5T_STD_U64LE, n, 1, first);
    ok = ok && write_data(grp, "GroupLenType", H5T_NATIVE_INT32, H5T_STD_I32LE, n, 6, lent);
    ok = ok && write_data(grp, "GroupMassType", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, n, 6, masst);
    if (ids) {
        ok = ok && write_data(grp, "MemberIDs", H5T_NATIVE_UINT64, H5T_STD_U64LE, n_ids, 1, ids);
        ok = ok && write_data(grp, "MemberOffset", H5T_NATIVE_INT64, H5T_STD_I64LE, n, 1, off);
    }
    if (grp >= 0)
        H5Gclose(grp);
    /* an empty Subhalo group, as Gadget-4 readers (yt's) expect one */
    hid_t sub = H5Gcreate2(f, "Subhalo", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && sub >= 0;
    if (sub >= 0)
        H5Gclose(sub);
    lm_free(len);
    lm_free(fb);
    lm_free(first);
    lm_free(off);
    return ok;
}

static void file_name(char *out, size_t cap, const char *base, int i, int n_files, bool tmp)
{
    if (n_files == 1)
        snprintf(out, cap, "%s.hdf5%s", base, tmp ? ".tmp" : "");
    else
        snprintf(out, cap, "%s.%d.hdf5%s", base, i, tmp ? ".tmp" : "");
}

/** Rank 0: write every file under its temporary name, then rename them all. */
static bool write_files(const char *base, const struct fof_catalogue *c,
                        const struct fof_io_header *h, int n_files, struct lm_err *err)
{
    char tmp[H5IO_PATH_MAX + 16], path[H5IO_PATH_MAX + 16];
    int64_t ids_total = c->member_ids ? c->n_members : 0, g0 = 0, id0 = 0;
    bool ok = true;
    for (int i = 0; i < n_files && ok; i++) {
        int64_t g1 = c->n_groups * (i + 1) / n_files, ids = 0;
        for (int64_t k = g0; k < g1; k++)
            ids += c->groups[k].len;
        file_name(tmp, sizeof tmp, base, i, n_files, true);
        hid_t f = create_file(tmp);
        ok = f >= 0;
        ok = ok &&
             write_header(f, h, g1 - g0, c->n_groups, c->member_ids ? ids : 0, ids_total, n_files);
        ok = ok &&
             write_groups(f, c->groups + g0, g1 - g0, c->member_ids ? c->member_ids + id0 : NULL);
        ok = ok && h5io_attr_write_string(f, "lemur_config", h->config ? h->config : "");
        if (f >= 0)
            ok &= H5Fclose(f) >= 0;
        if (!ok)
            lm_err_set(err, "cannot write %s (check that output.dir exists and is writable)", tmp);
        g0 = g1;
        id0 += ids;
    }
    for (int i = 0; i < n_files; i++) {
        file_name(tmp, sizeof tmp, base, i, n_files, true);
        file_name(path, sizeof path, base, i, n_files, false);
        if (!ok)
            unlink(tmp);
        else if (rename(tmp, path) != 0)
            ok = lm_err_set(err, "cannot rename %s to %s", tmp, path);
    }
    return ok;
}

bool fof_io_write(const char *base, const struct fof_catalogue *c, const struct fof_io_header *h,
                  int n_files, MPI_Comm comm, struct lm_err *err)
{
    if (comm_rank(comm) == 0)
        write_files(base, c, h, n_files < 1 ? 1 : n_files, err);
    return comm_agree_soft(comm, err);
}

/* ---- mass function ---------------------------------------------------------------------- */

static bool write_mf_hdf5(const char *path, const struct fof_mass_function *mf,
                          const struct fof_io_header *h)
{
    char tmp[H5IO_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = create_file(tmp);
    bool ok = f >= 0;
    const char *names[7] = {"log10M",       "M",        "M_mean", "count", "dndlnM",
                            "dndlnM_error", "dndlnM_ST"};
    const double *cols[7] = {mf->log10m, mf->mass,  mf->mean_mass, mf->count,
                             mf->dndlnm, mf->error, mf->st};
    for (int c = 0; c < 7 && ok; c++)
        ok = write_data(f, names[c], H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, mf->n_bins, 1, cols[c]);
    ok = ok && attr_f64(f, "dlog10M", mf->dlogm) && attr_f64(f, "volume", mf->volume);
    ok = ok && attr_f64(f, "BoxSize", h->box) && attr_f64(f, "Redshift", h->redshift);
    ok = ok && attr_f64(f, "Omega0", h->omega0) && attr_f64(f, "LinkingLength", h->link_b);
    ok = ok && attr_i32(f, "MinLength", (int)h->min_length);
    ok = ok && attr_f64(f, "ParticleMass", h->particle_mass);
    ok = ok && h5io_attr_write_string(f, "mass_unit", "1e10 Msun/h");
    ok = ok && h5io_attr_write_string(f, "reference",
                                      "Sheth & Tormen 1999 (A 0.3222, a 0.707, "
                                      "p 0.3, delta_c 1.686)");
    ok = ok && h5io_attr_write_string(f, "input", h->input ? h->input : "");
    ok = ok && h5io_attr_write_string(f, "config", h->config ? h->config : "");
    if (f >= 0)
        ok &= H5Fclose(f) >= 0;
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return false;
}

static bool write_mf_text(const char *path, const struct fof_mass_function *mf,
                          const struct fof_io_header *h)
{
    char tmp[H5IO_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return false;
    fprintf(fp,
            "# FoF mass function: b = %g, min_length %ld, z = %g, box %g Mpc/h, V %.10e "
            "(Mpc/h)^3, dlog10M %g, M in 1e10 Msun/h\n",
            h->link_b, h->min_length, h->redshift, h->box, mf->volume, mf->dlogm);
    fprintf(fp, "# log10M M M_mean count dndlnM dndlnM_error dndlnM_ST\n");
    for (int i = 0; i < mf->n_bins; i++)
        fprintf(fp, "%.6f %.10e %.10e %.0f %.10e %.10e %.10e\n", mf->log10m[i], mf->mass[i],
                mf->mean_mass[i], mf->count[i], mf->dndlnm[i], mf->error[i], mf->st[i]);
    bool ok = fclose(fp) == 0;
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return false;
}

bool fof_io_write_mass_function(const char *base, const struct fof_mass_function *mf,
                                const struct fof_io_header *h, MPI_Comm comm, struct lm_err *err)
{
    if (comm_rank(comm) == 0) {
        char path[H5IO_PATH_MAX + 16];
        snprintf(path, sizeof path, "%s.hdf5", base);
        bool ok = write_mf_hdf5(path, mf, h);
        if (ok) {
            snprintf(path, sizeof path, "%s.txt", base);
            ok = write_mf_text(path, mf, h);
        }
        if (!ok)
            lm_err_set(err, "cannot write %s (check that output.dir exists and is writable)", path);
    }
    return comm_agree_soft(comm, err);
}
