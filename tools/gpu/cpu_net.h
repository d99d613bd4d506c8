/*
 * cpu_net — a parallel CPU evaluation of an nn graph for lemur's GPU conformance harness.
 *
 * The same arithmetic as the reference backend (nn_ref.c): double accumulators, bias, LeakyReLU
 * decided on the double pre-activation, tangents in the two-convolution form
 * conv(x, dW'') + conv(dx, W''), crops materialised; but channels-last activations and OpenMP over
 * output cells, so that the full-width V-Net of one tile takes seconds instead of hours. The
 * harness first checks it against nn_ref on small graphs, then uses it as the yardstick of the
 * full network.
 */
#ifndef LEMUR_TOOLS_CPU_NET_H
#define LEMUR_TOOLS_CPU_NET_H

#include <stdbool.h>

#include "nn.h"

/** Run graph g with premodulated weights w on io (host views; tangents when `tangents`, then
 *  io->dy receives the output tangent if non-NULL). Local; allocates and frees its activations. */
void cpu_net_run(const struct nn_graph *g, const struct nn_weights *w, const struct nn_io *io,
                 bool tangents);

#endif
