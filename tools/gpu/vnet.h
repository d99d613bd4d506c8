/*
 * vnet — the styled V-Net of Jamieson et al. 2024 as an nn graph, for lemur's GPU conformance harness
 * and benchmark (which build without the model-file reader): random parameters in memory, no
 * files. width 64 is the emulator's network (33 styled convolutions, 3,354,776 parameters); a
 * smaller width keeps the topology for quick checks.
 */
#ifndef LEMUR_TOOLS_VNET_H
#define LEMUR_TOOLS_VNET_H

#include "nn.h"

/** The V-Net graph for an output tile of out[0] x out[1] x out[2] cells (multiples of 8, input
 *  out + 96 per axis), 3 input and output channels, `width` channels inside. Residual blocks are
 *  built in the layer order of the model files (convs.0, convs.2, skip), as emunet.c builds them.
 *  Check nn_graph_ok. */
struct nn_graph *vnet_graph(const int out[3], int width);

/** Number of parameters of the graph's styled convolutions (style weights and biases included,
 *  2 style parameters per input channel). */
long long vnet_param_count(const struct nn_graph *g);

/** Deterministic uniform random numbers in [-1, 1). */
double vnet_rand(unsigned long long *state);

/** Random raw parameters of every convolution slot of g (style weights ~0.1 so that the
 *  modulation stays near 1, kernel weights uniform, small biases), seeded by seed. */
struct vnet_params {
    int n;
    float *store;
    struct nn_styled_params *p;
};
void vnet_params_random(struct vnet_params *P, const struct nn_graph *g, unsigned long long seed);
void vnet_params_free(struct vnet_params *P);

/** Premodulated weights of g for Ωm and D (s = ((Ωm - 0.3) 5, D - 1), ds = (0, 1)). */
struct nn_weights *vnet_weights(const struct nn_graph *g, const struct vnet_params *P,
                                double omega_m, double D);

#endif
