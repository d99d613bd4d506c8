/*
 * Exchange-plan tests (run at 1, 2, 3 and 4 ranks) on slabs and blocks of non-cubic meshes with
 * uneven splits and ranks without planes:
 *   - halo fill of an analytic field f(global i, j, k, c) equals f in every ghost cell, for widths
 *     1, 5 and 48 (wider than the blocks and the mesh: several wraps), 1 and 3 components, both
 *     component orders, padded source arrays;
 *   - accumulate is the adjoint of fill (<fill a, g> = <a, accumulate g> to 1e-12), and
 *     accumulate of ones gives every owned cell its exact multiplicity (brute-force count);
 *   - arbitrary wanted boxes (several per rank, any position and size) are filled correctly;
 *   - redistribution slabs -> blocks -> other blocks -> slabs is bitwise the identity.
 */
#define T_USE_MPI
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "harness.h"
#include "mpi/decomp.h"
#include "mpi/exchange.h"

struct dcase {
    const char *name;
    int n[3];
    bool slabs;
    int grid[3];
};

static const struct dcase CASES[] = {
    {"slabs 10x7x13", {10, 7, 13}, true, {0, 0, 0}},
    {"slabs 3x7x5", {3, 7, 5}, true, {0, 0, 0}},
    {"blocks 10x7x13", {10, 7, 13}, false, {0, 0, 0}},
    {"blocks 32^3", {32, 32, 32}, false, {0, 0, 0}},
    {"blocks 10x7x13 y-grid", {10, 7, 13}, false, {1, 0, 1}},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

struct variant {
    size_t es;
    int n_comp;
    enum exchange_order order;
    int pad; /* extra allocated cells on the last axis of the owned array */
};

static const struct variant VARIANTS[] = {
    {sizeof(double), 1, EXCHANGE_CELL_MAJOR, 0},
    {sizeof(float), 3, EXCHANGE_COMP_MAJOR, 0},
    {sizeof(double), 3, EXCHANGE_CELL_MAJOR, 3},
};
#define N_VARIANTS ((int)(sizeof VARIANTS / sizeof VARIANTS[0]))

/* A 48-cell halo makes every ghosted array about 100^3 cells: at that width, variants of cost 2
 * are skipped, and those of cost 1 run only on the small meshes (1 and 3 components, both
 * orders, stay covered everywhere). */
static bool skip_heavy(const struct dcase *c, int width, int cost)
{
    if (width < 48)
        return false;
    return cost == 2 || (c->n[0] * c->n[1] * c->n[2] >= 32768 && cost == 1);
}

static void make_decomp(struct decomp *d, const struct dcase *c)
{
    if (c->slabs)
        decomp_create_slabs_default(d, MPI_COMM_WORLD, c->n);
    else
        decomp_create_blocks(d, MPI_COMM_WORLD, c->n, c->grid);
}

static struct exchange_field field_of(const struct variant *v)
{
    return (struct exchange_field){v->es, v->n_comp, v->order};
}

static void dims_of(const struct exchange_array *a, int64_t dims[3])
{
    for (int k = 0; k < 3; k++)
        dims[k] = a->dims[0] || a->dims[1] || a->dims[2] ? a->dims[k] : box3_extent(&a->box, k);
}

static int64_t array_elems(const struct exchange_array *a, int n_comp)
{
    int64_t dims[3];
    dims_of(a, dims);
    return dims[0] * dims[1] * dims[2] * n_comp;
}

/* Element index of component c of global cell (i, j, k) in array a. */
static int64_t elem_at(const struct exchange_array *a, const struct exchange_field *f, int64_t i,
                       int64_t j, int64_t k, int c)
{
    int64_t dims[3];
    dims_of(a, dims);
    int64_t cell = box3_offset(&a->box, dims, i, j, k);
    return f->order == EXCHANGE_COMP_MAJOR ? c * dims[0] * dims[1] * dims[2] + cell
                                           : cell * f->n_comp + c;
}

static double get(const void *a, size_t es, int64_t idx)
{
    return es == sizeof(float) ? ((const float *)a)[idx] : ((const double *)a)[idx];
}

static void put(void *a, size_t es, int64_t idx, double v)
{
    if (es == sizeof(float))
        ((float *)a)[idx] = (float)v;
    else
        ((double *)a)[idx] = v;
}

static double analytic(const int n[3], int64_t i, int64_t j, int64_t k, int c, int n_comp)
{
    int64_t u = box3_wrap(i, n[0]), v = box3_wrap(j, n[1]), w = box3_wrap(k, n[2]);
    return (double)(((u * n[1] + v) * n[2] + w) * n_comp + c + 1);
}

static uint64_t hash64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) from a key. */
static double rnd(uint64_t key) { return (double)(hash64(key) >> 11) / 4503599627370496.0 - 1.0; }

#define FOR_BOX(b, i, j, k)                                                                        \
    for (int64_t i = (b).lo[0]; i < (b).hi[0]; i++)                                                \
        for (int64_t j = (b).lo[1]; j < (b).hi[1]; j++)                                            \
            for (int64_t k = (b).lo[2]; k < (b).hi[2]; k++)

static void fill_analytic(void *arr, const struct exchange_array *a, const struct exchange_field *f,
                          const struct box3 *cells, const int n[3], double scale)
{
    FOR_BOX(*cells, i, j, k)
    for (int c = 0; c < f->n_comp; c++)
        put(arr, f->elem_size, elem_at(a, f, i, j, k, c),
            scale * analytic(n, i, j, k, c, f->n_comp));
}

/* Number of cells of arr (over cells) that differ from scale * analytic. */
static int64_t count_bad(const void *arr, const struct exchange_array *a,
                         const struct exchange_field *f, const struct box3 *cells, const int n[3],
                         double scale)
{
    int64_t bad = 0;
    FOR_BOX(*cells, i, j, k)
    for (int c = 0; c < f->n_comp; c++)
        bad += get(arr, f->elem_size, elem_at(a, f, i, j, k, c)) !=
               scale * analytic(n, i, j, k, c, f->n_comp);
    return bad;
}

static void *alloc_array(const struct exchange_array *a, const struct exchange_field *f,
                         double init)
{
    int64_t m = array_elems(a, f->n_comp);
    void *p = lm_malloc("test.array", (size_t)(m + 1) * f->elem_size);
    if (f->elem_size == sizeof(float) || f->elem_size == sizeof(double))
        for (int64_t q = 0; q < m; q++)
            put(p, f->elem_size, q, init);
    else
        memset(p, 0, (size_t)m * f->elem_size);
    return p;
}

/* A halo of width w: the owned box grown by w on every side (empty when nothing is owned), wanted
 * through the core plan. */
static struct box3 halo_box(const struct decomp *d, int w)
{
    struct box3 empty = {{0, 0, 0}, {0, 0, 0}};
    return box3_empty(&d->box) ? empty : box3_pad(&d->box, w);
}

static struct exchange_plan *halo_plan(const struct decomp *d, const struct exchange_array *own,
                                       int w, const struct exchange_field *f)
{
    struct exchange_array gh = {.box = halo_box(d, w)};
    return exchange_plan_create(d, own, box3_empty(&gh.box) ? 0 : 1, &gh, f);
}

static void test_halo_fill(void)
{
    const int widths[] = {1, 5, 48};
    for (int ci = 0; ci < N_CASES; ci++)
        for (int wi = 0; wi < 3; wi++)
            for (int vi = 0; vi < N_VARIANTS; vi++) {
                if (skip_heavy(&CASES[ci], widths[wi], (const int[]){0, 0, 2}[vi]))
                    continue;
                const struct variant *v = &VARIANTS[vi];
                struct decomp d;
                make_decomp(&d, &CASES[ci]);
                struct exchange_field f = field_of(v);
                struct exchange_array own = {.box = d.box}, gh = {0};
                for (int a = 0; a < 3; a++)
                    own.dims[a] = box3_extent(&d.box, a) + (a == 2 ? v->pad : 0);
                gh.box = halo_box(&d, widths[wi]);
                void *o = alloc_array(&own, &f, -7.0), *g = alloc_array(&gh, &f, -1.0);
                fill_analytic(o, &own, &f, &d.box, d.n, 1.0);
                struct exchange_plan *p = halo_plan(&d, &own, widths[wi], &f);
                exchange_fill(p, o, (void *[]){g});
                int64_t bad = count_bad(g, &gh, &f, &gh.box, d.n, 1.0);
                T_CHECK(bad == 0, "%s width %d variant %d: %lld wrong ghost values", CASES[ci].name,
                        widths[wi], vi, (long long)bad);
                /* the plan is reusable: a second field through the same plan */
                fill_analytic(o, &own, &f, &d.box, d.n, -2.0);
                exchange_fill(p, o, (void *[]){g});
                bad = count_bad(g, &gh, &f, &gh.box, d.n, -2.0);
                T_CHECK(bad == 0, "%s width %d variant %d: %lld wrong on reuse", CASES[ci].name,
                        widths[wi], vi, (long long)bad);
                exchange_plan_destroy(&p);
                T_CHECK(p == NULL, "destroy sets NULL");
                exchange_plan_destroy(&p);
                lm_free(o);
                lm_free(g);
                decomp_destroy(&d);
            }
}

/* <fill a, g> and <a, accumulate g> summed over ranks, for random a and g (double). */
static void adjoint_case(const struct dcase *dc, int width, const struct exchange_field *f, int pad)
{
    struct decomp d;
    make_decomp(&d, dc);
    struct exchange_array own = {.box = d.box}, gh = {.box = halo_box(&d, width)};
    for (int a = 0; a < 3; a++)
        own.dims[a] = box3_extent(&d.box, a) + (a == 2 ? pad : 0);
    double *a = alloc_array(&own, f, 123.0), *g = alloc_array(&gh, f, 0.0);
    double *fa = alloc_array(&gh, f, 0.0), *ag = alloc_array(&own, f, 123.0);
    FOR_BOX(d.box, i, j, k)
    for (int c = 0; c < f->n_comp; c++) {
        uint64_t key = (uint64_t)analytic(d.n, i, j, k, c, f->n_comp);
        a[elem_at(&own, f, i, j, k, c)] = rnd(key);
        ag[elem_at(&own, f, i, j, k, c)] = 99.0; /* overwritten by accumulate */
    }
    for (int64_t q = 0; q < array_elems(&gh, f->n_comp); q++)
        g[q] = rnd(((uint64_t)d.rank << 40) + (uint64_t)q + 0x5151);
    struct exchange_plan *p = halo_plan(&d, &own, width, f);
    exchange_fill(p, a, (void *[]){fa});
    exchange_accumulate(p, (const void *[]){g}, ag, EXCHANGE_DOUBLE);
    double s[3] = {0, 0, 0};
    for (int64_t q = 0; q < array_elems(&gh, f->n_comp); q++) {
        s[0] += fa[q] * g[q];
        s[2] += fabs(fa[q] * g[q]);
    }
    int64_t pad_bad = 0, m = array_elems(&own, f->n_comp);
    FOR_BOX(d.box, i, j, k)
    for (int c = 0; c < f->n_comp; c++) {
        int64_t e = elem_at(&own, f, i, j, k, c);
        s[1] += a[e] * ag[e];
    }
    for (int64_t q = 0; q < m; q++)
        pad_bad += a[q] == 123.0 && ag[q] != 123.0; /* padding is never touched */
    MPI_Allreduce(MPI_IN_PLACE, s, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    T_CHECK(fabs(s[0] - s[1]) <= 1e-12 * s[2], "%s width %d comps %d: <Fa,g> %.17g <a,F'g> %.17g",
            dc->name, width, f->n_comp, s[0], s[1]);
    T_CHECK(pad_bad == 0, "%s: accumulate touched %lld padding cells", dc->name,
            (long long)pad_bad);
    exchange_plan_destroy(&p);
    lm_free(a);
    lm_free(g);
    lm_free(fa);
    lm_free(ag);
    decomp_destroy(&d);
}

static void test_accumulate_adjoint(void)
{
    const int widths[] = {1, 5, 48};
    const struct exchange_field fs[] = {{sizeof(double), 1, EXCHANGE_CELL_MAJOR},
                                        {sizeof(double), 3, EXCHANGE_CELL_MAJOR},
                                        {sizeof(double), 2, EXCHANGE_COMP_MAJOR}};
    for (int ci = 0; ci < N_CASES; ci++)
        for (int wi = 0; wi < 3; wi++)
            for (int fi = 0; fi < 3; fi++)
                if (!skip_heavy(&CASES[ci], widths[wi], (const int[]){0, 2, 1}[fi]))
                    adjoint_case(&CASES[ci], widths[wi], &fs[fi], fi == 1 ? 2 : 0);
}

/* Cells x in [lo, hi) with x = u mod n. */
static int64_t images_on_axis(int64_t lo, int64_t hi, int64_t u, int64_t n)
{
    int64_t cnt = 0;
    for (int64_t x = lo; x < hi; x++)
        cnt += box3_wrap(x, n) == u;
    return cnt;
}

/* accumulate(ones) = number of ghost cells of all ranks imaging each owned cell (float, exact). */
static void test_accumulate_counts(void)
{
    const int widths[] = {0, 2, 48};
    for (int ci = 0; ci < N_CASES; ci++)
        for (int wi = 0; wi < 3; wi++) {
            struct decomp d;
            make_decomp(&d, &CASES[ci]);
            struct exchange_field f = {sizeof(float), 2, EXCHANGE_COMP_MAJOR};
            struct exchange_array own = {.box = d.box}, gh = {.box = halo_box(&d, widths[wi])};
            float *o = alloc_array(&own, &f, -5.0), *g = alloc_array(&gh, &f, 1.0);
            struct exchange_plan *p = halo_plan(&d, NULL, widths[wi], &f);
            exchange_accumulate(p, (const void *[]){g}, o, EXCHANGE_FLOAT);
            int64_t bad = 0;
            FOR_BOX(d.box, i, j, k)
            {
                double expect = 0;
                for (int r = 0; r < d.n_ranks; r++) {
                    struct box3 rb = decomp_box_of(&d, r);
                    if (box3_empty(&rb))
                        continue;
                    struct box3 b = box3_pad(&rb, widths[wi]);
                    expect += (double)images_on_axis(b.lo[0], b.hi[0], i, d.n[0]) *
                              (double)images_on_axis(b.lo[1], b.hi[1], j, d.n[1]) *
                              (double)images_on_axis(b.lo[2], b.hi[2], k, d.n[2]);
                }
                for (int c = 0; c < 2; c++)
                    bad += o[elem_at(&own, &f, i, j, k, c)] != expect;
            }
            T_CHECK(bad == 0, "%s width %d: %lld owned cells with a wrong multiplicity",
                    CASES[ci].name, widths[wi], (long long)bad);
            exchange_plan_destroy(&p);
            lm_free(o);
            lm_free(g);
            decomp_destroy(&d);
        }
}

/* Every rank asks for its own set of arbitrary boxes (padded arrays, both orders). */
static void test_boxes(void)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    for (int ci = 0; ci < N_CASES; ci++)
        for (int oi = 0; oi < 2; oi++) {
            size_t held = alloc_current();
            struct decomp d;
            make_decomp(&d, &CASES[ci]);
            struct exchange_field f = {sizeof(float), 3,
                                       oi ? EXCHANGE_COMP_MAJOR : EXCHANGE_CELL_MAJOR};
            int n_want = rank % 3 + (ci % 2);
            struct exchange_array want[3];
            void *dst[3];
            for (int b = 0; b < n_want; b++) {
                uint64_t key = ((uint64_t)ci << 32) + ((uint64_t)rank << 8) + (uint64_t)b;
                for (int a = 0; a < 3; a++) {
                    want[b].box.lo[a] = (int64_t)(hash64(key + 16 * a) % 90) - 45;
                    want[b].box.hi[a] =
                        want[b].box.lo[a] + (int64_t)(hash64(key + 7 + 16 * a) % 40);
                    want[b].dims[a] = box3_extent(&want[b].box, a) + (int64_t)(b % 2);
                }
                dst[b] = alloc_array(&want[b], &f, -1.0);
            }
            struct exchange_plan *p = exchange_plan_create(&d, NULL, n_want, want, &f);
            float *src = alloc_array(&(struct exchange_array){.box = d.box}, &f, 0.0);
            fill_analytic(src, &(struct exchange_array){.box = d.box}, &f, &d.box, d.n, 1.0);
            exchange_fill(p, src, dst);
            for (int b = 0; b < n_want; b++) {
                int64_t bad = count_bad(dst[b], &want[b], &f, &want[b].box, d.n, 1.0);
                T_CHECK(bad == 0, "%s box %d: %lld wrong values", CASES[ci].name, b,
                        (long long)bad);
                lm_free(dst[b]);
            }
            exchange_plan_destroy(&p);
            lm_free(src);
            decomp_destroy(&d);
            T_CHECK(alloc_current() == held, "plans leak %zu bytes", alloc_current() - held);
        }
}

/* Bits of component c of a global cell: arbitrary patterns (NaNs and denormals included). */
static void cell_bits(const int n[3], int64_t i, int64_t j, int64_t k, int c, size_t es, void *out)
{
    uint64_t h = hash64((uint64_t)analytic(n, i, j, k, c, 4) * 977);
    memcpy(out, &h, es);
}

static int64_t bits_fill_or_check(void *arr, const struct exchange_array *a,
                                  const struct exchange_field *f, const int n[3], bool fill)
{
    int64_t bad = 0;
    unsigned char want[8];
    FOR_BOX(a->box, i, j, k)
    for (int c = 0; c < f->n_comp; c++) {
        char *e = (char *)arr + (size_t)elem_at(a, f, i, j, k, c) * f->elem_size;
        cell_bits(n, i, j, k, c, f->elem_size, want);
        if (fill)
            memcpy(e, want, f->elem_size);
        else
            bad += memcmp(e, want, f->elem_size) != 0;
    }
    return bad;
}

static void redistribute_case(const int n[3], const struct exchange_field *f)
{
    struct decomp s, b1, b2;
    decomp_create_slabs_default(&s, MPI_COMM_WORLD, n);
    decomp_create_blocks(&b1, MPI_COMM_WORLD, n, NULL);
    decomp_create_blocks(&b2, MPI_COMM_WORLD, n, (const int[3]){1, 1, 0});
    struct exchange_array sa = {.box = s.box,
                                .dims = {box3_extent(&s.box, 0), n[1], 2 * (n[2] / 2 + 1)}};
    struct exchange_array a1 = {.box = b1.box}, a2 = {.box = b2.box};
    char *in = alloc_array(&sa, f, 0.0), *out = alloc_array(&sa, f, 0.0);
    char *m1 = alloc_array(&a1, f, 0.0), *m2 = alloc_array(&a2, f, 0.0);
    int64_t m = array_elems(&sa, f->n_comp);
    memset(out, 0xA5, (size_t)m * f->elem_size); /* padding sentinel */
    bits_fill_or_check(in, &sa, f, n, true);
    struct exchange_plan *p1 = exchange_plan_redistribute(&s, &sa, &b1, NULL, f);
    struct exchange_plan *p2 = exchange_plan_redistribute(&b1, NULL, &b2, NULL, f);
    struct exchange_plan *p3 = exchange_plan_redistribute(&b2, NULL, &s, &sa, f);
    exchange_redistribute(p1, in, m1);
    exchange_redistribute(p2, m1, m2);
    exchange_redistribute(p3, m2, out);
    T_CHECK(bits_fill_or_check(m1, &a1, f, n, false) == 0, "%dx%dx%d: blocks wrong", n[0], n[1],
            n[2]);
    T_CHECK(bits_fill_or_check(m2, &a2, f, n, false) == 0, "second blocks wrong");
    T_CHECK(bits_fill_or_check(out, &sa, f, n, false) == 0, "%dx%dx%d: round trip not identity",
            n[0], n[1], n[2]);
    int64_t pad_bad = 0; /* FFTW-style padding of the slab rows is never written */
    for (int64_t i = s.box.lo[0]; i < s.box.hi[0]; i++)
        for (int64_t j = 0; j < n[1]; j++)
            for (int64_t z = n[2]; z < sa.dims[2]; z++)
                for (int c = 0; c < f->n_comp; c++)
                    pad_bad +=
                        (unsigned char)out[elem_at(&sa, f, i, j, z, c) * (int64_t)f->elem_size] !=
                        0xA5;
    T_CHECK(pad_bad == 0, "redistribution wrote %lld padding elements", (long long)pad_bad);
    exchange_plan_destroy(&p1);
    exchange_plan_destroy(&p2);
    exchange_plan_destroy(&p3);
    lm_free(in);
    lm_free(out);
    lm_free(m1);
    lm_free(m2);
    decomp_destroy(&s);
    decomp_destroy(&b1);
    decomp_destroy(&b2);
}

static void test_redistribute(void)
{
    const int meshes[][3] = {{10, 7, 13}, {3, 7, 5}, {16, 12, 8}};
    const struct exchange_field fs[] = {{sizeof(float), 3, EXCHANGE_CELL_MAJOR},
                                        {sizeof(double), 2, EXCHANGE_COMP_MAJOR},
                                        {2, 1, EXCHANGE_CELL_MAJOR}};
    for (int m = 0; m < 3; m++)
        for (int fi = 0; fi < 3; fi++)
            redistribute_case(meshes[m], &fs[fi]);
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    T_RUN(test_halo_fill);
    T_RUN(test_accumulate_adjoint);
    T_RUN(test_accumulate_counts);
    T_RUN(test_boxes);
    T_RUN(test_redistribute);
    return t_finish();
}
