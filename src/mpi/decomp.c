#include "mpi/decomp.h"

#include "alloc.h"
#include "mpi/comm.h"

#include <string.h>

void decomp_coords_of_rank(const struct decomp *d, int r, int c[3])
{
    c[2] = r % d->dims[2];
    c[1] = (r / d->dims[2]) % d->dims[1];
    c[0] = r / (d->dims[2] * d->dims[1]);
}

struct box3 decomp_box_of(const struct decomp *d, int r)
{
    int c[3];
    decomp_coords_of_rank(d, r, c);
    struct box3 b;
    for (int a = 0; a < 3; a++) {
        b.lo[a] = d->split[a][c[a]];
        b.hi[a] = d->split[a][c[a] + 1];
    }
    return b;
}

bool decomp_same(const struct decomp *a, const struct decomp *b)
{
    for (int k = 0; k < 3; k++) {
        if (a->n[k] != b->n[k] || a->dims[k] != b->dims[k])
            return false;
        for (int c = 0; c <= a->dims[k]; c++)
            if (a->split[k][c] != b->split[k][c])
                return false;
    }
    return true;
}

static void check_args(MPI_Comm comm, const int n[3], const int dims[3],
                       const int64_t *const splits[3])
{
    int size = comm_size(comm);
    CHECK(dims[0] >= 1 && dims[1] >= 1 && dims[2] >= 1 && dims[0] * dims[1] * dims[2] == size,
          "decomposition: process grid %dx%dx%d does not match %d ranks", dims[0], dims[1], dims[2],
          size);
    for (int a = 0; a < 3; a++) {
        CHECK(n[a] >= 1, "decomposition: mesh size n[%d] = %d, expected >= 1", a, n[a]);
        CHECK(splits[a][0] == 0 && splits[a][dims[a]] == n[a],
              "decomposition: axis %d split runs from %lld to %lld, expected 0 to %d", a,
              (long long)splits[a][0], (long long)splits[a][dims[a]], n[a]);
        for (int c = 0; c < dims[a]; c++)
            CHECK(splits[a][c] <= splits[a][c + 1],
                  "decomposition: axis %d split decreases at grid coordinate %d", a, c);
    }
}

/* The shared constructor: tables from splits, this rank's coordinates and box. */
static void decomp_init(struct decomp *d, MPI_Comm comm, enum decomp_kind kind, const int n[3],
                        const int dims[3], const int64_t *const splits[3])
{
    check_args(comm, n, dims, splits);
    memset(d, 0, sizeof *d);
    d->kind = kind;
    MPI_CHECK(MPI_Comm_dup(comm, &d->comm));
    d->rank = comm_rank(d->comm);
    d->n_ranks = comm_size(d->comm);
    for (int a = 0; a < 3; a++) {
        d->n[a] = n[a];
        d->dims[a] = dims[a];
        d->split[a] = lm_malloc("decomp.tables", (size_t)(dims[a] + 1) * sizeof(int64_t));
        d->owner[a] = lm_malloc("decomp.tables", (size_t)n[a] * sizeof(int));
        memcpy(d->split[a], splits[a], (size_t)(dims[a] + 1) * sizeof(int64_t));
        for (int c = 0; c < dims[a]; c++)
            for (int64_t i = splits[a][c]; i < splits[a][c + 1]; i++)
                d->owner[a][i] = c;
    }
    decomp_coords_of_rank(d, d->rank, d->coords);
    d->box = decomp_box_of(d, d->rank);
}

void decomp_create_splits(struct decomp *d, MPI_Comm comm, const int n[3], const int dims[3],
                          const int64_t *const splits[3])
{
    decomp_init(d, comm, DECOMP_BLOCKS, n, dims, splits);
}

/* Even split of n over m coordinates: the first n % m get one more. */
static int64_t *even_split(int n, int m)
{
    int64_t *s = lm_malloc("decomp.tmp", (size_t)(m + 1) * sizeof(int64_t));
    s[0] = 0;
    for (int c = 0; c < m; c++)
        s[c + 1] = s[c] + n / m + (c < n % m ? 1 : 0);
    return s;
}

void decomp_create_blocks(struct decomp *d, MPI_Comm comm, const int n[3], const int dims[3])
{
    int g[3] = {0, 0, 0};
    if (dims)
        memcpy(g, dims, sizeof g);
    int size = comm_size(comm);
    if (g[0] == 0 || g[1] == 0 || g[2] == 0)
        MPI_CHECK(MPI_Dims_create(size, 3, g));
    int64_t *s[3];
    for (int a = 0; a < 3; a++)
        s[a] = even_split(n[a], g[a] > 0 ? g[a] : 1);
    decomp_init(d, comm, DECOMP_BLOCKS, n, g, (const int64_t *const *)s);
    for (int a = 0; a < 3; a++)
        lm_free(s[a]);
}

/* Slabs from per-rank (n0, start) pairs that must tile [0, n0) in rank order. */
static void slabs_from_pairs(struct decomp *d, MPI_Comm comm, const int n[3], const int64_t *pairs)
{
    int size = comm_size(comm);
    int64_t *s0 = lm_malloc("decomp.tmp", (size_t)(size + 1) * sizeof(int64_t));
    int64_t m1[2] = {0, n[1]}, m2[2] = {0, n[2]};
    s0[0] = 0;
    for (int r = 0; r < size; r++) {
        int64_t n0 = pairs[2 * r], start = pairs[2 * r + 1];
        CHECK(n0 >= 0 && (n0 == 0 || start == s0[r]),
              "slab decomposition: rank %d holds %lld planes from %lld, expected them to start at "
              "%lld (splits must tile [0, %d) in rank order)",
              r, (long long)n0, (long long)start, (long long)s0[r], n[0]);
        s0[r + 1] = s0[r] + n0;
    }
    CHECK(s0[size] == n[0], "slab decomposition: the ranks hold %lld planes in all, expected %d",
          (long long)s0[size], n[0]);
    const int dims[3] = {size, 1, 1};
    const int64_t *const splits[3] = {s0, m1, m2};
    decomp_init(d, comm, DECOMP_SLABS, n, dims, splits);
    lm_free(s0);
}

void decomp_create_slabs(struct decomp *d, MPI_Comm comm, const int n[3], ptrdiff_t local_n0,
                         ptrdiff_t local_0_start)
{
    int size = comm_size(comm);
    int64_t mine[2] = {local_n0, local_0_start};
    int64_t *pairs = lm_malloc("decomp.tmp", (size_t)size * 2 * sizeof(int64_t));
    MPI_CHECK(MPI_Allgather(mine, 2, MPI_INT64_T, pairs, 2, MPI_INT64_T, comm));
    slabs_from_pairs(d, comm, n, pairs);
    lm_free(pairs);
}

void decomp_create_slabs_default(struct decomp *d, MPI_Comm comm, const int n[3])
{
    int size = comm_size(comm);
    int64_t block = (n[0] + size - 1) / size;
    int64_t *pairs = lm_malloc("decomp.tmp", (size_t)size * 2 * sizeof(int64_t));
    for (int r = 0; r < size; r++) {
        int64_t start = r * block < n[0] ? r * block : n[0];
        int64_t end = start + block < n[0] ? start + block : n[0];
        pairs[2 * r] = end - start;
        pairs[2 * r + 1] = start;
    }
    slabs_from_pairs(d, comm, n, pairs);
    lm_free(pairs);
}

void decomp_destroy(struct decomp *d)
{
    if (!d || !d->split[0])
        return;
    for (int a = 0; a < 3; a++) {
        lm_free(d->split[a]);
        lm_free(d->owner[a]);
    }
    if (d->comm != MPI_COMM_NULL)
        MPI_CHECK(MPI_Comm_free(&d->comm));
    memset(d, 0, sizeof *d);
}
