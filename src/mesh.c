/* mesh — the k-space iterator (see mesh.h). */
#include "mesh.h"

#include <math.h>
#include <string.h>

void fft_kiter_begin_rows(struct fft_kiter *it, const struct fft_layout *l, ptrdiff_t row0,
                          ptrdiff_t row1)
{
    memset(it, 0, sizeof *it);
    it->l = l;
    for (int d = 0; d < 3; d++)
        it->kf[d] = 2 * M_PI / l->box[d];
    ptrdiff_t n = fft_kiter_n_rows(l);
    row0 = row0 < 0 ? 0 : row0;
    row1 = row1 > n ? n : row1;
    it->row = row0;
    it->n_rows = row1;
    it->index = row0 * l->nkz;
    it->w_last = l->n[2] % 2 == 0 ? 1 : 2;
    it->done = row0 >= row1;
    if (it->done)
        return;
    fft_kiter_set_row(it);
    fft_kiter_set_z(it);
}

void fft_kiter_begin(struct fft_kiter *it, const struct fft_layout *l)
{
    fft_kiter_begin_rows(it, l, 0, fft_kiter_n_rows(l));
}

bool fft_check_size(const int n[3], const char *key, struct lm_err *err)
{
    for (int d = 0; d < 3; d++)
        if (n[d] < 2 || n[d] > 65536)
            return lm_err_set(err,
                              "%s: mesh side %d along axis %d is %d; expected an integer in "
                              "[2, 65536] (FFTW-MPI r2c needs at least 2 nodes per axis)",
                              key, d, d, n[d]);
    return true;
}
