/* stage_emulate — `lemur emulate`: the phases of one emulator run (stage_emulate.h). */
#include "stage_emulate.h"

#include "alloc.h"
#include "cosmology.h"
#include "finite.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/exchange.h"
#include "mpi/meminfo.h"
#include "mpi/field_file.h"
#include "mpi/model_file.h"
#include "mpi/params_load.h"
#include "run.h"
#include "stage_ic.h"
#include "stages.h"
#include "timer.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

/* Everything one run holds between its phases. */
struct emulate_job {
    struct run *run;
    const struct params *p;
    MPI_Comm comm;
    const struct nn_backend *backend;
    size_t device_bytes;
    char input[PARAMS_PATH_MAX];
    struct model *model;
    struct emulate_plan *plan;
    struct lm_err err;
};

static void notice_no_model(void)
{
    msg_info("emulate: emulator.model is empty, so the emulator stage is skipped.\n"
             "  lemur needs the pretrained weights of the field-level emulator (Jamieson et al. "
             "2024,\n"
             "  arXiv:2408.07699): download the authors' PyTorch checkpoint (or the .npz of their "
             "JAX\n"
             "  port), convert it once with\n"
             "      tools/convert-weights <checkpoint.pt|params.npz> model.hdf5\n"
             "  and set emulator.model: model.hdf5 in the parameter file.");
}

/* Phase 1: parameters, backend, input file name, model file. */
static void job_check(struct emulate_job *job)
{
    const struct params *p = job->p;
    if (p->ic.input && p->ic.input[0])
        snprintf(job->input, sizeof job->input, "%s", p->ic.input);
    else
        snprintf(job->input, sizeof job->input, "%s/%s", p->output.dir, IC_FIELD_FILE);
    if (!p->particles.write_snapshot && !p->emulator.output_fields &&
        !run_wants(job->run, RUN_PARTICLES))
        msg_warn("emulate: particles.write_snapshot and emulator.output_fields are both false: "
                 "the emulator runs but writes nothing");
    bool ok = emulate_check_params(p, &job->err);
    if (comm_agree_soft(job->comm, &job->err) && ok)
        ok = emulate_backend_select(p, job->comm, &job->backend, &job->device_bytes, &job->err);
    if (ok)
        job->model = model_file_load(p->emulator.model, job->comm, &job->err);
    if (p->emulator.threads > 0)
        omp_set_num_threads((int)p->emulator.threads);
}

/* This rank's memory budget in bytes: emulator.memory_limit, or 80 % of its share of the node's
 * available memory less the particles it will hold. */
static size_t host_budget(const struct emulate_job *job)
{
    const struct params *p = job->p;
    if (p->emulator.memory_limit > 0)
        return (size_t)(p->emulator.memory_limit * 1024.0 * 1024.0 * 1024.0);
    size_t share = meminfo_rank_share(job->comm) / 5 * 4;
    double cells = (double)p->box.n * p->box.n * p->box.n / comm_size(job->comm);
    size_t particles = (size_t)(cells * 32.0);
    return share > particles ? share - particles : 1;
}

/* Phase 2: the plan (decomposition, tile choice against memory, NN plan, exchange). */
static void job_plan(struct emulate_job *job)
{
    const struct params *p = job->p;
    struct emulate_opts o = {.tile = (int)p->emulator.tile,
                             .velocities = p->emulator.velocities,
                             .backend = job->backend,
                             .mem_limit = host_budget(job),
                             .progress = true};
    o.device_limit = job->device_bytes;
    int n[3] = {(int)p->box.n, (int)p->box.n, (int)p->box.n};
    job->plan = emulate_plan_create(job->comm, n, job->model, &o, &job->err);
    if (!job->plan)
        return;
    const struct tiling *t = emulate_plan_tiling(job->plan);
    struct emulate_memory m = emulate_plan_memory(job->plan);
    msg_info("emulate: backend %s, tile %dx%dx%d (+ %d-cell halo), %d tiles on rank 0, workspace "
             "%.1f MiB, plan %.1f MiB, buffers %.1f MiB per rank",
             job->backend->name, t->shape[0], t->shape[1], t->shape[2], job->model->halo,
             t->n_tiles, m.workspace / 1048576.0, m.plan / 1048576.0, m.buffers / 1048576.0);
}

/* Ψ_lin from the run's x-slabs into the blocks: one redistribution per component. */
static void redistribute_field(struct emulate_job *job, const struct ic_fields *f)
{
    const struct fft_layout *l = &f->layout;
    struct decomp slabs;
    decomp_create_slabs(&slabs, job->comm, l->n, l->rnx, l->rx0);
    struct exchange_array from = {.box = slabs.box, .dims = {l->rnx, l->n[1], l->row}};
    struct exchange_field one = {.elem_size = sizeof(float), .n_comp = 1};
    const struct decomp *blocks = emulate_plan_decomp(job->plan);
    struct exchange_plan *x =
        exchange_plan_redistribute(&slabs, l->rnx > 0 ? &from : NULL, blocks, NULL, &one);
    float *in = emulate_plan_input(job->plan);
    size_t plane = (size_t)box3_volume(&blocks->box);
    for (int d = 0; d < 3; d++)
        exchange_redistribute(x, f->psi[d], in + d * plane);
    exchange_plan_destroy(&x);
    decomp_destroy(&slabs);
    msg_info("emulate: the linear displacement field redistributed in memory (x-slabs to "
             "%dx%dx%d blocks)",
             blocks->dims[0], blocks->dims[1], blocks->dims[2]);
}

/* Ψ_lin from the field file into the blocks. */
static bool read_field(struct emulate_job *job)
{
    const struct params *p = job->p;
    msg_info("emulate: reading the linear displacement field %s", job->input);
    struct box3 block = emulate_plan_block(job->plan);
    float *in = emulate_plan_input(job->plan);
    size_t plane = (size_t)box3_volume(&block);
    float *psi[3] = {in, in + plane, in + 2 * plane};
    timer_start("emulate.read");
    int n[3] = {(int)p->box.n, (int)p->box.n, (int)p->box.n};
    bool ok =
        field_file_read_psi(job->input, n, p->box.size, &block, NULL, psi, job->comm, &job->err);
    timer_stop("emulate.read");
    if (!ok) {
        struct lm_err why = job->err;
        memset(&job->err, 0, sizeof job->err);
        lm_err_set(&job->err, "the emulator's input field (%s): %s",
                   p->ic.input && p->ic.input[0] ? "ic.input" : "the output of lemur ic", why.msg);
    }
    return ok;
}

/* Phase 3: Ψ_lin into the blocks (from the run's field, or its file) and the tile regions. */
static void job_read(struct emulate_job *job)
{
    const struct ic_fields *f = run_field(job->run);
    if (f) {
        timer_start("emulate.redistribute");
        redistribute_field(job, f);
        timer_stop("emulate.redistribute");
        run_release(job->run, RUN_FIELD);
    } else if (!read_field(job)) {
        return;
    }
    timer_start("emulate.gather");
    emulate_plan_gather(job->plan);
    timer_stop("emulate.gather");
}

/* The style and velocity factor of redshift z. */
static struct emulate_style style_of(const struct params *p, double z)
{
    struct cosmology c = stage_cosmology(p);
    double a = 1.0 / (1.0 + z), D = cosmo_growth_D(&c, a), f = cosmo_growth_f(&c, a);
    return (struct emulate_style){.omega_m = c.Omega_m,
                                  .D = D,
                                  .vel_factor = emunet_velocity_factor(D, f, cosmo_H(&c, z), z),
                                  .redshift = z};
}

/* Refuse an emulator output that holds NaN or infinity (from non-finite weights or input),
 * naming the first such cell of this rank's block. */
static void results_check_finite(const struct emulate_results *r, const struct box3 *block,
                                 double z, struct lm_err *err)
{
    static const char *names[6] = {"psi_x", "psi_y", "psi_z", "vel_x", "vel_y", "vel_z"};
    if (box3_empty(block))
        return;
    int64_t count[3], stride[2] = {r->dims[1] * r->dims[2], r->dims[2]}, c[3];
    for (int a = 0; a < 3; a++)
        count[a] = box3_extent(block, a);
    int64_t o = box3_offset(&r->box, r->dims, block->lo[0], block->lo[1], block->lo[2]);
    for (int a = 0; a < 6; a++) {
        const float *f = a < 3 ? r->psi + a * r->plane : r->vel ? r->vel + (a - 3) * r->plane : 0;
        if (f && finite_first_bad_block(f + o, count, stride, c)) {
            lm_err_set(err,
                       "emulate: z = %g: the emulator's output %s is not finite at cell [%lld, "
                       "%lld, %lld]: check emulator.model's weights and the input field",
                       z, names[a], (long long)(block->lo[0] + c[0]),
                       (long long)(block->lo[1] + c[1]), (long long)(block->lo[2] + c[2]));
            return;
        }
    }
}

/* One redshift: run the tiles, write the outputs. */
static void job_redshift(struct emulate_job *job, int iz)
{
    const struct params *p = job->p;
    struct emulate_style st = style_of(p, p->emulator.redshifts.v[iz]);
    msg_info("emulate: z = %g: D = %.6f, style (%.4f, %.6f), v = %.4f km/s x dPsi_NL/dD",
             st.redshift, st.D, (st.omega_m - 0.3) * 5.0, st.D - 1.0, st.vel_factor);
    double t0 = timer_now();
    emulate_plan_run(job->plan, &st);
    double tile_s = emulate_plan_tile_seconds(job->plan);
    comm_max_double(job->comm, &tile_s, 1);
    msg_info("emulate: z = %g: tiles done in %.2f s (%.3f s per tile, slowest rank)", st.redshift,
             timer_now() - t0, tile_s);
    struct emulate_results r = emulate_plan_results(job->plan);
    struct box3 block = emulate_plan_block(job->plan);
    results_check_finite(&r, &block, st.redshift, &job->err);
    bool keep = iz == 0 && run_wants(job->run, RUN_PARTICLES);
    bool ok = comm_agree_soft(job->comm, &job->err);
    if (ok && (p->particles.write_snapshot || keep)) {
        int nn[3] = {(int)p->box.n, (int)p->box.n, (int)p->box.n};
        timer_start("emulate.particles");
        struct particles *ps =
            emulate_particles_create(&r, &block, nn, p->box.size / (double)p->box.n);
        timer_stop("emulate.particles");
        struct snapshot_header h = stage_snapshot_header(p, st.redshift);
        if (p->particles.write_snapshot)
            ok = emulate_write_snapshot(p, iz, ps, &h, job->comm, &job->err);
        if (ok && keep) {
            run_put_particles(job->run, &ps, &h);
            msg_info("emulate: the particles of z = %g stay in memory for the later stages",
                     st.redshift);
        }
        particles_destroy(&ps);
    }
    if (ok && p->emulator.output_fields)
        emulate_write_fields(p, iz, &r, &block, job->comm, &job->err);
}

/* Phase 4: every redshift. */
static void job_redshifts(struct emulate_job *job)
{
    params_make_dir(job->comm, job->p->output.dir);
    for (int iz = 0; iz < job->p->emulator.redshifts.n && lm_err_ok(&job->err); iz++)
        if (!comm_interrupted(job->comm, "between emulator redshifts", &job->err))
            job_redshift(job, iz);
}

/* The phases of a run, in order; each leaves job->err agreed across the ranks. */
static const struct {
    const char *name;
    void (*run)(struct emulate_job *job);
} phases[] = {
    {"checks", job_check}, {"plan", job_plan}, {"read", job_read}, {"run", job_redshifts}};

bool stage_emulate(struct run *run, struct lm_err *err)
{
    const struct params *p = run->p;
    if (!p->emulator.model || !p->emulator.model[0]) {
        notice_no_model();
        return true;
    }
    struct emulate_job job = {.run = run, .p = p, .comm = run->comm};
    for (size_t i = 0; i < sizeof phases / sizeof phases[0] && lm_err_ok(&job.err); i++) {
        if (comm_interrupted(job.comm, "between emulator phases", &job.err))
            break;
        double t0 = timer_now();
        phases[i].run(&job);
        if (lm_err_ok(&job.err))
            msg_info("emulate: %-7s done in %8.2f s", phases[i].name, timer_now() - t0);
    }
    emulate_plan_destroy(&job.plan);
    model_destroy(&job.model);
    *err = job.err;
    return comm_agree_soft(run->comm, err);
}
