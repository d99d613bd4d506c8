/* jerald_io — maps (parallel HDF5), their parameters as attributes, and their spectra. */
#include "mpi/jerald_io.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/field_file.h"
#include "mpi/h5io.h"

struct jerald_io_file {
    struct h5io_file h;
};

static bool attr_double(hid_t obj, const char *name, double v)
{
    return h5io_attr_write(obj, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &v);
}

static bool attr_int(hid_t obj, const char *name, int64_t v)
{
    return h5io_attr_write(obj, name, H5T_NATIVE_INT64, H5T_STD_I64LE, 0, &v);
}

static bool root_attrs(hid_t id, const struct jerald_io_info *in)
{
    bool ok = h5io_attr_write_string(id, "lemur_config", in->config ? in->config : "");
    ok = ok && h5io_attr_write_string(id, "input", in->input ? in->input : "");
    ok = ok && attr_double(id, "box_size", in->box_size) && attr_int(id, "n_mesh", in->n_mesh);
    ok = ok && attr_int(id, "n_part", in->n_part) &&
         attr_int(id, "gradient_order", in->gradient_order);
    ok = ok && attr_double(id, "redshift", in->redshift) && attr_double(id, "time", in->time);
    ok = ok && attr_double(id, "scale", JERALD_SCALE) &&
         attr_double(id, "scale_hi", JERALD_SCALE_HI);
    ok = ok && attr_double(id, "rho_eps", JERALD_RHO_EPS) &&
         attr_double(id, "k_zero", JERALD_K_ZERO) && attr_double(id, "floor", JERALD_FLOOR);
    return ok;
}

struct jerald_io_file *jerald_io_create(const char *path, const struct jerald_io_info *info,
                                        MPI_Comm comm, struct lm_err *err)
{
    struct jerald_io_file *f = lm_calloc("jerald_io.file", 1, sizeof *f);
    if (!h5io_create(&f->h, path, comm, err)) {
        lm_free(f);
        return NULL;
    }
    if (!root_attrs(f->h.id, info))
        lm_err_set(err, "%s: cannot write the root attributes", f->h.tmp);
    if (comm_agree_soft(comm, err))
        return f;
    jerald_io_discard(&f, comm);
    return NULL;
}

bool jerald_io_close(struct jerald_io_file **f, bool ok, struct lm_err *err)
{
    if (!f || !*f)
        return false;
    ok = h5io_finish(&(*f)->h, ok, err);
    lm_free(*f);
    *f = NULL;
    return ok;
}

void jerald_io_discard(struct jerald_io_file **f, MPI_Comm comm)
{
    if (!f || !*f)
        return;
    h5io_discard(&(*f)->h, 1, comm);
    lm_free(*f);
    *f = NULL;
}

/** Per-layer arrays of one term's parameters, named prefix + field ("alpha", "repel_alpha"). */
static bool layer_attrs(hid_t d, const struct jerald_map *m, bool repel)
{
    double v[JERALD_MAX_LAYERS];
    char name[64];
    bool ok = true;
    for (const struct jerald_field *f = jerald_term_fields; f->name && ok; f++) {
        for (int i = 0; i < m->n_layers; i++) {
            const struct jerald_term *t = repel ? &m->layer[i].repel : &m->layer[i].density;
            v[i] = *(const double *)((const char *)t + f->offset);
        }
        snprintf(name, sizeof name, "%s%s", repel ? "repel_" : "", f->name);
        ok = m->n_layers == 0 ||
             h5io_attr_write(d, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, m->n_layers, v);
    }
    return ok;
}

/** Scalar attributes prefix + field of a parameter table. */
static bool table_attrs(hid_t d, const char *prefix, const struct jerald_field *table,
                        const void *base)
{
    char name[64];
    bool ok = true;
    for (const struct jerald_field *f = table; f->name && ok; f++) {
        snprintf(name, sizeof name, "%s%s", prefix, f->name);
        ok = attr_double(d, name, *(const double *)((const char *)base + f->offset));
    }
    return ok;
}

static bool map_attrs(hid_t d, const struct jerald_map *m, double mean, int gradient_order)
{
    bool hi = m->model == JERALD_MODEL_HI;
    bool ok = h5io_attr_write_string(d, "model", jerald_model_name(m->model));
    ok = ok &&
         h5io_attr_write_string(d, "green", jerald_green_name(hi ? JERALD_GREEN_SM : m->green));
    ok = ok && attr_int(d, "n_layers", m->n_layers) && attr_double(d, "mean", mean);
    ok = ok && attr_int(d, "gradient_order", gradient_order);
    ok = ok && layer_attrs(d, m, false) && (!hi || layer_attrs(d, m, true));
    if (m->model != JERALD_MODEL_DM)
        ok = ok && table_attrs(d, "final_", jerald_final_fields, &m->final);
    if (hi) {
        ok = ok && table_attrs(d, "depletion_", jerald_depletion_fields, &m->depletion);
        ok = ok && h5io_attr_write_string(d, "stellar_map", m->stellar_name);
    }
    return ok;
}

bool jerald_io_write_map(struct jerald_io_file *jf, const struct jerald_map *m,
                         const struct fft_layout *l, const float *mesh, double mean,
                         int gradient_order, struct lm_err *err)
{
    char name[128];
    snprintf(name, sizeof name, "maps/%s", m->name);
    struct box3 own = {{l->rx0, 0, 0}, {l->rx0 + l->rnx, l->n[1], l->n[2]}};
    int64_t dims[3] = {l->rnx, l->n[1], l->row};
    struct field_file_block b = field_file_block_make(l->n, &own, dims);
    struct h5io_file *f = &jf->h;
    if (!field_file_write_dataset(f, name, &b, mesh, err))
        return false;
    hid_t d = H5Dopen2(f->id, name, H5P_DEFAULT);
    bool ok = d >= 0 && map_attrs(d, m, mean, gradient_order);
    if (d >= 0)
        H5Dclose(d);
    if (!ok)
        lm_err_set(err, "%s: cannot write the attributes of %s", f->tmp, name);
    return comm_agree_soft(f->comm, err);
}

bool jerald_io_write_spectrum(const char *base, const struct power_spectrum *s,
                              const struct power_meta *meta, MPI_Comm comm, struct lm_err *err)
{
    if (comm_rank(comm) == 0) {
        struct power_table t = {
            .n_bins = s->n_bins, .k = s->k, .n_modes = s->n_modes, .n_cols = 1, .meta = *meta};
        t.cols[0] = (struct power_column){"P", 1, {s->P[0]}, {NULL}};
        char path[H5IO_PATH_MAX + 16];
        const int sel[1] = {0};
        snprintf(path, sizeof path, "%s.hdf5", base);
        if (power_io_write_hdf5(path, &t, err)) {
            snprintf(path, sizeof path, "%s.txt", base);
            power_io_write_text(path, &t, 1, sel, err);
        }
    }
    return comm_agree_soft(comm, err);
}
