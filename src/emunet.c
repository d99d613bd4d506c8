/* emunet — the styled V-Net of a model as NN graphs, its premodulation, and the single-tile
 * emulator (see emunet.h). */
#include "emunet.h"

#include <stdio.h>

#include "alloc.h"

/* Residual block b on t: two convolutions, the cropped 1x1 skip, the sum and its activation. */
static int graph_residual(struct nn_graph *g, const struct model *m, const struct model_block *b,
                          int t)
{
    const struct model_layer *l0 = &m->layers[b->layer[0]], *l1 = &m->layers[b->layer[1]];
    const struct model_layer *ls = &m->layers[b->layer[2]];
    int h = nn_graph_conv(g, t, b->layer[0], l0->act, l0->desc.name);
    int r = nn_graph_conv(g, h, b->layer[1], l1->act, l1->desc.name);
    int k = nn_graph_conv(g, t, b->layer[2], ls->act, ls->desc.name);
    int c = (l0->desc.kernel - 1) / 2 + (l1->desc.kernel - 1) / 2 - (ls->desc.kernel - 1) / 2;
    char name[NN_NAME_LEN];
    snprintf(name, sizeof name, "%.40s.skip.crop", b->name);
    int kc = c > 0 ? nn_graph_crop(g, k, c, name) : k;
    snprintf(name, sizeof name, "%.40s.sum", b->name);
    return nn_graph_add(g, r, kc, b->act, name);
}

/* The whole network on input node x; returns the output node (or -1, error in g). */
static int graph_blocks(struct nn_graph *g, const struct model *m, int x)
{
    int *kept = lm_malloc("emunet.graph", (m->n_blocks + 1) * sizeof *kept);
    int t = x;
    char name[NN_NAME_LEN];
    for (int b = 0; b < m->n_blocks; b++) {
        const struct model_block *blk = &m->blocks[b];
        if (blk->kind == MODEL_BLOCK_RESIDUAL)
            t = graph_residual(g, m, blk, t);
        else
            t = nn_graph_conv(g, t, blk->layer[0], blk->act, m->layers[blk->layer[0]].desc.name);
        kept[b] = t;
        if (blk->concat_from >= 0) {
            snprintf(name, sizeof name, "%.40s.skip_in", blk->name);
            int s = nn_graph_crop(g, kept[blk->concat_from], blk->concat_crop, name);
            snprintf(name, sizeof name, "%.40s.concat", blk->name);
            t = nn_graph_concat(g, s, t, name);
        }
    }
    lm_free(kept);
    if (m->bypass)
        t = nn_graph_add(g, t, nn_graph_crop(g, x, m->halo, "bypass.crop"), NN_ACT_NONE, "bypass");
    return t;
}

struct nn_graph *emunet_graph_create(const struct model *m, const int out[3], struct lm_err *err)
{
    struct nn_graph *g = nn_graph_create();
    for (int i = 0; i < m->n_layers; i++)
        nn_graph_add_conv(g, &m->layers[i].desc);
    struct nn_shape in = {m->in_channels, {0, 0, 0}};
    for (int a = 0; a < 3; a++)
        in.n[a] = out[a] + 2 * m->halo;
    int x = nn_graph_input(g, in, "psi");
    int y = graph_blocks(g, m, x);
    if (nn_graph_ok(g))
        nn_graph_set_output(g, y);
    struct nn_shape s = nn_graph_ok(g) ? g->nodes[y].shape : (struct nn_shape){0, {0, 0, 0}};
    struct lm_err e = {{0}};
    if (!nn_graph_ok(g))
        lm_err_set(&e, "emulator: tile %dx%dx%d: %s", out[0], out[1], out[2], g->err.msg);
    else if (s.c != m->out_channels || s.n[0] != out[0] || s.n[1] != out[1] || s.n[2] != out[2])
        lm_err_set(&e,
                   "emulator: the network maps a %dx%dx%d input to %dx%dx%dx%d, not %dx%dx%dx%d"
                   ": the model's halo %d does not match its receptive field",
                   in.n[0], in.n[1], in.n[2], s.c, s.n[0], s.n[1], s.n[2], m->out_channels, out[0],
                   out[1], out[2], m->halo);
    if (!lm_err_ok(&e)) {
        lm_err_set(err, "%s", e.msg);
        nn_graph_destroy(&g);
    }
    return g;
}

void emunet_style(double omega_m, double D, double s[2], double ds[2])
{
    s[0] = (omega_m - 0.3) * 5.0;
    s[1] = D - 1.0;
    ds[0] = 0.0;
    ds[1] = 1.0;
}

void emunet_premodulate(const struct model *m, double omega_m, double D, struct nn_weights *w)
{
    double s[2], ds[2];
    emunet_style(omega_m, D, s, ds);
    CHECK(w->n_convs == m->n_layers, "emulator: weights for %d convolutions, the model has %d",
          w->n_convs, m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const struct model_layer *l = &m->layers[i];
        struct nn_styled_params p = {m->n_style, l->style_weight, l->style_bias, l->weight,
                                     l->bias};
        nn_conv_premodulate(&l->desc, &p, s, ds, &w->conv[i]);
    }
    nn_weights_touch(w);
}

double emunet_velocity_factor(double D, double f, double H, double z)
{
    return D * f * H / (1.0 + z);
}

/* ---- single-tile emulator ------------------------------------------------------------------ */

struct emulator {
    const struct model *m;
    struct nn_weights *w;
    double omega_m, D;
    bool styled;
};

struct emulator_tile_plan {
    struct emulator *e;
    struct nn_plan *plan;
    int out[3];
    double macs;
};

struct emulator *emulator_create(const struct model *m, struct lm_err *err)
{
    if (!model_check(m, err))
        return NULL;
    if (m->n_style != 2) {
        lm_err_set(err,
                   "emulator: the model has %d style parameters; the emulator's style is "
                   "[(Omega_m - 0.3) 5, D - 1]",
                   m->n_style);
        return NULL;
    }
    int probe[3] = {8, 8, 8};
    struct nn_graph *g = emunet_graph_create(m, probe, err);
    if (!g)
        return NULL;
    struct emulator *e = lm_calloc("emulator", 1, sizeof *e);
    e->m = m;
    e->w = nn_weights_create(g);
    nn_graph_destroy(&g);
    return e;
}

void emulator_destroy(struct emulator **e)
{
    if (!e || !*e)
        return;
    nn_weights_destroy(&(*e)->w);
    lm_free(*e);
    *e = NULL;
}

void emulator_set_style(struct emulator *e, double omega_m, double D)
{
    CHECK(D > 0 && omega_m > 0 && omega_m <= 1,
          "emulator: style Omega_m = %g, D = %g (expected "
          "0 < Omega_m <= 1 and D > 0)",
          omega_m, D);
    emunet_premodulate(e->m, omega_m, D, e->w);
    e->omega_m = omega_m;
    e->D = D;
    e->styled = true;
}

struct emulator_tile_plan *emulator_tile_plan_create(struct emulator *e, const int out[3],
                                                     bool velocities, const struct nn_backend *be,
                                                     struct lm_err *err)
{
    for (int a = 0; a < 3; a++)
        if (out[a] < 8 || out[a] % 8 != 0) {
            lm_err_set(err,
                       "emulator: tile output %dx%dx%d: every side must be a positive "
                       "multiple of 8",
                       out[0], out[1], out[2]);
            return NULL;
        }
    struct nn_graph *g = emunet_graph_create(e->m, out, err);
    if (!g)
        return NULL;
    struct nn_plan *plan = nn_plan_create(be, g, velocities, err);
    double macs = nn_graph_macs(g);
    nn_graph_destroy(&g);
    if (!plan)
        return NULL;
    struct emulator_tile_plan *p = lm_calloc("emulator", 1, sizeof *p);
    p->e = e;
    p->plan = plan;
    p->macs = macs;
    for (int a = 0; a < 3; a++)
        p->out[a] = out[a];
    return p;
}

size_t emulator_tile_plan_workspace(const struct emulator_tile_plan *p)
{
    return nn_plan_workspace(p->plan);
}

size_t emulator_tile_plan_memory(const struct emulator_tile_plan *p)
{
    return nn_plan_memory(p->plan);
}

double emulator_tile_plan_macs(const struct emulator_tile_plan *p) { return p->macs; }

void *emulator_tile_workspace_alloc(const struct emulator_tile_plan *p)
{
    return nn_plan_workspace_alloc(p->plan, nn_plan_workspace(p->plan));
}

void emulator_tile_workspace_free(const struct emulator_tile_plan *p, void *ws)
{
    nn_plan_workspace_free(p->plan, ws);
}

void emulator_tile_run_views(struct emulator_tile_plan *p, const struct nn_tensor *psi_in,
                             const struct nn_tensor *psi_out, const struct nn_tensor *dpsi_dD,
                             void *workspace)
{
    const struct emulator *e = p->e;
    CHECK(e->styled, "emulator: tile run before emulator_set_style");
    nn_plan_set_weights(p->plan, e->w);
    struct nn_io io = {.x = psi_in,
                       .x_scale = (float)(e->D / EMUNET_PSI_UNIT),
                       .dx_scale = (float)(1.0 / EMUNET_PSI_UNIT),
                       .y = psi_out,
                       .dy = dpsi_dD,
                       .y_scale = (float)EMUNET_PSI_UNIT};
    nn_plan_execute(p->plan, &io, workspace);
}

void emulator_tile_run(struct emulator_tile_plan *p, const float *psi_in, float *psi_out,
                       float *dpsi_dD, void *workspace)
{
    const struct model *m = p->e->m;
    struct nn_shape si = {m->in_channels, {0, 0, 0}}, so = {m->out_channels, {0, 0, 0}};
    for (int a = 0; a < 3; a++) {
        si.n[a] = p->out[a] + 2 * m->halo;
        so.n[a] = p->out[a];
    }
    struct nn_tensor ti = nn_tensor_plain((float *)psi_in, si), to = nn_tensor_plain(psi_out, so);
    struct nn_tensor td = nn_tensor_plain(dpsi_dD, so);
    emulator_tile_run_views(p, &ti, &to, dpsi_dD ? &td : NULL, workspace);
}

void emulator_tile_plan_destroy(struct emulator_tile_plan **p)
{
    if (!p || !*p)
        return;
    nn_plan_destroy(&(*p)->plan);
    lm_free(*p);
    *p = NULL;
}
