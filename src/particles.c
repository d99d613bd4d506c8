#include "particles.h"

#include "alloc.h"
#include "error.h"

#include <math.h>
#include <string.h>

/* The column table: canonical order of every column a store may hold. */
static const struct {
    unsigned field;
    size_t size;
    const char *label;
} COLS[PARTICLES_MAX_COLUMNS] = {
    {PARTICLES_POS, sizeof(float), "particles.pos"},
    {PARTICLES_POS, sizeof(float), "particles.pos"},
    {PARTICLES_POS, sizeof(float), "particles.pos"},
    {PARTICLES_VEL, sizeof(float), "particles.vel"},
    {PARTICLES_VEL, sizeof(float), "particles.vel"},
    {PARTICLES_VEL, sizeof(float), "particles.vel"},
    {PARTICLES_ID, sizeof(uint64_t), "particles.id"},
    {PARTICLES_WEIGHT, sizeof(float), "particles.weight"},
};

static void *col_get(const struct particles *p, int c)
{
    if (c < 3)
        return p->x[c];
    if (c < 6)
        return p->v[c - 3];
    return c == 6 ? (void *)p->id : (void *)p->w;
}

static void col_set(struct particles *p, int c, void *data)
{
    if (c < 3)
        p->x[c] = data;
    else if (c < 6)
        p->v[c - 3] = data;
    else if (c == 6)
        p->id = data;
    else
        p->w = data;
}

struct particles *particles_create(unsigned fields, int64_t cap)
{
    CHECK((fields & ~(unsigned)PARTICLES_ALL) == 0, "particles: unknown field bits 0x%x", fields);
    CHECK(cap >= 0, "particles: capacity %lld, expected >= 0", (long long)cap);
    struct particles *p = lm_calloc("particles.store", 1, sizeof *p);
    p->fields = fields;
    p->cap = cap;
    for (int c = 0; c < PARTICLES_MAX_COLUMNS; c++)
        if (fields & COLS[c].field)
            col_set(p, c, lm_malloc(COLS[c].label, (size_t)cap * COLS[c].size));
    return p;
}

void particles_destroy(struct particles **pp)
{
    if (!pp || !*pp)
        return;
    for (int c = 0; c < PARTICLES_MAX_COLUMNS; c++)
        lm_free(col_get(*pp, c));
    lm_free(*pp);
    *pp = NULL;
}

void particles_reserve(struct particles *p, int64_t cap)
{
    if (cap <= p->cap)
        return;
    int64_t grown = p->cap + p->cap / 8;
    p->cap = cap > grown ? cap : grown;
    for (int c = 0; c < PARTICLES_MAX_COLUMNS; c++)
        if (p->fields & COLS[c].field)
            col_set(p, c, lm_realloc(col_get(p, c), (size_t)p->cap * COLS[c].size));
}

void particles_resize(struct particles *p, int64_t n)
{
    CHECK(n >= 0, "particles: size %lld, expected >= 0", (long long)n);
    particles_reserve(p, n);
    p->n = n;
}

/* x wrapped into [0, box_size) as a float whose value is below box_size. */
static float wrap_coord(float x, double box_size)
{
    if (x >= 0 && (double)x < box_size)
        return x;
    double y = fmod((double)x, box_size);
    if (y < 0)
        y += box_size;
    float f = (float)y;
    return (double)f >= box_size || f < 0 ? 0.0f : f;
}

/** Positions checked at once by particles_wrap (a vectorisable loop). */
enum { WRAP_BLOCK = 1024 };

/* Compute kernel: threads take blocks of positions; a block is written only when one of its
 * positions lies outside the box (usually none: the positions were wrapped before). */
void particles_wrap(struct particles *p, double box_size)
{
    CHECK(p->fields & PARTICLES_POS, "particles: wrap needs positions");
    CHECK(box_size > 0, "particles: box size %g, expected > 0", box_size);
    const int64_t n = p->n;
    for (int a = 0; a < 3; a++) {
        float *x = p->x[a];
#pragma omp parallel for schedule(static)
        for (int64_t i0 = 0; i0 < n; i0 += WRAP_BLOCK) {
            const int64_t i1 = n - i0 < WRAP_BLOCK ? n : i0 + WRAP_BLOCK;
            int out = 0;
            for (int64_t i = i0; i < i1; i++)
                out |= !(x[i] >= 0) | !((double)x[i] < box_size);
            for (int64_t i = i0; out && i < i1; i++)
                x[i] = wrap_coord(x[i], box_size);
        }
    }
}

int particles_columns(const struct particles *p, unsigned mask,
                      struct particles_column cols[PARTICLES_MAX_COLUMNS])
{
    CHECK((mask & ~p->fields) == 0,
          "particles: fields 0x%x requested but the store holds only 0x%x", mask, p->fields);
    int n = 0;
    for (int c = 0; c < PARTICLES_MAX_COLUMNS; c++)
        if (mask & COLS[c].field)
            cols[n++] = (struct particles_column){COLS[c].field, COLS[c].size, col_get(p, c)};
    return n;
}

size_t particles_record_bytes(unsigned mask)
{
    size_t b = 0;
    for (int c = 0; c < PARTICLES_MAX_COLUMNS; c++)
        if (mask & COLS[c].field)
            b += COLS[c].size;
    return b;
}

/* Gather m elements of size es from col (indices idx, or first + t) into out. */
static void gather(char *restrict out, const char *restrict col, size_t es, const int64_t *idx,
                   int64_t first, int64_t m)
{
    if (!idx) {
        memcpy(out, col + (size_t)first * es, (size_t)m * es);
        return;
    }
    /* Pure copies: threads take records (large packs only, where they pay for themselves). */
    const int threaded = m >= ((int64_t)1 << 15);
    if (es == 4) {
#pragma omp parallel for schedule(static) if (threaded)
        for (int64_t t = 0; t < m; t++)
            memcpy(out + 4 * t, col + 4 * idx[t], 4);
    } else if (es == 8) {
#pragma omp parallel for schedule(static) if (threaded)
        for (int64_t t = 0; t < m; t++)
            memcpy(out + 8 * t, col + 8 * idx[t], 8);
    } else {
#pragma omp parallel for schedule(static) if (threaded)
        for (int64_t t = 0; t < m; t++)
            memcpy(out + (size_t)t * es, col + (size_t)idx[t] * es, es);
    }
}

void particles_pack(const struct particles *p, unsigned mask, const int64_t *idx, int64_t first,
                    int64_t m, void *buf)
{
    struct particles_column cols[PARTICLES_MAX_COLUMNS];
    int n = particles_columns(p, mask, cols);
    char *out = buf;
    for (int c = 0; c < n; c++) {
        gather(out, cols[c].data, cols[c].elem_size, idx, first, m);
        out += (size_t)m * cols[c].elem_size;
    }
}

void particles_unpack(struct particles *p, unsigned mask, int64_t at, int64_t m, const void *buf)
{
    ASSERT(at + m <= p->cap);
    struct particles_column cols[PARTICLES_MAX_COLUMNS];
    int n = particles_columns(p, mask, cols);
    const char *in = buf;
    for (int c = 0; c < n; c++) {
        memcpy((char *)cols[c].data + (size_t)at * cols[c].elem_size, in,
               (size_t)m * cols[c].elem_size);
        in += (size_t)m * cols[c].elem_size;
    }
}

void particles_move(struct particles *p, int64_t dst, int64_t src)
{
    for (int c = 0; c < PARTICLES_MAX_COLUMNS; c++) {
        if (!(p->fields & COLS[c].field))
            continue;
        char *d = col_get(p, c);
        memcpy(d + (size_t)dst * COLS[c].size, d + (size_t)src * COLS[c].size, COLS[c].size);
    }
}
