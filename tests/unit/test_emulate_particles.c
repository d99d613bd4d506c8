/* test_emulate_particles — particles from the emulator's results: x = q + Ψ_NL wrapped into the
 * box per axis (also for displacements of several box sides and values rounding to L), v copied,
 * ID = (i n1 + j) n2 + k, only the owned block taken from arrays that reach beyond it. */
#include "stage_emulate.h"
#include "harness.h"

#include "alloc.h"

#include <math.h>
#include <string.h>

static void test_positions_ids_velocities(void)
{
    int n[3] = {8, 16, 24};
    double h = 2.0;
    struct box3 block = {{0, 8, 8}, {8, 13, 16}}, arr = {{0, 8, 8}, {8, 16, 16}};
    int64_t dims[3] = {8, 8, 8}, plane = 512;
    float *psi = lm_calloc("test", 3 * (size_t)plane, sizeof(float));
    float *vel = lm_calloc("test", 3 * (size_t)plane, sizeof(float));
    for (int64_t i = 0; i < 3 * plane; i++) {
        psi[i] = (float)((i % 7) - 3) * 5.5f; /* up to 16.5 Mpc/h: beyond the 16 Mpc/h x side */
        vel[i] = (float)i;
    }
    struct emulate_results r = {psi, vel, arr, {dims[0], dims[1], dims[2]}, plane};
    struct particles *p = emulate_particles_create(&r, &block, n, h);
    T_CHECK(p->n == box3_volume(&block), "%lld particles", (long long)p->n);
    int64_t m = 0, bad_x = 0, bad_v = 0, bad_id = 0;
    for (int64_t i = block.lo[0]; i < block.hi[0]; i++)
        for (int64_t j = block.lo[1]; j < block.hi[1]; j++)
            for (int64_t k = block.lo[2]; k < block.hi[2]; k++, m++) {
                int64_t o = box3_offset(&arr, dims, i, j, k), g[3] = {i, j, k};
                for (int a = 0; a < 3; a++) {
                    double L = n[a] * h, want = fmod(g[a] * h + psi[a * plane + o], L);
                    want += want < 0 ? L : 0;
                    bad_x +=
                        !(p->x[a][m] >= 0 && p->x[a][m] < L && fabs(p->x[a][m] - want) < 1e-5 * L);
                    bad_v += p->v[a][m] != vel[a * plane + o];
                }
                bad_id += p->id[m] != (uint64_t)((i * n[1] + j) * n[2] + k);
            }
    T_CHECK(bad_x == 0 && bad_v == 0 && bad_id == 0,
            "bad positions %lld, velocities %lld, IDs %lld", (long long)bad_x, (long long)bad_v,
            (long long)bad_id);
    particles_destroy(&p);
    lm_free(psi);
    lm_free(vel);
}

/* A position that rounds to L in float is stored as 0, never as L. */
static void test_wrap_rounding(void)
{
    int n[3] = {8, 8, 8};
    struct box3 block = {{7, 0, 0}, {8, 1, 1}};
    int64_t dims[3] = {1, 1, 1};
    float psi[3] = {1.99999999f, -1e-9f, 0.0f}, vel[3] = {1, 2, 3};
    struct emulate_results r = {psi, vel, block, {dims[0], dims[1], dims[2]}, 1};
    struct particles *p = emulate_particles_create(&r, &block, n, 2.0);
    T_CHECK(p->x[0][0] == 0.0f, "x = 14 + 1.99999999 in a 16 box: %.9g", p->x[0][0]);
    T_CHECK(p->x[1][0] == 0.0f, "x = -1e-9 in a 16 box: %.9g", p->x[1][0]);
    T_CHECK(p->id[0] == 7 * 64, "id %llu", (unsigned long long)p->id[0]);
    particles_destroy(&p);
}

int main(void)
{
    T_RUN(test_positions_ids_velocities);
    T_RUN(test_wrap_rounding);
    return t_finish();
}
