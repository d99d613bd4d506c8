/*
 * stage_superres — the command `lemur superres` and the superres stage of `lemur run`: the
 * super-resolution generator of Kodi Ramanah et al. 2020 (MNRAS 495 4227), or any network of
 * superres.model with the same two inputs, over the box.
 *
 * Inputs of the network (a network file, src/mpi/net_file.h): input 0, of scale 1, the HR linear
 * density δ_lin at z = 0 on the box.n^3 grid (the run's field from ic in memory, else
 * superres.hr_input or output.dir/ic_field.hdf5, dataset delta); input 1, of scale s >= 2, the LR
 * evolved density on the (box.n / s)^3 grid: superres.lr_input, a snapshot painted with CIC
 * (δ = ρ / ρ̄ − 1), or, with superres.lr_dataset, that dataset of a field file. The plan
 * (src/superres_plan.h) tiles the box over the ranks with the halos derived from the graph, on
 * the backend emulator.backend selects (cpu, gpu or auto; emulator.precision on the GPU).
 *
 * Outputs under output.dir:
 *   superres.hdf5         delta [n, n, n]: the network's HR output; attributes BoxSize, Nmesh,
 *                         lemur_config (the effective configuration)
 *   superres_power.hdf5   P(k) of the HR output on the HR mesh (k, N_modes, P); and .txt
 *   superres_cross.hdf5   on the LR mesh: P_lr of the LR density, P_sr of the HR output averaged
 *                         over its s^3 cells, P_x their cross spectrum, r = P_x / sqrt(P_lr P_sr)
 *                         (the averaging window cancels in r); and .txt "# k r N P_lr P_sr P_x"
 * δ_k = FFT(δ) / N^3, P = V |δ_k|^2, bins of power.dk, power.kmin, power.kmax; no window
 * compensation.
 */
#include "stages.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/exchange.h"
#include "mpi/field_file.h"
#include "mpi/h5io.h"
#include "mpi/migrate.h"
#include "mpi/net_file.h"
#include "mpi/paint.h"
#include "mpi/power_io.h"
#include "mpi/snapshot.h"
#include "power_plan.h"
#include "run.h"
#include "stage_emulate.h"
#include "stage_ic.h"
#include "superres_plan.h"
#include "timer.h"

/* What one superres run holds. */
struct sr_job {
    const struct params *p;
    MPI_Comm comm;
    struct net *net;
    struct superres_plan *plan;
    int n[3], n_lr[3], scale;
    double box;
};

/* The network's inputs must be the HR linear density (scale 1) and the LR density. */
static bool check_net(const struct net *net, const char *path, struct lm_err *err)
{
    const struct net_node *in = net->nodes;
    if (net->n_inputs != 2 || in[0].scale != 1 || in[1].scale < 2 || in[0].channels != 1 ||
        in[1].channels != 1 || net->nodes[net->output].channels != 1)
        return lm_err_set(err,
                          "superres.model '%s': network '%s' must take two one-channel inputs, "
                          "the HR linear density (scale 1) then the LR density (scale >= 2), "
                          "and give one channel",
                          path, net->name);
    return true;
}

bool stage_superres_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    const struct superres_params *s = &p->superres;
    if (!*s->model)
        return true;
    if (!*s->lr_input)
        lm_err_set(err, "superres.lr_input: empty; expected the LR evolved density (a snapshot, or "
                        "a field file with superres.lr_dataset)");
    else if (s->tile % 8)
        lm_err_set(err, "superres.tile = %ld: expected a multiple of 8 (or 0)", s->tile);
    if (!comm_agree_soft(comm, err))
        return false;
    struct net *net = net_file_load(s->model, comm, err);
    if (!net) { /* name the key */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "superres.model: %.1000s", why);
    }
    bool ok = net && check_net(net, s->model, err);
    if (ok && p->box.n % (net->nodes[1].scale * 4))
        ok = lm_err_set(err,
                        "box.n = %ld: the LR grid of superres.model is box.n / %d, and box.n "
                        "must be a multiple of %d",
                        p->box.n, net->nodes[1].scale, net->nodes[1].scale * 4);
    net_destroy(&net);
    if (ok)
        ok = stage_input_check(p, "superres.lr_input", s->lr_input, *s->lr_dataset != 0, comm, err);
    return ok;
}

/* Redistribute the slab field (layout l) into the blocks of d (compact array dst). */
static void slabs_to_blocks(MPI_Comm comm, const struct fft_layout *l, const float *src,
                            const struct decomp *d, float *dst)
{
    struct decomp slabs;
    decomp_create_slabs(&slabs, comm, l->n, l->rnx, l->rx0);
    struct exchange_array from = {.box = slabs.box, .dims = {l->rnx, l->n[1], l->row}};
    struct exchange_field one = {.elem_size = sizeof(float), .n_comp = 1};
    struct exchange_plan *x =
        exchange_plan_redistribute(&slabs, l->rnx > 0 ? &from : NULL, d, NULL, &one);
    exchange_redistribute(x, src, dst);
    exchange_plan_destroy(&x);
    decomp_destroy(&slabs);
}

/* Blocks of d (array arr) into the slab mesh of power plan pw (padded rows). */
static void blocks_to_slabs(const struct decomp *d, const struct exchange_array *arr,
                            const float *src, struct power_plan *pw, float *mesh)
{
    const struct fft_layout *l = fft_layout(power_plan_fft(pw));
    const struct decomp *slabs = power_plan_decomp(pw);
    struct exchange_array to = {.box = slabs->box, .dims = {l->rnx, l->n[1], l->row}};
    struct exchange_field one = {.elem_size = sizeof(float), .n_comp = 1};
    struct exchange_plan *x =
        exchange_plan_redistribute(d, arr, slabs, l->rnx > 0 ? &to : NULL, &one);
    exchange_redistribute(x, src, mesh);
    exchange_plan_destroy(&x);
}

/* The HR linear density into input 0's blocks: the run's field, or its file. */
static bool load_hr(struct sr_job *job, struct run *r, struct lm_err *err)
{
    const struct ic_fields *f = run_field(r);
    float *dst = superres_plan_input(job->plan, 0);
    if (f && f->delta) {
        slabs_to_blocks(job->comm, &f->layout, f->delta, superres_plan_input_decomp(job->plan, 0),
                        dst);
        msg_info("superres: the HR linear density taken from the run (ic)");
        return true;
    }
    char path[PARAMS_PATH_MAX + 64];
    if (*job->p->superres.hr_input)
        snprintf(path, sizeof path, "%s", job->p->superres.hr_input);
    else
        snprintf(path, sizeof path, "%s/%s", job->p->output.dir, IC_FIELD_FILE);
    struct box3 b = superres_plan_block_of(job->plan, 0);
    struct field_file_block fb = field_file_block_make(job->n, &b, NULL);
    msg_info("superres: reading the HR linear density %s (delta)", path);
    return field_file_read(path, "delta", &fb, dst, job->comm, err);
}

/* The LR density into input 1's blocks: a field file's dataset, or a snapshot painted with CIC
 * on the LR mesh of pw (δ = ρ / ρ̄ − 1). */
static bool load_lr(struct sr_job *job, struct power_plan *pw, struct lm_err *err)
{
    const struct superres_params *s = &job->p->superres;
    float *dst = superres_plan_input(job->plan, 1);
    if (*s->lr_dataset) {
        struct box3 b = superres_plan_block_of(job->plan, 1);
        struct field_file_block fb = field_file_block_make(job->n_lr, &b, NULL);
        msg_info("superres: reading the LR density %s (%s)", s->lr_input, s->lr_dataset);
        return field_file_read(s->lr_input, s->lr_dataset, &fb, dst, job->comm, err);
    }
    struct snapshot_read_opts o = {.part_type = 1, .fields = PARTICLES_POS};
    struct snapshot_header hdr;
    struct particles *parts = NULL;
    bool ok = snapshot_read(s->lr_input, &o, job->comm, &hdr, &parts, err);
    if (ok)
        ok = params_check_box(job->p, "superres.lr_input", s->lr_input, hdr.box_size, err);
    if (!comm_agree_soft(job->comm, err)) {
        particles_destroy(&parts);
        return false;
    }
    struct paint_plan *paint = paint_plan_create(power_plan_fft(pw), 1, job->comm);
    migrate_particles(paint_plan_decomp(paint), parts, job->box);
    float *mesh = power_mesh_alloc(pw, "superres.lr_mesh");
    struct cic_points pts = {.n = parts->n, .w = parts->w};
    for (int d = 0; d < 3; d++)
        pts.x[d] = parts->x[d];
    paint_execute(paint, 1, &mesh, &pts, 0.0);
    const struct fft_layout *l = fft_layout(power_plan_fft(pw));
    double mean = hdr.n_total[1] / ((double)job->n_lr[0] * job->n_lr[1] * job->n_lr[2]);
    for (ptrdiff_t i = 0; i < l->rnx * l->n[1] * l->row; i++)
        mesh[i] = (float)(mesh[i] / mean - 1.0);
    slabs_to_blocks(job->comm, l, mesh, superres_plan_input_decomp(job->plan, 1), dst);
    msg_info("superres: painted %.0f particles of %s on the %d^3 LR mesh", (double)hdr.n_total[1],
             s->lr_input, job->n_lr[0]);
    lm_free(mesh);
    paint_plan_destroy(&paint);
    particles_destroy(&parts);
    return true;
}

/* Write the HR output's block. */
static bool write_density(struct sr_job *job, struct lm_err *err)
{
    struct box3 box, blk = superres_plan_block(job->plan);
    int64_t dims[3];
    const float *y = superres_plan_results(job->plan, &box, dims);
    const float *first = y + box3_offset(&box, dims, blk.lo[0], blk.lo[1], blk.lo[2]);
    struct field_file_block fb = field_file_block_make(job->n, &blk, dims);
    char path[PARAMS_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/superres.hdf5", job->p->output.dir);
    struct h5io_file f;
    if (!h5io_create(&f, path, job->comm, err))
        return false;
    bool ok = field_file_write_dataset(&f, "delta", &fb, box3_volume(&blk) ? first : y, err);
    ok = ok && h5io_attr_write(f.id, "BoxSize", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &job->box) &&
         h5io_attr_write(f.id, "Nmesh", H5T_NATIVE_INT, H5T_STD_I32LE, 0, &job->n[0]) &&
         h5io_attr_write_string(f.id, "lemur_config", job->p->effective);
    ok = h5io_finish(&f, ok, err);
    if (ok)
        msg_info("superres: wrote %s", path);
    return ok;
}

/* δ_k of a real slab mesh: FFT, / N^3. */
static void to_k(struct power_plan *pw, const int n[3], float *mesh)
{
    const struct fft_layout *l = fft_layout(power_plan_fft(pw));
    fft_r2c(power_plan_fft(pw), mesh);
    float inv = (float)(1.0 / ((double)n[0] * n[1] * n[2]));
    for (ptrdiff_t i = 0; i < 2 * l->alloc_complex; i++)
        mesh[i] *= inv;
}

/* Write table t (its first n_sel columns sel) as <name>.hdf5 and <name>.txt on rank 0. */
static bool write_table(struct sr_job *job, const char *name, const struct power_table *t,
                        int n_sel, const int *sel, struct lm_err *err)
{
    char path[PARAMS_PATH_MAX + 64];
    bool ok = true;
    if (comm_rank(job->comm) == 0) {
        snprintf(path, sizeof path, "%s/%s.hdf5", job->p->output.dir, name);
        ok = power_io_write_hdf5(path, t, err);
        snprintf(path, sizeof path, "%s/%s.txt", job->p->output.dir, name);
        ok = ok && power_io_write_text(path, t, n_sel, sel, err);
    }
    return comm_agree_soft(job->comm, err);
}

static struct power_meta spectra_meta(const struct sr_job *job, const struct power_plan *pw,
                                      const int n[3])
{
    struct power_meta m = {.box = {job->box, job->box, job->box},
                           .n_mesh = {n[0], n[1], n[2]},
                           .los = -1,
                           .kmin = power_plan_kmin(pw),
                           .dk = power_plan_dk(pw),
                           .kmax = power_plan_kmax(pw),
                           .input = job->p->superres.lr_input,
                           .config = job->p->effective};
    return m;
}

/* P(k) of the HR output on the HR mesh. */
static bool hr_spectrum(struct sr_job *job, const struct power_options *o, struct lm_err *err)
{
    double bx[3] = {job->box, job->box, job->box};
    struct power_plan *pw = power_plan_create(job->n, bx, o, job->comm);
    float *mesh = power_mesh_alloc(pw, "superres.hr_mesh");
    struct box3 box;
    int64_t dims[3];
    const float *y = superres_plan_results(job->plan, &box, dims);
    struct exchange_array arr = {box, {dims[0], dims[1], dims[2]}};
    blocks_to_slabs(superres_plan_output_decomp(job->plan), &arr, y, pw, mesh);
    to_k(pw, job->n, mesh);
    struct power_spectrum *s = power_spectrum_create(power_plan_n_bins(pw), 1);
    power_measure(pw, 1, &mesh, &mesh, s);
    struct power_table t = {.n_bins = s->n_bins, .k = s->k, .n_modes = s->n_modes, .n_cols = 1};
    t.cols[0] = (struct power_column){.name = "P", .n_rows = 1, .rows = {s->P[0]}};
    t.meta = spectra_meta(job, pw, job->n);
    int sel[1] = {0};
    bool ok = write_table(job, "superres_power", &t, 1, sel, err);
    power_spectrum_destroy(&s);
    lm_free(mesh);
    power_plan_destroy(&pw);
    return ok;
}

/* The HR output averaged over its s^3 cells, on input 1's blocks (blocks of the LR grid are
 * those of the HR grid divided by s: each average is local). */
static float *average_output(struct sr_job *job)
{
    struct box3 box, lb = superres_plan_block_of(job->plan, 1);
    int64_t dims[3], s = job->scale;
    const float *y = superres_plan_results(job->plan, &box, dims);
    size_t n = (size_t)box3_volume(&lb), idx = 0;
    float *avg = lm_malloc("superres.average", (n ? n : 1) * sizeof(float));
    for (int64_t i = lb.lo[0]; i < lb.hi[0]; i++)
        for (int64_t j = lb.lo[1]; j < lb.hi[1]; j++)
            for (int64_t l = lb.lo[2]; l < lb.hi[2]; l++, idx++) {
                double sum = 0;
                for (int64_t a = 0; a < s * s * s; a++)
                    sum += y[box3_offset(&box, dims, i * s + a / (s * s), j * s + a / s % s,
                                         l * s + a % s)];
                avg[idx] = (float)(sum / (double)(s * s * s));
            }
    return avg;
}

/* P_lr, P_sr, P_x and r on the LR mesh. */
static bool cross_spectrum(struct sr_job *job, struct power_plan *pw, struct lm_err *err)
{
    const struct decomp *d = superres_plan_input_decomp(job->plan, 1);
    float *avg = average_output(job);
    float *m[2] = {power_mesh_alloc(pw, "superres.lr_mesh"), power_mesh_alloc(pw, "superres.sr")};
    blocks_to_slabs(d, NULL, superres_plan_input(job->plan, 1), pw, m[0]);
    blocks_to_slabs(d, NULL, avg, pw, m[1]);
    lm_free(avg);
    to_k(pw, job->n_lr, m[0]);
    to_k(pw, job->n_lr, m[1]);
    int nb = power_plan_n_bins(pw);
    struct power_spectrum *s[3];
    for (int k = 0; k < 3; k++) {
        s[k] = power_spectrum_create(nb, 1);
        power_measure(pw, 1, &m[k == 1], &m[k != 0], s[k]);
    }
    double *r = lm_malloc("superres.r", nb * sizeof *r);
    for (int b = 0; b < nb; b++) {
        double den = sqrt(s[0]->P[0][b] * s[1]->P[0][b]);
        r[b] = den > 0 ? s[2]->P[0][b] / den : 0.0;
    }
    struct power_table t = {.n_bins = nb, .k = s[0]->k, .n_modes = s[0]->n_modes, .n_cols = 4};
    const char *names[4] = {"r", "P_lr", "P_sr", "P_x"};
    const double *cols[4] = {r, s[0]->P[0], s[1]->P[0], s[2]->P[0]};
    for (int c = 0; c < 4; c++)
        t.cols[c] = (struct power_column){.name = names[c], .n_rows = 1, .rows = {cols[c]}};
    t.meta = spectra_meta(job, pw, job->n_lr);
    int sel[4] = {0, 1, 2, 3};
    bool ok = write_table(job, "superres_cross", &t, 4, sel, err);
    lm_free(r);
    for (int k = 0; k < 3; k++)
        power_spectrum_destroy(&s[k]);
    lm_free(m[0]);
    lm_free(m[1]);
    return ok;
}

static bool job_run(struct sr_job *job, struct run *r, struct lm_err *err)
{
    const struct params *p = job->p;
    struct power_options o = {.dk = p->power.dk, .kmin = p->power.kmin, .kmax = p->power.kmax};
    double bx[3] = {job->box, job->box, job->box};
    job->plan = superres_plan_create(job->comm, job->n, job->net, (int)p->superres.tile,
                                     nn_backend_cpu(), err);
    if (!job->plan)
        return false;
    msg_info("superres: network '%s', halos %d HR and %d LR cells, tile %d, LR grid %d^3",
             job->net->name, job->net->halo[0], job->net->halo[1], superres_plan_tile(job->plan),
             job->n_lr[0]);
    struct power_plan *lr = power_plan_create(job->n_lr, bx, &o, job->comm);
    timer_start("superres.read");
    bool ok = load_hr(job, r, err) && load_lr(job, lr, err);
    timer_stop("superres.read");
    if (ok) {
        superres_plan_gather(job->plan);
        superres_plan_run(job->plan);
        ok = write_density(job, err) && hr_spectrum(job, &o, err) && cross_spectrum(job, lr, err);
    }
    power_plan_destroy(&lr);
    return ok;
}

bool stage_superres(struct run *r, struct lm_err *err)
{
    const struct params *p = r->p;
    if (!*p->superres.model) {
        msg_info("superres: superres.model is empty, so the superres stage is skipped.\n"
                 "  Make a network file from a trained generator (or random weights for a test):\n"
                 "      tools/convert-weights --network DESCRIPTION.yml STATE_DICT.pt net.hdf5\n"
                 "  and set superres.model to it.");
        return true;
    }
    if (!stage_superres_check(p, r->comm, err))
        return false;
    struct sr_job job = {.p = p, .comm = r->comm, .box = p->box.size};
    job.net = net_file_load(p->superres.model, r->comm, err);
    if (!job.net)
        return false;
    job.scale = job.net->nodes[1].scale;
    for (int a = 0; a < 3; a++) {
        job.n[a] = (int)p->box.n;
        job.n_lr[a] = (int)p->box.n / job.scale;
    }
    bool ok = job_run(&job, r, err);
    ok = comm_agree_soft(r->comm, err) && ok;
    superres_plan_destroy(&job.plan);
    net_destroy(&job.net);
    run_release(r, RUN_FIELD);
    return ok;
}
