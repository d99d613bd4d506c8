/* model_file_bcast — the collective load of the model file: rank 0 reads, every rank receives the
 * architecture and the weights (see model_file.h). */
#include "mpi/comm.h"
#include "mpi/model_file.h"

#include <string.h>

static void bcast_bytes(void *buf, size_t bytes, int root, MPI_Comm comm)
{
    MPI_CHECK(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, comm));
}

static void bcast_floats(float *buf, size_t n, int root, MPI_Comm comm)
{
    MPI_CHECK(MPI_Bcast(buf, (int)n, MPI_FLOAT, root, comm));
}

/* The four tensors of layer l (allocated on every rank). */
static void bcast_layer(const struct model *m, struct model_layer *l, int root, MPI_Comm comm)
{
    const struct nn_conv_desc *d = &l->desc;
    size_t k3 = (size_t)d->kernel * d->kernel * d->kernel;
    bcast_floats(l->style_weight, (size_t)d->cin * m->n_style, root, comm);
    bcast_floats(l->style_bias, (size_t)d->cin, root, comm);
    bcast_floats(l->weight, (size_t)d->cin * d->cout * k3, root, comm);
    bcast_floats(l->bias, (size_t)d->cout, root, comm);
}

/* Broadcast *m from root: on the other ranks *m is replaced by a new model equal to root's. */
static void bcast_model(struct model **m, int root, MPI_Comm comm)
{
    bool is_root = comm_rank(comm) == root;
    struct model head;
    if (is_root)
        head = **m;
    bcast_bytes(&head, sizeof head, root, comm);
    if (!is_root) {
        model_destroy(m);
        *m = model_alloc(head.n_blocks, head.n_layers);
        struct model_block *blocks = (*m)->blocks;
        struct model_layer *layers = (*m)->layers;
        **m = head;
        (*m)->blocks = blocks;
        (*m)->layers = layers;
    }
    struct model *mm = *m;
    bcast_bytes(mm->blocks, (size_t)mm->n_blocks * sizeof *mm->blocks, root, comm);
    for (int i = 0; i < mm->n_layers; i++) {
        struct model_layer *l = &mm->layers[i];
        bcast_bytes(&l->desc, sizeof l->desc, root, comm);
        bcast_bytes(&l->act, sizeof l->act, root, comm);
        if (!is_root)
            model_layer_alloc(mm, l);
        bcast_layer(mm, l, root, comm);
    }
}

struct model *model_file_load(const char *path, MPI_Comm comm, struct lm_err *err)
{
    struct model *m = NULL;
    if (comm_rank(comm) == 0)
        m = model_file_read(path, err);
    if (!comm_agree_soft(comm, err)) {
        model_destroy(&m);
        return NULL;
    }
    bcast_model(&m, 0, comm);
    return m;
}
