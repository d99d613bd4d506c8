/* finite: the first non-finite entry, whatever its position, type and the thread count. */
#include "finite.h"
#include "harness.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>

static void test_first_index(void)
{
    enum { N = 10007 };
    static float f[N];
    static double d[N];
    for (int i = 0; i < N; i++)
        f[i] = (float)i, d[i] = i;
    T_CHECK(finite_first_bad_float(f, N) == -1, "all finite");
    T_CHECK(finite_first_bad_double(d, N) == -1, "all finite");
    T_CHECK(finite_first_bad_float(f, 0) == -1, "empty");
    const int64_t at[] = {0, 1, 5000, N - 1};
    for (int t = 1; t <= 4; t++) {
        omp_set_num_threads(t);
        for (int m = 0; m < 4; m++) {
            f[at[m]] = m % 2 ? INFINITY : NAN;
            d[N - 1] = -INFINITY;
            d[at[m]] = NAN;
            f[N - 1] = NAN; /* a later bad value must not win */
            int64_t got = finite_first_bad_float(f, N), gotd = finite_first_bad_double(d, N);
            T_CHECK(got == at[m], "threads %d: float first bad %lld, expected %lld", t,
                    (long long)got, (long long)at[m]);
            T_CHECK(gotd == at[m], "threads %d: double first bad %lld", t, (long long)gotd);
            f[at[m]] = (float)at[m], d[at[m]] = (double)at[m];
            f[N - 1] = N - 1, d[N - 1] = N - 1;
        }
    }
}

static void test_block(void)
{
    /* a 5 x 3 x 7 block inside a padded 5 x 4 x 9 array: the padding holds NaN */
    enum { X = 5, Y = 4, Z = 9 };
    static float a[X * Y * Z];
    for (int i = 0; i < X * Y * Z; i++)
        a[i] = NAN;
    int64_t count[3] = {X, 3, 7}, stride[2] = {Y * Z, Z}, cell[3];
    for (int i = 0; i < X; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 7; k++)
                a[(i * Y + j) * Z + k] = 1.0f;
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        T_CHECK(!finite_first_bad_block(a, count, stride, cell), "padding is not scanned");
        a[(3 * Y + 2) * Z + 6] = INFINITY;
        a[(4 * Y + 0) * Z + 0] = NAN;
        bool bad = finite_first_bad_block(a, count, stride, cell);
        T_CHECK(bad && cell[0] == 3 && cell[1] == 2 && cell[2] == 6, "cell %lld %lld %lld",
                (long long)cell[0], (long long)cell[1], (long long)cell[2]);
        a[(3 * Y + 2) * Z + 6] = 1.0f;
        a[(4 * Y + 0) * Z + 0] = 1.0f;
    }
}

int main(void)
{
    T_RUN(test_first_index);
    T_RUN(test_block);
    return t_finish();
}
