/*
 * stage_bias — the command `lemur bias` and the bias stage of `lemur run`: the Lagrangian-bias
 * halo field of Wu, Muñoz & Eisenstein 2023 (JCAP 05 040), and `lemur bias-fit`, which trains its
 * network (stage_bias_fit.c).
 *
 * bias  reads the model (bias.model), computes the features of the linear field (the run's, from
 *       memory, or bias.field / output.dir/ic_field.hdf5) on the Lagrangian grid, the weight
 *       f = 10^y of every site, and hands f to the final particles (the run's, or bias.input /
 *       the run's snapshot) by their IDs. The weighted particles make the halo field
 *       1 + δ_h = (N_cells / N_part) Σ_cell f_i on a bias.n_mesh³ mesh (bias.assignment: ngp,
 *       the paper's, or cic); writes under output.dir
 *         bias_power.hdf5, .txt   P_hh, P_hm, P_mm, b = P_hm / P_mm and r = P_hm / sqrt(P_hh P_mm)
 *                                 with the power stage's estimator and binning (power.dk, ...;
 *                                 power.compensate divides by the NGP or CIC window)
 *         bias_sites.hdf5         (bias.write_sites) the normalised features feature_<c> and f of
 *                                 every Lagrangian site, [n][n][n] each
 *       tools/plot draws the spectra.
 */
#include "stages.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bias.h"
#include "bias_plan.h"
#include "mpi/bias_io.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/fft.h"
#include "mpi/field_file.h"
#include "mpi/h5io.h"
#include "mpi/lagrangian.h"
#include "mpi/migrate.h"
#include "mpi/params_load.h"
#include "mpi/power_io.h"
#include "mpi/snapshot.h"
#include "power_plan.h"
#include "run.h"
#include "stage_bias.h"
#include "stage_ic.h"
#include "timer.h"

/* ---- inputs shared with bias-fit --------------------------------------------------------------
 */

static void free_field(struct ic_fields *own);

/* The linear field: the run's (*f points at it) or read into own (*f = own; free_field). */
static bool load_field(struct run *r, struct ic_fields *own, const struct ic_fields **f,
                       struct lm_err *err)
{
    const struct params *p = r->p;
    memset(own, 0, sizeof *own);
    *f = *p->bias.field ? NULL : run_field(r);
    if (*f) {
        msg_info("bias: the linear field taken from memory");
        return true;
    }
    char path[PARAMS_PATH_MAX + 64];
    if (*p->bias.field)
        snprintf(path, sizeof path, "%s", p->bias.field);
    else
        snprintf(path, sizeof path, "%s/%s", p->output.dir, IC_FIELD_FILE);
    int n = (int)p->box.n, nn[3] = {n, n, n};
    double box[3] = {p->box.size, p->box.size, p->box.size};
    fft_local_size(nn, box, 0, r->comm, &own->layout);
    const struct fft_layout *l = &own->layout;
    size_t count = (size_t)(l->rnx > 0 ? l->rnx : 1) * n * l->row;
    for (int d = 0; d < 3; d++)
        own->psi[d] = lm_calloc("bias.psi", count, sizeof(float));
    struct box3 b = {{l->rx0, 0, 0}, {l->rx0 + l->rnx, n, n}};
    int64_t dims[3] = {l->rnx, n, l->row};
    timer_start("bias.read_field");
    bool ok = field_file_read_psi(path, nn, p->box.size, &b, dims, own->psi, r->comm, err);
    timer_stop("bias.read_field");
    if (ok) {
        msg_info("bias: read the linear field from %s", path);
        *f = own;
    } else {
        free_field(own);
    }
    return ok;
}

static void free_field(struct ic_fields *own)
{
    for (int d = 0; d < 3; d++)
        lm_free(own->psi[d]);
    memset(own, 0, sizeof *own);
}

struct bias_features *stage_bias_features(struct run *r, const struct bias_model *m,
                                          struct lm_err *err)
{
    struct ic_fields own;
    const struct ic_fields *field;
    if (!load_field(r, &own, &field, err))
        return NULL;
    struct bias_features *bf = bias_features_create(field, m->n_scales, m->scales, r->comm);
    free_field(&own);
    return bf;
}

struct particles *stage_bias_particles(struct run *r, struct snapshot_header *hdr, bool *owned,
                                       char *input, size_t cap, struct lm_err *err)
{
    const struct params *p = r->p;
    struct particles *parts = *p->bias.input ? NULL : run_particles(r, hdr);
    *owned = parts == NULL;
    if (parts) {
        snprintf(input, cap, "the run's particles");
        if (!(parts->fields & PARTICLES_ID))
            lm_err_set(err, "bias: the run's particles carry no IDs");
        return comm_agree_soft(r->comm, err) ? parts : NULL;
    }
    if (*p->bias.input)
        snprintf(input, cap, "%s", p->bias.input);
    else
        stage_particles_path(p, input, cap);
    struct snapshot_read_opts o = {.part_type = 1, .fields = PARTICLES_POS | PARTICLES_ID};
    timer_start("bias.read_particles");
    bool ok = snapshot_read(input, &o, r->comm, hdr, &parts, err);
    timer_stop("bias.read_particles");
    if (ok && !params_check_box(p, *p->bias.input ? "bias.input" : NULL, input, hdr->box_size, err))
        ok = false;
    if (ok && hdr->n_total[1] != (uint64_t)(p->box.n * p->box.n * p->box.n))
        lm_err_set(err, "bias: %s has %.0f particles; expected box.n^3 = %ld^3 (one per site)",
                   input, (double)hdr->n_total[1], p->box.n);
    if (!comm_agree_soft(r->comm, err))
        particles_destroy(&parts);
    return parts;
}

bool stage_bias_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    if (!*p->bias.model)
        lm_err_set(err, "bias.model: empty; lemur bias needs a model file (made by lemur bias-fit "
                        "or tools/convert-weights)");
    else if (strcmp(p->bias.assignment, "ngp") != 0 && strcmp(p->bias.assignment, "cic") != 0)
        lm_err_set(err, "bias.assignment = '%s': expected ngp or cic", p->bias.assignment);
    int n = (int)(p->bias.n_mesh > 0 ? p->bias.n_mesh : p->box.n), nn[3] = {n, n, n};
    if (lm_err_ok(err))
        fft_check_size(nn, "bias.n_mesh", err);
    return comm_agree_soft(comm, err);
}

/* ---- the halo field ---------------------------------------------------------------------------
 */

static bool write_spectra(const struct params *p, const struct power_plan *pp,
                          struct power_spectrum *const s[3], const struct snapshot_header *hdr,
                          const char *input, int n, MPI_Comm comm, struct lm_err *err)
{
    int nb = s[0]->n_bins;
    double *br = lm_malloc("bias.power", 2 * (size_t)nb * sizeof *br);
    for (int i = 0; i < nb; i++) {
        br[i] = s[1]->P[0][i] / s[2]->P[0][i];
        br[nb + i] = s[1]->P[0][i] / sqrt(s[0]->P[0][i] * s[2]->P[0][i]);
    }
    struct power_table t = {.n_bins = nb, .k = s[0]->k, .n_modes = s[0]->n_modes};
    const char *names[5] = {"P_hh", "P_hm", "P_mm", "b", "r"};
    const double *cols[5] = {s[0]->P[0], s[1]->P[0], s[2]->P[0], br, br + nb};
    for (t.n_cols = 0; t.n_cols < 5; t.n_cols++)
        t.cols[t.n_cols] = (struct power_column){names[t.n_cols], 1, {cols[t.n_cols]}, {NULL}};
    struct power_meta *m = &t.meta;
    for (int d = 0; d < 3; d++) {
        m->box[d] = hdr->box_size;
        m->n_mesh[d] = n;
    }
    m->n_part[0] = m->n_part[1] = (double)hdr->n_total[1];
    m->redshift = hdr->redshift;
    m->compensated = p->power.compensate;
    m->interlaced = p->power.interlace && strcmp(p->bias.assignment, "cic") == 0;
    m->los = -1;
    m->kmin = power_plan_kmin(pp);
    m->dk = power_plan_dk(pp);
    m->kmax = power_plan_kmax(pp);
    m->input = input;
    m->config = p->effective;
    if (comm_rank(comm) == 0) {
        char path[PARAMS_PATH_MAX + 64];
        const int sel[5] = {0, 1, 2, 3, 4};
        snprintf(path, sizeof path, "%s/bias_power.hdf5", p->output.dir);
        if (power_io_write_hdf5(path, &t, err)) {
            snprintf(path, sizeof path, "%s/bias_power.txt", p->output.dir);
            power_io_write_text(path, &t, 5, sel, err);
        }
    }
    lm_free(br);
    bool ok = comm_agree_soft(comm, err);
    if (ok)
        msg_info("bias: wrote %s/bias_power.hdf5 and .txt (%d bins)", p->output.dir, nb);
    return ok;
}

/* The weighted copy h of parts (positions, weights f), migrated; the matter parts too. */
static bool spectra(const struct params *p, struct particles *parts, struct particles *h,
                    const struct snapshot_header *hdr, const char *input, double sum_f,
                    MPI_Comm comm, struct lm_err *err)
{
    timer_start("bias.power");
    int n = (int)(p->bias.n_mesh > 0 ? p->bias.n_mesh : p->box.n), nn[3] = {n, n, n};
    const double box[3] = {hdr->box_size, hdr->box_size, hdr->box_size};
    struct power_options o = {.dk = p->power.dk,
                              .kmin = p->power.kmin,
                              .kmax = p->power.kmax,
                              .compensate = p->power.compensate,
                              .interlace = p->power.interlace};
    struct power_plan *pp = power_plan_create(nn, box, &o, comm);
    float *mm = power_mesh_alloc(pp, "bias.mesh"), *hm = power_mesh_alloc(pp, "bias.mesh");
    migrate_particles(power_plan_decomp(pp), parts, hdr->box_size);
    power_density(pp, parts, mm, NULL);
    migrate_particles(power_plan_decomp(pp), h, hdr->box_size);
    double n_part = (double)hdr->n_total[1];
    bias_halo_density(pp, h, n_part, sum_f, strcmp(p->bias.assignment, "ngp") == 0,
                      p->power.compensate, hm);
    struct power_spectrum *s[3];
    float *pairs[3][2] = {{hm, hm}, {hm, mm}, {mm, mm}};
    for (int i = 0; i < 3; i++) {
        s[i] = power_spectrum_create(power_plan_n_bins(pp), 1);
        power_measure(pp, 1, &pairs[i][0], &pairs[i][1], s[i]);
    }
    bool ok = write_spectra(p, pp, s, hdr, input, n, comm, err);
    for (int i = 0; i < 3; i++)
        power_spectrum_destroy(&s[i]);
    lm_free(mm);
    lm_free(hm);
    power_plan_destroy(&pp);
    timer_stop("bias.power");
    return ok;
}

/* ---- bias_sites.hdf5 --------------------------------------------------------------------------
 */

static bool write_sites(const struct params *p, const struct bias_features *bf, const float *f,
                        MPI_Comm comm, struct lm_err *err)
{
    const struct fft_layout *l = &bf->layout;
    char path[PARAMS_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/bias_sites.hdf5", p->output.dir);
    struct h5io_file file;
    if (!h5io_create(&file, path, comm, err))
        return false;
    struct box3 b = {{l->rx0, 0, 0}, {l->rx0 + l->rnx, l->n[1], l->n[2]}};
    struct field_file_block blk = field_file_block_make(l->n, &b, NULL);
    float *tmp = lm_malloc("bias.sites", (size_t)(bf->n_sites ? bf->n_sites : 1) * sizeof *tmp);
    bool ok = true;
    for (int c = 0; c <= bf->n_feat && ok; c++) {
        char name[32];
        snprintf(name, sizeof name, c < bf->n_feat ? "feature_%d" : "f", c);
        for (int64_t i = 0; i < bf->n_sites; i++)
            tmp[i] = c < bf->n_feat ? bf->feat[i * bf->n_feat + c] : f[i];
        ok = field_file_write_dataset(&file, name, &blk, tmp, err);
    }
    lm_free(tmp);
    ok = h5io_finish(&file, ok, err);
    if (ok)
        msg_info("bias: wrote %s", path);
    return ok;
}

/* ---- the stage --------------------------------------------------------------------------------
 */

/* f of every local site of the run's linear field. NULL with err agreed. */
static float *site_weights(struct run *r, const struct bias_model *m, struct fft_layout *layout,
                           struct lm_err *err)
{
    struct bias_features *bf = stage_bias_features(r, m, err);
    if (!bf)
        return NULL;
    run_release(r, RUN_FIELD);
    float *f = bias_site_weights(bf, m);
    *layout = bf->layout;
    bool ok = !r->p->bias.write_sites || write_sites(r->p, bf, f, r->comm, err);
    bias_features_destroy(&bf);
    if (!ok)
        lm_free(f);
    return ok ? f : NULL;
}

bool stage_bias(struct run *r, struct lm_err *err)
{
    const struct params *p = r->p;
    if (!stage_bias_check(p, r->comm, err))
        return false;
    struct bias_model *m = bias_io_read_model(p->bias.model, r->comm, err);
    if (!m)
        return false;
    msg_info("bias: model %s: %d scales, %d inputs, 5 x %d GELU", p->bias.model, m->n_scales,
             m->n_in, BIAS_WIDTH);
    params_make_dir(r->comm, p->output.dir);
    struct fft_layout layout;
    float *f = site_weights(r, m, &layout, err);
    bias_model_destroy(&m);
    if (!f)
        return false;
    char input[PARAMS_PATH_MAX];
    struct snapshot_header hdr;
    bool owned;
    struct particles *parts = stage_bias_particles(r, &hdr, &owned, input, sizeof input, err);
    if (!parts) {
        lm_free(f);
        return false;
    }
    struct particles *h = particles_create(PARTICLES_POS | PARTICLES_WEIGHT, parts->n);
    particles_resize(h, parts->n);
    for (int d = 0; d < 3; d++)
        memcpy(h->x[d], parts->x[d], (size_t)parts->n * sizeof(float));
    timer_start("bias.carry");
    bool ok = lagrangian_fetch(&layout, 1, f, parts->n, parts->id, h->w, r->comm, err);
    timer_stop("bias.carry");
    lm_free(f);
    double sum[2] = {0, (double)hdr.n_total[1]};
    for (int64_t i = 0; i < h->n; i++)
        sum[0] += h->w[i];
    comm_sum_double_ordered(r->comm, sum, 1);
    if (ok)
        msg_info("bias: %s: %.0f particles, mean f = %.6g", input, sum[1], sum[0] / sum[1]);
    ok = ok && spectra(p, parts, h, &hdr, input, sum[0], r->comm, err);
    particles_destroy(&h);
    if (owned)
        particles_destroy(&parts);
    return ok;
}
