/* tiling — the emulator tiles of one block, anchored on the global 8-cell lattice (see tiling.h).
 */
#include "tiling.h"

#include <string.h>

bool tiling_valid_side(long tile) { return tile > 0 && tile % TILING_QUANTUM == 0; }

/* floor(i / q) q and ceil(i / q) q for i >= 0 or i < 0. */
static int64_t floor_quantum(int64_t i)
{
    int64_t q = TILING_QUANTUM, r = i % q;
    return r < 0 ? i - r - q : i - r;
}

static int64_t ceil_quantum(int64_t i) { return -floor_quantum(-i); }

struct box3 tiling_cover(const struct box3 *block)
{
    struct box3 c = {{0, 0, 0}, {0, 0, 0}};
    if (box3_empty(block))
        return c;
    for (int a = 0; a < 3; a++) {
        c.lo[a] = floor_quantum(block->lo[a]);
        c.hi[a] = ceil_quantum(block->hi[a]);
    }
    return c;
}

void tiling_init(struct tiling *t, const struct box3 *block, int tile, int halo)
{
    memset(t, 0, sizeof *t);
    t->block = *block;
    t->halo = halo;
    if (box3_empty(block))
        return;
    t->out = tiling_cover(block);
    t->n_tiles = 1;
    for (int a = 0; a < 3; a++) {
        int64_t e = box3_extent(&t->out, a);
        t->shape[a] = (int)(e < tile ? e : tile);
        t->n_axis[a] = (int)((e + t->shape[a] - 1) / t->shape[a]);
        t->n_tiles *= t->n_axis[a];
    }
    t->in = box3_pad(&t->out, halo);
}

/* Anchor of tile c along axis a: cover.lo + c s, the last one shifted back inside the cover. */
static int64_t tile_anchor(const struct tiling *t, int a, int c)
{
    int64_t last = box3_extent(&t->out, a) - t->shape[a];
    int64_t off = (int64_t)c * t->shape[a];
    return t->out.lo[a] + (off < last ? off : last);
}

struct box3 tiling_tile(const struct tiling *t, int i)
{
    int c[3] = {i / (t->n_axis[1] * t->n_axis[2]), (i / t->n_axis[2]) % t->n_axis[1],
                i % t->n_axis[2]};
    struct box3 b;
    for (int a = 0; a < 3; a++) {
        b.lo[a] = tile_anchor(t, a, c[a]);
        b.hi[a] = b.lo[a] + t->shape[a];
    }
    return b;
}

struct box3 tiling_tile_input(const struct tiling *t, int i)
{
    struct box3 b = tiling_tile(t, i);
    return box3_pad(&b, t->halo);
}
