/* stage_emulate_check — the parameter checks of `lemur emulate` that need no file (see
 * stage_emulate.h): grid spacing, training range, tile side and backend. */
#include "stage_emulate.h"

#include "gpu/gpu.h"
#include "gpu/nn_cuda.h"
#include "mpi/comm.h"
#include "mpi/gpu_bind.h"
#include "stages.h"
#include "tiling.h"

#include <math.h>
#include <string.h>

/* The grid spacing must be the training resolution. */
static bool check_spacing(const struct params *p, struct lm_err *err)
{
    double h = p->box.size / (double)p->box.n;
    if (fabs(h - EMULATE_SPACING) <= 1e-6 * EMULATE_SPACING)
        return true;
    return lm_err_set(err,
                      "box.size = %g Mpc/h and box.n = %ld give a grid spacing of %.6f Mpc/h, but "
                      "the emulator was trained at 1000/512 = %.6f Mpc/h (e.g. box.size = %g "
                      "for box.n = %ld)",
                      p->box.size, p->box.n, h, EMULATE_SPACING, p->box.n * EMULATE_SPACING,
                      p->box.n);
}

/* Outside the training range: a warning, or an error without allow_extrapolation. */
static bool range_issue(const struct params *p, struct lm_err *err, const char *what)
{
    if (!p->emulator.allow_extrapolation)
        return lm_err_set(err, "%s (emulator.allow_extrapolation: false)", what);
    msg_warn("%s: extrapolating (set emulator.allow_extrapolation: false to refuse)", what);
    return true;
}

static bool check_training_range(const struct params *p, struct lm_err *err)
{
    char what[256];
    double om = p->cosmology.Omega_m;
    bool ok = true;
    if (om < EMULATE_OMEGA_M_MIN || om > EMULATE_OMEGA_M_MAX) {
        snprintf(what, sizeof what,
                 "cosmology.Omega_m = %g is outside the emulator's training range [%g, %g]", om,
                 EMULATE_OMEGA_M_MIN, EMULATE_OMEGA_M_MAX);
        ok = range_issue(p, err, what);
    }
    for (int i = 0; i < p->emulator.redshifts.n && ok; i++) {
        double z = p->emulator.redshifts.v[i];
        if (z >= EMULATE_Z_MIN && z <= EMULATE_Z_MAX)
            continue;
        snprintf(what, sizeof what,
                 "emulator.redshifts[%d] = %g is outside the emulator's training range [%g, %g]", i,
                 z, EMULATE_Z_MIN, EMULATE_Z_MAX);
        ok = range_issue(p, err, what);
    }
    return ok;
}

static bool check_tile(const struct params *p, struct lm_err *err)
{
    long t = p->emulator.tile;
    if (t == 0 || tiling_valid_side(t))
        return true;
    return lm_err_set(err,
                      "emulator.tile = %ld: the output tile side must be a multiple of %d (the "
                      "V-Net halves the grid three times), e.g. %ld; or 0 for an automatic choice",
                      t, TILING_QUANTUM,
                      (t + TILING_QUANTUM - 1) / TILING_QUANTUM * TILING_QUANTUM);
}

/* The CUDA backend of emulator.precision on a device bound to this rank, or NULL with the reason
 * in why (identical on every rank). *device_bytes: this rank's share of the device's free memory.
 */
static const struct nn_backend *gpu_backend(const struct params *p, MPI_Comm comm,
                                            size_t *device_bytes, struct lm_err *why)
{
    struct gpu_binding b;
    if (!gpu_bind(comm, true, &b, why))
        return NULL;
    struct gpu_info info;
    char msg[256];
    enum nn_cuda_precision prec;
    const struct nn_backend *be = NULL;
    if (!gpu_query(b.device, &info, msg, sizeof msg))
        lm_err_set(why, "%s", msg);
    else if (!nn_cuda_precision_parse(p->emulator.precision, &prec))
        lm_err_set(why, "emulator.precision = '%s' is not a CUDA precision", p->emulator.precision);
    else if (!(be = nn_backend_cuda_precision(prec)))
        lm_err_set(why, "the CUDA backend is not available in this build");
    if (!comm_agree_soft(comm, why))
        return NULL;
    int sharing = (b.node_size + b.n_devices - 1) / (b.n_devices > 0 ? b.n_devices : 1);
    *device_bytes = info.mem_free / 10 * 9 / (size_t)(sharing > 0 ? sharing : 1);
    return be;
}

bool emulate_backend_select(const struct params *p, MPI_Comm comm,
                            const struct nn_backend **backend, size_t *device_bytes,
                            struct lm_err *err)
{
    const char *want = p->emulator.backend;
    struct lm_err why = {0};
    *device_bytes = 0;
    *backend = strcmp(want, "cpu") == 0 ? NULL : gpu_backend(p, comm, device_bytes, &why);
    if (*backend)
        return true;
    if (strcmp(want, "gpu") == 0)
        return lm_err_set(err,
                          "emulator.backend = gpu, but no GPU can be used: %s (use "
                          "emulator.backend: cpu or auto)",
                          why.msg);
    if (strcmp(want, "auto") == 0)
        msg_info("emulate: emulator.backend = auto: no GPU (%s); running on the CPU", why.msg);
    if (strcmp(p->emulator.precision, "fp32") != 0)
        msg_info("emulate: emulator.precision = %s applies to the GPU; the CPU backend computes "
                 "in fp32",
                 p->emulator.precision);
    *backend = nn_backend_cpu();
    return true;
}

bool emulate_check_params(const struct params *p, struct lm_err *err)
{
    return check_spacing(p, err) && check_training_range(p, err) && check_tile(p, err);
}

bool stage_emulate_check(const struct params *p, MPI_Comm comm, struct lm_err *err)
{
    if (!*p->emulator.model)
        return true;
    const struct nn_backend *backend;
    size_t device_bytes;
    emulate_check_params(p, err);
    return comm_agree_soft(comm, err) &&
           emulate_backend_select(p, comm, &backend, &device_bytes, err);
}
