/* bench_superres — HR cells per second of the super-resolution generator of Kodi Ramanah et al.
 * 2020 (config/networks/superres-ramanah2020.yml, random weights) on lemur's CPU backend: one tile
 * of M^3 HR output cells (default 128: HR input 152^3, LR input 78^3), one process with
 * OMP_NUM_THREADS threads. Prints the multiply-adds, seconds of the plan creation and of one
 * execution (after one untimed warm-up on a 16^3 tile of the same plan kind), HR cells/s and
 * GMAC/s. tools/bench/torch_superres.py times the same network in PyTorch.
 *   usage: bench_superres [M] [description.yml]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "net.h"
#include "nn.h"
#include "timer.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK(f, "bench_superres: cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(n + 1, 1);
    CHECK(fread(s, 1, n, f) == (size_t)n, "bench_superres: cannot read %s", path);
    fclose(f);
    return s;
}

/* Seconds of one execution of the network on an M^3 output tile (plan creation in *t_plan). */
static double run_tile(const struct net *n, int M, double *t_plan, double *macs)
{
    struct lm_err err = {{0}};
    int out[3] = {M, M, M};
    double t0 = timer_now();
    struct nn_graph *g = net_graph(n, out, &err);
    CHECK(g, "%s", err.msg);
    struct nn_weights *w = net_weights(n, g);
    struct nn_plan *p = nn_plan_create(nn_backend_cpu(), g, false, &err);
    CHECK(p, "%s", err.msg);
    nn_plan_set_weights(p, w);
    void *ws = nn_plan_workspace_alloc(p, nn_plan_workspace(p));
    *t_plan = timer_now() - t0;
    float *xs[NN_MAX_INPUTS];
    struct nn_tensor tx[NN_MAX_INPUTS];
    struct nn_shape so = g->nodes[g->output].shape;
    float *y = lm_malloc("bench.y", nn_shape_count(so) * sizeof(float));
    struct nn_tensor ty = nn_tensor_plain(y, so);
    struct nn_io io = {.x = &tx[0], .x_scale = 1, .dx_scale = 1, .y = &ty, .y_scale = 1};
    for (int k = 0; k < g->n_inputs; k++) {
        size_t nx = nn_shape_count(g->nodes[g->inputs[k]].shape);
        xs[k] = lm_malloc("bench.x", nx * sizeof(float));
        for (size_t i = 0; i < nx; i++)
            xs[k][i] = (float)((i * 2654435761u % 1000) / 500.0 - 1.0);
        tx[k] = nn_tensor_plain(xs[k], g->nodes[g->inputs[k]].shape);
        if (k)
            io.more[k - 1] = &tx[k];
    }
    t0 = timer_now();
    nn_plan_execute(p, &io, ws);
    double t = timer_now() - t0;
    *macs = nn_graph_macs(g);
    for (int k = 0; k < g->n_inputs; k++)
        lm_free(xs[k]);
    lm_free(y);
    nn_plan_workspace_free(p, ws);
    nn_plan_destroy(&p);
    nn_weights_destroy(&w);
    nn_graph_destroy(&g);
    return t;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int M = argc > 1 ? atoi(argv[1]) : 128;
    const char *path = argc > 2 ? argv[2] : "config/networks/superres-ramanah2020.yml";
    char *text = read_text(path);
    struct lm_err err = {{0}};
    struct net *n = net_parse(text, path, &err);
    CHECK(n, "%s", err.msg);
    net_fill_random(n, 1);
    double tp, macs;
    run_tile(n, 16, &tp, &macs); /* warm-up: oneDNN's kernels generated once */
    double t = run_tile(n, M, &tp, &macs);
    double cells = (double)M * M * M;
    printf("superres generator (%s), CPU backend, %s threads, HR output tile %d^3 (halo %d HR, "
           "%d LR cells)\n",
           n->name, getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "all", M, n->halo[0],
           n->halo[1]);
    printf("  %.3g multiply-adds; plan %.2f s; execute %.2f s: %.3g HR cells/s, %.1f GMAC/s\n",
           macs, tp, t, cells / t, macs / t / 1e9);
    net_destroy(&n);
    free(text);
    MPI_Finalize();
    return 0;
}
