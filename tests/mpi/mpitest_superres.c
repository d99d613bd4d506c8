/* mpitest_superres — the distributed run of a described network (src/superres_plan.h) over a
 * periodic box gives, bit for bit, what the whole box run as ONE tile by the single-tile engine
 * gives, for any number of ranks (run at 1, 2, 3 and 4) and tile sizes 8 and 16, on a 16x24x16 HR
 * grid (LR 8x12x8), with the generator of Kodi Ramanah et al. 2020 (random weights) read from a
 * network file by the collective load. The comparison is shown able to fail (the reference
 * rolled by one cell differs). Also: the plan's refusal of a tile that is not a multiple of 8. */
#define T_USE_MPI
#include "harness.h"

#include <mpi.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "mpi/net_file.h"
#include "net.h"
#include "superres_plan.h"

static struct net *net;
static const int N[3] = {16, 24, 16};

/* Input k at global cell (i, j, l) of its grid: a hash in [-1, 1) (LR: in [0, 2)). */
static float field(int k, int64_t i, int64_t j, int64_t l)
{
    uint64_t h = ((((uint64_t)k * 1000003u + (uint64_t)i) * 1000033u + (uint64_t)j) * 1000037u +
                  (uint64_t)l) *
                 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (float)((double)(h >> 11) / 4503599627370496.0 - 1.0) + (k ? 1.0f : 0.0f);
}

/* The whole box as one tile on this rank: inputs cut periodically with the halos. */
static float *reference(void)
{
    struct lm_err err = {{0}};
    struct nn_graph *g = net_graph(net, N, &err);
    T_CHECK(g, "%s", err.msg);
    struct nn_weights *w = net_weights(net, g);
    struct nn_plan *plan = nn_plan_create(nn_backend_cpu(), g, false, &err);
    float *xs[NN_MAX_INPUTS];
    struct nn_tensor tx[NN_MAX_INPUTS];
    float *y = lm_malloc("test", (size_t)N[0] * N[1] * N[2] * sizeof(float));
    struct nn_tensor ty = nn_tensor_plain(y, g->nodes[g->output].shape);
    struct nn_io io = {.x = &tx[0], .x_scale = 1, .dx_scale = 1, .y = &ty, .y_scale = 1};
    for (int k = 0; k < net->n_inputs; k++) {
        int s = net->nodes[k].scale, h = net->halo[k], e[3];
        net_input_extent(net, k, N, e);
        xs[k] = lm_malloc("test", (size_t)e[0] * e[1] * e[2] * sizeof(float));
        for (int a = 0; a < e[0]; a++)
            for (int b = 0; b < e[1]; b++)
                for (int c = 0; c < e[2]; c++) {
                    int64_t q[3] = {a - h, b - h, c - h};
                    for (int d = 0; d < 3; d++)
                        q[d] = (q[d] % (N[d] / s) + N[d] / s) % (N[d] / s);
                    xs[k][((size_t)a * e[1] + b) * e[2] + c] = field(k, q[0], q[1], q[2]);
                }
        tx[k] = nn_tensor_plain(xs[k], g->nodes[g->inputs[k]].shape);
        if (k)
            io.more[k - 1] = &tx[k];
    }
    nn_plan_set_weights(plan, w);
    void *ws = nn_plan_workspace_alloc(plan, nn_plan_workspace(plan));
    nn_plan_execute(plan, &io, ws);
    nn_plan_workspace_free(plan, ws);
    for (int k = 0; k < net->n_inputs; k++)
        lm_free(xs[k]);
    nn_plan_destroy(&plan);
    nn_weights_destroy(&w);
    nn_graph_destroy(&g);
    return y;
}

/* Distributed run with tile side `tile`; returns the cells of this rank's block that differ from
 * ref rolled by `roll` cells along x. */
static long run_and_compare(int tile, const float *ref, int roll)
{
    struct lm_err err = {{0}};
    struct superres_plan *p =
        superres_plan_create(MPI_COMM_WORLD, N, net, tile, nn_backend_cpu(), &err);
    T_CHECK(p, "%s", err.msg);
    if (!p)
        return -1;
    for (int k = 0; k < net->n_inputs; k++) {
        struct box3 b = superres_plan_block_of(p, k);
        float *x = superres_plan_input(p, k);
        size_t idx = 0;
        for (int64_t i = b.lo[0]; i < b.hi[0]; i++)
            for (int64_t j = b.lo[1]; j < b.hi[1]; j++)
                for (int64_t l = b.lo[2]; l < b.hi[2]; l++)
                    x[idx++] = field(k, i, j, l);
    }
    superres_plan_gather(p);
    superres_plan_run(p);
    struct box3 box, blk = superres_plan_block(p);
    int64_t d[3];
    const float *y = superres_plan_results(p, &box, d);
    long diff = 0;
    for (int64_t i = blk.lo[0]; i < blk.hi[0]; i++)
        for (int64_t j = blk.lo[1]; j < blk.hi[1]; j++)
            for (int64_t l = blk.lo[2]; l < blk.hi[2]; l++) {
                float a = y[box3_offset(&box, d, i, j, l)];
                float r = ref[(((i + roll) % N[0]) * N[1] + j) * N[2] + l];
                diff += memcmp(&a, &r, sizeof a) != 0;
            }
    superres_plan_destroy(&p);
    MPI_Allreduce(MPI_IN_PLACE, &diff, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return diff;
}

static void test_rank_and_tile_invariance(void)
{
    float *ref = reference();
    for (int tile = 8; tile <= 16; tile += 8) {
        long diff = run_and_compare(tile, ref, 0);
        T_CHECK(diff == 0, "tile %d: %ld cells differ from the single-tile reference", tile, diff);
    }
    long rolled = run_and_compare(8, ref, 1), nonzero = 0; /* the final ReLU zeroes many cells */
    for (int i = 0; i < N[0] * N[1] * N[2]; i++)
        nonzero += ref[i] != 0;
    T_CHECK(nonzero > N[0] * N[1] * N[2] / 50 && rolled > nonzero / 2,
            "the rolled reference differs in only %ld cells (%ld non-zero)", rolled, nonzero);
    lm_free(ref);
}

static void test_refusal(void)
{
    struct lm_err err = {{0}};
    struct superres_plan *p =
        superres_plan_create(MPI_COMM_WORLD, N, net, 12, nn_backend_cpu(), &err);
    T_CHECK(!p && strstr(err.msg, "superres.tile = 12"), "tile 12: %s", err.msg);
    int odd[3] = {16, 17, 16};
    err = (struct lm_err){{0}};
    p = superres_plan_create(MPI_COMM_WORLD, odd, net, 8, nn_backend_cpu(), &err);
    T_CHECK(!p && strstr(err.msg, "lr_density"), "grid 16x17x16: %s", err.msg);
}

static void load_net(void)
{
    const char *desc = getenv("LEMUR_SUPERRES_NET");
    desc = desc ? desc : "config/networks/superres-ramanah2020.yml";
    char path[512];
    const char *tmp = getenv("LEMUR_TMP");
    snprintf(path, sizeof path, "%s/mpitest_superres_%d.h5", tmp ? tmp : "/tmp", t_size);
    struct lm_err err = {{0}};
    if (t_rank == 0) {
        FILE *f = fopen(desc, "rb");
        CHECK(f, "cannot read %s", desc);
        char *text = calloc(1 << 16, 1);
        size_t got = fread(text, 1, (1 << 16) - 1, f);
        fclose(f);
        text[got] = 0;
        struct net *n = net_parse(text, desc, &err);
        CHECK(n, "%s", err.msg);
        net_fill_random(n, 2020);
        n->nodes[net_find(n, "final")].bias[0] = 1.0f; /* most cells positive after the ReLU */
        CHECK(net_file_write(n, path, "random weights for mpitest_superres", &err), "%s", err.msg);
        net_destroy(&n);
        free(text);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    net = net_file_load(path, MPI_COMM_WORLD, &err);
    CHECK(net, "%s", err.msg);
    MPI_Barrier(MPI_COMM_WORLD);
    if (t_rank == 0)
        remove(path);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    load_net();
    T_RUN(test_rank_and_tile_invariance);
    T_RUN(test_refusal);
    net_destroy(&net);
    return t_finish();
}
