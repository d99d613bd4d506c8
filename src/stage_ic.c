/* stage_ic — `lemur ic`: linear fields, the IC field file and the LPT particle snapshot. */
#include "stage_ic.h"

#include "alloc.h"
#include "ic_plan.h"
#include "mpi/fft.h"
#include "mpi/comm.h"
#include "mpi/field_file.h"
#include "mpi/linear_power_load.h"
#include "mpi/params_load.h"
#include "mpi/snapshot.h"
#include "run.h"
#include "stages.h"
#include "timer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The block of an x-slab field with padded rows. */
static struct field_file_block slab_block(const struct fft_layout *l)
{
    struct box3 b = {{l->rx0, 0, 0}, {l->rx0 + l->rnx, l->n[1], l->n[2]}};
    int64_t dims[3] = {l->rnx, l->n[1], l->row};
    return field_file_block_make(l->n, &b, dims);
}

/* ---------------------------------------------------------------------------------------------- */
/* the field file */

static bool write_field_file(const char *path, const struct ic_fields *f, const struct params *p,
                             MPI_Comm comm, struct lm_err *err)
{
    struct field_file_meta m = {.box_size = p->box.size,
                                .n_mesh = p->box.n,
                                .seed = p->ic.seed,
                                .paired = p->ic.paired,
                                .omega_m = p->cosmology.Omega_m,
                                .sigma8 = p->cosmology.sigma8,
                                .amplitude = p->ic.amplitude,
                                .config = p->effective};
    struct field_file *file = field_file_create(path, FIELD_FILE_IC, &m, comm, err);
    bool ok = file != NULL;
    struct field_file_block b = slab_block(&f->layout);
    for (int d = 0; d < 3 && ok; d++)
        ok = field_file_write(file, field_file_psi_names[d], &b, f->psi[d], err);
    if (ok && f->delta)
        ok = field_file_write(file, FIELD_FILE_DELTA, &b, f->delta, err);
    return file && field_file_close(&file, ok, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* logging */

/* Σ |Ψ|², Σ δ² and max |Ψ_i| of local x plane i into s[0..2] (in index order). */
static void plane_stats(const struct fft_layout *l, const struct ic_fields *f, ptrdiff_t i,
                        double s[3])
{
    double sp = 0, sd = 0, mx = 0;
    for (int j = 0; j < l->n[1]; j++)
        for (int k = 0; k < l->n[2]; k++) {
            ptrdiff_t o = fft_real_index(l, i, j, k);
            for (int d = 0; d < 3; d++) {
                sp += (double)f->psi[d][o] * f->psi[d][o];
                mx = fmax(mx, fabs(f->psi[d][o]));
            }
            sd += f->delta ? (double)f->delta[o] * f->delta[o] : 0.0;
        }
    s[0] = sp;
    s[1] = sd;
    s[2] = mx;
}

/* Threads take x planes, each summed into its own slot; the slots are added in plane order, so
 * the logged values are the same for any number of threads. */
static void log_field_stats(const struct ic_fields *f, MPI_Comm comm)
{
    const struct fft_layout *l = &f->layout;
    const ptrdiff_t nx = l->rnx;
    double *planes = lm_malloc("ic.stats", (size_t)(nx > 0 ? nx : 1) * 3 * sizeof(double));
#pragma omp parallel for schedule(static)
    for (ptrdiff_t i = 0; i < nx; i++)
        plane_stats(l, f, l->rx0 + i, planes + 3 * i);
    double sum[2] = {0, 0}, mx = 0;
    for (ptrdiff_t i = 0; i < nx; i++) {
        sum[0] += planes[3 * i];
        sum[1] += planes[3 * i + 1];
        mx = fmax(mx, planes[3 * i + 2]);
    }
    lm_free(planes);
    comm_sum_double(comm, sum, 2);
    comm_max_double(comm, &mx, 1);
    double cells = (double)l->n[0] * l->n[1] * l->n[2], h = l->box[0] / l->n[0];
    msg_info("ic: rms |Psi| = %.4f Mpc/h, max |Psi_i| = %.4f Mpc/h (%.3f cells), sigma(delta) = "
             "%.4f (z = 0)",
             sqrt(sum[0] / cells), mx, mx / h, sqrt(sum[1] / cells));
}

/* ---------------------------------------------------------------------------------------------- */
/* the particle snapshot */

/* The LPT particles: written with ic.write_particles, handed to the run when a later stage reads
 * them from memory. */
static bool make_particles(struct run *r, const struct ic_fields *f, struct lm_err *err)
{
    const struct params *p = r->p;
    bool keep = run_wants(r, RUN_PARTICLES);
    if (!p->ic.write_particles && !keep)
        return true;
    struct cosmology c = stage_cosmology(p);
    double z = p->ic.redshift, L = p->box.size;
    timer_start("ic.particles");
    struct particles *ps = ic_particles_create(f, &c, L, z);
    timer_stop("ic.particles");
    struct snapshot_header h = stage_snapshot_header(p, z);
    bool ok = true;
    if (p->ic.write_particles) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", p->output.dir, IC_SNAPSHOT_FILE);
        struct snapshot_write_opts o = {.n_files = (int)p->output.snapshot_files,
                                        .config = p->effective};
        timer_start("ic.write_snapshot");
        ok = snapshot_write(path, &h, ps, &o, r->comm, err);
        timer_stop("ic.write_snapshot");
        if (ok)
            msg_info("ic: wrote %s (%ld^3 particles, z = %g, %s)", path, p->box.n, p->ic.redshift,
                     p->ic.lpt_order == 2 ? "2LPT" : "Zel'dovich");
    }
    if (ok && keep) {
        run_put_particles(r, &ps, &h);
        msg_info("ic: the LPT particles stay in memory for the later stages");
    }
    particles_destroy(&ps);
    return ok;
}

/* ---------------------------------------------------------------------------------------------- */
/* the command */

static struct ic_setup setup_of(const struct params *p, const struct linear_power *power,
                                struct lm_err *err)
{
    struct ic_setup s = {.n = (int)p->box.n,
                         .box_size = p->box.size,
                         .seed = p->ic.seed,
                         .paired = p->ic.paired,
                         .lpt_order = (int)p->ic.lpt_order,
                         .keep_delta = p->ic.write_field || *p->superres.model,
                         .power = power};
    if (!ic_amplitude_parse(p->ic.amplitude, &s.amplitude))
        lm_err_set(err, "ic.amplitude = '%s': expected rayleigh or fixed", p->ic.amplitude);
    return s;
}

/* Fields read from ic.input into x-slabs of the FFT layout. */
static bool read_input(const struct params *p, struct ic_fields *f, MPI_Comm comm,
                       struct lm_err *err)
{
    int n = (int)p->box.n, nn[3] = {n, n, n};
    double box[3] = {p->box.size, p->box.size, p->box.size};
    *f = (struct ic_fields){0};
    fft_local_size(nn, box, 0, comm, &f->layout);
    size_t bytes = (size_t)(f->layout.rnx > 0 ? f->layout.rnx : 1) * n * f->layout.row;
    for (int d = 0; d < 3; d++)
        f->psi[d] = lm_calloc("ic.psi", bytes, sizeof(float));
    struct field_file_block b = slab_block(&f->layout);
    timer_start("ic.read_field");
    bool ok = field_file_read_psi(p->ic.input, nn, p->box.size, &b.box, b.dims, f->psi, comm, err);
    timer_stop("ic.read_field");
    if (!ok) { /* name the key in front of the file's own message */
        static const char key[] = "ic.input: ";
        size_t len = strnlen(err->msg, sizeof err->msg - sizeof key);
        memmove(err->msg + sizeof key - 1, err->msg, len);
        memcpy(err->msg, key, sizeof key - 1);
        err->msg[len + sizeof key - 1] = 0;
    }
    return ok;
}

static void free_input(struct ic_fields *f)
{
    for (int d = 0; d < 3; d++)
        lm_free(f->psi[d]);
}

/* Write the outputs of the fields f and hand the particles to the run; returns false (err agreed)
 * on a failure. */
static bool write_outputs(struct run *r, const struct ic_fields *f, bool generated,
                          struct lm_err *err)
{
    const struct params *p = r->p;
    char path[4200];
    if (p->ic.write_field || p->ic.write_particles)
        params_make_dir(r->comm, p->output.dir);
    if (generated && p->ic.write_field) {
        snprintf(path, sizeof path, "%s/%s", p->output.dir, IC_FIELD_FILE);
        timer_start("ic.write_field");
        bool ok = write_field_file(path, f, p, r->comm, err);
        timer_stop("ic.write_field");
        if (!ok)
            return false;
        msg_info("ic: wrote %s", path);
    }
    return make_particles(r, f, err);
}

/* Hand the field to the run when a later stage reads it from memory (f is then emptied). */
static void keep_field(struct run *r, struct ic_fields *f)
{
    if (!run_wants(r, RUN_FIELD))
        return;
    run_put_field(r, f);
    msg_info("ic: the linear field stays in memory for the emulator");
}

bool stage_ic_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    enum ic_amplitude a;
    if (!*p->ic.input) {
        if (ic_noise_check_size((int)p->box.n, err) && !ic_amplitude_parse(p->ic.amplitude, &a))
            lm_err_set(err, "ic.amplitude = '%s': expected rayleigh or fixed", p->ic.amplitude);
        return comm_agree_soft(comm, err);
    }
    if (p->ic.lpt_order == 2)
        lm_err_set(err,
                   "ic.lpt_order = 2 needs the generated linear field, but ic.input = '%s' "
                   "is set (use ic.lpt_order = 1 with an input field)",
                   p->ic.input);
    return comm_agree_soft(comm, err) &&
           stage_input_check(p, "ic.input", p->ic.input, true, comm, err);
}

static bool run_input(struct run *r, struct lm_err *err)
{
    const struct params *p = r->p;
    msg_info("ic: reading the displacement field from %s", p->ic.input);
    struct ic_fields f;
    bool ok = read_input(p, &f, r->comm, err) && write_outputs(r, &f, false, err);
    if (ok)
        keep_field(r, &f);
    free_input(&f);
    return comm_agree_soft(r->comm, err);
}

bool stage_ic(struct run *r, struct lm_err *err)
{
    const struct params *p = r->p;
    if (!stage_ic_check(p, r->comm, err))
        return false;
    if (*p->ic.input)
        return run_input(r, err);
    timer_start("ic.setup");
    struct linear_power *power = linear_power_load(p, r->comm);
    struct ic_setup s = setup_of(p, power, err);
    struct ic_plan *plan = lm_err_ok(err) ? ic_plan_create(&s, r->comm, err) : NULL;
    timer_stop("ic.setup");
    if (!comm_agree_soft(r->comm, err)) {
        ic_plan_destroy(&plan);
        linear_power_destroy(&power);
        return false;
    }
    msg_info("ic: %ld^3 modes in a %g Mpc/h box, seed %ld, %s amplitudes%s, LPT order %ld",
             p->box.n, p->box.size, p->ic.seed, p->ic.amplitude, p->ic.paired ? ", paired" : "",
             p->ic.lpt_order);
    ic_plan_execute(plan);
    const struct ic_fields *f = ic_plan_fields(plan);
    log_field_stats(f, r->comm);
    bool ok = write_outputs(r, f, true, err);
    if (ok && run_wants(r, RUN_FIELD)) {
        struct ic_fields taken;
        ic_plan_take_fields(plan, &taken);
        keep_field(r, &taken);
    }
    ic_plan_destroy(&plan);
    linear_power_destroy(&power);
    return comm_agree_soft(r->comm, err);
}
