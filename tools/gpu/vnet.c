/* vnet — the emulator's styled V-Net graph and random parameters (see vnet.h). */
#include "vnet.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Add one styled-convolution slot named block.layer; returns its index. */
static int slot(struct nn_graph *g, const char *block, const char *layer, int cin, int cout, int k,
                int s, bool tr)
{
    struct nn_conv_desc d = {cin, cout, k, s, tr, ""};
    snprintf(d.name, sizeof d.name, "%s.%s", block, layer);
    return nn_graph_add_conv(g, &d);
}

/* Residual block R(cin -> cout): conv3 -> LReLU -> conv3, + crop(conv1 skip, 2), then act. Nodes
 * are named after their slots. */
static int residual(struct nn_graph *g, int in, int cin, int cout, bool act, const char *name)
{
    int mid = cin > cout ? cin : cout;
    int c0 = slot(g, name, "convs.0", cin, mid, 3, 1, false);
    int c2 = slot(g, name, "convs.2", mid, cout, 3, 1, false);
    int sk = slot(g, name, "skip", cin, cout, 1, 1, false);
    int h = nn_graph_conv(g, in, c0, NN_ACT_LRELU, g->convs[c0].name);
    int r = nn_graph_conv(g, h, c2, NN_ACT_NONE, g->convs[c2].name);
    int s = nn_graph_conv(g, in, sk, NN_ACT_NONE, g->convs[sk].name);
    char sum[NN_NAME_LEN];
    snprintf(sum, sizeof sum, "%.50s.sum", name);
    return nn_graph_add(g, r, nn_graph_crop(g, s, 2, g->convs[sk].name),
                        act ? NN_ACT_LRELU : NN_ACT_NONE, sum);
}

/* Down (k2 s2 conv) or up (k2 s2 transposed conv) block, then LReLU. */
static int resample(struct nn_graph *g, int in, int w, bool up, const char *name)
{
    int sl = slot(g, name, "convs.0", w, w, 2, 2, up);
    return nn_graph_conv(g, in, sl, NN_ACT_LRELU, g->convs[sl].name);
}

/* Up block, then concat [crop(skip, c), up] and residual block (2w -> w). */
static int up_level(struct nn_graph *g, int in, int skip, int crop, int w, const char *up,
                    const char *conv)
{
    int u = resample(g, in, w, true, up);
    int cat = nn_graph_concat(g, nn_graph_crop(g, skip, crop, up), u, up);
    return residual(g, cat, 2 * w, w, true, conv);
}

struct nn_graph *vnet_graph(const int out[3], int w)
{
    struct nn_graph *g = nn_graph_create();
    struct nn_shape s = {3, {out[0] + 96, out[1] + 96, out[2] + 96}};
    int x = nn_graph_input(g, s, "x");
    int y0 = residual(g, residual(g, x, 3, w, true, "conv_l00"), w, w, true, "conv_l01");
    int y1 = residual(g, resample(g, y0, w, false, "down_l0"), w, w, true, "conv_l1");
    int y2 = residual(g, resample(g, y1, w, false, "down_l1"), w, w, true, "conv_l2");
    int c = residual(g, resample(g, y2, w, false, "down_l2"), w, w, true, "conv_c");
    int r2 = up_level(g, c, y2, 4, w, "up_r2", "conv_r2");
    int r1 = up_level(g, r2, y1, 16, w, "up_r1", "conv_r1");
    int r0 = up_level(g, r1, y0, 40, w, "up_r0", "conv_r00");
    int r01 = residual(g, r0, w, 3, false, "conv_r01");
    nn_graph_set_output(g, nn_graph_add(g, r01, nn_graph_crop(g, x, 48, "x48"), NN_ACT_NONE, "y"));
    return g;
}

long long vnet_param_count(const struct nn_graph *g)
{
    long long n = 0;
    for (int i = 0; i < g->n_convs; i++) {
        const struct nn_conv_desc *d = &g->convs[i];
        n += (long long)d->cin * d->cout * d->kernel * d->kernel * d->kernel + d->cout +
             3LL * d->cin;
    }
    return n;
}

double vnet_rand(unsigned long long *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*state >> 11) / 4503599627370496.0 - 1.0;
}

void vnet_params_random(struct vnet_params *P, const struct nn_graph *g, unsigned long long seed)
{
    size_t total = 0;
    for (int c = 0; c < g->n_convs; c++) {
        const struct nn_conv_desc *d = &g->convs[c];
        total +=
            (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel + d->cout + 3 * d->cin;
    }
    P->n = g->n_convs;
    P->store = lm_malloc("vnet.params", (total > 0 ? total : 1) * sizeof(float));
    P->p = lm_calloc("vnet.params", g->n_convs > 0 ? g->n_convs : 1, sizeof *P->p);
    float *a = P->store;
    unsigned long long st = seed * 2654435761ull + 12345;
    for (int c = 0; c < g->n_convs; c++) {
        const struct nn_conv_desc *d = &g->convs[c];
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        float *sw = a, *sb = sw + 2 * d->cin, *w = sb + d->cin, *b = w + nw;
        for (int i = 0; i < d->cin; i++) {
            sw[2 * i] = 0.1f * vnet_rand(&st);
            sw[2 * i + 1] = 0.1f * vnet_rand(&st);
            sb[i] = 1.0f + 0.2f * vnet_rand(&st);
        }
        for (size_t k = 0; k < nw; k++)
            w[k] = vnet_rand(&st);
        for (int o = 0; o < d->cout; o++)
            b[o] = 0.05f * vnet_rand(&st);
        P->p[c].n_style = 2;
        P->p[c].style_weight = sw;
        P->p[c].style_bias = sb;
        P->p[c].weight = w;
        P->p[c].bias = b;
        a = b + d->cout;
    }
}

void vnet_params_free(struct vnet_params *P)
{
    lm_free(P->store);
    lm_free(P->p);
    memset(P, 0, sizeof *P);
}

struct nn_weights *vnet_weights(const struct nn_graph *g, const struct vnet_params *P,
                                double omega_m, double D)
{
    double s[2] = {(omega_m - 0.3) * 5.0, D - 1.0}, ds[2] = {0.0, 1.0};
    struct nn_weights *w = nn_weights_create(g);
    for (int c = 0; c < g->n_convs; c++)
        nn_conv_premodulate(&g->convs[c], &P->p[c], s, ds, &w->conv[c]);
    nn_weights_touch(w);
    return w;
}
