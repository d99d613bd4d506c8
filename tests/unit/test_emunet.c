/* The emulator on one tile and its model file: the V-Net's size, the model file round trip and
 * its refusals (each naming the offending tensor or group), tile-size independence, the velocity
 * derivative against finite differences in D, and a driver mode for tests/python/check_emulator.py.
 *
 * Driver mode (all of these set in the environment; the Python check sets them):
 *   LEMUR_EMU_MODEL   model file          LEMUR_EMU_TILE     output tile side M
 *   LEMUR_EMU_INPUT   raw float32 Ψ_lin [3][M+96]^3 (Mpc/h)
 *   LEMUR_EMU_OUTPUT  prefix: writes <prefix>.psi (Ψ_NL) and <prefix>.dpsi (dΨ_NL/dD), raw
 *                     float32 [3][M]^3, from a plan with velocities, and checks that a plan
 *                     without velocities gives the same Ψ_NL
 *   LEMUR_EMU_OMEGA_M, LEMUR_EMU_D   the style
 * Reduced-width models (width 8) keep the normal cases to a few seconds. */
#include "harness.h"

#include <hdf5.h>
#include <string.h>

#include "alloc.h"
#include "cosmology.h"
#include "emunet.h"
#include "mpi/model_file.h"
#include "timer.h"

static const char *tmp_dir(void)
{
    const char *d = getenv("LEMUR_TMP");
    return d && d[0] ? d : "/tmp";
}

/* The published architecture: 33 styled convolutions, 3,354,776 parameters, ~6.0e12 multiply-adds
 * per 128^3 output tile (Jamieson et al. 2024). */
static void test_vnet_size(void)
{
    struct model *m = model_create_styled_vnet(64, 3, 3, 2);
    struct lm_err err = {{0}};
    T_CHECK(model_check(m, &err), "%s", err.msg);
    T_CHECK(m->n_layers == 33, "%d layers", m->n_layers);
    T_CHECK(model_n_params(m) == 3354776, "%ld parameters", model_n_params(m));
    int out[3] = {128, 128, 128};
    struct nn_graph *g = emunet_graph_create(m, out, &err);
    T_CHECK(g, "%s", err.msg);
    if (g) {
        double macs = nn_graph_macs(g);
        T_CHECK(fabs(macs / 6.0e12 - 1) < 0.02, "%.4g multiply-adds per 128^3 tile", macs);
        printf("  128^3 tile: %.4g multiply-adds, %d nodes\n", macs, g->n_nodes);
    }
    nn_graph_destroy(&g);
    int bad[3] = {12, 8, 8};
    g = emunet_graph_create(m, bad, &err);
    T_CHECK(!g && strstr(err.msg, "12x8x8"), "a 12-cell tile is refused: %s", err.msg);
    nn_graph_destroy(&g);
    model_destroy(&m);
}

/* Write a random reduced-width model, read it back, compare every tensor bit for bit. */
static void test_model_roundtrip(void)
{
    struct model *m = model_create_styled_vnet(8, 3, 3, 2);
    model_fill_random(m, 7);
    char path[512];
    snprintf(path, sizeof path, "%s/test_emunet_model.h5", tmp_dir());
    struct lm_err err = {{0}};
    T_CHECK(model_file_write(m, path, &err), "%s", err.msg);
    struct model *r = model_file_read(path, &err);
    T_CHECK(r, "%s", err.msg);
    if (r) {
        T_CHECK(r->n_layers == m->n_layers && r->n_blocks == m->n_blocks && r->width == 8,
                "read back %d layers, %d blocks, width %d", r->n_layers, r->n_blocks, r->width);
        for (int i = 0; i < m->n_layers && i < r->n_layers; i++) {
            const struct model_layer *a = &m->layers[i], *b = &r->layers[i];
            size_t nw = (size_t)a->desc.cin * a->desc.cout * a->desc.kernel * a->desc.kernel *
                        a->desc.kernel;
            T_CHECK(strcmp(a->desc.name, b->desc.name) == 0 &&
                        memcmp(a->weight, b->weight, nw * sizeof(float)) == 0 &&
                        memcmp(a->style_weight, b->style_weight, 2 * a->desc.cin * 4) == 0 &&
                        memcmp(a->bias, b->bias, a->desc.cout * 4) == 0,
                    "layer %d (%s) differs after the round trip", i, a->desc.name);
        }
        for (int b = 0; b < m->n_blocks; b++)
            T_CHECK(r->blocks[b].concat_from == m->blocks[b].concat_from &&
                        r->blocks[b].keep == m->blocks[b].keep,
                    "block %s", m->blocks[b].name);
    }
    model_destroy(&r);
    model_destroy(&m);
}

/* Damage a good model file with `damage` and check the reader's message contains `expect`. */
static void expect_refusal(void (*damage)(hid_t f), const char *expect, const char *what)
{
    struct model *m = model_create_styled_vnet(8, 3, 3, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/test_emunet_bad.h5", tmp_dir());
    struct lm_err err = {{0}};
    model_file_write(m, path, &err);
    model_destroy(&m);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    damage(f);
    H5Fclose(f);
    struct model *r = model_file_read(path, &err);
    T_CHECK(!r && strstr(err.msg, expect), "%s: expected a message with \"%s\", got \"%s\"", what,
            expect, err.msg);
    printf("  %s: %s\n", what, err.msg);
    model_destroy(&r);
}

static void damage_shape(hid_t f)
{
    H5Ldelete(f, "/layers/conv_l1.convs.2/weight", H5P_DEFAULT);
    hsize_t dims[5] = {8, 8, 3, 3, 2};
    hid_t sp = H5Screate_simple(5, dims, NULL);
    H5Dclose(H5Dcreate2(f, "/layers/conv_l1.convs.2/weight", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(sp);
}
static void damage_missing(hid_t f) { H5Ldelete(f, "/layers/up_r1.convs.0/bias", H5P_DEFAULT); }
static void damage_group(hid_t f) { H5Ldelete(f, "/layers/conv_c.skip", H5P_DEFAULT); }
static void damage_extra(hid_t f)
{
    H5Gclose(H5Gcreate2(f, "/layers/conv_c.extra", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}
static void damage_version(hid_t f)
{
    hid_t a = H5Aopen_by_name(f, "/", "format_version", H5P_DEFAULT, H5P_DEFAULT);
    long long v = 2;
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
}
static void damage_channels(hid_t f)
{
    hid_t g = H5Gopen2(f, "/blocks/conv_r1", H5P_DEFAULT), sp = H5Screate(H5S_SCALAR);
    H5Adelete(g, "cin");
    hid_t a = H5Acreate2(g, "cin", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    long long v = 8;
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Gclose(g);
}

static void test_model_refusals(void)
{
    expect_refusal(damage_shape,
                   "tensor /layers/conv_l1.convs.2/weight has shape [8,8,3,3,2], expected "
                   "[8,8,3,3,3]",
                   "wrong shape");
    expect_refusal(damage_missing, "missing tensor /layers/up_r1.convs.0/bias", "missing tensor");
    expect_refusal(damage_group, "missing layer group /layers/conv_c.skip", "missing layer");
    expect_refusal(damage_extra, "/layers/conv_c.extra belongs to no block", "extra layer");
    expect_refusal(damage_version, "format version 2", "format version");
    expect_refusal(damage_channels, "conv_r1", "inconsistent block");
}

/* Fill a [3][n0][n1][n2] field with a smooth periodic-looking pattern plus noise. */
static void fill_psi(float *psi, const int n[3], unsigned seed)
{
    size_t N = (size_t)n[0] * n[1] * n[2];
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double r = (double)(s >> 11) / 9007199254740992.0 - 0.5;
            size_t a = i / ((size_t)n[1] * n[2]), b = (i / n[2]) % n[1], e = i % n[2];
            psi[c * N + i] = (float)(4.0 * sin(0.11 * a + 0.07 * b * (c + 1) + 0.05 * e) + 3 * r);
        }
}

/* Results do not depend on the tile: a 16x8x8 tile equals two 8x8x8 tiles on the same field. */
static void test_tile_independence(void)
{
    struct model *m = model_create_styled_vnet(8, 3, 3, 2);
    model_fill_random(m, 11);
    struct lm_err err = {{0}};
    struct emulator *e = emulator_create(m, &err);
    emulator_set_style(e, 0.3175, 0.7);
    int big[3] = {16, 8, 8}, small[3] = {8, 8, 8}, nb[3] = {112, 104, 104};
    struct emulator_tile_plan *pb = emulator_tile_plan_create(e, big, true, nn_backend_cpu(), &err);
    struct emulator_tile_plan *ps =
        emulator_tile_plan_create(e, small, true, nn_backend_cpu(), &err);
    T_CHECK(pb && ps, "%s", err.msg);
    if (!pb || !ps)
        return;
    size_t nin = 3 * (size_t)112 * 104 * 104, nout = 3 * 16 * 64;
    float *in = lm_malloc("test", nin * 4), *y = lm_malloc("test", 4 * nout * 4);
    float *dy = y + nout, *ys = dy + nout, *dys = ys + nout;
    fill_psi(in, nb, 3);
    void *ws = emulator_tile_workspace_alloc(pb);
    emulator_tile_run(pb, in, y, dy, ws);
    void *ws2 = emulator_tile_workspace_alloc(ps);
    double maxd = 0, maxt = 0, scale = 0, tscale = 0;
    for (int half = 0; half < 2; half++) {
        struct nn_tensor ti = nn_tensor_plain(in, (struct nn_shape){3, {112, 104, 104}});
        ti.data += half * 8 * ti.stride[1];
        ti.shape.n[0] = 104;
        struct nn_tensor to = nn_tensor_plain(ys, (struct nn_shape){3, {8, 8, 8}});
        struct nn_tensor td = nn_tensor_plain(dys, (struct nn_shape){3, {8, 8, 8}});
        emulator_tile_run_views(ps, &ti, &to, &td, ws2);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 512; i++) {
                size_t bi = (size_t)c * 1024 + half * 512 + i;
                maxd = fmax(maxd, fabs(ys[c * 512 + i] - y[bi]));
                maxt = fmax(maxt, fabs(dys[c * 512 + i] - dy[bi]));
                scale = fmax(scale, fabs(y[bi]));
                tscale = fmax(tscale, fabs(dy[bi]));
            }
    }
    T_CHECK(maxd <= 1e-5 * scale && maxt <= 1e-5 * tscale,
            "16x8x8 tile vs two 8^3 tiles: max difference %.3g (of %.3g), tangent %.3g (of %.3g)",
            maxd, scale, maxt, tscale);
    printf("  tile 16x8x8 vs 2 x 8^3: psi diff %.2e of %.2e, dpsi/dD diff %.2e of %.2e\n", maxd,
           scale, maxt, tscale);
    emulator_tile_workspace_free(pb, ws);
    emulator_tile_workspace_free(ps, ws2);
    lm_free(in);
    lm_free(y);
    emulator_tile_plan_destroy(&pb);
    emulator_tile_plan_destroy(&ps);
    emulator_destroy(&e);
    model_destroy(&m);
}

/* dΨ/dD against central differences of Ψ(D) (input scaling, style and bypass together). The
 * activations are switched off: through 33 layers the LeakyReLU kinks crossed within D ± h spoil
 * the difference quotient at many points (the activations' tangents are checked op by op in
 * test_nn_ops and against PyTorch's forward-mode JVP in tests/python/check_emulator.py). */
static void test_velocity_finite_difference(void)
{
    struct model *m = model_create_styled_vnet(8, 3, 3, 2);
    model_fill_random(m, 5);
    for (int b = 0; b < m->n_blocks; b++)
        m->blocks[b].act = NN_ACT_NONE;
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].act = NN_ACT_NONE;
    struct lm_err err = {{0}};
    struct emulator *e = emulator_create(m, &err);
    int out[3] = {8, 8, 8}, n[3] = {104, 104, 104};
    struct emulator_tile_plan *p = emulator_tile_plan_create(e, out, true, nn_backend_cpu(), &err);
    T_CHECK(p, "%s", err.msg);
    if (!p)
        return;
    size_t nin = 3 * (size_t)104 * 104 * 104, no = 3 * 512;
    float *in = lm_malloc("test", nin * 4), *y = lm_malloc("test", 4 * no * 4);
    float *dy = y + no, *yp = dy + no, *ym = yp + no;
    fill_psi(in, n, 9);
    void *ws = emulator_tile_workspace_alloc(p);
    double D = 0.6, h = 1e-3;
    emulator_set_style(e, 0.3, D);
    emulator_tile_run(p, in, y, dy, ws);
    emulator_set_style(e, 0.3, D + h);
    emulator_tile_run(p, in, yp, NULL, ws);
    emulator_set_style(e, 0.3, D - h);
    emulator_tile_run(p, in, ym, NULL, ws);
    double fmax_ = 0;
    for (size_t i = 0; i < no; i++) {
        yp[i] = (float)((yp[i] - ym[i]) / (2 * h));
        fmax_ = fmax(fmax_, fabs(yp[i]));
    }
    double worst = 0;
    for (size_t i = 0; i < no; i++)
        worst = fmax(worst, fabs(dy[i] - yp[i]));
    T_CHECK(worst <= 2e-3 * fmax_, "dpsi/dD differs from the central difference by %.3g of %.3g",
            worst, fmax_);
    printf("  dpsi/dD vs central difference (h = %g): max difference %.2e of %.2e\n", h, worst,
           fmax_);
    emulator_tile_workspace_free(p, ws);
    lm_free(in);
    lm_free(y);
    emulator_tile_plan_destroy(&p);
    emulator_destroy(&e);
    model_destroy(&m);
}

/* The velocity factor D f H / (1 + z) turns linear theory's dΨ/dD = Ψ_lin into the linear
 * velocity a H f Ψ = a H f D Ψ_lin of cosmology.h; and the spec's check values of D and f. */
static void test_velocity_factor(void)
{
    struct cosmology c = cosmo_quijote_fiducial();
    double z = 1.0, a = 1.0 / (1.0 + z), D = cosmo_growth_D(&c, a), f = cosmo_growth_f(&c, a);
    T_CLOSE(D, 0.605938, 2e-6);
    T_CLOSE(f, 0.877891, 2e-6);
    T_CLOSE(emunet_velocity_factor(D, f, cosmo_H(&c, z), z), cosmo_velocity_factor(&c, a) * D,
            1e-12);
}

/* ---- driver mode --------------------------------------------------------------------------- */

static bool read_raw(const char *path, float *dst, size_t n)
{
    FILE *f = fopen(path, "rb");
    bool ok = f && fread(dst, sizeof(float), n, f) == n;
    if (f)
        fclose(f);
    return ok;
}

static bool write_raw(const char *prefix, const char *ext, const float *src, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s", prefix, ext);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(src, sizeof(float), n, f) == n;
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok;
}

static void driver(void)
{
    const char *mpath = getenv("LEMUR_EMU_MODEL"), *ipath = getenv("LEMUR_EMU_INPUT");
    const char *opath = getenv("LEMUR_EMU_OUTPUT");
    int M = atoi(getenv("LEMUR_EMU_TILE") ? getenv("LEMUR_EMU_TILE") : "8");
    double om = atof(getenv("LEMUR_EMU_OMEGA_M") ? getenv("LEMUR_EMU_OMEGA_M") : "0.3");
    double D = atof(getenv("LEMUR_EMU_D") ? getenv("LEMUR_EMU_D") : "1");
    struct lm_err err = {{0}};
    struct model *m = model_file_read(mpath, &err);
    struct emulator *e = m ? emulator_create(m, &err) : NULL;
    T_CHECK(e, "%s", err.msg);
    if (!e)
        return;
    int out[3] = {M, M, M}, n = M + 2 * m->halo;
    size_t nin = 3 * (size_t)n * n * n, no = 3 * (size_t)M * M * M;
    float *in = lm_malloc("driver", nin * 4), *y = lm_malloc("driver", 3 * no * 4);
    float *dy = y + no, *y0 = dy + no;
    T_CHECK(read_raw(ipath, in, nin), "cannot read %zu floats from %s", nin, ipath);
    emulator_set_style(e, om, D);
    struct emulator_tile_plan *pv = emulator_tile_plan_create(e, out, true, nn_backend_cpu(), &err);
    struct emulator_tile_plan *pf =
        emulator_tile_plan_create(e, out, false, nn_backend_cpu(), &err);
    T_CHECK(pv && pf, "%s", err.msg);
    void *ws = lm_malloc("driver.workspace", emulator_tile_plan_workspace(pv));
    double t0 = timer_now();
    emulator_tile_run(pf, in, y0, NULL, ws);
    double t1 = timer_now();
    emulator_tile_run(pv, in, y, dy, ws);
    double t2 = timer_now();
    printf("  lemur tile %d^3 width %d: forward %.2f s, forward + dpsi/dD %.2f s, workspace %.1f MB"
           " (forward-only plan %.1f MB)\n",
           M, m->width, t1 - t0, t2 - t1, emulator_tile_plan_workspace(pv) / 1e6,
           emulator_tile_plan_workspace(pf) / 1e6);
    double d = 0, s = 0;
    for (size_t i = 0; i < no; i++) {
        d = fmax(d, fabs(y[i] - y0[i]));
        s = fmax(s, fabs(y0[i]));
    }
    T_CHECK(d <= 1e-6 * s, "plans with and without velocities disagree by %.3g of %.3g", d, s);
    T_CHECK(write_raw(opath, "psi", y, no) && write_raw(opath, "dpsi", dy, no),
            "cannot write %s.psi / %s.dpsi", opath, opath);
    lm_free(ws);
    lm_free(in);
    lm_free(y);
    emulator_tile_plan_destroy(&pv);
    emulator_tile_plan_destroy(&pf);
    emulator_destroy(&e);
    model_destroy(&m);
}

int main(void)
{
    if (getenv("LEMUR_EMU_MODEL")) {
        T_RUN(driver);
        return t_finish();
    }
    T_RUN(test_vnet_size);
    T_RUN(test_velocity_factor);
    T_RUN(test_model_roundtrip);
    T_RUN(test_model_refusals);
    T_RUN(test_tile_independence);
    T_RUN(test_velocity_finite_difference);
    return t_finish();
}
