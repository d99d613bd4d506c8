#!/usr/bin/python3
"""torch_emulator — the same styled V-Net in PyTorch (tests/python/emunet_torch.py, written from
Jamieson et al. 2024) on one full-width tile, for the ratio to lemur's CPU backend (bench_emulator):
seconds of the forward pass and of forward + velocities (torch.autograd.forward_ad JVP in D),
wall and CPU, with the same number of threads (OMP_NUM_THREADS, default all cores).

usage: torch_emulator.py [--width W] [M ...]      (default: width 64, output tile 32; the 64^3 tile
                                                   takes PyTorch several minutes on 2 cores)
Layouts: PyTorch's default (contiguous NCDHW) and channels_last_3d (NDHWC, lemur's layout); the
faster of the two is the one to compare with."""

import argparse
import os
import sys
import time

import torch

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "python"))
import emunet_torch as ref  # noqa: E402


def timed(fn):
    w, c = time.time(), time.process_time()
    out = fn()
    return out, time.time() - w, time.process_time() - c


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tiles", nargs="*", type=int, default=[32])
    ap.add_argument("--width", type=int, default=64)
    args = ap.parse_args(argv)
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    print("torch_emulator: PyTorch %s, %d threads, styled V-Net width %d (load average %s)"
          % (torch.__version__, threads, args.width, open("/proc/loadavg").read().split()[0]))
    print("%6s %7s %-14s %8s %8s %8s %8s %6s %6s" % ("tile", "input", "layout", "fwd_s", "vel_s",
                                                       "fwd_cpu", "vel_cpu", "extra", "x_cpu"))
    net = ref.init_random(ref.StyledVNet(args.width), 1).eval()
    for M in args.tiles:
        n = M + 2 * ref.HALO
        psi = torch.randn(1, 3, n, n, n, generator=torch.Generator().manual_seed(M)) * 3.0
        for name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last_3d)):
            net_f = net.to(memory_format=fmt)
            x = psi.contiguous(memory_format=fmt)
            with torch.no_grad():
                _, fw, fc = timed(lambda: ref.emulate(net_f, x, 0.3175, 0.605938))
            _, vw, vc = timed(lambda: ref.emulate_jvp(net_f, x, 0.3175, 0.605938))
            print("%4d^3 %5d^3 %-14s %8.2f %8.2f %8.2f %8.2f %6.2f %6.2f"
                  % (M, n, name, fw, vw, fc, vc, (vw - fw) / fw, (vc - fc) / fc), flush=True)
    print("extra = (vel_s - fwd_s) / fwd_s: the JVP's cost on top of the forward pass; x_cpu the "
          "same in CPU seconds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
