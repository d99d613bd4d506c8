/* stage_jerald — `lemur jerald`: the maps of jerald.maps.* from a snapshot or the run's
 * particles, with their spectra, written under output.dir. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "finite.h"
#include "jerald_plan.h"
#include "mpi/comm.h"
#include "mpi/fft.h"
#include "mpi/jerald_io.h"
#include "mpi/migrate.h"
#include "mpi/params_load.h"
#include "mpi/snapshot.h"
#include "params.h"
#include "power.h"
#include "run.h"
#include "stages.h"
#include "timer.h"

/** The state of one jerald run. */
struct jerald_run_state {
    const struct params *p;
    MPI_Comm comm;
    struct jerald_set *set;
    struct jerald_plan *plan;
    const struct snapshot_header *hdr;
    struct particles *input;      /**< migrated input (not displaced) */
    struct particles *work;       /**< the particles of the map being evaluated */
    float *kept[JERALD_MAX_MAPS]; /**< stellar maps feeding HI maps */
    struct power_spectrum *spectrum;
    struct jerald_io_info info;
    struct jerald_io_file *file; /**< the maps file being written */
};

struct power_options stage_jerald_power_options(const struct params *p)
{
    return (struct power_options){.dk = p->power.dk,
                                  .kmin = p->power.kmin,
                                  .kmax = p->power.kmax,
                                  .compensate = p->power.compensate,
                                  .los = 2};
}

/** Validate the maps and the particles; agreed over the ranks. */
static bool setup_check(struct jerald_run_state *r, struct particles *parts, struct lm_err *err)
{
    const struct params *p = r->p;
    r->set = lm_calloc("jerald.set", 1, sizeof *r->set);
    jerald_set_read(p->cfg, p->box.n, r->set, err);
    unsigned need = PARTICLES_POS | (r->set->write_particles ? PARTICLES_VEL | PARTICLES_ID : 0);
    if (lm_err_ok(err) && (parts->fields & need) != need)
        lm_err_set(err,
                   "jerald: the particles lack %s (jerald.write_particles = %s needs "
                   "positions, velocities and IDs)",
                   parts->fields & PARTICLES_POS ? "velocities or IDs" : "positions",
                   r->set->write_particles ? "true" : "false");
    if (lm_err_ok(err) && !(r->hdr->box_size > 0))
        lm_err_set(err, "jerald: the particles' box size is %g; expected a positive length",
                   r->hdr->box_size);
    if (!comm_agree_soft(r->comm, err))
        return false;
    if (fabs(r->hdr->box_size - p->box.size) > 1e-6 * p->box.size)
        msg_warn("jerald: the particles' box is %g Mpc/h, box.size is %g: using %g",
                 r->hdr->box_size, p->box.size, r->hdr->box_size);
    return true;
}

/** Warn and return true when jerald.maps defines nothing (the stage is then skipped). */
static bool no_maps(const struct jerald_set *set)
{
    if (set->n_maps > 0)
        return false;
    msg_warn("jerald: no map in jerald.maps (e.g. jerald.maps.dm.layers: [{alpha: 1}]): "
             "nothing to do");
    return true;
}

/** Largest prime factor of n (FFTW is fast for sizes 2^a 3^b 5^c 7^d). */
static int largest_prime_factor(int n)
{
    int f = 1;
    for (int p = 2; p * p <= n; p++)
        while (n % p == 0) {
            f = p;
            n /= p;
        }
    return n > 1 ? n : f;
}

/** Check the inputs, make the plan, migrate the input; false when there is no map to make or the
 *  inputs are unusable (then err is set, agreed). */
static bool setup(struct jerald_run_state *r, struct particles *parts, struct lm_err *err)
{
    if (!setup_check(r, parts, err) || no_maps(r->set))
        return false;
    timer_start("jerald.setup");
    int prime = largest_prime_factor(r->set->n_mesh);
    if (prime > 7)
        msg_warn("jerald.n_mesh = %d has the prime factor %d: FFTs will be slow (prefer sizes "
                 "2^a 3^b 5^c 7^d)",
                 r->set->n_mesh, prime);
    struct power_options po = stage_jerald_power_options(r->p);
    r->plan =
        jerald_plan_create(r->set->n_mesh, r->hdr->box_size, r->set->gradient_order, &po, r->comm);
    r->input = parts;
    migrate_particles(jerald_plan_decomp(r->plan), parts, r->hdr->box_size);
    unsigned fields = PARTICLES_POS | (r->set->write_particles ? parts->fields : 0);
    r->work = particles_create(fields, parts->cap);
    jerald_plan_reserve(r->plan, r->work);
    r->spectrum = power_spectrum_create(jerald_plan_n_bins(r->plan), 1);
    int64_t n = parts->n;
    comm_sum_int64(r->comm, &n, 1);
    r->info = (struct jerald_io_info){.config = r->p->effective,
                                      .input = *r->p->jerald.input ? r->p->jerald.input
                                                                   : "the run's particles",
                                      .box_size = r->hdr->box_size,
                                      .redshift = r->hdr->redshift,
                                      .time = r->hdr->time,
                                      .n_part = n,
                                      .n_mesh = r->set->n_mesh,
                                      .gradient_order = r->set->gradient_order};
    timer_stop("jerald.setup");
    msg_info("jerald: %lld particles, %d^3 mesh, box %g Mpc/h, %d map(s), gradient order %d",
             (long long)n, r->set->n_mesh, r->hdr->box_size, r->set->n_maps,
             r->set->gradient_order);
    return true;
}

static void teardown(struct jerald_run_state *r)
{
    for (int i = 0; i < JERALD_MAX_MAPS; i++)
        lm_free(r->kept[i]);
    power_spectrum_destroy(&r->spectrum);
    particles_destroy(&r->work);
    jerald_plan_destroy(&r->plan);
    lm_free(r->set);
}

/** work = a copy of the input particles (the fields work holds). */
static void copy_input(struct jerald_run_state *r)
{
    struct particles_column src[PARTICLES_MAX_COLUMNS], dst[PARTICLES_MAX_COLUMNS];
    particles_resize(r->work, r->input->n);
    int n = particles_columns(r->input, r->work->fields, src);
    particles_columns(r->work, r->work->fields, dst);
    for (int c = 0; c < n; c++)
        memcpy(dst[c].data, src[c].data, (size_t)r->input->n * src[c].elem_size);
}

static void output_path(char *out, size_t cap, const struct params *p, const char *name,
                        const char *suffix)
{
    snprintf(out, cap, "%s/jerald%s%s%s", p->output.dir, *name ? "_" : "", name, suffix);
}

/** Agree on err; on a failure remove the unfinished maps file, then stop every rank. */
static void agree_or_discard(struct jerald_run_state *r, struct lm_err *err)
{
    if (comm_agree_soft(r->comm, err))
        return;
    jerald_io_discard(&r->file, r->comm);
    comm_agree(r->comm, err);
}

static void write_particles(struct jerald_run_state *r, const struct jerald_map *m)
{
    char path[PARAMS_PATH_MAX];
    output_path(path, sizeof path, r->p, m->name, "_particles.hdf5");
    struct snapshot_header hdr = *r->hdr;
    struct snapshot_write_opts o = {.config = r->p->effective};
    struct lm_err err = {{0}};
    timer_start("jerald.write");
    snapshot_write(path, &hdr, r->work, &o, r->comm, &err);
    timer_stop("jerald.write");
    agree_or_discard(r, &err);
}

/** Spectrum of the map (overwrites the mesh) as jerald_<map>_power.hdf5 and .txt. */
static void write_spectrum(struct jerald_run_state *r, const struct jerald_map *m, float *mesh)
{
    if (!jerald_map_spectrum(r->plan, mesh, r->spectrum)) {
        msg_warn("jerald: map %s has a non-positive mean: no spectrum written", m->name);
        return;
    }
    double L = r->hdr->box_size;
    struct power_meta meta = {.box = {L, L, L},
                              .n_mesh = {r->set->n_mesh, r->set->n_mesh, r->set->n_mesh},
                              .n_part = {(double)r->info.n_part, (double)r->info.n_part},
                              .shot_noise = L * L * L / (double)r->info.n_part,
                              .redshift = r->hdr->redshift,
                              .compensated = r->p->power.compensate,
                              .los = -1,
                              .input = r->info.input,
                              .config = r->p->effective};
    jerald_plan_bins(r->plan, &meta.kmin, &meta.dk, &meta.kmax);
    char base[PARAMS_PATH_MAX];
    output_path(base, sizeof base, r->p, m->name, "_power");
    struct lm_err err = {{0}};
    timer_start("jerald.write");
    jerald_io_write_spectrum(base, r->spectrum, &meta, r->comm, &err);
    timer_stop("jerald.write");
    agree_or_discard(r, &err);
}

/** Refuse a map that holds NaN or infinity, naming its first cell (agreed, file discarded). */
static void check_map_finite(struct jerald_run_state *r, const struct jerald_map *m,
                             const struct fft_layout *l, const float *mesh)
{
    struct lm_err err = {{0}};
    int64_t count[3] = {l->rnx, l->n[1], l->n[2]}, stride[2] = {(int64_t)l->n[1] * l->row, l->row};
    int64_t c[3];
    if (finite_first_bad_block(mesh, count, stride, c))
        lm_err_set(&err,
                   "jerald: map %s is not finite at cell [%lld, %lld, %lld]: check the layer "
                   "parameters of jerald.maps.%s and the input particles",
                   m->name, (long long)(l->rx0 + c[0]), (long long)c[1], (long long)c[2], m->name);
    agree_or_discard(r, &err);
}

/** Write the map into the maps file; keep a copy when an HI map needs it. */
static void write_map(struct jerald_run_state *r, int idx, const float *mesh)
{
    const struct jerald_map *m = &r->set->map[idx];
    const struct fft_layout *l = fft_layout(jerald_plan_fft(r->plan));
    check_map_finite(r, m, l, mesh);
    double mean = jerald_mesh_mean(r->plan, mesh);
    msg_info("jerald: map %s (%s): mean %.6g", m->name, jerald_model_name(m->model), mean);
    struct lm_err err = {{0}};
    timer_start("jerald.write");
    jerald_io_write_map(r->file, m, l, mesh, mean, r->set->gradient_order, &err);
    timer_stop("jerald.write");
    agree_or_discard(r, &err);
    if (r->set->keep[idx]) {
        r->kept[idx] = jerald_mesh_alloc(r->plan, "jerald.stellar");
        memcpy(r->kept[idx], mesh, fft_alloc_bytes(jerald_plan_fft(r->plan)));
    }
}

static void evaluate_map(struct jerald_run_state *r, int idx)
{
    const struct jerald_map *m = &r->set->map[idx];
    double t0 = timer_now();
    copy_input(r);
    const float *stellar = m->model == JERALD_MODEL_HI ? r->kept[m->stellar] : NULL;
    timer_start("jerald.map");
    float *mesh = jerald_map_execute(r->plan, m, r->work, stellar);
    timer_stop("jerald.map");
    write_map(r, idx, mesh);
    if (r->set->write_particles)
        write_particles(r, m);
    write_spectrum(r, m, mesh);
    msg_info("jerald: map %s done in %.2f s (%d layer%s)", m->name, timer_now() - t0, m->n_layers,
             m->n_layers == 1 ? "" : "s");
}

bool jerald_run(const struct params *p, struct particles *parts, const struct snapshot_header *hdr,
                MPI_Comm comm, struct lm_err *err)
{
    struct jerald_run_state r = {.p = p, .comm = comm, .hdr = hdr};
    if (!setup(&r, parts, err)) {
        teardown(&r);
        return lm_err_ok(err);
    }
    params_make_dir(comm, p->output.dir);
    char path[PARAMS_PATH_MAX];
    output_path(path, sizeof path, p, "maps", ".hdf5");
    r.file = jerald_io_create(path, &r.info, comm, err);
    bool ok = comm_agree_soft(comm, err);
    for (int i = 0; ok && i < r.set->n_maps; i++) {
        ok = !comm_interrupted(comm, "between jerald maps", err);
        if (ok)
            evaluate_map(&r, r.set->order[i]);
    }
    if (ok) {
        jerald_io_close(&r.file, true, err);
        ok = comm_agree_soft(comm, err);
    } else {
        jerald_io_discard(&r.file, comm);
    }
    if (ok)
        msg_info("jerald: wrote %s", path);
    teardown(&r);
    return ok;
}

struct particles *stage_jerald_particles(struct run *run, unsigned fields, const char *who,
                                         const char *timer, struct snapshot_header *hdr,
                                         bool *owned, struct lm_err *err)
{
    const struct params *p = run->p;
    struct particles *parts = *p->jerald.input ? NULL : run_particles(run, hdr);
    *owned = parts == NULL;
    if (!*owned) {
        if ((parts->fields & fields) != fields)
            lm_err_set(err,
                       "%s: the run's particles lack velocities or IDs (needed by "
                       "jerald.write_particles)",
                       who);
        if (!comm_agree_soft(run->comm, err))
            return NULL;
        msg_info("%s: the run's particles taken from memory (%.0f)", who, (double)hdr->n_total[1]);
        return parts;
    }
    char input[PARAMS_PATH_MAX];
    snprintf(input, sizeof input, "%s", p->jerald.input);
    if (!*input)
        stage_particles_path(p, input, sizeof input);
    struct snapshot_read_opts o = {.fields = fields};
    timer_start(timer);
    if (snapshot_read(input, &o, run->comm, hdr, &parts, err))
        params_check_box(p, *p->jerald.input ? "jerald.input" : NULL, input, hdr->box_size, err);
    timer_stop(timer);
    if (!comm_agree_soft(run->comm, err))
        particles_destroy(&parts);
    return parts;
}

bool stage_jerald_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    struct jerald_set *set = lm_calloc("jerald.set", 1, sizeof *set);
    jerald_set_read(p->cfg, p->box.n, set, err);
    lm_free(set);
    return comm_agree_soft(comm, err);
}

bool stage_jerald(struct run *run, struct lm_err *err)
{
    const struct params *p = run->p;
    struct jerald_set *set = lm_calloc("jerald.set", 1, sizeof *set);
    jerald_set_read(p->cfg, p->box.n, set, err);
    bool write = set->write_particles, skip = lm_err_ok(err) && no_maps(set);
    lm_free(set);
    if (!comm_agree_soft(run->comm, err))
        return false;
    if (skip)
        return true;
    unsigned fields = PARTICLES_POS | (write ? PARTICLES_VEL | PARTICLES_ID : 0);
    struct snapshot_header hdr;
    bool owned;
    struct particles *parts =
        stage_jerald_particles(run, fields, "jerald", "jerald.read", &hdr, &owned, err);
    if (!parts)
        return false;
    bool ok = jerald_run(p, parts, &hdr, run->comm, err);
    if (owned)
        particles_destroy(&parts);
    return ok;
}
