/* superres_plan — decomposition, gathers and the tile loop of a described network over a periodic
 * box (see superres_plan.h). */
#include "superres_plan.h"

#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/exchange.h"
#include "timer.h"

/* One input of the network on its own grid. */
struct sr_input {
    int scale, halo, channels;
    struct decomp blocks; /* the output blocks' splits divided by scale */
    struct box3 region;   /* union of the tiles' inputs */
    int64_t dims[3];      /* extents of region */
    float *block, *gathered;
    struct exchange_plan *gather;
};

struct superres_plan {
    const struct net *net;
    const struct nn_backend *backend;
    struct decomp blocks; /* output grid */
    struct tiling tiling;
    struct sr_input in[NN_MAX_INPUTS];
    struct nn_graph *graph;
    struct nn_weights *weights;
    struct nn_plan *plan;
    void *workspace;
    float *out;
    int64_t out_dims[3];
    int tile, channels;
};

static int64_t volume(const int64_t d[3]) { return d[0] * d[1] * d[2]; }

/* Blocks of an n-grid on the process grid dims whose splits are those of the output grid's
 * 8-lattice divided by scale. Collective. */
static void decomp_scaled(struct decomp *d, MPI_Comm comm, const int n[3], const int dims[3],
                          int scale)
{
    int64_t *split[3];
    int m[3];
    for (int a = 0; a < 3; a++) {
        int64_t units = (n[a] + TILING_QUANTUM - 1) / TILING_QUANTUM;
        m[a] = n[a] / scale;
        split[a] = lm_malloc("superres.split", (size_t)(dims[a] + 1) * sizeof(int64_t));
        for (int c = 0; c <= dims[a]; c++) {
            int64_t s = (units * c + dims[a] - 1) / dims[a] * TILING_QUANTUM;
            split[a][c] = (s < n[a] ? s : n[a]) / scale;
        }
    }
    decomp_create_splits(d, comm, m, dims, (const int64_t *const *)split);
    for (int a = 0; a < 3; a++)
        lm_free(split[a]);
}

/* The input box of input k for the output box b: b / scale grown by the halo. */
static struct box3 input_box(const struct sr_input *in, const struct box3 *b)
{
    struct box3 r;
    for (int a = 0; a < 3; a++) {
        r.lo[a] = b->lo[a] / in->scale - in->halo;
        r.hi[a] = b->hi[a] / in->scale + in->halo;
    }
    return r;
}

static bool check_grid(const int n[3], const struct net *net, struct lm_err *err)
{
    for (int k = 0; k < net->n_inputs; k++) {
        int s = net->nodes[k].scale;
        for (int a = 0; a < 3; a++)
            if (TILING_QUANTUM % s || n[a] % s || n[a] < TILING_QUANTUM)
                return lm_err_set(err,
                                  "superres: input '%s' of scale %d cannot tile a %dx%dx%d "
                                  "grid (scales must divide %d and the grid, of at least "
                                  "%d cells per axis)",
                                  net->nodes[k].name, s, n[0], n[1], n[2], TILING_QUANTUM,
                                  TILING_QUANTUM);
    }
    return true;
}

/* The tiling, every input's decomposition, region, buffers and gather. Collective. */
static void plan_inputs(struct superres_plan *p, const int n[3], int tile)
{
    int64_t top = 0;
    for (int a = 0; a < 3; a++)
        top = box3_extent(&p->blocks.box, a) > top ? box3_extent(&p->blocks.box, a) : top;
    top = (top + TILING_QUANTUM - 1) / TILING_QUANTUM * TILING_QUANTUM;
    p->tile = tile ? tile : (int)(top > 64 ? 64 : top < TILING_QUANTUM ? TILING_QUANTUM : top);
    tiling_init(&p->tiling, &p->blocks.box, p->tile, 0);
    for (int k = 0; k < p->net->n_inputs; k++) {
        struct sr_input *in = &p->in[k];
        in->scale = p->net->nodes[k].scale;
        in->halo = p->net->halo[k];
        in->channels = p->net->nodes[k].channels;
        decomp_scaled(&in->blocks, p->blocks.comm, n, p->blocks.dims, in->scale);
        in->region = input_box(in, &p->tiling.out);
        for (int a = 0; a < 3; a++)
            in->dims[a] = box3_extent(&in->region, a);
        size_t nb = (size_t)box3_volume(&in->blocks.box) * in->channels;
        size_t nr = p->tiling.n_tiles ? (size_t)volume(in->dims) * in->channels : 1;
        in->block = lm_calloc("superres.input", nb ? nb : 1, sizeof(float));
        in->gathered = lm_malloc("superres.region", nr * sizeof(float));
        struct exchange_field field = {sizeof(float), in->channels, EXCHANGE_COMP_MAJOR};
        struct exchange_array want = {in->region, {0, 0, 0}};
        in->gather =
            exchange_plan_create(&in->blocks, NULL, p->tiling.n_tiles > 0 ? 1 : 0, &want, &field);
    }
}

/* The NN plan, weights, workspace and output buffer of the tile shape. */
static bool plan_engine(struct superres_plan *p, struct lm_err *err)
{
    for (int a = 0; a < 3; a++)
        p->out_dims[a] = box3_extent(&p->tiling.out, a);
    p->channels = p->net->nodes[p->net->output].channels;
    p->out =
        lm_calloc("superres.output",
                  p->tiling.n_tiles ? (size_t)volume(p->out_dims) * p->channels : 1, sizeof(float));
    if (p->tiling.n_tiles == 0)
        return true;
    if (!(p->graph = net_graph(p->net, p->tiling.shape, err)))
        return false;
    p->weights = net_weights(p->net, p->graph);
    if (!(p->plan = nn_plan_create(p->backend, p->graph, false, err)))
        return false;
    nn_plan_set_weights(p->plan, p->weights);
    p->workspace = nn_plan_workspace_alloc(p->plan, nn_plan_workspace(p->plan));
    return true;
}

struct superres_plan *superres_plan_create(MPI_Comm comm, const int n[3], const struct net *net,
                                           int tile, const struct nn_backend *be,
                                           struct lm_err *err)
{
    if (tile && !tiling_valid_side(tile))
        lm_err_set(err,
                   "superres.tile = %d: the tile side must be a positive multiple of %d (or 0)",
                   tile, TILING_QUANTUM);
    else
        check_grid(n, net, err);
    if (!comm_agree_soft(comm, err))
        return NULL;
    struct superres_plan *p = lm_calloc("superres.plan", 1, sizeof *p);
    p->net = net;
    p->backend = be;
    struct decomp grid;
    decomp_create_blocks(&grid, comm, n, NULL);
    int dims[3] = {grid.dims[0], grid.dims[1], grid.dims[2]};
    decomp_destroy(&grid);
    decomp_scaled(&p->blocks, comm, n, dims, 1);
    plan_inputs(p, n, tile);
    plan_engine(p, err);
    if (!comm_agree_soft(p->blocks.comm, err)) {
        superres_plan_destroy(&p);
        return NULL;
    }
    return p;
}

void superres_plan_destroy(struct superres_plan **pp)
{
    if (!pp || !*pp)
        return;
    struct superres_plan *p = *pp;
    for (int k = 0; k < p->net->n_inputs; k++) {
        exchange_plan_destroy(&p->in[k].gather);
        lm_free(p->in[k].block);
        lm_free(p->in[k].gathered);
        decomp_destroy(&p->in[k].blocks);
    }
    if (p->workspace)
        nn_plan_workspace_free(p->plan, p->workspace);
    nn_plan_destroy(&p->plan);
    nn_weights_destroy(&p->weights);
    nn_graph_destroy(&p->graph);
    lm_free(p->out);
    decomp_destroy(&p->blocks);
    lm_free(p);
    *pp = NULL;
}

struct box3 superres_plan_block_of(const struct superres_plan *p, int k)
{
    return p->in[k].blocks.box;
}

float *superres_plan_input(struct superres_plan *p, int k) { return p->in[k].block; }

struct box3 superres_plan_block(const struct superres_plan *p) { return p->blocks.box; }

int superres_plan_tile(const struct superres_plan *p) { return p->tile; }

const struct decomp *superres_plan_input_decomp(const struct superres_plan *p, int k)
{
    return &p->in[k].blocks;
}

const struct decomp *superres_plan_output_decomp(const struct superres_plan *p)
{
    return &p->blocks;
}

void superres_plan_gather(struct superres_plan *p)
{
    for (int k = 0; k < p->net->n_inputs; k++) {
        void *dst[1] = {p->in[k].gathered};
        exchange_fill(p->in[k].gather, p->in[k].block, dst);
    }
}

/* A channels-first strided view of the cells b of planes over box a with extents d. */
static struct nn_tensor view(float *data, int channels, const struct box3 *a, const int64_t d[3],
                             const struct box3 *b)
{
    struct nn_tensor t;
    t.data = data + box3_offset(a, d, b->lo[0], b->lo[1], b->lo[2]);
    t.shape.c = channels;
    for (int k = 0; k < 3; k++)
        t.shape.n[k] = (int)box3_extent(b, k);
    t.stride[0] = (ptrdiff_t)volume(d);
    t.stride[1] = (ptrdiff_t)(d[1] * d[2]);
    t.stride[2] = (ptrdiff_t)d[2];
    t.stride[3] = 1;
    return t;
}

void superres_plan_run(struct superres_plan *p)
{
    timer_start("superres.tiles");
    for (int i = 0; i < p->tiling.n_tiles; i++) {
        struct box3 out = tiling_tile(&p->tiling, i);
        struct nn_tensor x[NN_MAX_INPUTS];
        struct nn_tensor y = view(p->out, p->channels, &p->tiling.out, p->out_dims, &out);
        struct nn_io io = {.x = &x[0], .x_scale = 1.0f, .dx_scale = 1.0f, .y = &y, .y_scale = 1.0f};
        for (int k = 0; k < p->net->n_inputs; k++) {
            struct sr_input *in = &p->in[k];
            struct box3 b = input_box(in, &out);
            x[k] = view(in->gathered, in->channels, &in->region, in->dims, &b);
            if (k > 0)
                io.more[k - 1] = &x[k];
        }
        nn_plan_execute(p->plan, &io, p->workspace);
    }
    timer_stop("superres.tiles");
}

const float *superres_plan_results(const struct superres_plan *p, struct box3 *box, int64_t dims[3])
{
    *box = p->tiling.out;
    memcpy(dims, p->out_dims, 3 * sizeof *dims);
    return p->out;
}
