/* stage_info — `lemur info`: the effective configuration and the cosmology summary. */
#include "cosmology.h"
#include "gpu/gpu.h"
#include "mpi/field_file.h"
#include "mpi/linear_power_load.h"
#include "mpi/snapshot.h"
#include "mpi/comm.h"
#include "run.h"
#include "stages.h"
#include "version.h"

#include <stdio.h>

struct cosmology stage_cosmology(const struct params *p) { return cosmo_from_params(p); }

/* Critical density today in 1e10 Msun/h per (Mpc/h)^3 (3 H0^2 / 8 pi G with H0 = 100 h km/s/Mpc).
 */
#define RHO_CRIT 27.7536627

struct snapshot_header stage_snapshot_header(const struct params *p, double z)
{
    struct cosmology c = stage_cosmology(p);
    double cell = p->box.size / (double)p->box.n;
    struct snapshot_header h = {.time = 1.0 / (1.0 + z),
                                .redshift = z,
                                .box_size = p->box.size,
                                .omega0 = c.Omega_m,
                                .omega_lambda = 1.0 - c.Omega_m,
                                .hubble_param = c.h};
    h.mass[1] = c.Omega_m * RHO_CRIT * cell * cell * cell;
    return h;
}

void stage_cosmology_summary(const struct params *p, MPI_Comm comm)
{
    struct cosmology c = stage_cosmology(p);
    struct lm_err err = {0};
    cosmo_check(&c, &err);
    comm_agree(comm, &err);
    double cell = p->box.size / (double)p->box.n;
    msg_info("box: %g Mpc/h, %ld^3 cells, spacing %.6f Mpc/h (%.3e particles)", p->box.size,
             p->box.n, cell, (double)p->box.n * p->box.n * p->box.n);
    msg_info("cosmology: flat LCDM, Omega_m %g, Omega_b %g, h %g, n_s %g, sigma8 %g, T_cmb %g K",
             c.Omega_m, c.Omega_b, c.h, c.n_s, c.sigma8, c.T_cmb);
    msg_info("%8s %10s %12s %12s %16s", "z", "a", "D(z)", "f(z)", "H(z) [h km/s/Mpc]");
    for (int i = 0; i < p->emulator.redshifts.n; i++) {
        double z = p->emulator.redshifts.v[i], a = 1.0 / (1.0 + z);
        msg_info("%8.4f %10.6f %12.8f %12.8f %16.6f", z, a, cosmo_growth_D(&c, a),
                 cosmo_growth_f(&c, a), cosmo_H(&c, z));
    }
    struct linear_power *power = linear_power_load(p, comm);
    msg_info("linear P(k) at z = 0: %s; sigma8 of the normalised spectrum %.8f (requested %g)",
             *p->cosmology.power_table ? p->cosmology.power_table
             : p->cosmology.wiggles    ? "Eisenstein & Hu 1998 with BAO"
                                       : "Eisenstein & Hu 1998 no-wiggle",
             linear_power_sigma(power, 8.0), p->cosmology.sigma8);
    linear_power_destroy(&power);
}

/* The GPU backend as this process sees it: compiled in or not, and the first device. */
static void gpu_summary(void)
{
    struct gpu_info info;
    char why[256];
    if (gpu_query(0, &info, why, sizeof why))
        msg_info("gpu: %d device(s); device 0: %s, compute capability %d.%d, %.1f GiB "
                 "(%.1f free), CUDA runtime %d, cuDNN %d",
                 info.n_devices, info.name, info.cc_major, info.cc_minor,
                 (double)info.mem_total / 1073741824.0, (double)info.mem_free / 1073741824.0,
                 info.runtime_version, info.cudnn_version);
    else
        msg_info("gpu: %s (CUDA backend %s); the emulator runs on the CPU", why,
                 gpu_compiled() ? "compiled in" : "not compiled in");
}

bool stage_input_check(const struct params *p, const char *key, const char *path, bool field,
                       MPI_Comm comm, struct lm_err *err)
{
    double box = 0;
    bool ok;
    if (field) {
        struct field_file_meta m = {0};
        ok = field_file_read_meta(path, &m, comm, err);
        box = m.box_size;
        field_file_meta_free(&m);
    } else {
        struct snapshot_header h;
        ok = snapshot_read_header(path, comm, &h, err);
        box = h.box_size;
    }
    /* the header is the same on every rank: so is the outcome */
    return ok && params_check_box(p, key, path, box, err);
}

/* The named input files: their headers and boxes. */
static bool check_inputs(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    const struct {
        const char *key, *path;
        bool field;
    } in[] = {{"ic.input", p->ic.input, true},
              {"power.input", p->power.input, false},
              {"power.reference", p->power.reference, false},
              {"jerald.input", p->jerald.input, false},
              {"fof.input", p->fof.input, false}};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        if (*in[i].path && !stage_input_check(p, in[i].key, in[i].path, in[i].field, comm, err))
            return false;
    return true;
}

bool stage_info(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    msg_info("# lemur %s: effective configuration (defaults included)\n%s", LEMUR_VERSION,
             p->effective);
    stage_cosmology_summary(p, comm);
    gpu_summary();
    if (!run_check(p, comm, err) || !check_inputs(p, comm, err))
        return false;
    msg_info("the configuration is valid");
    return lm_err_ok(err);
}
