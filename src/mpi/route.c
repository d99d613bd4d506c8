/* route — values back to the origin of their items (route.h). */
#include "mpi/route.h"

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "mpi/comm.h"
#include "timer.h"

#define ROUTE_INDEX_MASK (((uint64_t)1 << 40) - 1)

/** Store the values of item i at its origin index on this rank. */
static void store(int64_t i, uint64_t idx, int width, const float *const val[], int64_t n_out,
                  float *const out[])
{
    CHECK((int64_t)idx < n_out, "route: index %llu of %lld items", (unsigned long long)idx,
          (long long)n_out);
    for (int c = 0; c < width; c++)
        out[c][idx] = val[c][i];
}

/* Items whose origin is this rank are stored directly; the others are packed by origin rank (rank
 * order, item order within a rank), one record being the origin index (8 bytes) followed by the
 * width values, and exchanged with one MPI_Alltoallv. */
void route_back(MPI_Comm comm, int64_t n, const uint64_t *origin, int width,
                const float *const val[], int64_t n_out, float *const out[])
{
    timer_start("route");
    int size = comm_size(comm), me = comm_rank(comm);
    size_t rec = sizeof(uint64_t) + (size_t)width * sizeof(float);
    int *cnt = lm_calloc("route", 4 * (size_t)size, sizeof(int));
    int *rcnt = cnt + size, *sdisp = cnt + 2 * size, *rdisp = cnt + 3 * size;
    int64_t n_here = 0;
    for (int64_t i = 0; i < n; i++) {
        int r = (int)(origin[i] >> 40);
        if (r == me) {
            store(i, origin[i] & ROUTE_INDEX_MASK, width, val, n_out, out);
            n_here++;
        } else {
            cnt[r]++;
        }
    }
    MPI_CHECK(MPI_Alltoall(cnt, 1, MPI_INT, rcnt, 1, MPI_INT, comm));
    int64_t ns = 0, nr = 0;
    for (int r = 0; r < size; r++) {
        sdisp[r] = (int)ns;
        rdisp[r] = (int)nr;
        ns += cnt[r];
        nr += rcnt[r];
    }
    CHECK(nr + n_here == n_out, "route: %lld values arrive for %lld items",
          (long long)(nr + n_here), (long long)n_out);
    CHECK(ns * (int64_t)rec < INT32_MAX && nr * (int64_t)rec < INT32_MAX,
          "route: %lld items on one rank exceed one MPI message (use more ranks)", (long long)ns);
    char *sbuf = lm_malloc("route", (size_t)(ns > 0 ? ns : 1) * rec);
    char *rbuf = lm_malloc("route", (size_t)(nr > 0 ? nr : 1) * rec);
    int *fill = lm_calloc("route", (size_t)size, sizeof(int));
    for (int64_t i = 0; i < n; i++) {
        int r = (int)(origin[i] >> 40);
        if (r == me)
            continue;
        char *d = sbuf + (size_t)(sdisp[r] + fill[r]++) * rec;
        uint64_t idx = origin[i] & ROUTE_INDEX_MASK;
        memcpy(d, &idx, sizeof idx);
        for (int c = 0; c < width; c++)
            memcpy(d + sizeof idx + c * sizeof(float), &val[c][i], sizeof(float));
    }
    for (int r = 0; r < size; r++) {
        cnt[r] *= (int)rec;
        rcnt[r] *= (int)rec;
        sdisp[r] *= (int)rec;
        rdisp[r] *= (int)rec;
    }
    MPI_CHECK(MPI_Alltoallv(sbuf, cnt, sdisp, MPI_BYTE, rbuf, rcnt, rdisp, MPI_BYTE, comm));
    for (int64_t i = 0; i < nr; i++) {
        const char *s = rbuf + (size_t)i * rec;
        uint64_t idx;
        memcpy(&idx, s, sizeof idx);
        CHECK((int64_t)idx < n_out, "route: index %llu of %lld items", (unsigned long long)idx,
              (long long)n_out);
        for (int c = 0; c < width; c++)
            memcpy(&out[c][idx], s + sizeof idx + c * sizeof(float), sizeof(float));
    }
    lm_free(fill);
    lm_free(sbuf);
    lm_free(rbuf);
    lm_free(cnt);
    timer_stop("route");
}
