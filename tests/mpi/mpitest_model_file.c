/*
 * mpitest_model_file — the collective load of lemur's model file at any rank count (run.sh: 1-4
 * ranks): rank 0 reads and broadcasts, and every rank gets a model identical, bit for bit, to the
 * one written (architecture, block table, every tensor of every layer, source text), and the same
 * on every rank (checksums compared across ranks); a missing file, a file that is not HDF5, a
 * truncated file and a damaged model give NULL on every rank with one message, identical on every
 * rank, naming the file.
 */
#define T_USE_MPI
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "model.h"
#include "mpi/comm.h"
#include "mpi/model_file.h"

static char tmp_dir[512];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/model_file_np%d_%s", tmp_dir, t_size, name);
}

static size_t layer_floats(const struct model *m, const struct model_layer *l, int t)
{
    const struct nn_conv_desc *d = &l->desc;
    size_t k3 = (size_t)d->kernel * d->kernel * d->kernel;
    const size_t n[4] = {(size_t)d->cin * m->n_style, (size_t)d->cin, (size_t)d->cin * d->cout * k3,
                         (size_t)d->cout};
    return n[t];
}

static const float *tensor(const struct model_layer *l, int t)
{
    const float *p[4] = {l->style_weight, l->style_bias, l->weight, l->bias};
    return p[t];
}

/* Number of differences between a and b (header, blocks, layer descriptions and tensors). */
static long count_diffs(const struct model *a, const struct model *b)
{
    long bad = a->in_channels != b->in_channels || a->out_channels != b->out_channels ||
               a->width != b->width || a->n_style != b->n_style || a->halo != b->halo ||
               a->bypass != b->bypass || a->n_blocks != b->n_blocks || a->n_layers != b->n_layers ||
               strcmp(a->source, b->source) != 0;
    if (bad)
        return bad;
    for (int i = 0; i < a->n_blocks; i++)
        bad += strcmp(a->blocks[i].name, b->blocks[i].name) != 0 ||
               a->blocks[i].kind != b->blocks[i].kind ||
               a->blocks[i].concat_from != b->blocks[i].concat_from ||
               a->blocks[i].keep != b->blocks[i].keep;
    for (int i = 0; i < a->n_layers; i++) {
        const struct model_layer *la = &a->layers[i], *lb = &b->layers[i];
        bad += strcmp(la->desc.name, lb->desc.name) != 0 || la->desc.cin != lb->desc.cin ||
               la->desc.cout != lb->desc.cout || la->desc.kernel != lb->desc.kernel;
        for (int t = 0; t < 4 && !bad; t++)
            bad +=
                memcmp(tensor(la, t), tensor(lb, t), layer_floats(a, la, t) * sizeof(float)) != 0;
    }
    return bad;
}

/* FNV-1a over every tensor's bytes. */
static uint64_t checksum(const struct model *m)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < m->n_layers; i++)
        for (int t = 0; t < 4; t++) {
            const unsigned char *p = (const unsigned char *)tensor(&m->layers[i], t);
            for (size_t q = 0; q < layer_floats(m, &m->layers[i], t) * sizeof(float); q++)
                h = (h ^ p[q]) * 1099511628211ULL;
        }
    return h;
}

static void test_load_identical(void)
{
    char path[700];
    path_of(path, sizeof path, "good.hdf5");
    struct model *ref = model_create_styled_vnet(8, 3, 3, 2);
    model_fill_random(ref, 11);
    snprintf(ref->source, sizeof ref->source, "random weights, seed 11");
    struct lm_err err = {0};
    if (t_rank == 0)
        T_CHECK(model_file_write(ref, path, &err), "write: %s", err.msg);
    MPI_Barrier(MPI_COMM_WORLD);
    size_t held = alloc_current();
    struct model *m = model_file_load(path, MPI_COMM_WORLD, &err);
    T_CHECK(m != NULL, "load: %s", err.msg);
    if (m) {
        long bad = count_diffs(ref, m);
        T_CHECK(bad == 0, "rank %d: %ld differences from the written model", t_rank, bad);
        uint64_t mine = checksum(m), first = mine;
        MPI_Bcast(&first, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        T_CHECK(mine == first, "rank %d: weights checksum %llx, rank 0 %llx", t_rank,
                (unsigned long long)mine, (unsigned long long)first);
        T_CHECK(mine == checksum(ref), "checksum differs from the written model's");
    }
    model_destroy(&m);
    T_CHECK(alloc_current() == held, "load leaks %zu bytes", alloc_current() - held);
    model_destroy(&ref);
}

/* NULL on every rank and rank 0's message on every rank, containing want. */
static void expect_refused(const char *path, const char *want)
{
    struct lm_err err = {0};
    struct model *m = model_file_load(path, MPI_COMM_WORLD, &err);
    int null_everywhere = m == NULL;
    MPI_Allreduce(MPI_IN_PLACE, &null_everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    T_CHECK(null_everywhere, "%s: a rank got a model", path);
    char first[sizeof err.msg];
    memcpy(first, err.msg, sizeof first);
    MPI_Bcast(first, (int)sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
    T_CHECK(strcmp(first, err.msg) == 0, "rank %d: message '%s' differs from rank 0's '%s'", t_rank,
            err.msg, first);
    if (t_rank == 0)
        printf("  %s\n", err.msg);
    T_CHECK(strstr(err.msg, path) && strstr(err.msg, want), "message '%s' lacks the file or '%s'",
            err.msg, want);
    model_destroy(&m);
}

static void test_bad_files(void)
{
    char path[700], good[700];
    path_of(path, sizeof path, "missing.hdf5");
    expect_refused(path, "No such file");
    path_of(path, sizeof path, "text.hdf5");
    if (t_rank == 0) {
        FILE *f = fopen(path, "w");
        fputs("not a model\n", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_refused(path, "not an HDF5 file");
    /* the good file cut to half its length */
    path_of(good, sizeof good, "good.hdf5");
    path_of(path, sizeof path, "truncated.hdf5");
    if (t_rank == 0) {
        FILE *in = fopen(good, "rb"), *out = fopen(path, "wb");
        fseek(in, 0, SEEK_END);
        long n = ftell(in) / 2;
        fseek(in, 0, SEEK_SET);
        for (long i = 0; i < n; i++)
            fputc(fgetc(in), out);
        fclose(in);
        fclose(out);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_refused(path, "cannot open as HDF5");
    /* an inconsistent model (a block's channels against its layers) is refused by model_check */
    path_of(path, sizeof path, "inconsistent.hdf5");
    if (t_rank == 0) {
        struct model *m = model_create_styled_vnet(8, 3, 3, 2);
        struct lm_err err = {0};
        m->blocks[0].cout += 1;
        model_file_write(m, path, &err);
        model_destroy(&m);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_refused(path, "does not fit residual block 'conv_l00'");
}

int main(int argc, char **argv)
{
    t_mpi_init(&argc, &argv);
    const char *d = getenv("LEMUR_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s", d ? d : "tests/tmp");
    mkdir(tmp_dir, 0755);
    T_RUN(test_load_identical);
    T_RUN(test_bad_files);
    return t_finish();
}
