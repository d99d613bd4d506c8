/* lagrangian — site values fetched by particle ID (see lagrangian.h). */
#include "mpi/lagrangian.h"

#include <string.h>

#include "alloc.h"
#include "mpi/comm.h"

static void displs_of(const int *counts, int P, int *displs)
{
    displs[0] = 0;
    for (int r = 1; r < P; r++)
        displs[r] = displs[r - 1] + counts[r - 1];
}

bool lagrangian_fetch(const struct fft_layout *l, int k, const float *vals, int64_t n,
                      const uint64_t *ids, float *out, MPI_Comm comm, struct lm_err *err)
{
    int P = comm_size(comm);
    int64_t N = l->n[0], N3 = N * N * N, mine[2] = {l->rx0, l->rx0 + l->rnx};
    int64_t *x0 = lm_malloc("lagrangian", (size_t)(2 * P) * sizeof *x0);
    MPI_CHECK(MPI_Allgather(mine, 2, MPI_INT64_T, x0, 2, MPI_INT64_T, comm));
    int *owner = lm_calloc("lagrangian", (size_t)N, sizeof *owner); /* rank of each plane */
    for (int r = 0; r < P; r++)
        for (int64_t i = x0[2 * r]; i < x0[2 * r + 1]; i++)
            owner[i] = r;
    int *sc = lm_calloc("lagrangian", (size_t)4 * P, sizeof *sc), *rc = sc + P, *sd = rc + P,
        *rd = sd + P;
    int *dest = lm_malloc("lagrangian", (size_t)(n ? n : 1) * sizeof *dest);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] >= (uint64_t)N3) {
            lm_err_set(err, "bias: particle ID %llu lies outside the %lld^3 Lagrangian grid",
                       (unsigned long long)ids[i], (long long)N);
            dest[i] = 0;
            continue;
        }
        dest[i] = owner[ids[i] / (uint64_t)(N * N)];
        sc[dest[i]]++;
    }
    bool ok = comm_agree_soft(comm, err);
    MPI_CHECK(MPI_Alltoall(sc, 1, MPI_INT, rc, 1, MPI_INT, comm));
    displs_of(sc, P, sd);
    displs_of(rc, P, rd);
    int64_t n_recv = rd[P - 1] + rc[P - 1];
    uint64_t *sid = lm_malloc("lagrangian", (size_t)(n ? n : 1) * sizeof *sid);
    uint64_t *rid = lm_malloc("lagrangian", (size_t)(n_recv ? n_recv : 1) * sizeof *rid);
    int64_t *perm = lm_malloc("lagrangian", (size_t)(n ? n : 1) * sizeof *perm);
    int *fill = lm_calloc("lagrangian", (size_t)P, sizeof *fill);
    for (int64_t i = 0; i < n; i++) { /* stable grouping by destination */
        int64_t at = sd[dest[i]] + fill[dest[i]]++;
        perm[at] = i;
        sid[at] = ok ? ids[i] : 0;
    }
    MPI_CHECK(MPI_Alltoallv(sid, sc, sd, MPI_UINT64_T, rid, rc, rd, MPI_UINT64_T, comm));
    float *rv = lm_malloc("lagrangian", (size_t)(n_recv ? n_recv : 1) * k * sizeof *rv);
    float *sv = lm_malloc("lagrangian", (size_t)(n ? n : 1) * k * sizeof *sv);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n_recv; i++) {
        int64_t site = (int64_t)rid[i] - l->rx0 * N * N;
        if (site < 0 || site >= l->rnx * N * N) /* only after a failed check */
            site = 0;
        memcpy(rv + i * k, vals + site * k, (size_t)k * sizeof *rv);
    }
    for (int r = 0; r < P; r++) {
        sc[r] *= k, rc[r] *= k, sd[r] *= k, rd[r] *= k;
    }
    MPI_CHECK(MPI_Alltoallv(rv, rc, rd, MPI_FLOAT, sv, sc, sd, MPI_FLOAT, comm));
#pragma omp parallel for schedule(static)
    for (int64_t at = 0; at < n; at++)
        memcpy(out + perm[at] * k, sv + at * k, (size_t)k * sizeof *out);
    lm_free(sv);
    lm_free(rv);
    lm_free(fill);
    lm_free(perm);
    lm_free(rid);
    lm_free(sid);
    lm_free(dest);
    lm_free(sc);
    lm_free(owner);
    lm_free(x0);
    return ok;
}
