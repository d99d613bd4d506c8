/* emulate_output — the emulated particles and field files of one redshift (see emulate_stage.h). */
#include "emulate_stage.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/h5field.h"
#include "mpi/snapshot.h"
#include "stages.h"
#include "timer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const psi_names[3] = {"psi_x", "psi_y", "psi_z"};
static const char *const vel_names[3] = {"vel_x", "vel_y", "vel_z"};

/* q + psi wrapped into [0, L) in double, then rounded to float (a value rounding to L is 0). */
static float wrap_position(double q, double psi, double L)
{
    double x = fmod(q + psi, L);
    if (x < 0)
        x += L;
    float f = (float)x;
    return f >= (float)L ? 0.0f : f;
}

struct particles *emulate_particles_create(const struct emulate_results *r,
                                           const struct box3 *block, const int n[3], double spacing)
{
    int64_t e[3] = {box3_extent(block, 0), box3_extent(block, 1), box3_extent(block, 2)};
    struct particles *p =
        particles_create(PARTICLES_POS | PARTICLES_VEL | PARTICLES_ID, e[0] * e[1] * e[2]);
    particles_resize(p, e[0] * e[1] * e[2]);
    double L[3] = {n[0] * spacing, n[1] * spacing, n[2] * spacing};
#pragma omp parallel for schedule(static)
    for (int64_t di = 0; di < e[0]; di++)
        for (int64_t dj = 0; dj < e[1]; dj++)
            for (int64_t dk = 0; dk < e[2]; dk++) {
                int64_t g[3] = {block->lo[0] + di, block->lo[1] + dj, block->lo[2] + dk};
                int64_t m = (di * e[1] + dj) * e[2] + dk;
                int64_t o = box3_offset(&r->box, r->dims, g[0], g[1], g[2]);
                for (int a = 0; a < 3; a++) {
                    p->x[a][m] = wrap_position(g[a] * spacing, r->psi[a * r->plane + o], L[a]);
                    p->v[a][m] = r->vel ? r->vel[a * r->plane + o] : 0.0f;
                }
                p->id[m] = (uint64_t)((g[0] * n[1] + g[1]) * n[2] + g[2]);
            }
    return p;
}

void emulate_output_path(const struct params *p, int iz, const char *kind, char *out, size_t cap)
{
    if (iz == 0)
        snprintf(out, cap, "%s/%s", p->output.dir, kind);
    else
        snprintf(out, cap, "%s/%s_z%g", p->output.dir, kind, p->emulator.redshifts.v[iz]);
}

bool emulate_write_snapshot(const struct params *p, int iz, const struct particles *ps,
                            const struct snapshot_header *hdr, MPI_Comm comm, struct lm_err *err)
{
    struct snapshot_write_opts o = {.n_files = (int)p->particles.n_files, .config = p->effective};
    char path[H5IO_PATH_MAX];
    emulate_output_path(p, iz, EMULATE_SNAPSHOT_NAME, path, sizeof path);
    timer_start("emulate.write_snapshot");
    bool ok = snapshot_write(path, hdr, ps, &o, comm, err);
    timer_stop("emulate.write_snapshot");
    if (ok)
        msg_info("emulate: wrote %s (%ld^3 particles, z = %g)", path, p->box.n, hdr->redshift);
    return ok;
}

static bool write_field_attrs(hid_t file, const struct params *p, double z)
{
    double box = p->box.size, om = p->cosmology.Omega_m;
    long n = p->box.n;
    return h5io_attr_write(file, "BoxSize", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &box) &&
           h5io_attr_write(file, "Nmesh", H5T_NATIVE_LONG, H5T_STD_I64LE, 0, &n) &&
           h5io_attr_write(file, "Redshift", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &z) &&
           h5io_attr_write(file, "Omega_m", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, &om) &&
           h5io_attr_write_string(file, "units",
                                  "psi_x, psi_y, psi_z: Mpc/h (emulated nonlinear displacement "
                                  "Psi_NL(q), x = q + Psi_NL); vel_x, vel_y, vel_z: km/s "
                                  "(peculiar velocity)") &&
           h5io_attr_write_string(file, "lemur_config", p->effective ? p->effective : "");
}

bool emulate_write_fields(const struct params *p, int iz, const struct emulate_results *r,
                          const struct box3 *block, MPI_Comm comm, struct lm_err *err)
{
    char path[H5IO_PATH_MAX + 8];
    emulate_output_path(p, iz, EMULATE_FIELD_NAME, path, H5IO_PATH_MAX);
    strcat(path, ".hdf5");
    struct h5io_file file;
    timer_start("emulate.write_fields");
    bool ok = h5io_create(&file, path, comm, err);
    if (ok) {
        if (!write_field_attrs(file.id, p, p->emulator.redshifts.v[iz]))
            lm_err_set(err, "%s: writing the attributes failed", file.tmp);
        ok = comm_agree_soft(comm, err);
        int n[3] = {(int)p->box.n, (int)p->box.n, (int)p->box.n};
        struct h5field_block b = h5field_block_make(n, block, r->dims);
        int64_t o = box3_empty(block)
                        ? 0
                        : box3_offset(&r->box, r->dims, block->lo[0], block->lo[1], block->lo[2]);
        for (int a = 0; a < 3 && ok; a++)
            ok = h5field_write(&file, psi_names[a], &b, r->psi + a * r->plane + o, err);
        for (int a = 0; a < 3 && ok && r->vel; a++)
            ok = h5field_write(&file, vel_names[a], &b, r->vel + a * r->plane + o, err);
        ok = h5io_finish(&file, ok, err);
    }
    timer_stop("emulate.write_fields");
    if (ok)
        msg_info("emulate: wrote %s", path);
    return ok;
}
