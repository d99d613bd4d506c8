/* nn_cuda_tile — the tile planner: the largest cubic output tile whose plan fits in device
 * memory. Sizes come from nn_cuda_size_with (the full layout and cuDNN workspace queries, no
 * allocation), tried from the largest side down, so the answer is exact for the chosen side. */
#include "gpu/nn_cuda_internal.cuh"

/* The device bytes the request may use. */
static bool tile_budget(const struct nn_cuda_tile_request *rq, size_t *budget, struct lm_err *err)
{
    size_t avail = rq->mem_bytes;
    if (avail == 0) {
        size_t free_b = 0, total_b = 0;
        CUDA_TRY(err, cudaMemGetInfo(&free_b, &total_b));
        avail = free_b;
    }
    if (avail <= rq->reserve_bytes)
        return lm_err_set(err,
                          "nn cuda: %.1f MiB of device memory available, %.1f MiB reserved: "
                          "no room for a tile",
                          avail / 1048576.0, rq->reserve_bytes / 1048576.0);
    *budget = avail - rq->reserve_bytes;
    return true;
}

/* Size the plan of side `side`; true when it fits the budget. A side that has no graph or no
 * plan does not fit (the reason of a failed sizing goes to why). */
static bool tile_try(const struct nn_cuda_tile_request *rq, cudnnHandle_t h, int side,
                     size_t budget, struct nn_cuda_tile_plan *out, struct lm_err *why)
{
    struct nn_graph *g = rq->build(side, rq->ctx);
    if (!g)
        return false;
    struct nn_cuda_options opt = nn_cuda_backend_options(rq->backend);
    size_t ws = 0, mem = 0;
    struct lm_err e = {{0}};
    bool ok = nn_cuda_size_with(h, &opt, g, rq->tangents, &ws, &mem, &e);
    nn_graph_destroy(&g);
    if (!ok) {
        *why = e;
        return false;
    }
    if (ws + mem > budget)
        return false;
    out->side = side;
    out->workspace = ws;
    out->memory = mem;
    out->budget = budget;
    return true;
}

bool nn_cuda_plan_tile(const struct nn_cuda_tile_request *rq, struct nn_cuda_tile_plan *out,
                       struct lm_err *err)
{
    if (!nn_backend_is_cuda(rq->backend))
        return lm_err_set(err, "nn cuda: the tile planner needs a CUDA backend, not '%s'",
                          rq->backend->name);
    int lo = (rq->min_side + 7) / 8 * 8, hi = rq->max_side / 8 * 8;
    if (lo < 8)
        lo = 8;
    if (hi < lo)
        return lm_err_set(err, "nn cuda: no multiple of 8 in the tile sides [%d, %d]", rq->min_side,
                          rq->max_side);
    size_t budget = 0;
    if (!tile_budget(rq, &budget, err))
        return false;
    cudnnHandle_t h = NULL;
    cudnnStatus_t st = cudnnCreate(&h);
    if (st != CUDNN_STATUS_SUCCESS)
        return lm_err_set(err, "nn cuda: cudnnCreate failed: %s", cudnnGetErrorString(st));
    bool fits = false;
    struct lm_err why = {{0}};
    for (int side = hi; side >= lo && !fits; side -= 8)
        fits = tile_try(rq, h, side, budget, out, &why);
    cudnnDestroy(h);
    if (!fits && !lm_err_ok(&why))
        return lm_err_set(err, "%s", why.msg);
    if (!fits)
        return lm_err_set(err,
                          "nn cuda: not even a tile of side %d fits in %.1f MiB of device "
                          "memory (%s, %s tangents)",
                          lo, budget / 1048576.0, rq->backend->name,
                          rq->tangents ? "with" : "without");
    return true;
}
