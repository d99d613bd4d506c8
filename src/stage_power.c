/*
 * stage_power — the commands `lemur power` and `lemur compare` (nbodykit / FastPM conventions:
 * Hand et al. 2018; Feng et al. 2016).
 *
 * power    reads power.input (Gadget-style HDF5; empty: the run's particles, borrowed from memory
 *          within `lemur run`, else their snapshot), paints it on a
 *          power.n_mesh^3 mesh (0: box.n) and writes under output.dir
 *            power.hdf5           k, N_modes, P (real space), P_ell [3][n_bins] (redshift space,
 *                                 l = 0, 2, 4 along power.los; with power.multipoles),
 *                                 P_momentum (with power.momentum); attributes box, N_mesh,
 *                                 N_part, shot_noise, compensation, window, z, config, ...
 *            power.txt            "# k P N" + "# metadata 7" trailer (nbodykit / FastPM)
 *            power_ell.txt        "# k P0 N P2 P4"  (with power.multipoles)
 *            power_momentum.txt   "# k P N"         (with power.momentum; shotnoise of p)
 * compare  reads power.input (A) and power.reference (B), measures P_AA, P_BB, P_AB on one mesh
 *          and writes compare.hdf5 (P_AA, P_BB, P_AB, r, s, T, dT) and compare.txt
 *          "# k r N s T P_AA P_BB P_AB" with r = P_AB/sqrt(P_AA P_BB), s = 1 - r^2,
 *          T = sqrt(P_AA/P_BB), dT = T - 1.
 *
 * Keys: power.input, power.reference, power.n_mesh, power.dk, power.kmin, power.kmax,
 * power.compensate, power.interlace, power.subtract_shotnoise, power.multipoles, power.momentum,
 * power.los, box.n (default mesh), cosmology.* (H(z) when the snapshot has no Omega0),
 * output.dir. Redshift space: x_los += v_los (1+z)/H(z), z and Omega0 from the snapshot.
 * Particles outside the box are wrapped, with a warning giving their number.
 */
#include "stages.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cosmology.h"
#include "mpi/comm.h"
#include "mpi/migrate.h"
#include "mpi/power_io.h"
#include "mpi/snapshot.h"
#include "stage_emulate.h"
#include "power_plan.h"
#include "run.h"
#include "stage_ic.h"
#include "timer.h"

/** Settings of one measurement, resolved from the parameters and the snapshot. */
struct power_job {
    const struct params *p;
    struct power_options o;
    int n_mesh[3];
    double box[3];
    char input[1024];
};

/** Largest prime factor of n (FFT efficiency hint). */
static int largest_prime_factor(int n)
{
    int f = 1;
    for (int q = 2; q * q <= n; q++)
        while (n % q == 0) {
            f = q;
            n /= q;
        }
    return n > 1 ? n : f;
}

void stage_particles_path(const struct params *p, char *out, size_t cap)
{
    if (*p->emulator.model)
        emulate_output_path(p, 0, EMULATE_SNAPSHOT_NAME, out, cap);
    else
        snprintf(out, cap, "%s/%s", p->output.dir, IC_SNAPSHOT_FILE);
}

static bool job_init(struct power_job *job, const struct params *p, MPI_Comm comm,
                     struct lm_err *err)
{
    const struct power_params *pw = &p->power;
    memset(job, 0, sizeof *job);
    job->p = p;
    job->o = (struct power_options){.dk = pw->dk,
                                    .kmin = pw->kmin,
                                    .kmax = pw->kmax,
                                    .compensate = pw->compensate,
                                    .interlace = pw->interlace,
                                    .los = pw->los[0] - 'x'};
    long n = pw->n_mesh > 0 ? pw->n_mesh : p->box.n;
    if (n < 2 || n > 65536)
        lm_err_set(err, "power.n_mesh: %ld%s; expected an integer in [2, 65536]", n,
                   pw->n_mesh > 0 ? "" : " (from box.n, since power.n_mesh is 0)");
    if (!comm_agree_soft(comm, err))
        return false;
    double box[3] = {p->box.size, p->box.size, p->box.size};
    for (int d = 0; d < 3; d++)
        job->n_mesh[d] = (int)n;
    power_options_check(&job->o, job->n_mesh, box, err);
    if (!comm_agree_soft(comm, err))
        return false;
    if (largest_prime_factor((int)n) > 7)
        msg_warn("power.n_mesh = %ld has the prime factor %d: FFTs will be slow (prefer sizes "
                 "2^a 3^b 5^c 7^d)",
                 n, largest_prime_factor((int)n));
    if (*pw->input)
        snprintf(job->input, sizeof job->input, "%s", pw->input);
    else
        stage_particles_path(p, job->input, sizeof job->input);
    return true;
}

bool stage_power_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    struct power_job job;
    return job_init(&job, p, comm, err);
}

/** Read a snapshot (fields), set the job's box from it. @return the particles, or NULL with err
 *  agreed. Collective. */
static struct particles *read_snapshot(struct power_job *job, const char *path, unsigned fields,
                                       struct snapshot_header *hdr, MPI_Comm comm,
                                       struct lm_err *err)
{
    timer_start("power.read");
    struct snapshot_read_opts opts = {.part_type = 1, .fields = fields};
    struct particles *parts = NULL;
    if (!snapshot_read(path, &opts, comm, hdr, &parts, err) && (fields & PARTICLES_VEL) &&
        strstr(err->msg, "Velocities")) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len,
                 " (velocities are needed by power.momentum and power.multipoles; set both to "
                 "false to measure P(k) from positions alone)");
    }
    const struct params *p = job->p;
    const char *key = path == p->power.reference ? "power.reference"
                      : *p->power.input          ? "power.input"
                                                 : NULL;
    if (lm_err_ok(err))
        params_check_box(p, key, path, hdr->box_size, err);
    timer_stop("power.read");
    if (!comm_agree_soft(comm, err)) {
        particles_destroy(&parts);
        return NULL;
    }
    for (int d = 0; d < 3; d++)
        job->box[d] = hdr->box_size;
    msg_info("power: read %s: %.0f particles, box %g Mpc/h, z = %g", path, (double)hdr->n_total[1],
             hdr->box_size, hdr->redshift);
    return parts;
}

/** The run's particles when it holds them (borrowed: *owned false), else those of job->input.
 *  Collective. */
static struct particles *input_particles(struct power_job *job, struct run *r, unsigned fields,
                                         struct snapshot_header *hdr, bool *owned,
                                         struct lm_err *err)
{
    struct particles *parts = *job->p->power.input ? NULL : run_particles(r, hdr);
    *owned = parts == NULL;
    if (*owned)
        return read_snapshot(job, job->input, fields, hdr, r->comm, err);
    if ((parts->fields & fields) != fields) {
        lm_err_set(err, "power: the run's particles lack velocities (needed by power.momentum "
                        "and power.multipoles)");
        return comm_agree_soft(r->comm, err) ? parts : NULL;
    }
    for (int d = 0; d < 3; d++)
        job->box[d] = hdr->box_size;
    msg_info("power: the run's particles taken from memory: %.0f particles, box %g Mpc/h, z = %g",
             (double)hdr->n_total[1], hdr->box_size, hdr->redshift);
    return parts;
}

/** Wrap and migrate particles to the painter's slabs; with what != NULL, warn with the number of
 *  positions that were outside the box (redshift-space positions leave it by design). Collective.
 */
static void place_particles(struct power_plan *pp, struct particles *parts, const double box[3],
                            const char *what, MPI_Comm comm)
{
    timer_start("power.migrate");
    int64_t n_out = what ? power_count_outside(parts, box) : 0;
    comm_sum_int64(comm, &n_out, 1);
    if (what && n_out > 0)
        msg_warn("power: %lld particles of %s lie outside the box [0, %g)^3; wrapped periodically",
                 (long long)n_out, what, box[0]);
    migrate_particles(power_plan_decomp(pp), parts, box[0]);
    timer_stop("power.migrate");
}

/** (1 + z) / H(z) in Mpc/h per km/s, Ω_m from the snapshot when it has one. */
static double rsd_factor(const struct params *p, const struct snapshot_header *hdr)
{
    struct cosmology c = stage_cosmology(p);
    if (hdr->omega0 > 0 && hdr->omega0 <= 1)
        c.Omega_m = hdr->omega0;
    return (1 + hdr->redshift) / cosmo_H(&c, hdr->redshift);
}

static void subtract(struct power_spectrum *s, double shot)
{
    for (int i = 0; i < s->n_bins; i++)
        s->P[0][i] -= shot;
}

static void fill_meta(struct power_meta *m, const struct power_job *job,
                      const struct power_plan *pp, const struct snapshot_header *hdr)
{
    memset(m, 0, sizeof *m);
    for (int d = 0; d < 3; d++) {
        m->box[d] = job->box[d];
        m->n_mesh[d] = job->n_mesh[d];
    }
    m->n_part[0] = m->n_part[1] = (double)hdr->n_total[1];
    m->redshift = hdr->redshift;
    m->compensated = job->o.compensate;
    m->interlaced = job->o.interlace;
    m->shotnoise_subtracted = job->p->power.subtract_shotnoise;
    m->los = -1;
    m->kmin = power_plan_kmin(pp);
    m->dk = power_plan_dk(pp);
    m->kmax = power_plan_kmax(pp);
    m->input = job->input;
    m->config = job->p->effective;
}

/** Path of an output under output.dir. */
static void out_path(const struct params *p, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", p->output.dir, name);
}

/** Rank 0 writes the HDF5 file and each text file; every rank agrees on the outcome. */
static bool write_outputs(const struct params *p, const struct power_table *t, const char *h5,
                          int n_text, const char *const *names, const int *const *sels,
                          const int *n_sels, const double *shots, MPI_Comm comm, struct lm_err *err)
{
    timer_start("power.write");
    char path[1100];
    if (comm_rank(comm) == 0) {
        out_path(p, h5, path, sizeof path);
        power_io_write_hdf5(path, t, err);
        for (int f = 0; f < n_text && lm_err_ok(err); f++) {
            struct power_table tt = *t;
            tt.meta.shot_noise = shots[f];
            out_path(p, names[f], path, sizeof path);
            power_io_write_text(path, &tt, n_sels[f], sels[f], err);
        }
    }
    bool ok = comm_agree_soft(comm, err);
    timer_stop("power.write");
    if (ok)
        msg_info("power: wrote %s/%s and %d text file%s", p->output.dir, h5, n_text,
                 n_text == 1 ? "" : "s");
    return ok;
}

/** The spectra of `lemur power`, filled in phase by phase. */
struct power_results {
    struct power_spectrum *real, *ell, *mom;
    double shot, shot_mom;
};

static void measure_real(struct power_plan *pp, struct particles *parts, float *const m[3],
                         struct power_results *r, bool momentum, bool subtract_sn)
{
    int nb = power_plan_n_bins(pp);
    struct power_sums sums;
    power_density(pp, parts, m[0], &sums);
    r->real = power_spectrum_create(nb, 1);
    power_measure(pp, 1, &m[0], &m[0], r->real);
    r->shot = power_shot_noise(&sums, power_plan_volume(pp), false);
    if (subtract_sn)
        subtract(r->real, r->shot);
    if (!momentum)
        return;
    power_momentum_same_points(pp, parts, m, &sums); /* parts unchanged since power_density */
    r->mom = power_spectrum_create(nb, 1);
    power_measure(pp, 3, m, m, r->mom);
    r->shot_mom = power_shot_noise(&sums, power_plan_volume(pp), true);
    if (subtract_sn)
        subtract(r->mom, r->shot_mom);
}

/** Redshift-space positions x + factor v along los, a positions-only copy of parts. Local. */
static struct particles *rsd_copy(const struct particles *parts, int los, double factor)
{
    struct particles *z = particles_create(PARTICLES_POS, parts->n);
    particles_resize(z, parts->n);
    const float *v = parts->v[los];
    for (int d = 0; d < 3; d++) {
        const float *x = parts->x[d];
        float *zx = z->x[d];
        if (d == los) {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < parts->n; i++)
                zx[i] = (float)(x[i] + factor * v[i]);
        } else {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < parts->n; i++)
                zx[i] = x[i];
        }
    }
    return z;
}

/** The multipoles: parts are displaced in place when owned, else through a positions-only copy
 *  (borrowed particles stay as they are for the later stages). */
static void measure_ell(struct power_plan *pp, struct particles *parts, bool owned,
                        float *const m[3], struct power_results *r, const struct power_job *job,
                        double factor, MPI_Comm comm)
{
    msg_info("power: redshift space along %c, displacement (1+z)/H(z) = %.6g Mpc/h per km/s",
             'x' + job->o.los, factor);
    struct particles *z = owned ? parts : rsd_copy(parts, job->o.los, factor);
    if (owned)
        power_rsd_displace(parts, job->o.los, factor);
    place_particles(pp, z, job->box, NULL, comm);
    power_density(pp, z, m[0], NULL);
    if (!owned)
        particles_destroy(&z);
    r->ell = power_spectrum_create(power_plan_n_bins(pp), POWER_N_ELL);
    power_measure(pp, 1, &m[0], &m[0], r->ell);
    if (job->p->power.subtract_shotnoise)
        subtract(r->ell, r->shot);
}

static bool write_power(const struct power_job *job, const struct power_plan *pp,
                        const struct power_results *r, const struct snapshot_header *hdr,
                        MPI_Comm comm, struct lm_err *err)
{
    struct power_table t = {
        .n_bins = r->real->n_bins, .k = r->real->k, .n_modes = r->real->n_modes};
    fill_meta(&t.meta, job, pp, hdr);
    t.meta.shot_noise = r->shot;
    t.cols[t.n_cols++] = (struct power_column){"P", 1, {r->real->P[0]}, {NULL}};
    int c_ell = -1, c_mom = -1;
    if (r->ell) {
        c_ell = t.n_cols;
        t.meta.los = job->o.los;
        t.cols[t.n_cols++] = (struct power_column){
            "P_ell", POWER_N_ELL, {r->ell->P[0], r->ell->P[1], r->ell->P[2]}, {"P0", "P2", "P4"}};
    }
    if (r->mom) {
        c_mom = t.n_cols;
        t.cols[t.n_cols++] = (struct power_column){"P_momentum", 1, {r->mom->P[0]}, {"P"}};
    }
    const int s0[1] = {0}, s1[1] = {c_ell}, s2[1] = {c_mom}, one[3] = {1, 1, 1};
    const char *names[3] = {"power.txt"};
    const int *sels[3] = {s0};
    double shots[3] = {r->shot};
    int n = 1;
    if (r->ell) {
        names[n] = "power_ell.txt";
        shots[n] = r->shot;
        sels[n++] = s1;
    }
    if (r->mom) {
        names[n] = "power_momentum.txt";
        shots[n] = r->shot_mom;
        sels[n++] = s2;
    }
    return write_outputs(job->p, &t, "power.hdf5", n, names, sels, one, shots, comm, err);
}

bool stage_power(struct run *run, struct lm_err *err)
{
    const struct params *p = run->p;
    MPI_Comm comm = run->comm;
    struct power_job job;
    if (!job_init(&job, p, comm, err))
        return false;
    bool need_vel = p->power.momentum || p->power.multipoles, owned;
    struct snapshot_header hdr;
    unsigned fields = PARTICLES_POS | (need_vel ? PARTICLES_VEL : 0u);
    struct particles *parts = input_particles(&job, run, fields, &hdr, &owned, err);
    if (!parts)
        return false;
    struct power_plan *pp = power_plan_create(job.n_mesh, job.box, &job.o, comm);
    msg_info("power: mesh %d^3, %d bins of %.6g h/Mpc from %.6g, compensation %s, interlacing %s",
             job.n_mesh[0], power_plan_n_bins(pp), power_plan_dk(pp), power_plan_kmin(pp),
             job.o.compensate ? "on" : "off", job.o.interlace ? "on" : "off");
    place_particles(pp, parts, job.box, owned ? job.input : "the run's particles", comm);
    float *m[3];
    for (int c = 0; c < 3; c++)
        m[c] = c == 0 || p->power.momentum ? power_mesh_alloc(pp, "power.mesh") : NULL;
    struct power_results r = {0};
    measure_real(pp, parts, m, &r, p->power.momentum, p->power.subtract_shotnoise);
    if (p->power.multipoles)
        measure_ell(pp, parts, owned, m, &r, &job, rsd_factor(p, &hdr), comm);
    bool ok = write_power(&job, pp, &r, &hdr, comm, err);
    power_spectrum_destroy(&r.real);
    power_spectrum_destroy(&r.ell);
    power_spectrum_destroy(&r.mom);
    for (int c = 0; c < 3; c++)
        lm_free(m[c]);
    if (owned)
        particles_destroy(&parts);
    power_plan_destroy(&pp);
    return ok;
}

/* ---- compare ---------------------------------------------------------------------------- */

/** δ_k of one snapshot into mesh out (plan and mesh created on first use); hdr receives its
 *  header. The second snapshot must have the box of the first. Collective. */
static bool density_of(struct power_job *job, struct power_plan **pp, const char *path, float **out,
                       struct snapshot_header *hdr, MPI_Comm comm, struct lm_err *err)
{
    double box0 = job->box[0];
    struct particles *parts = read_snapshot(job, path, PARTICLES_POS, hdr, comm, err);
    if (!parts)
        return false;
    if (box0 > 0 && fabs(job->box[0] - box0) > 1e-9 * box0)
        lm_err_set(err, "power.reference: %s has box %g Mpc/h, power.input has %g", path,
                   job->box[0], box0);
    if (!comm_agree_soft(comm, err)) {
        particles_destroy(&parts);
        return false;
    }
    if (!*pp)
        *pp = power_plan_create(job->n_mesh, job->box, &job->o, comm);
    if (!*out)
        *out = power_mesh_alloc(*pp, "power.mesh");
    place_particles(*pp, parts, job->box, path, comm);
    power_density(*pp, parts, *out, NULL);
    particles_destroy(&parts);
    return true;
}

/** The spectra of `lemur compare` and the derived columns. */
struct compare_results {
    struct power_spectrum *s[3]; /**< P_AA, P_BB, P_AB */
    double *derived;             /**< r, s, T, dT: 4 n_bins values */
};

static void compare_measure(struct power_plan *pp, float *a, float *b, const double n_part[2],
                            bool subtract_sn, struct compare_results *c)
{
    int nb = power_plan_n_bins(pp);
    float *pairs[3][2] = {{a, a}, {b, b}, {a, b}};
    for (int i = 0; i < 3; i++) {
        c->s[i] = power_spectrum_create(nb, 1);
        power_measure(pp, 1, &pairs[i][0], &pairs[i][1], c->s[i]);
    }
    for (int i = 0; i < 2 && subtract_sn; i++)
        subtract(c->s[i], power_plan_volume(pp) / n_part[i]);
    c->derived = lm_malloc("power.compare", 4 * (size_t)nb * sizeof(double));
    double *r = c->derived, *st = r + nb, *T = st + nb, *dT = T + nb;
    const double *aa = c->s[0]->P[0], *bb = c->s[1]->P[0], *ab = c->s[2]->P[0];
    for (int i = 0; i < nb; i++) {
        r[i] = ab[i] / sqrt(aa[i] * bb[i]);
        st[i] = 1 - r[i] * r[i];
        T[i] = sqrt(aa[i] / bb[i]);
        dT[i] = T[i] - 1;
    }
}

static bool write_compare(const struct power_job *job, const struct power_plan *pp,
                          const struct compare_results *c, const struct snapshot_header *hdr,
                          const double n_part[2], MPI_Comm comm, struct lm_err *err)
{
    int nb = c->s[0]->n_bins;
    struct power_table t = {.n_bins = nb, .k = c->s[0]->k, .n_modes = c->s[0]->n_modes};
    fill_meta(&t.meta, job, pp, hdr);
    t.meta.n_part[0] = n_part[0];
    t.meta.n_part[1] = n_part[1];
    t.meta.reference = job->p->power.reference;
    const char *names[7] = {"r", "s", "T", "P_AA", "P_BB", "P_AB", "dT"};
    const double *cols[7] = {c->derived,    c->derived + nb, c->derived + 2 * nb, c->s[0]->P[0],
                             c->s[1]->P[0], c->s[2]->P[0],   c->derived + 3 * nb};
    for (t.n_cols = 0; t.n_cols < 7; t.n_cols++)
        t.cols[t.n_cols] = (struct power_column){names[t.n_cols], 1, {cols[t.n_cols]}, {NULL}};
    const int sel[6] = {0, 1, 2, 3, 4, 5}, n_sel[1] = {6};
    const int *sels[1] = {sel};
    const char *files[1] = {"compare.txt"};
    const double shots[1] = {0};
    return write_outputs(job->p, &t, "compare.hdf5", 1, files, sels, n_sel, shots, comm, err);
}

bool stage_compare(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    struct power_job job;
    if (!job_init(&job, p, comm, err))
        return false;
    if (!*p->power.reference)
        lm_err_set(err, "power.reference: empty; lemur compare needs a reference snapshot (B)");
    if (!comm_agree_soft(comm, err))
        return false;
    struct power_plan *pp = NULL;
    float *a = NULL, *b = NULL;
    struct snapshot_header hdr_a, hdr_b;
    bool ok = density_of(&job, &pp, job.input, &a, &hdr_a, comm, err) &&
              density_of(&job, &pp, p->power.reference, &b, &hdr_b, comm, err);
    struct compare_results c = {.derived = NULL};
    if (ok) {
        const double n_part[2] = {(double)hdr_a.n_total[1], (double)hdr_b.n_total[1]};
        compare_measure(pp, a, b, n_part, p->power.subtract_shotnoise, &c);
        ok = write_compare(&job, pp, &c, &hdr_a, n_part, comm, err);
    }
    lm_free(c.derived);
    for (int i = 0; i < 3; i++)
        power_spectrum_destroy(&c.s[i]);
    lm_free(a);
    lm_free(b);
    power_plan_destroy(&pp);
    return ok;
}
