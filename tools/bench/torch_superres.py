#!/usr/bin/python3
"""torch_superres — the super-resolution generator of Kodi Ramanah et al. 2020
(config/networks/superres-ramanah2020.yml, built by tests/python/check_graph.py's Graph, PyTorch's
random initialisation) on one HR output tile of M^3 cells, for the ratio to lemur's CPU backend
(bench_superres): seconds of one forward pass (after a 16^3 warm-up) and HR cells/s, with
OMP_NUM_THREADS threads (default all cores), in PyTorch's default layout and channels_last_3d.

usage: torch_superres.py [M]       (default 128)"""

import os
import sys
import time

import torch
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "python"))
from check_graph import Graph  # noqa: E402


def run(net, M, halos, scales, fmt):
    xs = [torch.randn(1, 1, M // s + 2 * h, M // s + 2 * h, M // s + 2 * h).to(memory_format=fmt)
          for h, s in zip(halos, scales)]
    t0 = time.time()
    with torch.no_grad():
        y = net(*xs)
    t = time.time() - t0
    assert y.shape[-1] == M, y.shape
    return t


def main(argv):
    M = int(argv[0]) if argv else 128
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    desc = yaml.safe_load(open(os.path.join(TOP, "config", "networks", "superres-ramanah2020.yml")))
    net = Graph(desc).eval()
    halos, scales = [12, 7], [1, 2]  # lemur's derived halos of this description
    for name, fmt in (("contiguous", torch.contiguous_format), ("channels_last_3d", torch.channels_last_3d)):
        n = net.to(memory_format=fmt)
        run(n, 16, halos, scales, fmt)
        t = run(n, M, halos, scales, fmt)
        print("torch %s (%s), %d threads, HR output tile %d^3: %.2f s, %.3g HR cells/s"
              % (torch.__version__, name, torch.get_num_threads(), M, t, M**3 / t))


if __name__ == "__main__":
    main(sys.argv[1:])
