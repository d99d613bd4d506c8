/* jerald_params — the maps of jerald.maps.* read from the configuration and validated. */
#include "jerald.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TERM(f)                                                                                    \
    {                                                                                              \
#f, offsetof(struct jerald_term, f)                                                        \
    }
#define FINAL(f)                                                                                   \
    {                                                                                              \
#f, offsetof(struct jerald_final, f)                                                       \
    }
#define DEPL(f)                                                                                    \
    {                                                                                              \
#f, offsetof(struct jerald_depletion, f)                                                   \
    }

const struct jerald_field jerald_term_fields[] = {
    TERM(alpha), TERM(gamma), TERM(kh), TERM(kl), TERM(nu), {NULL, 0},
};
const struct jerald_field jerald_final_fields[] = {
    FINAL(w), FINAL(mu), FINAL(b), FINAL(z_s), {NULL, 0},
};
const struct jerald_field jerald_depletion_fields[] = {
    DEPL(beta1), DEPL(beta2), DEPL(gamma3), DEPL(eta), DEPL(kh),
    DEPL(kl),    DEPL(nu),    DEPL(xi),     {NULL, 0},
};

static const char *const model_names[] = {"dm", "stellar", "hi"};
static const char *const green_names[] = {"dm", "sm"};

const char *jerald_model_name(enum jerald_model m) { return model_names[m]; }
const char *jerald_green_name(enum jerald_green g) { return green_names[g]; }

static double *field_at(void *base, const struct jerald_field *f)
{
    return (double *)((char *)base + f->offset);
}

/* ---- reading --------------------------------------------------------------------------------- */

/** Number of children of path in the configuration (0 when the section is absent). */
static int n_children(const struct config *cfg, const char *path, char (*names)[64], int max)
{
    return config_children(cfg, path, names, max);
}

/** Read the fields of table under prefix into base; keys missing from the file keep 0 (the
 *  schema has filled every default, so only sections that are absent are missing). */
static void read_fields(const struct config *cfg, const char *prefix,
                        const struct jerald_field *table, void *base)
{
    char key[640];
    for (const struct jerald_field *f = table; f->name; f++) {
        snprintf(key, sizeof key, "%s.%s", prefix, f->name);
        *field_at(base, f) = config_has(cfg, key) ? config_real(cfg, key) : 0.0;
    }
}

static bool read_layers(const struct config *cfg, const char *prefix, struct jerald_map *m,
                        struct lm_err *err)
{
    char path[512], names[JERALD_MAX_LAYERS + 1][64], sub[1][64];
    snprintf(path, sizeof path, "%s.layers", prefix);
    int n = n_children(cfg, path, names, JERALD_MAX_LAYERS + 1);
    if (n > JERALD_MAX_LAYERS)
        return lm_err_set(err, "%s: more than %d layers", path, JERALD_MAX_LAYERS);
    m->n_layers = n;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s.layers.%d", prefix, i);
        read_fields(cfg, path, jerald_term_fields, &m->layer[i].density);
        bool hi = m->model == JERALD_MODEL_HI;
        char repel[560];
        snprintf(repel, sizeof repel, "%s.repel", path);
        bool has = n_children(cfg, repel, sub, 1) > 0;
        if (has != hi)
            return lm_err_set(err,
                              hi ? "%s: an HI layer needs its repulsive stellar term "
                                   "(repel: {alpha, gamma, kh, kl, nu})"
                                 : "%s: only layers of HI maps (model: hi) have a repel term",
                              repel);
        if (has)
            read_fields(cfg, repel, jerald_term_fields, &m->layer[i].repel);
    }
    return true;
}

/** The sections final and depletion: present exactly where the model uses them. */
static bool read_final(const struct config *cfg, const char *prefix, struct jerald_map *m,
                       struct lm_err *err)
{
    char path[512], sub[1][64];
    bool want_final = m->model != JERALD_MODEL_DM, want_depl = m->model == JERALD_MODEL_HI;
    snprintf(path, sizeof path, "%s.final", prefix);
    bool has = n_children(cfg, path, sub, 1) > 0;
    if (has != want_final)
        return lm_err_set(err,
                          want_final ? "%s: a %s map needs its final parameters (final: {w, mu, b})"
                                     : "%s: a %s map has no final parameters (only stellar and hi "
                                       "maps do)",
                          path, jerald_model_name(m->model));
    read_fields(cfg, path, jerald_final_fields, &m->final);
    snprintf(path, sizeof path, "%s.depletion", prefix);
    has = n_children(cfg, path, sub, 1) > 0;
    if (has != want_depl)
        return lm_err_set(err,
                          want_depl ? "%s: an hi map needs its depletion parameters (depletion: "
                                      "{beta1, beta2, gamma3, eta, kh, kl, nu, xi})"
                                    : "%s: a %s map has no depletion (only hi maps do)",
                          path, jerald_model_name(m->model));
    read_fields(cfg, path, jerald_depletion_fields, &m->depletion);
    return true;
}

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static bool read_kinds(const struct config *cfg, const char *prefix, struct jerald_map *m,
                       struct lm_err *err)
{
    char key[512];
    snprintf(key, sizeof key, "%s.model", prefix);
    m->model = (enum jerald_model)name_index(model_names, 3, config_string(cfg, key));
    snprintf(key, sizeof key, "%s.green", prefix);
    const char *green = config_string(cfg, key);
    if (m->model == JERALD_MODEL_HI && strcmp(green, "dm") == 0)
        return lm_err_set(err,
                          "%s = dm: HI layers use the sm form for both terms; leave green "
                          "at auto or set sm",
                          key);
    if (strcmp(green, "auto") == 0)
        m->green = m->model == JERALD_MODEL_DM ? JERALD_GREEN_DM : JERALD_GREEN_SM;
    else
        m->green = (enum jerald_green)name_index(green_names, 2, green);
    snprintf(key, sizeof key, "%s.stellar_map", prefix);
    const char *stellar = config_string(cfg, key);
    if (*stellar && m->model != JERALD_MODEL_HI)
        return lm_err_set(err, "%s = '%s': only hi maps name a stellar map", key, stellar);
    snprintf(m->stellar_name, sizeof m->stellar_name, "%s", stellar);
    m->stellar = -1;
    return true;
}

static bool read_map(const struct config *cfg, const char *name, struct jerald_map *m,
                     struct lm_err *err)
{
    char prefix[256];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(prefix, sizeof prefix, "jerald.maps.%s", name);
    return read_kinds(cfg, prefix, m, err) && read_layers(cfg, prefix, m, err) &&
           read_final(cfg, prefix, m, err);
}

bool jerald_set_read(const struct config *cfg, long box_n, struct jerald_set *s, struct lm_err *err)
{
    memset(s, 0, sizeof *s);
    long n_mesh = config_int(cfg, "jerald.n_mesh");
    s->n_mesh = (int)(n_mesh > 0 ? n_mesh : box_n);
    s->gradient_order = (int)config_int(cfg, "jerald.gradient_order");
    s->write_particles = config_bool(cfg, "jerald.write_particles");
    char names[JERALD_MAX_MAPS + 1][64];
    s->n_maps = config_children(cfg, "jerald.maps", names, JERALD_MAX_MAPS + 1);
    if (s->n_maps > JERALD_MAX_MAPS)
        return lm_err_set(err, "jerald.maps: more than %d maps", JERALD_MAX_MAPS);
    for (int i = 0; i < s->n_maps; i++)
        if (!read_map(cfg, names[i], &s->map[i], err))
            return false;
    return jerald_set_check(s, err);
}

/* ---- checks ---------------------------------------------------------------------------------- */

/** Every field of table in base finite. */
static bool check_finite(const char *prefix, const struct jerald_field *table, const void *base,
                         struct lm_err *err)
{
    for (const struct jerald_field *f = table; f->name; f++) {
        double v = *field_at((void *)base, f);
        if (!isfinite(v))
            return lm_err_set(err, "%s.%s = %g: expected a finite number", prefix, f->name, v);
    }
    return true;
}

/** kl > 0 and kh >= 0 (the filters' scales, h/Mpc). */
static bool check_scales(const char *prefix, double kh, double kl, struct lm_err *err)
{
    if (!(kl > 0))
        return lm_err_set(err, "%s.kl = %g: expected kl > 0 [h/Mpc]", prefix, kl);
    if (!(kh >= 0))
        return lm_err_set(err, "%s.kh = %g: expected kh >= 0 [h/Mpc]", prefix, kh);
    return true;
}

static bool check_term(const char *prefix, const struct jerald_term *t, struct lm_err *err)
{
    return check_finite(prefix, jerald_term_fields, t, err) &&
           check_scales(prefix, t->kh, t->kl, err);
}

static bool check_layers(const struct jerald_map *m, struct lm_err *err)
{
    char path[256], repel[300];
    if (m->n_layers < 0 || m->n_layers > JERALD_MAX_LAYERS)
        return lm_err_set(err, "jerald.maps.%s: %d layers, expected 0 to %d", m->name, m->n_layers,
                          JERALD_MAX_LAYERS);
    for (int i = 0; i < m->n_layers; i++) {
        snprintf(path, sizeof path, "jerald.maps.%s.layers.%d", m->name, i);
        snprintf(repel, sizeof repel, "%s.repel", path);
        if (!check_term(path, &m->layer[i].density, err))
            return false;
        if (m->model == JERALD_MODEL_HI && !check_term(repel, &m->layer[i].repel, err))
            return false;
    }
    return true;
}

bool jerald_map_check(const struct jerald_map *m, struct lm_err *err)
{
    char path[256];
    if (!check_layers(m, err))
        return false;
    if (m->model == JERALD_MODEL_DM)
        return true;
    snprintf(path, sizeof path, "jerald.maps.%s.final", m->name);
    if (!check_finite(path, jerald_final_fields, &m->final, err))
        return false;
    if (m->model != JERALD_MODEL_HI)
        return true;
    snprintf(path, sizeof path, "jerald.maps.%s.depletion", m->name);
    if (!check_finite(path, jerald_depletion_fields, &m->depletion, err) ||
        !check_scales(path, m->depletion.kh, m->depletion.kl, err))
        return false;
    if (!m->stellar_name[0])
        return lm_err_set(err,
                          "jerald.maps.%s.stellar_map: the hi map '%s' needs a stellar map "
                          "(the name of a map with model: stellar) to feed its potential and "
                          "depletion",
                          m->name, m->name);
    return true;
}

/** Resolve the stellar source of HI map m among the maps of s. */
static bool resolve_stellar(const struct jerald_set *s, struct jerald_map *m, struct lm_err *err)
{
    for (int j = 0; j < s->n_maps; j++) {
        if (strcmp(s->map[j].name, m->stellar_name) != 0)
            continue;
        if (s->map[j].model != JERALD_MODEL_STELLAR)
            return lm_err_set(err,
                              "jerald.maps.%s.stellar_map = '%s': that map has model %s; "
                              "expected a stellar map",
                              m->name, m->stellar_name, jerald_model_name(s->map[j].model));
        m->stellar = j;
        return true;
    }
    char list[1024] = "";
    for (int j = 0; j < s->n_maps; j++)
        if (s->map[j].model == JERALD_MODEL_STELLAR && strlen(list) + 70 < sizeof list)
            strcat(strcat(list, *list ? ", " : ""), s->map[j].name);
    return lm_err_set(err,
                      "jerald.maps.%s.stellar_map = '%s': no such map (stellar maps defined: "
                      "%s)",
                      m->name, m->stellar_name, *list ? list : "none");
}

bool jerald_set_check(struct jerald_set *s, struct lm_err *err)
{
    if (s->n_mesh < 2 || s->n_mesh > 65536)
        return lm_err_set(err,
                          "jerald.n_mesh = %d (box.n when 0): expected 2 to 65536 mesh cells per "
                          "side (FFTW-MPI real-to-complex transforms)",
                          s->n_mesh);
    if (s->gradient_order != 4 && s->gradient_order != 6)
        return lm_err_set(err, "jerald.gradient_order = %d: expected 4 or 6", s->gradient_order);
    int k = 0;
    for (int i = 0; i < s->n_maps; i++) {
        struct jerald_map *m = &s->map[i];
        if (!jerald_map_check(m, err))
            return false;
        if (m->model == JERALD_MODEL_HI && !resolve_stellar(s, m, err))
            return false;
        s->keep[i] = false;
        if (m->model != JERALD_MODEL_HI)
            s->order[k++] = i;
    }
    for (int i = 0; i < s->n_maps; i++)
        if (s->map[i].model == JERALD_MODEL_HI) {
            s->order[k++] = i;
            s->keep[s->map[i].stellar] = true;
        }
    return true;
}
