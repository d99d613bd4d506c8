/* finite — first non-finite entry of an array (OpenMP, smallest index). */
#include "finite.h"

#include <math.h>

/* Each thread scans a static block and keeps its first bad index; the minimum over threads is the
 * first of the whole array. */
int64_t finite_first_bad_float(const float *a, int64_t n)
{
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first)
    for (int64_t i = 0; i < n; i++)
        if (i < first && !isfinite(a[i]))
            first = i;
    return first < n ? first : -1;
}

int64_t finite_first_bad_double(const double *a, int64_t n)
{
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first)
    for (int64_t i = 0; i < n; i++)
        if (i < first && !isfinite(a[i]))
            first = i;
    return first < n ? first : -1;
}

bool finite_first_bad_block(const float *a, const int64_t count[3], const int64_t stride[2],
                            int64_t cell[3])
{
    int64_t rows = count[0] * count[1], first = rows * count[2];
#pragma omp parallel for schedule(static) reduction(min : first)
    for (int64_t r = 0; r < rows; r++) {
        if (r * count[2] >= first)
            continue;
        const float *row = a + (r / count[1]) * stride[0] + (r % count[1]) * stride[1];
        for (int64_t k = 0; k < count[2]; k++)
            if (!isfinite(row[k])) {
                first = r * count[2] + k;
                break;
            }
    }
    if (first >= rows * count[2])
        return false;
    cell[2] = first % count[2];
    cell[1] = first / count[2] % count[1];
    cell[0] = first / count[2] / count[1];
    return true;
}
