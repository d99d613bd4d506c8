/* stage_emulate_output — the emulated particles and field files of one redshift (stage_emulate.h).
 */
#include "stage_emulate.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/field_file.h"
#include "mpi/snapshot.h"
#include "stages.h"
#include "timer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
    char path[PARAMS_PATH_MAX];
    emulate_output_path(p, iz, EMULATE_SNAPSHOT_NAME, path, sizeof path);
    timer_start("emulate.write_snapshot");
    bool ok = snapshot_write(path, hdr, ps, &o, comm, err);
    timer_stop("emulate.write_snapshot");
    if (ok)
        msg_info("emulate: wrote %s (%ld^3 particles, z = %g)", path, p->box.n, hdr->redshift);
    return ok;
}

bool emulate_write_fields(const struct params *p, int iz, const struct emulate_results *r,
                          const struct box3 *block, MPI_Comm comm, struct lm_err *err)
{
    char path[PARAMS_PATH_MAX + 8];
    emulate_output_path(p, iz, EMULATE_FIELD_NAME, path, PARAMS_PATH_MAX);
    strcat(path, ".hdf5");
    struct field_file_meta m = {.box_size = p->box.size,
                                .n_mesh = p->box.n,
                                .redshift = p->emulator.redshifts.v[iz],
                                .omega_m = p->cosmology.Omega_m,
                                .config = p->effective};
    timer_start("emulate.write_fields");
    struct field_file *file = field_file_create(path, FIELD_FILE_EMULATED, &m, comm, err);
    bool ok = file != NULL;
    if (ok) {
        int n[3] = {(int)p->box.n, (int)p->box.n, (int)p->box.n};
        struct field_file_block b = field_file_block_make(n, block, r->dims);
        int64_t o = box3_empty(block)
                        ? 0
                        : box3_offset(&r->box, r->dims, block->lo[0], block->lo[1], block->lo[2]);
        for (int a = 0; a < 3 && ok; a++)
            ok =
                field_file_write(file, field_file_psi_names[a], &b, r->psi + a * r->plane + o, err);
        for (int a = 0; a < 3 && ok && r->vel; a++)
            ok =
                field_file_write(file, field_file_vel_names[a], &b, r->vel + a * r->plane + o, err);
        ok = field_file_close(&file, ok, err);
    }
    timer_stop("emulate.write_fields");
    if (ok)
        msg_info("emulate: wrote %s", path);
    return ok;
}
