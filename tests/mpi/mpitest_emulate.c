/* mpitest_emulate — the distributed emulator driver (src/emulate.h) gives the same Ψ_NL and v as
 * the whole periodic box run as ONE tile by the plain single-tile engine, for any number of ranks
 * (run at 1, 2, 3 and 4) and any tile size, on a cubic 32^3 and a non-cubic 40x32x48 box.
 *
 * Any rank count. A reduced-width random V-Net (width 4) keeps it to seconds. The reference is
 * computed on rank 0: the box padded periodically by the 48-cell halo, one emulator_tile_run,
 * then broadcast; every rank compares the cells of its block. The comparison is shown able to
 * fail: the same results against the reference rolled by one cell must differ by far more than
 * the tolerance. The plan's refusals (tile not a multiple of 8, tile too large for the memory
 * limit) are checked with their messages, and the automatic tile under a memory limit against a
 * brute force over the explicit tiles. */
#define T_USE_MPI
#include "harness.h"

#include "alloc.h"
#include "cosmology.h"
#include "emulate_plan.h"
#include "emunet.h"
#include "model.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define WIDTH 4
#define TOL   1e-6

static struct model *model;

/* Ψ_lin of global cell (i, j, k), component c: a hash in [-4, 4) Mpc/h (any rank, no state). */
static float psi_lin(int c, int64_t i, int64_t j, int64_t k)
{
    uint64_t h = ((((uint64_t)c * 1000003u + (uint64_t)i) * 1000033u + (uint64_t)j) * 1000037u +
                  (uint64_t)k) *
                 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (float)((double)(h >> 11) / 9007199254740992.0 * 8.0 - 4.0);
}

/* Wait for the other ranks without spinning (ranks are oversubscribed on few cores in the test
 * runs: a busy-polling MPI wait would steal the core of the rank still computing). */
static void polite_barrier(void)
{
    MPI_Request rq;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    for (MPI_Test(&rq, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&rq, &done, MPI_STATUS_IGNORE))
        nanosleep(&(struct timespec){0, 2000000}, NULL);
}

static struct emulate_style style_at(double z)
{
    struct cosmology c = cosmo_quijote_fiducial();
    double a = 1.0 / (1.0 + z), D = cosmo_growth_D(&c, a);
    double vf = emunet_velocity_factor(D, cosmo_growth_f(&c, a), cosmo_H(&c, z), z);
    return (struct emulate_style){c.Omega_m, D, vf, z};
}

static int64_t volume(const int n[3]) { return (int64_t)n[0] * n[1] * n[2]; }

/* The reference on every rank: rank 0 runs the whole box as one tile on its periodic padding.
 * ref holds 6 planes of the box: Ψ_NL then v, [c][i][j][k]. */
static float *reference(const int n[3], const struct emulate_style *st)
{
    int64_t nv = volume(n);
    float *ref = lm_malloc("test.ref", 6 * (size_t)nv * sizeof(float));
    if (t_rank == 0) {
        int halo = model->halo, m[3] = {n[0] + 2 * halo, n[1] + 2 * halo, n[2] + 2 * halo};
        float *in = lm_malloc("test.in", 3 * (size_t)volume(m) * sizeof(float));
        for (int c = 0; c < 3; c++)
            for (int64_t i = 0; i < m[0]; i++)
                for (int64_t j = 0; j < m[1]; j++)
                    for (int64_t k = 0; k < m[2]; k++)
                        in[((c * m[0] + i) * m[1] + j) * m[2] + k] =
                            psi_lin(c, box3_wrap(i - halo, n[0]), box3_wrap(j - halo, n[1]),
                                    box3_wrap(k - halo, n[2]));
        struct lm_err err = {0};
        struct emulator *e = emulator_create(model, &err);
        emulator_set_style(e, st->omega_m, st->D);
        struct emulator_tile_plan *p =
            emulator_tile_plan_create(e, n, true, nn_backend_cpu(), &err);
        T_CHECK(p != NULL, "reference plan: %s", err.msg);
        void *ws = emulator_tile_workspace_alloc(p);
        emulator_tile_run(p, in, ref, ref + 3 * nv, ws);
        for (int64_t i = 3 * nv; i < 6 * nv; i++)
            ref[i] *= (float)st->vel_factor;
        emulator_tile_workspace_free(p, ws);
        emulator_tile_plan_destroy(&p);
        emulator_destroy(&e);
        lm_free(in);
    }
    polite_barrier();
    MPI_Bcast(ref, (int)(6 * nv), MPI_FLOAT, 0, MPI_COMM_WORLD);
    return ref;
}

/* Largest |result - reference| over this rank's block, per field (Ψ_NL, v), the reference
 * rolled by `roll` cells along x; maxima over all ranks. Also the largest |reference|. */
static void compare(const struct emulate_plan *pl, const float *ref, const int n[3], int roll,
                    double diff[2], double scale[2])
{
    struct emulate_results r = emulate_plan_results(pl);
    struct box3 b = emulate_plan_block(pl);
    int64_t nv = volume(n);
    diff[0] = diff[1] = scale[0] = scale[1] = 0;
    for (int f = 0; f < 2; f++)
        for (int c = 0; c < 3; c++)
            for (int64_t i = b.lo[0]; i < b.hi[0]; i++)
                for (int64_t j = b.lo[1]; j < b.hi[1]; j++)
                    for (int64_t k = b.lo[2]; k < b.hi[2]; k++) {
                        const float *res = f == 0 ? r.psi : r.vel;
                        double a = res[c * r.plane + box3_offset(&r.box, r.dims, i, j, k)];
                        int64_t ir = box3_wrap(i + roll, n[0]);
                        double e = ref[(f * 3 + c) * nv + (ir * n[1] + j) * n[2] + k];
                        diff[f] = fmax(diff[f], fabs(a - e));
                        scale[f] = fmax(scale[f], fabs(e));
                    }
    MPI_Allreduce(MPI_IN_PLACE, diff, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, scale, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

static struct emulate_opts opts_of(int tile)
{
    return (struct emulate_opts){.tile = tile, .velocities = true, .backend = nn_backend_cpu()};
}

/* Run the driver with tile side `tile` and compare with ref (and with ref rolled by one cell). */
static void check_box(const int n[3], const float *ref, const struct emulate_style *st, int tile)
{
    struct lm_err err = {0};
    struct emulate_opts o = opts_of(tile);
    struct emulate_plan *pl = emulate_plan_create(MPI_COMM_WORLD, n, model, &o, &err);
    T_CHECK(pl != NULL, "plan %dx%dx%d tile %d: %s", n[0], n[1], n[2], tile, err.msg);
    if (!pl)
        return;
    struct box3 b = emulate_plan_block(pl);
    float *in = emulate_plan_input(pl);
    int64_t bv = box3_volume(&b), o3 = 0;
    for (int c = 0; c < 3; c++)
        for (int64_t i = b.lo[0]; i < b.hi[0]; i++)
            for (int64_t j = b.lo[1]; j < b.hi[1]; j++)
                for (int64_t k = b.lo[2]; k < b.hi[2]; k++)
                    in[o3++] = psi_lin(c, i, j, k);
    T_CHECK(o3 == 3 * bv, "input cells %lld", (long long)o3);
    emulate_plan_gather(pl);
    emulate_plan_run(pl, st);
    polite_barrier();
    double diff[2], scale[2], wrong[2], wscale[2];
    compare(pl, ref, n, 0, diff, scale);
    compare(pl, ref, n, 1, wrong, wscale);
    const struct tiling *t = emulate_plan_tiling(pl);
    if (t_rank == 0)
        printf("  %dx%dx%d, tile %d (rank 0: %d tiles of %dx%dx%d): |dPsi| %.2e of %.2e, |dv| "
               "%.2e of %.2e km/s; rolled by one cell: %.2e, %.2e\n",
               n[0], n[1], n[2], tile, t->n_tiles, t->shape[0], t->shape[1], t->shape[2], diff[0],
               scale[0], diff[1], scale[1], wrong[0], wrong[1]);
    for (int f = 0; f < 2; f++) {
        T_CHECK(scale[f] > 0 && diff[f] <= TOL * scale[f], "%s: max difference %.3g of %.3g",
                f ? "v" : "Psi_NL", diff[f], scale[f]);
        T_CHECK(wrong[f] > 1e3 * TOL * scale[f], "a one-cell shift goes unnoticed (%s: %.3g)",
                f ? "v" : "Psi_NL", wrong[f]);
    }
    emulate_plan_destroy(&pl);
}

static void run_box(const int n[3], const int tiles[2])
{
    struct emulate_style st = style_at(0.5);
    float *ref = reference(n, &st);
    for (int i = 0; i < 2; i++)
        check_box(n, ref, &st, tiles[i]);
    lm_free(ref);
}

static void test_cubic_32(void)
{
    int n[3] = {32, 32, 32}, tiles[2] = {16, 32};
    run_box(n, tiles);
}

static void test_noncubic_40x32x48(void)
{
    int n[3] = {40, 32, 48}, tiles[2] = {40, 48};
    run_box(n, tiles);
}

/* A tile that is not a multiple of 8, and one that does not fit a memory limit, are refused on
 * every rank with a message naming the key and the sizes. */
static void test_refusals(void)
{
    int n[3] = {32, 32, 32};
    struct lm_err err = {0};
    struct emulate_opts o = opts_of(12);
    struct emulate_plan *pl = emulate_plan_create(MPI_COMM_WORLD, n, model, &o, &err);
    T_CHECK(!pl && strstr(err.msg, "emulator.tile = 12") && strstr(err.msg, "multiple of 8"),
            "tile 12: %s", err.msg);
    memset(&err, 0, sizeof err);
    o = opts_of(32);
    o.mem_limit = 64u << 20;
    pl = emulate_plan_create(MPI_COMM_WORLD, n, model, &o, &err);
    T_CHECK(!pl && strstr(err.msg, "GiB of memory") && strstr(err.msg, "smaller emulator.tile"),
            "tile 32 in 64 MiB: %s", err.msg);
    if (t_rank == 0)
        printf("  refusals: %s\n", err.msg);
    memset(&err, 0, sizeof err);
    o = opts_of(0);
    o.mem_limit = 64u << 20;
    pl = emulate_plan_create(MPI_COMM_WORLD, n, model, &o, &err);
    T_CHECK(!pl && strstr(err.msg, "8x"), "automatic tile in 64 MiB: %s", err.msg);
    emulate_plan_destroy(&pl);
}

/* This rank's host bytes of a plan with tile side `tile` and no memory limit. Collective. */
static size_t host_need(const int n[3], int tile)
{
    struct lm_err err = {0};
    struct emulate_opts o = opts_of(tile);
    struct emulate_plan *pl = emulate_plan_create(MPI_COMM_WORLD, n, model, &o, &err);
    T_CHECK(pl, "tile %d: %s", tile, err.msg);
    size_t h = pl ? emulate_plan_memory(pl).host : 0;
    emulate_plan_destroy(&pl);
    return h;
}

/* The automatic tile under a memory limit is, on every rank, the largest side whose plan with
 * that side requested explicitly fits the limit (brute force over the sides 8 ... 32). */
static void test_automatic_tile(void)
{
    int n[3] = {32, 32, 32};
    size_t need[5] = {0};
    for (int s = 8; s <= 32; s += 8)
        need[s / 8] = host_need(n, s);
    size_t limits[3] = {need[2], need[3], need[3] - 1};
    for (int k = 0; k < 3; k++) {
        int want = 0;
        for (int s = 8; s <= 32; s += 8)
            want = need[s / 8] <= limits[k] ? s : want;
        struct lm_err err = {0};
        struct emulate_opts o = opts_of(0);
        o.mem_limit = limits[k];
        struct emulate_plan *pl = emulate_plan_create(MPI_COMM_WORLD, n, model, &o, &err);
        T_CHECK(pl, "automatic tile in %zu bytes: %s", limits[k], err.msg);
        if (!pl)
            continue;
        int got = emulate_plan_tile(pl);
        struct emulate_memory m = emulate_plan_memory(pl);
        T_CHECK(got == want && m.host == need[got / 8] && m.host <= limits[k],
                "limit %zu: tile %d needing %zu, brute force %d", limits[k], got, m.host, want);
        if (t_rank == 0)
            printf("  automatic tile in %.2f MiB: %d (brute force %d)\n", limits[k] / 1048576.0,
                   got, want);
        emulate_plan_destroy(&pl);
    }
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    model = model_create_styled_vnet(WIDTH, 3, 3, 2);
    model_fill_random(model, 2024);
    T_RUN(test_refusals);
    T_RUN(test_automatic_tile);
    T_RUN(test_cubic_32);
    T_RUN(test_noncubic_40x32x48);
    model_destroy(&model);
    return t_finish();
}
