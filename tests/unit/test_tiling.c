/* test_tiling — the tiles of a block cover it, stay inside tiling.out, have one shape and are
 * anchored on the global 8-cell lattice. */
#include "harness.h"
#include "tiling.h"

#include <stdint.h>
#include <string.h>

/* Count how many tiles cover every cell of out; check the block is covered and tiles are legal. */
static void check_cover(const struct box3 *block, int tile)
{
    struct tiling t;
    tiling_init(&t, block, tile, 48);
    int64_t e[3], n = 1;
    for (int a = 0; a < 3; a++) {
        e[a] = box3_extent(&t.out, a);
        n *= e[a];
        T_CHECK(t.shape[a] % TILING_QUANTUM == 0 && t.shape[a] <= tile, "shape %d", t.shape[a]);
        T_CHECK(t.out.hi[a] - block->hi[a] < TILING_QUANTUM &&
                    block->lo[a] - t.out.lo[a] < TILING_QUANTUM,
                "out exceeds the block by %lld, %lld", (long long)(block->lo[a] - t.out.lo[a]),
                (long long)(t.out.hi[a] - block->hi[a]));
        T_CHECK(t.in.lo[a] == t.out.lo[a] - 48 && t.in.hi[a] == t.out.hi[a] + 48, "in box");
    }
    unsigned char cover[64 * 64 * 64];
    memset(cover, 0, sizeof cover);
    for (int i = 0; i < t.n_tiles; i++) {
        struct box3 b = tiling_tile(&t, i);
        T_CHECK(box3_contains(&t.out, &b), "tile %d outside out", i);
        for (int a = 0; a < 3; a++)
            T_CHECK(box3_wrap(b.lo[a], TILING_QUANTUM) == 0, "tile %d anchor %lld off the lattice",
                    i, (long long)b.lo[a]);
        for (int64_t x = b.lo[0]; x < b.hi[0]; x++)
            for (int64_t y = b.lo[1]; y < b.hi[1]; y++)
                for (int64_t z = b.lo[2]; z < b.hi[2]; z++)
                    cover[box3_offset(&t.out, e, x, y, z)]++;
    }
    int64_t holes = 0;
    for (int64_t x = block->lo[0]; x < block->hi[0]; x++)
        for (int64_t y = block->lo[1]; y < block->hi[1]; y++)
            for (int64_t z = block->lo[2]; z < block->hi[2]; z++)
                holes += cover[box3_offset(&t.out, e, x, y, z)] == 0;
    T_CHECK(holes == 0, "%lld cells of the block not covered (tile %d)", (long long)holes, tile);
    T_CHECK(n <= 64 * 64 * 64, "test box too large");
}

static void test_cover_many_blocks(void)
{
    const int ext[] = {1, 5, 8, 13, 16, 20, 24, 31, 40, 48};
    int n_ext = (int)(sizeof ext / sizeof ext[0]);
    for (int i = 0; i < n_ext; i++)
        for (int j = 0; j < n_ext; j += 3)
            for (int tile = 8; tile <= 32; tile += 8) {
                struct box3 b = {{3, 100, -7}, {3 + ext[i], 100 + ext[j], -7 + ext[(i + j) % 10]}};
                check_cover(&b, tile);
            }
}

static void test_shapes_and_counts(void)
{
    struct box3 b = {{0, 0, 0}, {40, 16, 5}};
    struct tiling t;
    tiling_init(&t, &b, 16, 48);
    T_CHECK(t.shape[0] == 16 && t.shape[1] == 16 && t.shape[2] == 8, "shape %d %d %d", t.shape[0],
            t.shape[1], t.shape[2]);
    T_CHECK(t.n_axis[0] == 3 && t.n_axis[1] == 1 && t.n_axis[2] == 1 && t.n_tiles == 3,
            "n_axis %d %d %d", t.n_axis[0], t.n_axis[1], t.n_axis[2]);
    struct box3 last = tiling_tile(&t, 2);
    T_CHECK(last.lo[0] == 24 && last.hi[0] == 40, "last tile shifted back: %lld..%lld",
            (long long)last.lo[0], (long long)last.hi[0]);
    T_CHECK(t.out.hi[2] == 8, "out reaches past a small block: %lld", (long long)t.out.hi[2]);
    struct box3 in = tiling_tile_input(&t, 0);
    T_CHECK(in.lo[0] == -48 && in.hi[0] == 64, "input box %lld..%lld", (long long)in.lo[0],
            (long long)in.hi[0]);
    struct box3 odd = {{20, 0, 0}, {40, 8, 8}};
    tiling_init(&t, &odd, 32, 48);
    struct box3 c = tiling_cover(&odd);
    T_CHECK(t.out.lo[0] == 16 && t.out.hi[0] == 40 && box3_equal(&c, &t.out),
            "cover of [20, 40): %lld..%lld", (long long)t.out.lo[0], (long long)t.out.hi[0]);
    T_CHECK(t.shape[0] == 24 && t.n_tiles == 1, "one 24-cell tile, got %d of %d", t.n_tiles,
            t.shape[0]);
    struct box3 empty = {{4, 0, 0}, {4, 8, 8}};
    tiling_init(&t, &empty, 16, 48);
    T_CHECK(t.n_tiles == 0 && box3_empty(&t.in), "empty block gives %d tiles", t.n_tiles);
}

static void test_valid_side(void)
{
    T_CHECK(tiling_valid_side(8) && tiling_valid_side(128), "multiples of 8 are valid");
    T_CHECK(!tiling_valid_side(0) && !tiling_valid_side(12) && !tiling_valid_side(-8),
            "0, 12 and -8 are not");
}

int main(void)
{
    T_RUN(test_cover_many_blocks);
    T_RUN(test_shapes_and_counts);
    T_RUN(test_valid_side);
    return t_finish();
}
