/* model — the emulator's architecture and raw weights in memory (see model.h). */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static const char *const residual_layers[3] = {"convs.0", "convs.2", "skip"};
static const char *const single_layers[1] = {"convs.0"};

int model_block_layer_names(enum model_block_kind kind, const char *const **names)
{
    *names = kind == MODEL_BLOCK_RESIDUAL ? residual_layers : single_layers;
    return kind == MODEL_BLOCK_RESIDUAL ? 3 : 1;
}

const char *model_block_kind_name(enum model_block_kind kind)
{
    return kind == MODEL_BLOCK_RESIDUAL ? "residual" : kind == MODEL_BLOCK_DOWN ? "down" : "up";
}

struct model *model_alloc(int n_blocks, int n_layers)
{
    struct model *m = lm_calloc("model", 1, sizeof *m);
    m->format_version = MODEL_FORMAT_VERSION;
    m->n_blocks = n_blocks;
    m->n_layers = n_layers;
    m->blocks = lm_calloc("model", n_blocks > 0 ? n_blocks : 1, sizeof *m->blocks);
    m->layers = lm_calloc("model", n_layers > 0 ? n_layers : 1, sizeof *m->layers);
    return m;
}

static size_t layer_weight_count(const struct nn_conv_desc *d)
{
    return (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
}

void model_layer_alloc(const struct model *m, struct model_layer *l)
{
    const struct nn_conv_desc *d = &l->desc;
    size_t n = (size_t)d->cin * (m->n_style + 1) + layer_weight_count(d) + d->cout;
    l->style_weight = lm_calloc("model.weights", n, sizeof(float));
    l->style_bias = l->style_weight + (size_t)d->cin * m->n_style;
    l->weight = l->style_bias + d->cin;
    l->bias = l->weight + layer_weight_count(d);
}

void model_destroy(struct model **m)
{
    if (!m || !*m)
        return;
    for (int i = 0; i < (*m)->n_layers; i++)
        lm_free((*m)->layers[i].style_weight);
    lm_free((*m)->blocks);
    lm_free((*m)->layers);
    lm_free(*m);
    *m = NULL;
}

/* One row of the V-Net's block table. */
struct vnet_row {
    const char *name;
    enum model_block_kind kind;
    int cin, cout; /* in units of the width; negative: that many raw channels (in/out) */
    bool keep;
    const char *concat_from;
    int concat_crop;
    bool act;
};

/* The styled V-Net of Jamieson et al. 2024: width w, 3 levels; -1 stands for in/out channels. */
static const struct vnet_row vnet_table[] = {
    {"conv_l00", MODEL_BLOCK_RESIDUAL, -1, 1, false, NULL, 0, true},
    {"conv_l01", MODEL_BLOCK_RESIDUAL, 1, 1, true, NULL, 0, true},
    {"down_l0", MODEL_BLOCK_DOWN, 1, 1, false, NULL, 0, true},
    {"conv_l1", MODEL_BLOCK_RESIDUAL, 1, 1, true, NULL, 0, true},
    {"down_l1", MODEL_BLOCK_DOWN, 1, 1, false, NULL, 0, true},
    {"conv_l2", MODEL_BLOCK_RESIDUAL, 1, 1, true, NULL, 0, true},
    {"down_l2", MODEL_BLOCK_DOWN, 1, 1, false, NULL, 0, true},
    {"conv_c", MODEL_BLOCK_RESIDUAL, 1, 1, false, NULL, 0, true},
    {"up_r2", MODEL_BLOCK_UP, 1, 1, false, "conv_l2", 4, true},
    {"conv_r2", MODEL_BLOCK_RESIDUAL, 2, 1, false, NULL, 0, true},
    {"up_r1", MODEL_BLOCK_UP, 1, 1, false, "conv_l1", 16, true},
    {"conv_r1", MODEL_BLOCK_RESIDUAL, 2, 1, false, NULL, 0, true},
    {"up_r0", MODEL_BLOCK_UP, 1, 1, false, "conv_l01", 40, true},
    {"conv_r00", MODEL_BLOCK_RESIDUAL, 2, 1, false, NULL, 0, true},
    {"conv_r01", MODEL_BLOCK_RESIDUAL, 1, -1, false, NULL, 0, false},
};

static int find_block(const struct model *m, const char *name, int before)
{
    for (int b = 0; b < before; b++)
        if (strcmp(m->blocks[b].name, name) == 0)
            return b;
    return -1;
}

/* Append the layers of block b (shapes from its kind and channels). */
static void vnet_add_layers(struct model *m, struct model_block *b, int *n_layers)
{
    const char *const *names;
    int n = model_block_layer_names(b->kind, &names);
    int mid = b->cin > b->cout ? b->cin : b->cout;
    b->n_layers = n;
    for (int k = 0; k < n; k++) {
        struct model_layer *l = &m->layers[*n_layers];
        b->layer[k] = (*n_layers)++;
        struct nn_conv_desc *d = &l->desc;
        snprintf(d->name, sizeof d->name, "%.40s.%.16s", b->name, names[k]);
        bool res = b->kind == MODEL_BLOCK_RESIDUAL;
        d->cin = res && k == 1 ? mid : b->cin;
        d->cout = res && k == 0 ? mid : b->cout;
        d->kernel = res ? (k == 2 ? 1 : 3) : 2;
        d->stride = res ? 1 : 2;
        d->transposed = b->kind == MODEL_BLOCK_UP;
        l->act = res ? (k == 0 ? NN_ACT_LRELU : NN_ACT_NONE) : b->act;
        model_layer_alloc(m, l);
    }
}

struct model *model_create_styled_vnet(int width, int in_channels, int out_channels, int n_style)
{
    int n_blocks = (int)(sizeof vnet_table / sizeof vnet_table[0]), n_layers = 0;
    for (int b = 0; b < n_blocks; b++)
        n_layers += vnet_table[b].kind == MODEL_BLOCK_RESIDUAL ? 3 : 1;
    struct model *m = model_alloc(n_blocks, n_layers);
    m->in_channels = in_channels;
    m->out_channels = out_channels;
    m->width = width;
    m->n_style = n_style;
    m->halo = 48;
    m->bypass = true;
    snprintf(m->source, sizeof m->source, "lemur styled V-Net, width %d", width);
    n_layers = 0;
    for (int b = 0; b < n_blocks; b++) {
        const struct vnet_row *r = &vnet_table[b];
        struct model_block *blk = &m->blocks[b];
        snprintf(blk->name, sizeof blk->name, "%s", r->name);
        blk->kind = r->kind;
        blk->cin = r->cin < 0 ? in_channels : r->cin * width;
        blk->cout = r->cout < 0 ? out_channels : r->cout * width;
        blk->act = r->act ? NN_ACT_LRELU : NN_ACT_NONE;
        blk->keep = r->keep;
        blk->concat_from = r->concat_from ? find_block(m, r->concat_from, b) : -1;
        blk->concat_crop = r->concat_crop;
        vnet_add_layers(m, blk, &n_layers);
    }
    return m;
}

/* Uniform in [-1, 1) from a 64-bit LCG. */
static double lcg(unsigned long long *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 4503599627370496.0 - 1.0;
}

void model_fill_random(struct model *m, unsigned long seed)
{
    unsigned long long s = 0x2545F4914F6CDD1Dull ^ seed;
    for (int i = 0; i < m->n_layers; i++) {
        struct model_layer *l = &m->layers[i];
        const struct nn_conv_desc *d = &l->desc;
        double fan_in = (double)d->cin * d->kernel * d->kernel * d->kernel;
        for (int k = 0; k < d->cin * m->n_style; k++)
            l->style_weight[k] = (float)(0.5 * lcg(&s));
        for (int k = 0; k < d->cin; k++)
            l->style_bias[k] = (float)(1.0 + 0.1 * lcg(&s));
        for (size_t k = 0; k < layer_weight_count(d); k++)
            l->weight[k] = (float)(lcg(&s) * sqrt(3.0 / fan_in));
        for (int k = 0; k < d->cout; k++)
            l->bias[k] = (float)(0.2 * lcg(&s) / sqrt(fan_in));
    }
}

int model_find_layer(const struct model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].desc.name, name) == 0)
            return i;
    return -1;
}

long model_n_params(const struct model *m)
{
    long n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const struct nn_conv_desc *d = &m->layers[i].desc;
        n += (long)d->cin * (m->n_style + 1) + (long)layer_weight_count(d) + d->cout;
    }
    return n;
}

/* The layers of block b agree with its kind and channels. */
static bool check_block_layers(const struct model *m, const struct model_block *b,
                               struct lm_err *err)
{
    const char *const *names;
    int n = model_block_layer_names(b->kind, &names);
    if (b->n_layers != n)
        return lm_err_set(err, "model: block '%s' (%s) has %d layers, expected %d", b->name,
                          model_block_kind_name(b->kind), b->n_layers, n);
    for (int k = 0; k < n; k++) {
        const struct nn_conv_desc *d = &m->layers[b->layer[k]].desc;
        bool res = b->kind == MODEL_BLOCK_RESIDUAL;
        bool in_ok = d->cin == (res && k == 1 ? m->layers[b->layer[0]].desc.cout : b->cin);
        bool out_ok = d->cout == (res && k == 0 ? m->layers[b->layer[1]].desc.cin : b->cout);
        enum nn_act act = m->layers[b->layer[k]].act;
        bool kind_ok = d->transposed == (b->kind == MODEL_BLOCK_UP) &&
                       (res ? d->stride == 1 && d->kernel % 2 == 1 : true) &&
                       (res ? k == 0 || act == NN_ACT_NONE : act == b->act);
        if (!in_ok || !out_ok || !kind_ok)
            return lm_err_set(err,
                              "model: layer '%s' (%s, %d -> %d channels, kernel %d, stride "
                              "%d, activation %s) does not fit %s block '%s' (%d -> %d channels)",
                              d->name, d->transposed ? "tconv" : "conv", d->cin, d->cout, d->kernel,
                              d->stride, act == NN_ACT_LRELU ? "leaky_relu" : "none",
                              model_block_kind_name(b->kind), b->name, b->cin, b->cout);
    }
    return true;
}

bool model_check(const struct model *m, struct lm_err *err)
{
    if (m->n_style < 1 || m->n_style > NN_MAX_STYLE)
        return lm_err_set(err, "model: style size %d (expected 1 to %d)", m->n_style, NN_MAX_STYLE);
    int c = m->in_channels;
    for (int b = 0; b < m->n_blocks; b++) {
        const struct model_block *blk = &m->blocks[b];
        if (blk->cin != c)
            return lm_err_set(err, "model: block '%s' takes %d channels but receives %d", blk->name,
                              blk->cin, c);
        if (!check_block_layers(m, blk, err))
            return false;
        c = blk->cout;
        if (blk->concat_from >= 0) {
            if (blk->concat_from >= b || !m->blocks[blk->concat_from].keep)
                return lm_err_set(err,
                                  "model: block '%s' concatenates the output of a block "
                                  "that is not an earlier kept block",
                                  blk->name);
            c += m->blocks[blk->concat_from].cout;
        }
    }
    if (c != m->out_channels || (m->bypass && m->in_channels != m->out_channels))
        return lm_err_set(err,
                          "model: the network ends with %d channels; expected %d (and equal "
                          "in/out channels for the bypass)",
                          c, m->out_channels);
    return true;
}
