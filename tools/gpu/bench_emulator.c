/*
 * bench_emulator — throughput of the full-width emulator V-Net on lemur's CUDA backend.
 *
 * For each precision and output tile side: random parameters in memory, premodulated on the
 * host, one plan without and one with tangents (velocities), random inputs. Times are wall-clock
 * seconds per tile through the driver's pipelined pattern (begin t+1 before end t: host packing
 * and copies overlap the compute), median of --reps tiles after a warm-up; the synchronous time of
 * one execution is shown too. TFLOP/s count 2 flops per multiply-add of the forward graph, and 4
 * for the forward pass with velocities (the one-convolution tangent doubles the convolutions); they
 * are compared with a cuBLAS GEMM measured in the same precision. The last column extrapolates to
 * a box of --box^3 cells (ceil(box/tile)^3 tiles) with velocities.
 *
 * Usage: bench-emulator [--tiles 64,128,auto] [--precisions bf16,fp16,tf32,fp32] [--reps 4]
 *                       [--box 512] [--measure] [--profile] [--width 64]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "gemm_rate.h"
#include "gpu/gpu.h"
#include "gpu/nn_cuda.h"
#include "nn.h"
#include "tiling.h"
#include "timer.h"
#include "vnet.h"

struct bench_opts {
    char tiles[256], precs[128];
    int reps, box, width;
    bool measure, profile;
};

/* One measured configuration. */
struct bench_row {
    int tile;
    enum nn_cuda_precision prec;
    double fwd_s, vel_s, fwd_sync_s, vel_sync_s;
    double macs;
    size_t mem_fwd, mem_vel;
    bool fits;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct nn_graph *build(int side, void *ctx)
{
    int out[3] = {side, side, side};
    return vnet_graph(out, *(const int *)ctx);
}

/* The tile chooser's builder: the V-Net of cubic side `side`, nothing else in memory. */
static struct nn_graph *build_for_chooser(int side, void *ctx, size_t other[NN_MEM_N_SPACES],
                                          struct lm_err *err)
{
    return build(side, ctx);
}

/* Median seconds per tile of reps tiles through the pipelined pattern; *sync_s one synchronous
 * execution. */
static double time_plan(struct nn_plan *plan, void *ws, struct nn_io *io, int reps, double *sync_s)
{
    nn_plan_execute(plan, io, ws);
    double t0 = timer_now();
    nn_plan_execute(plan, io, ws);
    *sync_s = timer_now() - t0;
    double *per = lm_malloc("bench.times", (size_t)reps * sizeof *per), last = timer_now();
    for (int r = 0; r < reps; r++) {
        nn_cuda_execute_begin(plan, io, ws);
        if (nn_cuda_in_flight(plan) > 1)
            nn_cuda_execute_end(plan);
        if (r > 0) {
            double now = timer_now();
            per[r - 1] = now - last;
            last = now;
        }
    }
    nn_cuda_execute_end(plan);
    per[reps - 1] = timer_now() - last;
    qsort(per, reps, sizeof *per, cmp_double);
    double med = per[reps / 2];
    lm_free(per);
    return med;
}

/* Build, size, create and time one plan; false when it does not fit in free device memory. */
static bool bench_plan(const struct nn_backend *be, struct nn_graph *g, const struct nn_weights *w,
                       bool tangents, const struct bench_opts *o, double *s, double *sync_s,
                       size_t *mem)
{
    struct lm_err err = {{0}};
    struct nn_plan_mem m;
    size_t free_b = 0;
    *mem = 0;
    if (!nn_plan_size(be, g, tangents, &m, &err) || !nn_backend_mem_available(be, &free_b, &err))
        return false;
    *mem = m.workspace + m.plan;
    if (*mem + ((size_t)512 << 20) > free_b)
        return false;
    struct nn_plan *plan = nn_plan_create(be, g, tangents, &err);
    CHECK(plan, "bench: plan: %s", err.msg);
    nn_plan_set_weights(plan, w);
    void *ws = nn_plan_workspace_alloc(plan, nn_plan_workspace(plan));
    struct nn_shape si = g->nodes[g->input].shape, so = g->nodes[g->output].shape;
    size_t nx = nn_shape_count(si), ny = nn_shape_count(so);
    float *x = lm_malloc("bench.io", (nx + 2 * ny) * sizeof(float)), *y = x + nx, *dy = y + ny;
    unsigned long long st = 99;
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(6.0 * vnet_rand(&st));
    struct nn_tensor tx = nn_tensor_plain(x, si), ty = nn_tensor_plain(y, so);
    struct nn_tensor tdy = nn_tensor_plain(dy, so);
    struct nn_io io = {&tx, NULL, (float)(0.8 / 6), (float)(1.0 / 6), &ty, tangents ? &tdy : NULL,
                       6.0f, {NULL}};
    if (o->profile)
        nn_cuda_plan_set_profiling(plan, true);
    *s = time_plan(plan, ws, &io, o->reps, sync_s);
    if (o->profile) {
        printf("\nprofile: %s, tile %d, %s tangents\n", be->name, so.n[0],
               tangents ? "with" : "without");
        nn_cuda_plan_profile_report(plan, stdout);
    }
    lm_free(x);
    nn_plan_workspace_free(plan, ws);
    nn_plan_destroy(&plan);
    return true;
}

/* The largest tile that fits with tangents in the device's free memory less 1 GiB (the tile
 * chooser, tiling_choose), or 0. */
static int auto_tile(const struct nn_backend *be, int width)
{
    const size_t reserve = (size_t)1 << 30;
    size_t free_b = 0;
    struct lm_err err = {{0}};
    if (!nn_backend_mem_available(be, &free_b, &err) || free_b <= reserve) {
        printf("tile chooser (%s): %s\n", be->name,
               lm_err_ok(&err) ? "less than 1 GiB of device memory free" : err.msg);
        return 0;
    }
    struct tiling_request rq = {.backend = be,
                                .tangents = true,
                                .min_side = 8,
                                .max_side = 512,
                                .build = build_for_chooser,
                                .ctx = &width};
    rq.budget[be->space] = free_b - reserve;
    struct tiling_choice c;
    if (!tiling_choose(&rq, &c, &err)) {
        printf("tile chooser (%s): %s\n", be->name, err.msg);
        return 0;
    }
    printf("tile chooser (%s): largest tile with velocities %d (workspace %.2f GiB + plan %.2f "
           "GiB of %.2f GiB)\n",
           be->name, c.side, c.plan.workspace / 1073741824.0, c.plan.plan / 1073741824.0,
           c.budget[be->space] / 1073741824.0);
    return c.side;
}

static struct bench_row bench_one(enum nn_cuda_precision p, int tile, const struct bench_opts *o)
{
    struct bench_row r;
    memset(&r, 0, sizeof r);
    r.tile = tile;
    r.prec = p;
    struct nn_cuda_options co = {
        .precision = p, .algo_search = o->measure ? NN_CUDA_ALGO_MEASURE : NN_CUDA_ALGO_HEURISTIC};
    const struct nn_backend *be = nn_backend_cuda_with(&co);
    int width = o->width;
    struct nn_graph *g = build(tile, &width);
    CHECK(nn_graph_ok(g), "bench: %s", g->err.msg);
    r.macs = nn_graph_macs(g);
    struct vnet_params P;
    vnet_params_random(&P, g, 7);
    struct nn_weights *w = vnet_weights(g, &P, 0.3175, 0.8);
    r.fits = bench_plan(be, g, w, false, o, &r.fwd_s, &r.fwd_sync_s, &r.mem_fwd) &&
             bench_plan(be, g, w, true, o, &r.vel_s, &r.vel_sync_s, &r.mem_vel);
    nn_weights_destroy(&w);
    vnet_params_free(&P);
    nn_graph_destroy(&g);
    return r;
}

static void print_header(void)
{
    printf("\n%5s %5s %9s %9s %9s %7s %8s %8s %6s %6s %8s %8s %11s\n", "tile", "prec", "fwd s",
           "fwd+v s", "sync f+v", "v/fwd", "TF/s fwd", "TF/s f+v", "%mm f", "%mm fv", "GiB fwd",
           "GiB f+v", "box f+v s");
}

static void print_row(const struct bench_row *r, double gemm, int box)
{
    if (!r->fits) {
        size_t need = r->mem_vel > r->mem_fwd ? r->mem_vel : r->mem_fwd;
        printf("%5d %5s   does not fit in free device memory (%.2f GiB needed)\n", r->tile,
               nn_cuda_precision_name(r->prec), need / 1073741824.0);
        return;
    }
    double tf_f = 2 * r->macs / r->fwd_s / 1e12, tf_v = 4 * r->macs / r->vel_s / 1e12;
    double n_tiles = pow(ceil((double)box / r->tile), 3);
    printf("%5d %5s %9.4f %9.4f %9.4f %7.2f %8.1f %8.1f %5.1f%% %5.1f%% %8.2f %8.2f %11.2f\n",
           r->tile, nn_cuda_precision_name(r->prec), r->fwd_s, r->vel_s, r->vel_sync_s,
           r->vel_s / r->fwd_s, tf_f, tf_v, gemm > 0 ? 100 * tf_f / gemm : 0.0,
           gemm > 0 ? 100 * tf_v / gemm : 0.0, r->mem_fwd / 1073741824.0, r->mem_vel / 1073741824.0,
           n_tiles * r->vel_s);
}

static void parse(int argc, char **argv, struct bench_opts *o)
{
    snprintf(o->tiles, sizeof o->tiles, "64,128,auto");
    snprintf(o->precs, sizeof o->precs, "bf16,fp16,tf32,fp32");
    o->reps = 4;
    o->box = 512;
    o->width = 64;
    o->measure = o->profile = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tiles") == 0 && v)
            snprintf(o->tiles, sizeof o->tiles, "%s", argv[++i]);
        else if (strcmp(a, "--precisions") == 0 && v)
            snprintf(o->precs, sizeof o->precs, "%s", argv[++i]);
        else if (strcmp(a, "--reps") == 0 && v)
            o->reps = atoi(argv[++i]);
        else if (strcmp(a, "--box") == 0 && v)
            o->box = atoi(argv[++i]);
        else if (strcmp(a, "--width") == 0 && v)
            o->width = atoi(argv[++i]);
        else if (strcmp(a, "--measure") == 0)
            o->measure = true;
        else if (strcmp(a, "--profile") == 0)
            o->profile = true;
        else
            CHECK(false,
                  "bench-emulator: unknown or incomplete option '%s' (see the usage in "
                  "tools/gpu/bench_emulator.c)",
                  a);
    }
    CHECK(o->reps >= 2 && o->box > 0 && o->width > 0, "bench-emulator: --reps must be >= 2, "
                                                      "--box and --width positive");
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    parse(argc, argv, &o);
    struct gpu_info info;
    char why[256];
    CHECK(gpu_query(0, &info, why, sizeof why), "bench-emulator: %s", why);
    printf("device: %s (sm_%d%d), %.1f GiB (%.1f free), CUDA runtime %d, cuDNN %d\n", info.name,
           info.cc_major, info.cc_minor, info.mem_total / 1073741824.0,
           info.mem_free / 1073741824.0, info.runtime_version, info.cudnn_version);
    struct bench_row rows[64];
    double gemm[NN_CUDA_N_PRECISION] = {0};
    int n_rows = 0;
    char pbuf[128];
    snprintf(pbuf, sizeof pbuf, "%s", o.precs);
    for (char *sp = NULL, *pt = strtok_r(pbuf, ",", &sp); pt; pt = strtok_r(NULL, ",", &sp)) {
        enum nn_cuda_precision p;
        CHECK(nn_cuda_precision_parse(pt, &p), "bench-emulator: unknown precision '%s'", pt);
        gemm[p] = gemm_rate_tflops(p, 8192, 10, why, sizeof why);
        printf("cuBLAS GEMM 8192^3 %s: %.1f TFLOP/s %s\n", pt, gemm[p], gemm[p] > 0 ? "" : why);
        char tbuf[256];
        snprintf(tbuf, sizeof tbuf, "%s", o.tiles);
        for (char *st = NULL, *tt = strtok_r(tbuf, ",", &st); tt && n_rows < 64;
             tt = strtok_r(NULL, ",", &st)) {
            int tile = strcmp(tt, "auto") == 0 ? auto_tile(nn_backend_cuda_precision(p), o.width)
                                               : atoi(tt);
            if (tile < 8 || tile % 8 != 0)
                continue;
            rows[n_rows++] = bench_one(p, tile, &o);
            fflush(stdout);
        }
    }
    printf("\nV-Net width %d; seconds per tile (pipelined, median of %d); box = %d^3 with "
           "velocities; %%mm = share of the measured GEMM rate%s\n",
           o.width, o.reps, o.box, o.measure ? "; measured cuDNN algorithms" : "");
    print_header();
    for (int i = 0; i < n_rows; i++)
        print_row(&rows[i], gemm[rows[i].prec], o.box);
    return 0;
}
