/* emulate_plan — the distributed emulator plan: decomposition, tile choice, tile plan, gather and
 * the tile loop (see emulate_plan.h). */
#include "emulate_plan.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "mpi/decomp.h"
#include "mpi/exchange.h"
#include "timer.h"

#include <stdio.h>
#include <string.h>

struct emulate_plan {
    const struct model *model;
    struct emulate_opts opts;
    struct decomp blocks; /* 3-D blocks of the grid */
    struct tiling tiling; /* this rank's tiles */
    struct exchange_plan *gather;
    struct emulator *emulator;
    struct emulator_tile_plan *tiles; /* the plan of tiling.shape (NULL without tiles) */
    void *workspace;
    struct emulate_memory mem;
    float *input;     /* 3 planes over the block */
    float *region;    /* 3 planes over tiling.in */
    float *psi, *vel; /* 3 planes over tiling.out each */
    int64_t in_dims[3], out_dims[3];
    int tile; /* requested side in use */
    double tile_seconds;
};

static int64_t plane_of(const int64_t d[3]) { return d[0] * d[1] * d[2]; }

static void box_dims(const struct box3 *b, int64_t d[3])
{
    for (int a = 0; a < 3; a++)
        d[a] = box3_extent(b, a);
}

static double gib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

/* The driver's own buffers for the current tiling. */
static size_t buffer_bytes(const struct emulate_plan *pl)
{
    int64_t din[3], dout[3];
    box_dims(&pl->tiling.in, din);
    box_dims(&pl->tiling.out, dout);
    int64_t cells = box3_volume(&pl->tiling.block) + plane_of(din) +
                    plane_of(dout) * (pl->opts.velocities ? 2 : 1);
    return (size_t)cells * 3 * sizeof(float);
}

/* The chooser's graph of the tiles of side `side` (NULL for a rank without tiles) and the driver's
 * buffers, in host memory, at that side. Leaves pl->tiling at that side. */
static struct nn_graph *tile_graph(int side, void *ctx, size_t other[NN_MEM_N_SPACES],
                                   struct lm_err *err)
{
    struct emulate_plan *pl = ctx;
    tiling_init(&pl->tiling, &pl->blocks.box, side, pl->model->halo);
    other[NN_MEM_HOST] = buffer_bytes(pl);
    return pl->tiling.n_tiles > 0 ? emunet_graph_create(pl->model, pl->tiling.shape, err) : NULL;
}

/* The refusal of side c->side (pl->tiling at that side), whose memory does not fit. */
static bool refuse_tile(const struct emulate_plan *pl, const struct tiling_choice *c,
                        struct lm_err *err)
{
    const struct tiling *t = &pl->tiling;
    const struct emulate_memory *m = &pl->mem;
    if (c->budget[NN_MEM_DEVICE] && c->need[NN_MEM_DEVICE] > c->budget[NN_MEM_DEVICE])
        return lm_err_set(err,
                          "emulator.tile: a %dx%dx%d tile needs %.2f GiB of device memory on "
                          "rank %d (workspace %.2f GiB, plan %.2f GiB) but %.2f GiB are free; "
                          "use a smaller emulator.tile",
                          t->shape[0], t->shape[1], t->shape[2], gib(m->device), pl->blocks.rank,
                          gib(m->workspace), gib(m->plan), gib(c->budget[NN_MEM_DEVICE]));
    bool host_nn = c->plan.space == NN_MEM_HOST;
    return lm_err_set(err,
                      "emulator.tile: a %dx%dx%d tile needs %.2f GiB of memory on rank %d "
                      "(workspace %.2f GiB, plan %.2f GiB, field buffers %.2f GiB) but %.2f GiB "
                      "are available (emulator.memory_limit, or the node's available memory "
                      "shared by its ranks); use a smaller emulator.tile or more ranks",
                      t->shape[0], t->shape[1], t->shape[2], gib(m->host), pl->blocks.rank,
                      gib(host_nn ? m->workspace : 0), gib(host_nn ? m->plan : 0), gib(m->buffers),
                      gib(c->budget[NN_MEM_HOST]));
}

/* The largest side the automatic choice considers: EMULATE_MAX_AUTO_TILE, or the largest block
 * side rounded up to the lattice where that is smaller (at least one lattice unit). */
static int auto_max_side(const struct emulate_plan *pl)
{
    int64_t e[3];
    box_dims(&pl->blocks.box, e);
    int64_t top = e[0] > e[1] ? e[0] : e[1];
    top = top > e[2] ? top : e[2];
    top = (top + TILING_QUANTUM - 1) / TILING_QUANTUM * TILING_QUANTUM;
    top = top < EMULATE_MAX_AUTO_TILE ? top : EMULATE_MAX_AUTO_TILE;
    return (int)(top > TILING_QUANTUM ? top : TILING_QUANTUM);
}

/* The tile side: the requested one, or the largest up to auto_max_side, whose plan fits the
 * memory budgets (tiling_choose); sets the tiling and its memory figures. */
static void plan_tiles(struct emulate_plan *pl, struct lm_err *err)
{
    int tile = pl->opts.tile;
    if (tile != 0 && !tiling_valid_side(tile)) {
        lm_err_set(err,
                   "emulator.tile = %d: the tile side must be a positive multiple of %d (or 0 "
                   "for an automatic choice)",
                   tile, TILING_QUANTUM);
        return;
    }
    struct tiling_request rq = {
        .backend = pl->opts.backend,
        .tangents = pl->opts.velocities,
        .min_side = tile ? tile : TILING_QUANTUM,
        .max_side = tile ? tile : auto_max_side(pl),
        .budget = {[NN_MEM_HOST] = pl->opts.mem_limit, [NN_MEM_DEVICE] = pl->opts.device_limit},
        .build = tile_graph,
        .ctx = pl};
    struct tiling_choice c;
    struct lm_err why = {{0}};
    bool ok = tiling_choose(&rq, &c, &why);
    if (c.side == 0) {
        lm_err_set(err, "%s", why.msg);
        return;
    }
    tiling_init(&pl->tiling, &pl->blocks.box, c.side, pl->model->halo);
    pl->tile = c.side;
    pl->mem = (struct emulate_memory){.workspace = c.plan.workspace,
                                      .plan = c.plan.plan,
                                      .buffers = buffer_bytes(pl),
                                      .host = c.need[NN_MEM_HOST],
                                      .device = c.need[NN_MEM_DEVICE]};
    if (!ok)
        refuse_tile(pl, &c, err);
}

/* Allocate the buffers, the tile plan and its workspace of the chosen tiling. */
static void allocate(struct emulate_plan *pl, struct lm_err *err)
{
    box_dims(&pl->tiling.in, pl->in_dims);
    box_dims(&pl->tiling.out, pl->out_dims);
    size_t nb = (size_t)box3_volume(&pl->blocks.box), nin = (size_t)plane_of(pl->in_dims);
    size_t nout = (size_t)plane_of(pl->out_dims);
    pl->input = lm_calloc("emulate.input", 3 * (nb ? nb : 1), sizeof(float));
    pl->region = lm_malloc("emulate.region", 3 * (nin ? nin : 1) * sizeof(float));
    pl->psi = lm_malloc("emulate.psi", 3 * (nout ? nout : 1) * sizeof(float));
    if (pl->opts.velocities)
        pl->vel = lm_malloc("emulate.vel", 3 * (nout ? nout : 1) * sizeof(float));
    if (pl->tiling.n_tiles == 0)
        return;
    pl->tiles = emulator_tile_plan_create(pl->emulator, pl->tiling.shape, pl->opts.velocities,
                                          pl->opts.backend, err);
    if (pl->tiles)
        pl->workspace = emulator_tile_workspace_alloc(pl->tiles);
}

/* Blocks on MPI_Dims_create's process grid whose splits lie on the 8-cell lattice (units of 8
 * cells spread as evenly as possible, the first coordinates taking the extra units, so rank 0
 * holds a largest block and its progress is the run's; the last block of an axis ends at n), so
 * that tiles cover the blocks exactly. Collective. */
static void decomp_aligned(struct decomp *d, MPI_Comm comm, const int n[3])
{
    struct decomp grid;
    decomp_create_blocks(&grid, comm, n, NULL);
    int dims[3] = {grid.dims[0], grid.dims[1], grid.dims[2]};
    decomp_destroy(&grid);
    int64_t *split[3];
    for (int a = 0; a < 3; a++) {
        int64_t units = (n[a] + TILING_QUANTUM - 1) / TILING_QUANTUM;
        split[a] = lm_malloc("emulate.split", (size_t)(dims[a] + 1) * sizeof(int64_t));
        for (int c = 0; c <= dims[a]; c++) {
            int64_t s = (units * c + dims[a] - 1) / dims[a] * TILING_QUANTUM;
            split[a][c] = s < n[a] ? s : n[a];
        }
    }
    decomp_create_splits(d, comm, n, dims, (const int64_t *const *)split);
    for (int a = 0; a < 3; a++)
        lm_free(split[a]);
}

/* The exchange that fills tiling.in from the blocks. */
static void plan_gather(struct emulate_plan *pl)
{
    struct exchange_field field = {sizeof(float), 3, EXCHANGE_COMP_MAJOR};
    struct exchange_array want = {pl->tiling.in, {0, 0, 0}};
    pl->gather =
        exchange_plan_create(&pl->blocks, NULL, pl->tiling.n_tiles > 0 ? 1 : 0, &want, &field);
}

struct emulate_plan *emulate_plan_create(MPI_Comm comm, const int n[3], const struct model *m,
                                         const struct emulate_opts *opts, struct lm_err *err)
{
    struct emulate_plan *pl = lm_calloc("emulate.plan", 1, sizeof *pl);
    pl->model = m;
    pl->opts = *opts;
    decomp_aligned(&pl->blocks, comm, n);
    if (m->in_channels != 3 || m->out_channels != 3)
        lm_err_set(err,
                   "emulator.model: the model maps %d to %d channels, but the emulator maps the "
                   "3-component displacement to 3 components",
                   m->in_channels, m->out_channels);
    else
        pl->emulator = emulator_create(m, err);
    if (pl->emulator)
        plan_tiles(pl, err);
    if (lm_err_ok(err))
        allocate(pl, err);
    if (!comm_agree_soft(pl->blocks.comm, err)) {
        emulate_plan_destroy(&pl);
        return NULL;
    }
    plan_gather(pl);
    return pl;
}

void emulate_plan_destroy(struct emulate_plan **plan)
{
    if (!plan || !*plan)
        return;
    struct emulate_plan *pl = *plan;
    if (pl->tiles && pl->workspace)
        emulator_tile_workspace_free(pl->tiles, pl->workspace);
    emulator_tile_plan_destroy(&pl->tiles);
    emulator_destroy(&pl->emulator);
    exchange_plan_destroy(&pl->gather);
    lm_free(pl->input);
    lm_free(pl->region);
    lm_free(pl->psi);
    lm_free(pl->vel);
    decomp_destroy(&pl->blocks);
    lm_free(pl);
    *plan = NULL;
}

struct box3 emulate_plan_block(const struct emulate_plan *plan) { return plan->blocks.box; }

const struct decomp *emulate_plan_decomp(const struct emulate_plan *plan) { return &plan->blocks; }

float *emulate_plan_input(struct emulate_plan *plan) { return plan->input; }

const struct tiling *emulate_plan_tiling(const struct emulate_plan *plan) { return &plan->tiling; }

struct emulate_memory emulate_plan_memory(const struct emulate_plan *plan) { return plan->mem; }

int emulate_plan_tile(const struct emulate_plan *plan) { return plan->tile; }

double emulate_plan_tile_seconds(const struct emulate_plan *plan) { return plan->tile_seconds; }

void emulate_plan_gather(struct emulate_plan *plan)
{
    void *dst[1] = {plan->region};
    exchange_fill(plan->gather, plan->input, dst);
}

struct emulate_results emulate_plan_results(const struct emulate_plan *plan)
{
    struct emulate_results r = {plan->psi, plan->vel, plan->tiling.out, {0, 0, 0}, 0};
    memcpy(r.dims, plan->out_dims, sizeof r.dims);
    r.plane = plane_of(plan->out_dims);
    return r;
}

/* A 3-channel strided view of the cells b of an array of 3 planes over box a with extents d. */
static struct nn_tensor view(float *data, const struct box3 *a, const int64_t d[3],
                             const struct box3 *b)
{
    struct nn_tensor t;
    t.data = data + box3_offset(a, d, b->lo[0], b->lo[1], b->lo[2]);
    t.shape.c = 3;
    for (int k = 0; k < 3; k++)
        t.shape.n[k] = (int)box3_extent(b, k);
    t.stride[0] = (ptrdiff_t)plane_of(d);
    t.stride[1] = (ptrdiff_t)(d[1] * d[2]);
    t.stride[2] = (ptrdiff_t)d[2];
    t.stride[3] = 1;
    return t;
}

/* Print rank 0's progress at every tenth of its tiles. */
static void report_progress(const struct emulate_plan *pl, const struct emulate_style *st, int done,
                            double t0)
{
    int n = pl->tiling.n_tiles;
    if (!pl->opts.progress || n == 0 || (done * 10 / n == (done - 1) * 10 / n && done != n))
        return;
    double el = timer_now() - t0, rate = done / (el > 0 ? el : 1e-9);
    msg_info("emulate z = %g: %d/%d tiles (rank 0), %.2f tiles/s, %.1f s elapsed, ETA %.1f s",
             st->redshift, done, n, rate, el, (n - done) / rate);
}

/* Execute every tile: views into the gathered region and the results. */
static void run_tiles(struct emulate_plan *pl, const struct emulate_style *st)
{
    const struct tiling *t = &pl->tiling;
    double t0 = timer_now();
    for (int i = 0; i < t->n_tiles; i++) {
        struct box3 out = tiling_tile(t, i), in = tiling_tile_input(t, i);
        struct nn_tensor x = view(pl->region, &t->in, pl->in_dims, &in);
        struct nn_tensor y = view(pl->psi, &t->out, pl->out_dims, &out);
        struct nn_tensor dy = pl->vel ? view(pl->vel, &t->out, pl->out_dims, &out) : y;
        emulator_tile_run_views(pl->tiles, &x, &y, pl->vel ? &dy : NULL, pl->workspace);
        report_progress(pl, st, i + 1, t0);
    }
    pl->tile_seconds = t->n_tiles ? (timer_now() - t0) / t->n_tiles : 0;
}

void emulate_plan_run(struct emulate_plan *plan, const struct emulate_style *style)
{
    if (!plan->tiles)
        return;
    timer_start("emulate.premodulate");
    emulator_set_style(plan->emulator, style->omega_m, style->D);
    timer_stop("emulate.premodulate");
    timer_start("emulate.tiles");
    run_tiles(plan, style);
    timer_stop("emulate.tiles");
    if (plan->vel) {
        size_t n = 3 * (size_t)plane_of(plan->out_dims);
        float f = (float)style->vel_factor;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            plan->vel[i] *= f;
    }
}
