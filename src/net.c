/* net — parsing a generic network description, deriving its halo and building the NN graph of a
 * tile (see net.h). */
#include "net.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "config.h"

#define NONE CONFIG_NO_FIELD

/* The description's keys (parsed with the parameter-file machinery: types, ranges, unknown keys
 * with suggestions, line numbers). */
static const struct config_key net_schema[] = {
    {"name", CONFIG_STRING, NULL, NULL, "name of the network", NONE},
    {"inputs.#.name", CONFIG_STRING, NULL, NULL, "input name", NONE},
    {"inputs.#.channels", CONFIG_INT, NULL, "[1, 4096]", "input channels", NONE},
    {"inputs.#.scale", CONFIG_INT, "1", "[1, 64]", "grid spacing in output cells", NONE},
    {"nodes.#.name", CONFIG_STRING, NULL, NULL, "node name", NONE},
    {"nodes.#.op", CONFIG_STRING, NULL, "conv3d|leaky_relu|relu|gelu|add|concat|crop|upsample",
     "operation", NONE},
    {"nodes.#.inputs", CONFIG_STRING_LIST, NULL, NULL, "names of the nodes read", NONE},
    {"nodes.#.kernel", CONFIG_INT, "0", "[0, 63]", "conv3d: kernel size", NONE},
    {"nodes.#.channels", CONFIG_INT, "0", "[0, 4096]", "conv3d: output channels", NONE},
    {"nodes.#.slope", CONFIG_REAL, "0.01", NULL, "leaky_relu: negative slope", NONE},
    {"nodes.#.cells", CONFIG_INT, "-1", "[-1, 1000]", "crop: cells per side", NONE},
    {"nodes.#.like", CONFIG_STRING, "''", NULL, "crop: node whose shape to take", NONE},
    {"nodes.#.mode", CONFIG_STRING, "nearest", "nearest|trilinear", "upsample: interpolation",
     NONE},
    {"output", CONFIG_STRING, NULL, NULL, "the output node", NONE},
};

static const char *const op_names[NET_N_OPS] = {"input", "conv3d", "leaky_relu", "relu",    "gelu",
                                                "add",   "concat", "crop",       "upsample"};

const char *net_op_name(enum net_op op) { return op_names[op]; }

int net_find(const struct net *n, const char *name)
{
    for (int i = 0; i < n->n_nodes; i++)
        if (strcmp(n->nodes[i].name, name) == 0)
            return i;
    return -1;
}

void net_destroy(struct net **n)
{
    if (!n || !*n)
        return;
    for (int i = 0; i < (*n)->n_nodes; i++)
        lm_free((*n)->nodes[i].weight);
    lm_free((*n)->nodes);
    lm_free((*n)->text);
    lm_free(*n);
    *n = NULL;
}

size_t net_weight_count(const struct net *n, int i)
{
    const struct net_node *nd = &n->nodes[i];
    if (nd->op != NET_CONV3D)
        return 0;
    return (size_t)nd->channels * nd->cin * nd->kernel * nd->kernel * nd->kernel;
}

void net_alloc_weights(struct net *n)
{
    for (int i = 0; i < n->n_nodes; i++)
        if (n->nodes[i].op == NET_CONV3D && !n->nodes[i].weight) {
            size_t nw = net_weight_count(n, i);
            n->nodes[i].weight = lm_calloc("net.weights", nw + n->nodes[i].channels, sizeof(float));
            n->nodes[i].bias = n->nodes[i].weight + nw;
        }
}

void net_fill_random(struct net *n, unsigned long seed)
{
    unsigned long long st = seed * 2862933555777941757ull + 3037000493ull;
    net_alloc_weights(n);
    for (int i = 0; i < n->n_nodes; i++) {
        struct net_node *nd = &n->nodes[i];
        size_t nw = net_weight_count(n, i);
        double a = 1.0 / sqrt((double)nd->cin * nd->kernel * nd->kernel * nd->kernel);
        for (size_t k = 0; k < nw + (nd->op == NET_CONV3D ? nd->channels : 0); k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            nd->weight[k] = (float)(a * ((double)(st >> 11) / 4503599627370496.0 - 1.0));
        }
    }
}

int net_max_scale(const struct net *n)
{
    int s = 1;
    for (int k = 0; k < n->n_inputs; k++)
        s = n->nodes[k].scale > s ? n->nodes[k].scale : s;
    return s;
}

void net_input_extent(const struct net *n, int k, const int out[3], int in[3])
{
    for (int a = 0; a < 3; a++)
        in[a] = out[a] / n->nodes[k].scale + 2 * n->halo[k];
}

/* ---- parsing -------------------------------------------------------------------------------- */

/* True when key `what` of node entry `path` was written in the description. */
static bool given(const struct config *c, const char *path, const char *what)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", path, what);
    const struct config_entry *e = config_entry(c, key);
    return e && e->origin == CONFIG_FROM_FILE;
}

static const char *str_at(const struct config *c, const char *path, const char *what)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", path, what);
    return config_string(c, key);
}

static long int_at(const struct config *c, const char *path, const char *what)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", path, what);
    return config_int(c, key);
}

/* Keys allowed for each op beyond name, op and inputs. */
static bool key_allowed(enum net_op op, const char *key)
{
    static const char *const allowed[NET_N_OPS] = {"", "kernel channels", "slope", "", "", "",
                                                   "", "cells like",      "mode"};
    const char *a = allowed[op];
    size_t n = strlen(key);
    for (const char *p = strstr(a, key); p; p = strstr(p + 1, key))
        if ((p == a || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
            return true;
    return false;
}

/* Name of the node, checked unique and non-empty, into nd->name. */
static bool node_name(struct net *n, struct net_node *nd, const char *name, const char *src,
                      struct lm_err *err)
{
    if (!name[0] || strlen(name) >= NN_NAME_LEN - 8 || strchr(name, '/'))
        return lm_err_set(err,
                          "network '%s': node name \"%s\" is empty, longer than %d "
                          "characters or contains '/'",
                          src, name, NN_NAME_LEN - 9);
    if (net_find(n, name) >= 0)
        return lm_err_set(err, "network '%s': two nodes are called '%s'", src, name);
    snprintf(nd->name, sizeof nd->name, "%s", name);
    return true;
}

/* Node entry path ("nodes.<k>") into n->nodes[n->n_nodes]. */
static bool parse_node(struct net *n, const struct config *c, const char *path, const char *src,
                       struct lm_err *err)
{
    struct net_node *nd = &n->nodes[n->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->like = -1;
    if (!node_name(n, nd, str_at(c, path, "name"), src, err))
        return false;
    const char *op = str_at(c, path, "op");
    for (nd->op = NET_CONV3D; nd->op < NET_N_OPS && strcmp(op, op_names[nd->op]); nd->op++)
        ;
    static const char *const keys[] = {"kernel", "channels", "slope", "cells", "like", "mode"};
    for (int k = 0; k < 6; k++)
        if (given(c, path, keys[k]) && !key_allowed(nd->op, keys[k]))
            return lm_err_set(err, "network '%s': node '%s' (%s) takes no key '%s'", src, nd->name,
                              op, keys[k]);
    char key[160];
    snprintf(key, sizeof key, "%s.inputs", path);
    nd->n_in = config_list_n(c, key);
    bool multi = nd->op == NET_ADD || nd->op == NET_CONCAT;
    if (multi ? nd->n_in < 2 || nd->n_in > NET_MAX_NODE_IN : nd->n_in != 1)
        return lm_err_set(err, "network '%s': node '%s' (%s) reads %d inputs, expected %s", src,
                          nd->name, op, nd->n_in, multi ? "2 to 8" : "1");
    for (int k = 0; k < nd->n_in; k++) {
        const char *s = config_list_item(c, key, k);
        if ((nd->in[k] = net_find(n, s)) < 0)
            return lm_err_set(err,
                              "network '%s': node '%s' reads '%s', which is not an input or "
                              "an earlier node",
                              src, nd->name, s);
    }
    nd->kernel = (int)int_at(c, path, "kernel");
    nd->channels = (int)int_at(c, path, "channels");
    snprintf(key, sizeof key, "%s.slope", path);
    nd->slope = (float)config_real(c, key);
    nd->crop = (int)int_at(c, path, "cells");
    nd->mode =
        strcmp(str_at(c, path, "mode"), "trilinear") ? NN_UPSAMPLE_NEAREST : NN_UPSAMPLE_TRILINEAR;
    const char *like = str_at(c, path, "like");
    if (like[0] && (nd->like = net_find(n, like)) < 0)
        return lm_err_set(err,
                          "network '%s': crop '%s' takes the shape of '%s', which is not an "
                          "input or an earlier node",
                          src, nd->name, like);
    if (nd->op == NET_CONV3D && (nd->kernel < 1 || nd->channels < 1))
        return lm_err_set(err, "network '%s': conv3d '%s' needs kernel and channels (>= 1)", src,
                          nd->name);
    if (nd->op == NET_CROP && (nd->crop < 0) == (nd->like < 0))
        return lm_err_set(err, "network '%s': crop '%s' needs exactly one of cells and like", src,
                          nd->name);
    n->n_convs += nd->op == NET_CONV3D;
    n->n_nodes++;
    return true;
}

/* Channels of every node from its inputs (concat sums, conv3d its own, others their input's). */
static bool derive_channels(struct net *n, const char *src, struct lm_err *err)
{
    for (int i = n->n_inputs; i < n->n_nodes; i++) {
        struct net_node *nd = &n->nodes[i];
        int c0 = n->nodes[nd->in[0]].channels, sum = 0;
        for (int k = 0; k < nd->n_in; k++) {
            int ck = n->nodes[nd->in[k]].channels;
            sum += ck;
            if (nd->op == NET_ADD && ck != c0)
                return lm_err_set(err,
                                  "network '%s': add '%s' of '%s' (%d channels) and '%s' "
                                  "(%d channels)",
                                  src, nd->name, n->nodes[nd->in[0]].name, c0,
                                  n->nodes[nd->in[k]].name, ck);
        }
        if (nd->op == NET_CONV3D)
            nd->cin = c0;
        else
            nd->channels = nd->op == NET_CONCAT ? sum : c0;
    }
    return true;
}

/* Require margin m2 at grid spacing f of node j (read by node `by`). */
static bool require(struct net *n, int j, int f, int m2, int by, const char *src,
                    struct lm_err *err)
{
    struct net_node *nd = &n->nodes[j];
    if (nd->scale == 0) {
        nd->scale = f;
        nd->margin2 = m2;
    } else if (nd->scale != f) {
        return lm_err_set(err, "network '%s': '%s' is read on grids of spacing %d and %d (by '%s')",
                          src, nd->name, nd->scale, f, n->nodes[by].name);
    } else if (m2 > nd->margin2) {
        nd->margin2 = m2;
    }
    return true;
}

/* Walk back from the output: every node's grid spacing and margin; the inputs' halos. */
static bool derive_halo(struct net *n, const int *declared, const char *src, struct lm_err *err)
{
    for (int i = 0; i < n->n_nodes; i++)
        n->nodes[i].scale = n->nodes[i].margin2 = 0;
    n->nodes[n->output].scale = 1;
    for (int i = n->n_nodes - 1; i >= n->n_inputs; i--) {
        const struct net_node *nd = &n->nodes[i];
        if (nd->scale == 0)
            return lm_err_set(err, "network '%s': node '%s' does not contribute to the output '%s'",
                              src, nd->name, n->nodes[n->output].name);
        int f = nd->scale, m2 = nd->margin2;
        if (nd->op == NET_CONV3D)
            m2 += (nd->kernel - 1) * f;
        else if (nd->op == NET_CROP && nd->like < 0)
            m2 += 2 * nd->crop * f;
        else if (nd->op == NET_UPSAMPLE)
            m2 += nd->mode == NN_UPSAMPLE_TRILINEAR ? 2 * f : 0, f *= 2;
        for (int k = 0; k < nd->n_in; k++)
            if (!require(n, nd->in[k], f, m2, i, src, err))
                return false;
    }
    for (int k = 0; k < n->n_inputs; k++) {
        const struct net_node *nd = &n->nodes[k];
        if (nd->scale == 0)
            return lm_err_set(err, "network '%s': input '%s' is not used", src, nd->name);
        if (nd->scale != declared[k])
            return lm_err_set(err,
                              "network '%s': input '%s' is declared with scale %d but the "
                              "graph reads it on a grid of spacing %d output cells",
                              src, nd->name, declared[k], nd->scale);
        n->halo[k] = (nd->margin2 + 2 * nd->scale - 1) / (2 * nd->scale);
    }
    return true;
}

/* Inputs, nodes and output of the finalized description c. */
static bool parse_all(struct net *n, const struct config *c, const char *src, int *declared,
                      struct lm_err *err)
{
    char(*idx)[64] = lm_malloc("net.parse", 1024 * sizeof *idx);
    snprintf(n->name, sizeof n->name, "%s", config_string(c, "name"));
    n->n_inputs = config_children(c, "inputs", idx, 1024);
    int n_nodes = config_children(c, "nodes", idx + 0, 1024);
    bool ok = true;
    if (n->n_inputs < 1 || n->n_inputs > NN_MAX_INPUTS || n_nodes < 1)
        ok = lm_err_set(err, "network '%s': %d inputs (expected 1 to %d) and %d nodes", src,
                        n->n_inputs, NN_MAX_INPUTS, n_nodes);
    n->nodes = lm_calloc("net.nodes", (size_t)n->n_inputs + n_nodes + 1, sizeof *n->nodes);
    config_children(c, "inputs", idx, 1024);
    for (int k = 0; k < n->n_inputs && ok; k++) {
        char p[96];
        snprintf(p, sizeof p, "inputs.%s", idx[k]);
        struct net_node *nd = &n->nodes[k];
        nd->op = NET_INPUT;
        nd->like = -1;
        ok = node_name(n, nd, str_at(c, p, "name"), src, err);
        nd->channels = (int)int_at(c, p, "channels");
        declared[k] = (int)int_at(c, p, "scale");
        n->n_nodes += ok;
    }
    config_children(c, "nodes", idx, 1024);
    for (int k = 0; k < n_nodes && ok; k++) {
        char p[96];
        snprintf(p, sizeof p, "nodes.%s", idx[k]);
        ok = parse_node(n, c, p, src, err);
    }
    lm_free(idx);
    if (ok && (n->output = net_find(n, config_string(c, "output"))) < n->n_inputs)
        ok = lm_err_set(err, "network '%s': output '%s' is not a node", src,
                        config_string(c, "output"));
    return ok;
}

struct net *net_parse(const char *yaml, const char *source, struct lm_err *err)
{
    struct config *c = config_create(net_schema, sizeof net_schema / sizeof *net_schema);
    struct net *n = lm_calloc("net", 1, sizeof *n);
    n->text = lm_malloc("net.text", strlen(yaml) + 1);
    memcpy(n->text, yaml, strlen(yaml) + 1);
    int declared[NN_MAX_INPUTS] = {0};
    bool ok = config_load_string(c, yaml, source, err) && config_finalize(c, err) &&
              parse_all(n, c, source, declared, err) && derive_channels(n, source, err) &&
              derive_halo(n, declared, source, err);
    config_destroy(&c);
    if (ok) { /* a probe tile checks every shape */
        int m = 2 * net_max_scale(n), out[3] = {m, m, m};
        struct nn_graph *g = net_graph(n, out, err);
        ok = g != NULL;
        nn_graph_destroy(&g);
    }
    if (!ok)
        net_destroy(&n);
    return n;
}

/* ---- graphs ------------------------------------------------------------------------------- */

/* The nn node of a crop `like` another: the same central cells on every axis. */
static int graph_crop_like(struct nn_graph *g, const struct net_node *nd, int in, int like,
                           struct lm_err *err)
{
    struct nn_shape a = g->nodes[in].shape, b = g->nodes[like].shape;
    int d = a.n[0] - b.n[0];
    if (d < 0 || d % 2 || a.n[1] - b.n[1] != d || a.n[2] - b.n[2] != d) {
        lm_err_set(err,
                   "network: crop '%s' cannot take '%s' (%dx%dx%d) to the shape of '%s' "
                   "(%dx%dx%d) by equal cells on both sides of every axis",
                   nd->name, g->nodes[in].name, a.n[0], a.n[1], a.n[2], g->nodes[like].name, b.n[0],
                   b.n[1], b.n[2]);
        return -1;
    }
    return nn_graph_crop(g, in, d / 2, nd->name);
}

/* Add node i of the net to g (map: net node -> nn node); returns its nn node or -1. */
static int graph_node(struct nn_graph *g, const struct net *n, int i, const int *map,
                      struct lm_err *err)
{
    const struct net_node *nd = &n->nodes[i];
    int x = map[nd->in[0]];
    switch (nd->op) {
    case NET_CONV3D: {
        struct nn_conv_desc d = {nd->cin, nd->channels, nd->kernel, 1, false, ""};
        snprintf(d.name, sizeof d.name, "%s", nd->name);
        return nn_graph_conv(g, x, nn_graph_add_conv(g, &d), NN_ACT_NONE, nd->name);
    }
    case NET_LEAKY_RELU:
        return nn_graph_act(g, x, NN_ACT_LRELU, nd->slope, nd->name);
    case NET_RELU:
        return nn_graph_act(g, x, NN_ACT_RELU, 0.0f, nd->name);
    case NET_GELU:
        return nn_graph_act(g, x, NN_ACT_GELU, 0.0f, nd->name);
    case NET_CROP:
        return nd->like >= 0 ? graph_crop_like(g, nd, x, map[nd->like], err)
                             : nn_graph_crop(g, x, nd->crop, nd->name);
    case NET_UPSAMPLE:
        return nn_graph_upsample(g, x, nd->mode, nd->name);
    default: /* ADD, CONCAT: a chain of binary nodes, the last one named after the node */
        for (int k = 1; k < nd->n_in; k++) {
            char name[NN_NAME_LEN];
            snprintf(name, sizeof name, k + 1 < nd->n_in ? "%s#%d" : "%s", nd->name, k);
            x = nd->op == NET_ADD ? nn_graph_add(g, x, map[nd->in[k]], NN_ACT_NONE, name)
                                  : nn_graph_concat(g, x, map[nd->in[k]], name);
        }
        return x;
    }
}

struct nn_graph *net_graph(const struct net *n, const int out[3], struct lm_err *err)
{
    int s = net_max_scale(n);
    if (out[0] % s || out[1] % s || out[2] % s || out[0] < s || out[1] < s || out[2] < s)
        return lm_err_set(err,
                          "network '%s': output tile %dx%dx%d is not a positive multiple of "
                          "the inputs' largest scale %d",
                          n->name, out[0], out[1], out[2], s),
               NULL;
    struct nn_graph *g = nn_graph_create();
    int *map = lm_malloc("net.graph", n->n_nodes * sizeof *map);
    for (int k = 0; k < n->n_inputs; k++) {
        struct nn_shape sh = {n->nodes[k].channels, {0, 0, 0}};
        net_input_extent(n, k, out, sh.n);
        map[k] = nn_graph_input(g, sh, n->nodes[k].name);
    }
    bool ok = nn_graph_ok(g);
    for (int i = n->n_inputs; i < n->n_nodes && ok; i++)
        ok = (map[i] = graph_node(g, n, i, map, err)) >= 0 && nn_graph_ok(g);
    if (ok && !nn_graph_ok(g))
        ok = false;
    if (!ok && lm_err_ok(err))
        lm_err_set(err, "network '%s': %s", n->name, g->err.msg);
    struct nn_shape o = ok ? g->nodes[map[n->output]].shape : (struct nn_shape){0, {0, 0, 0}};
    if (ok && (o.n[0] != out[0] || o.n[1] != out[1] || o.n[2] != out[2]))
        ok =
            lm_err_set(err, "network '%s': output '%s' is %dx%dx%d for a tile of %dx%dx%d", n->name,
                       n->nodes[n->output].name, o.n[0], o.n[1], o.n[2], out[0], out[1], out[2]);
    if (ok)
        nn_graph_set_output(g, map[n->output]);
    lm_free(map);
    if (!ok)
        nn_graph_destroy(&g);
    return g;
}

struct nn_weights *net_weights(const struct net *n, const struct nn_graph *g)
{
    struct nn_weights *w = nn_weights_create(g);
    int slot = 0;
    for (int i = 0; i < n->n_nodes; i++)
        if (n->nodes[i].op == NET_CONV3D) {
            CHECK(n->nodes[i].weight, "network '%s': conv3d '%s' has no weights", n->name,
                  n->nodes[i].name);
            nn_conv_set_plain(&g->convs[slot], n->nodes[i].weight, n->nodes[i].bias,
                              &w->conv[slot]);
            slot++;
        }
    nn_weights_touch(w);
    return w;
}
