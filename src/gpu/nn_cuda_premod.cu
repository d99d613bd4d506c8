/* nn_cuda_premod — on-device premodulation of styled convolutions (nn_cuda_plan_set_params,
 * nn_cuda_plan_restyle): the same arithmetic as nn_conv_premodulate (nn.c), with the per-slot
 * style affine u = style_weight s + style_bias, its tangent du and the ratio test on the host in
 * double, and the demodulation sums, W'', dW'' and c on the device in double (k_premod), written
 * straight into the plan's weight layout in the storage precision. */
#include <math.h>
#include <string.h>

#include "gpu/nn_cuda_kernels.cuh"

/* Offsets of every slot's raw data (device floats, host style floats, device doubles). */
static void raw_layout(struct nn_backend_plan *p, int n_style, size_t *n_raw, size_t *n_style_f)
{
    struct craw *r = &p->raw;
    size_t nc = p->n_convs > 0 ? p->n_convs : 1;
    r->n_style = n_style;
    r->off_w = (size_t *)lm_malloc("nn.cuda.raw", nc * sizeof *r->off_w);
    r->off_style = (size_t *)lm_malloc("nn.cuda.raw", nc * sizeof *r->off_style);
    r->off_u = (size_t *)lm_malloc("nn.cuda.raw", nc * sizeof *r->off_u);
    *n_raw = *n_style_f = r->n_u = 0;
    for (int s = 0; s < p->n_convs; s++) {
        const struct nn_conv_desc *d = &p->convs[s];
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        r->off_w[s] = *n_raw;
        *n_raw += nw + d->cout;
        r->off_style[s] = *n_style_f;
        *n_style_f += (size_t)d->cin * (n_style + 1);
        r->off_u[s] = r->n_u;
        r->n_u += 2 * (size_t)d->cin;
    }
}

void nn_cuda_plan_set_params(struct nn_plan *pl, const struct nn_styled_params *params)
{
    struct nn_backend_plan *p = nn_cuda_impl(pl);
    CHECK(p->n_begun == p->n_ended, "nn cuda: parameters set while an execution is in flight");
    int ns = p->n_convs > 0 ? params[0].n_style : 1;
    CHECK(ns >= 1 && ns <= NN_MAX_STYLE, "nn cuda: %d style parameters (expected 1 to %d)", ns,
          NN_MAX_STYLE);
    CUDA_CHECK(cudaSetDevice(p->device));
    CUDA_CHECK(cudaStreamSynchronize(p->s_comp));
    size_t n_raw, n_sf;
    nn_cuda_plan_free_raw(p);
    raw_layout(p, ns, &n_raw, &n_sf);
    float *h_raw = (float *)lm_malloc("nn.cuda.raw", (n_raw > 0 ? n_raw : 1) * sizeof(float));
    p->raw.h_style = (float *)lm_malloc("nn.cuda.raw", (n_sf > 0 ? n_sf : 1) * sizeof(float));
    p->raw.h_u = (double *)lm_malloc("nn.cuda.raw", (p->raw.n_u + 1) * sizeof(double));
    for (int s = 0; s < p->n_convs; s++) {
        const struct nn_conv_desc *d = &p->convs[s];
        const struct nn_styled_params *q = &params[s];
        CHECK(q->n_style == ns, "nn cuda: slot '%s' has %d style parameters, slot 0 has %d",
              d->name, q->n_style, ns);
        size_t nw = (size_t)d->cin * d->cout * d->kernel * d->kernel * d->kernel;
        memcpy(h_raw + p->raw.off_w[s], q->weight, nw * sizeof(float));
        memcpy(h_raw + p->raw.off_w[s] + nw, q->bias, d->cout * sizeof(float));
        float *st = p->raw.h_style + p->raw.off_style[s];
        memcpy(st, q->style_weight, (size_t)d->cin * ns * sizeof(float));
        memcpy(st + (size_t)d->cin * ns, q->style_bias, d->cin * sizeof(float));
    }
    CUDA_CHECK(cudaMalloc((void **)&p->raw.d_raw, (n_raw > 0 ? n_raw : 1) * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&p->raw.d_u, (p->raw.n_u + 1) * sizeof(double)));
    CUDA_CHECK(cudaMemcpy(p->raw.d_raw, h_raw, n_raw * sizeof(float), cudaMemcpyHostToDevice));
    lm_free(h_raw);
    p->have_raw = true;
}

/* u, du, the ratios and ratio_ok of slot s on the host (as nn_conv_premodulate computes them);
 * the ratios go into the host weight staging at the slot's offset. */
static void restyle_host(struct nn_backend_plan *p, int s, const double *sty, const double *ds)
{
    const struct nn_conv_desc *d = &p->convs[s];
    struct cslot *sl = &p->slot[s];
    int ns = p->raw.n_style;
    const float *sw = p->raw.h_style + p->raw.off_style[s], *sb = sw + (size_t)d->cin * ns;
    double *u = p->raw.h_u + p->raw.off_u[s], *du = u + d->cin;
    float *ratio = (float *)((char *)p->h_weights + sl->ratio);
    sl->ratio_ok = true;
    for (int i = 0; i < d->cin; i++) {
        u[i] = sb[i];
        du[i] = 0;
        for (int j = 0; j < ns; j++) {
            u[i] += (double)sw[i * ns + j] * sty[j];
            du[i] += (double)sw[i * ns + j] * ds[j];
        }
        double r = u[i] != 0 ? du[i] / u[i] : INFINITY;
        sl->ratio_ok = sl->ratio_ok && fabs(r) <= NN_RATIO_MAX;
        ratio[i] = (float)r;
    }
    if (!sl->ratio_ok)
        for (int i = 0; i < d->cin; i++)
            ratio[i] = 0.0f;
}

void nn_cuda_plan_restyle(struct nn_plan *pl, const double *s, const double *ds)
{
    struct nn_backend_plan *p = nn_cuda_impl(pl);
    CHECK(p->have_raw, "nn cuda: restyle before nn_cuda_plan_set_params");
    CHECK(p->n_begun == p->n_ended, "nn cuda: restyle while an execution is in flight");
    CUDA_CHECK(cudaSetDevice(p->device));
    for (int k = 0; k < p->n_convs; k++)
        restyle_host(p, k, s, ds);
    cudaStream_t st = p->s_comp;
    CUDA_CHECK(cudaMemcpyAsync(p->raw.d_u, p->raw.h_u, p->raw.n_u * sizeof(double),
                               cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemsetAsync(p->d_weights, 0, p->weight_bytes, st));
    for (int k = 0; k < p->n_convs; k++) {
        const struct nn_conv_desc *d = &p->convs[k];
        const struct cslot *sl = &p->slot[k];
        premod_args a;
        a.w = p->raw.d_raw + p->raw.off_w[k];
        a.u = p->raw.d_u + p->raw.off_u[k];
        a.du = a.u + d->cin;
        a.cin = d->cin;
        a.cout = d->cout;
        a.k3 = d->kernel * d->kernel * d->kernel;
        a.transposed = d->transposed;
        a.cin_p = sl->cin_p;
        a.wo = (char *)p->d_weights + sl->w;
        a.dwo = p->tangents ? (char *)p->d_weights + sl->dw : NULL;
        a.c = (float *)((char *)p->d_weights + sl->c);
        k_premod(kstore_of(p->opt.precision), &a, st);
        size_t nw = (size_t)d->cin * d->cout * a.k3;
        CUDA_CHECK(cudaMemcpyAsync((char *)p->d_weights + sl->bias, a.w + nw,
                                   d->cout * sizeof(float), cudaMemcpyDeviceToDevice, st));
        CUDA_CHECK(cudaMemcpyAsync((char *)p->d_weights + sl->ratio,
                                   (char *)p->h_weights + sl->ratio, d->cin * sizeof(float),
                                   cudaMemcpyHostToDevice, st));
    }
    CUDA_CHECK(cudaStreamSynchronize(st));
    pl->generation = (unsigned long)-1;
}
