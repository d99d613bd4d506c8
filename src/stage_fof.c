/*
 * stage_fof — the command `lemur fof` and the fof stage of `lemur run`: friends-of-friends haloes
 * (Davis et al. 1985) of a snapshot, their mass function and their spectra.
 *
 * Reads fof.input (any snapshot lemur reads; empty: the run's particles, from memory in a chained
 * run), links with ℓ = fof.linking_length · L / N^(1/3) and writes under output.dir
 *   fof_tab.hdf5 (fof_tab.<i>.hdf5 with fof.n_files > 1)   the catalogue (src/mpi/fof_io.h)
 *   fof_mass_function.hdf5, .txt   dn/dlnM in log10 bins of fof.dlogm with Poisson errors and the
 *                                  Sheth & Tormen 1999 curve from the run's linear P(k) at the
 *                                  snapshot's redshift
 *   halo_power.hdf5, .txt          (fof.spectra) P_hh of the halo number density, P_hm with the
 *                                  matter, P_mm, b = P_hm / P_mm, and the mass-weighted P_hh_mw,
 *                                  P_hm_mw, b_mw, with the power stage's estimator and options
 *                                  (power.n_mesh, 0: the particle grid N^(1/3); power.dk, ...)
 * Keys: fof.*, power.n_mesh, power.dk, power.kmin, power.kmax, power.compensate, power.interlace,
 * cosmology.* (σ(M); Ω_m from the snapshot when it has one), output.dir.
 */
#include "stages.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cosmology.h"
#include "fof.h"
#include "fof_plan.h"
#include "linear_power.h"
#include "mpi/comm.h"
#include "mpi/fof_io.h"
#include "mpi/linear_power_load.h"
#include "mpi/migrate.h"
#include "mpi/power_io.h"
#include "mpi/snapshot.h"
#include "power_plan.h"
#include "run.h"
#include "stages.h"
#include "timer.h"

/** Read the snapshot with velocities when it has them. NULL with err agreed on a failure.
 *  Collective. */
static struct particles *fof_read(const char *path, struct snapshot_header *hdr, MPI_Comm comm,
                                  struct lm_err *err)
{
    timer_start("fof.read");
    struct snapshot_read_opts opts = {.part_type = 1,
                                      .fields = PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID};
    struct particles *parts = NULL;
    if (!snapshot_read(path, &opts, comm, hdr, &parts, err) && strstr(err->msg, "Velocities")) {
        msg_warn("fof: %s has no velocities; GroupVel and GroupVelDisp will be 0", path);
        memset(err, 0, sizeof *err);
        opts.fields = PARTICLES_POS | PARTICLES_ID;
        snapshot_read(path, &opts, comm, hdr, &parts, err);
    }
    timer_stop("fof.read");
    if (!comm_agree_soft(comm, err))
        particles_destroy(&parts);
    return parts;
}

/** The run's particles (borrowed, *owned false) when fof.input is empty and the run holds them,
 *  else those of the file (fof.input, or the run's snapshot); input receives the name shown in
 *  messages and headers. NULL with err agreed on a failure. Collective. */
static struct particles *input_particles(struct run *run, char *input, size_t cap,
                                         struct snapshot_header *hdr, bool *owned,
                                         struct lm_err *err)
{
    const struct params *p = run->p;
    struct particles *parts = *p->fof.input ? NULL : run_particles(run, hdr);
    *owned = parts == NULL;
    if (!*owned) {
        snprintf(input, cap, "the run's particles");
        if (!(parts->fields & PARTICLES_ID))
            lm_err_set(err, "fof: the run's particles carry no IDs");
        if (!comm_agree_soft(run->comm, err))
            return NULL;
        msg_info("fof: the run's particles taken from memory (%.0f)", (double)hdr->n_total[1]);
        return parts;
    }
    if (*p->fof.input)
        snprintf(input, cap, "%s", p->fof.input);
    else
        stage_particles_path(p, input, cap);
    parts = fof_read(input, hdr, run->comm, err);
    if (parts && /* the header is the same on every rank: so is the outcome */
        !params_check_box(p, *p->fof.input ? "fof.input" : NULL, input, hdr->box_size, err))
        particles_destroy(&parts);
    return parts;
}

/** Particles per side of the snapshot's grid, N^(1/3) rounded. */
static long grid_side(uint64_t n) { return lround(cbrt((double)n)); }

static void header_of(const struct params *p, const struct snapshot_header *hdr, const char *input,
                      struct fof_io_header *h)
{
    double n = (double)hdr->n_total[1];
    memset(h, 0, sizeof *h);
    h->box = hdr->box_size;
    h->time = hdr->time;
    h->redshift = hdr->redshift;
    h->omega0 = hdr->omega0 > 0 ? hdr->omega0 : p->cosmology.Omega_m;
    h->omega_lambda = hdr->omega0 > 0 ? hdr->omega_lambda : 1 - p->cosmology.Omega_m;
    h->hubble_param = hdr->hubble_param > 0 ? hdr->hubble_param : p->cosmology.h;
    h->link_b = p->fof.linking_length;
    h->link = p->fof.linking_length * hdr->box_size / cbrt(n);
    h->min_length = p->fof.min_length;
    h->particle_mass =
        hdr->mass[1] > 0 ? hdr->mass[1] : fof_mean_density(h->omega0) * pow(hdr->box_size, 3) / n;
    h->n_particles = (int64_t)n;
    h->input = input;
    h->config = p->effective;
}

/** The mass function with the Sheth & Tormen curve (rank 0 fills it; all build the P(k)). */
static void mass_function(const struct params *p, const struct fof_catalogue *cat,
                          const struct fof_io_header *h, MPI_Comm comm)
{
    timer_start("fof.massfn");
    struct linear_power *lp = linear_power_load(p, comm);
    struct lm_err err = {{0}};
    struct fof_mass_function *mf = NULL;
    if (comm_rank(comm) == 0) {
        mf = fof_mass_function_measure(cat->groups, cat->n_groups, pow(h->box, 3), p->fof.dlogm);
        struct cosmology c = stage_cosmology(p);
        c.Omega_m = h->omega0;
        double D = cosmo_growth_D(&c, 1 / (1 + h->redshift));
        for (int i = 0; i < mf->n_bins; i++)
            mf->st[i] = fof_sheth_tormen(lp, h->omega0, D, mf->mass[i]);
    }
    char base[1100];
    snprintf(base, sizeof base, "%s/fof_mass_function", p->output.dir);
    if (!fof_io_write_mass_function(base, mf, h, comm, &err))
        comm_agree(comm, &err);
    fof_mass_function_destroy(&mf);
    linear_power_destroy(&lp);
    timer_stop("fof.massfn");
}

/* ---- halo spectra ----------------------------------------------------------------------- */

/** Halo centres (rank 0's catalogue) as particles, with masses as weights when weighted. */
static struct particles *halo_particles(const struct fof_catalogue *cat, bool weighted)
{
    struct particles *h =
        particles_create(PARTICLES_POS | (weighted ? PARTICLES_WEIGHT : 0u), cat->n_groups);
    particles_resize(h, cat->n_groups);
    for (int64_t k = 0; k < cat->n_groups; k++) {
        for (int d = 0; d < 3; d++)
            h->x[d][k] = (float)cat->groups[k].pos[d];
        if (weighted)
            h->w[k] = (float)cat->groups[k].mass;
    }
    return h;
}

/** δ_k of the halo centres into mesh out (number or mass weighted). Collective. */
static void halo_density(struct power_plan *pp, const struct fof_catalogue *cat, bool weighted,
                         double box, float *out)
{
    struct particles *h = halo_particles(cat, weighted);
    migrate_particles(power_plan_decomp(pp), h, box);
    power_density(pp, h, out, NULL);
    particles_destroy(&h);
}

static void write_halo_power(const struct params *p, const struct power_plan *pp,
                             struct power_spectrum *const s[5], int64_t n_groups,
                             const struct fof_io_header *h, const int n_mesh[3], MPI_Comm comm)
{
    int nb = s[0]->n_bins;
    double *bias = lm_malloc("fof.power", 2 * (size_t)nb * sizeof *bias);
    for (int i = 0; i < nb; i++) {
        bias[i] = s[2]->P[0][i] / s[0]->P[0][i];
        bias[nb + i] = s[4]->P[0][i] / s[0]->P[0][i];
    }
    struct power_table t = {.n_bins = nb, .k = s[0]->k, .n_modes = s[0]->n_modes};
    const char *names[7] = {"P_hh", "P_hm", "P_mm", "b", "P_hh_mw", "P_hm_mw", "b_mw"};
    const double *cols[7] = {s[1]->P[0], s[2]->P[0], s[0]->P[0], bias,
                             s[3]->P[0], s[4]->P[0], bias + nb};
    for (t.n_cols = 0; t.n_cols < 7; t.n_cols++)
        t.cols[t.n_cols] = (struct power_column){names[t.n_cols], 1, {cols[t.n_cols]}, {NULL}};
    struct power_meta *m = &t.meta;
    for (int d = 0; d < 3; d++) {
        m->box[d] = h->box;
        m->n_mesh[d] = n_mesh[d];
    }
    m->n_part[0] = (double)n_groups;
    m->n_part[1] = (double)h->n_particles;
    m->shot_noise = power_plan_volume(pp) / (double)n_groups;
    m->redshift = h->redshift;
    m->compensated = p->power.compensate;
    m->interlaced = p->power.interlace;
    m->los = -1;
    m->kmin = power_plan_kmin(pp);
    m->dk = power_plan_dk(pp);
    m->kmax = power_plan_kmax(pp);
    m->input = h->input;
    m->config = p->effective;
    struct lm_err err = {{0}};
    if (comm_rank(comm) == 0) {
        char path[1100];
        snprintf(path, sizeof path, "%s/halo_power.hdf5", p->output.dir);
        const int sel[7] = {0, 1, 2, 3, 4, 5, 6};
        if (power_io_write_hdf5(path, &t, &err)) {
            snprintf(path, sizeof path, "%s/halo_power.txt", p->output.dir);
            power_io_write_text(path, &t, 7, sel, &err);
        }
    }
    comm_agree(comm, &err);
    lm_free(bias);
}

/** P_mm, P_hh, P_hm and the mass-weighted pair on one mesh. Collective. */
static void halo_spectra(const struct params *p, struct particles *parts,
                         const struct fof_catalogue *cat, int64_t n_groups,
                         const struct fof_io_header *h, MPI_Comm comm)
{
    if (n_groups == 0) {
        msg_warn("fof: no group, so no halo spectra");
        return;
    }
    timer_start("fof.power");
    long n = p->power.n_mesh > 0 ? p->power.n_mesh : grid_side((uint64_t)h->n_particles);
    const int n_mesh[3] = {(int)n, (int)n, (int)n};
    const double box[3] = {h->box, h->box, h->box};
    struct power_options o = {.dk = p->power.dk,
                              .kmin = p->power.kmin,
                              .kmax = p->power.kmax,
                              .compensate = p->power.compensate,
                              .interlace = p->power.interlace};
    struct power_plan *pp = power_plan_create(n_mesh, box, &o, comm);
    float *mm = power_mesh_alloc(pp, "fof.mesh"), *hh = power_mesh_alloc(pp, "fof.mesh");
    migrate_particles(power_plan_decomp(pp), parts, h->box);
    power_density(pp, parts, mm, NULL);
    struct power_spectrum *s[5];
    int nb = power_plan_n_bins(pp);
    for (int i = 0; i < 5; i++)
        s[i] = power_spectrum_create(nb, 1);
    power_measure(pp, 1, &mm, &mm, s[0]);
    for (int w = 0; w < 2; w++) {
        halo_density(pp, cat, w == 1, h->box, hh);
        power_measure(pp, 1, &hh, &hh, s[1 + 2 * w]);
        power_measure(pp, 1, &hh, &mm, s[2 + 2 * w]);
    }
    write_halo_power(p, pp, s, n_groups, h, n_mesh, comm);
    msg_info("fof: halo spectra on a %ld^3 mesh, %d bins; wrote %s/halo_power.hdf5 and .txt", n, nb,
             p->output.dir);
    for (int i = 0; i < 5; i++)
        power_spectrum_destroy(&s[i]);
    lm_free(mm);
    lm_free(hh);
    power_plan_destroy(&pp);
    timer_stop("fof.power");
}

/* ---- the stage -------------------------------------------------------------------------- */

bool stage_fof(struct run *run, struct lm_err *err)
{
    const struct params *p = run->p;
    MPI_Comm comm = run->comm;
    char input[PARAMS_PATH_MAX];
    struct snapshot_header hdr;
    bool owned;
    struct particles *parts = input_particles(run, input, sizeof input, &hdr, &owned, err);
    if (!parts)
        return false;
    struct fof_io_header h;
    header_of(p, &hdr, input, &h);
    if (h.link >= 0.5 * h.box)
        lm_err_set(err,
                   "fof.linking_length: %g gives ℓ = %g Mpc/h for %.0f particles in a box "
                   "of %g Mpc/h; expected ℓ below half the box",
                   p->fof.linking_length, h.link, (double)h.n_particles, h.box);
    if (!comm_agree_soft(comm, err)) {
        if (owned)
            particles_destroy(&parts);
        return false;
    }
    long n_slab = p->fof.n_slab_cells > 0 ? p->fof.n_slab_cells : grid_side(hdr.n_total[1]);
    struct fof_options o = {.link = h.link,
                            .min_length = p->fof.min_length,
                            .particle_mass = h.particle_mass,
                            .members = p->fof.write_members,
                            .n_slab_cells = (int)(n_slab < 1       ? 1
                                                  : n_slab > 65536 ? 65536
                                                                   : n_slab)};
    msg_info("fof: %s: %.0f particles, box %g Mpc/h, z = %g; b = %g, ℓ = %.6g Mpc/h, "
             "min_length %ld",
             input, (double)h.n_particles, h.box, h.redshift, h.link_b, h.link, h.min_length);
    double t0 = timer_now();
    struct fof_plan *plan = fof_plan_create(&o, h.box, comm);
    struct fof_catalogue cat;
    fof_plan_execute(plan, parts, &cat);
    fof_plan_destroy(&plan);
    double dt = timer_now() - t0;
    int64_t n_groups = cat.n_groups;
    comm_sum_int64(comm, &n_groups, 1);
    msg_info("fof: %lld groups with %lld members (%.2f%% of the particles) in %.2f s "
             "(%.3g particles/s; %lld ghosts, %d merging rounds)",
             (long long)n_groups, (long long)cat.n_members,
             100.0 * (double)cat.n_members / (double)(h.n_particles ? h.n_particles : 1), dt,
             (double)h.n_particles / dt, (long long)cat.n_ghosts, cat.n_rounds);
    char base[1100];
    snprintf(base, sizeof base, "%s/fof_tab", p->output.dir);
    timer_start("fof.write");
    bool ok = fof_io_write(base, &cat, &h, (int)p->fof.n_files, comm, err);
    timer_stop("fof.write");
    if (ok) {
        msg_info("fof: wrote %s%s", base, p->fof.n_files > 1 ? ".<i>.hdf5" : ".hdf5");
        mass_function(p, &cat, &h, comm);
        if (p->fof.spectra)
            halo_spectra(p, parts, &cat, n_groups, &h, comm);
    }
    fof_catalogue_free(&cat);
    if (owned)
        particles_destroy(&parts);
    return ok;
}
