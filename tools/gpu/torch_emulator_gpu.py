#!/usr/bin/env python3
"""torch_emulator_gpu -- the emulator's styled V-Net (Jamieson et al. 2024) in PyTorch, timed on the
same GPU as lemur's bench-emulator, for the ratio of the two.

The model is written from the spec (not the authors' code): styled convolutions with modulation,
demodulation (eps 1e-8) and unmodulated bias, including the 1x1x1 skips and the k=2 s=2 down and up
convolutions; residual blocks conv3 -> LReLU -> conv3 + crop(skip, 2) -> LReLU (none after the
last); LeakyReLU slope 0.01; skip channels first in the concatenations; y = net + crop(x, 48). Its
parameter count is checked against the spec's 3,354,776. Weights are random (the timing does not
depend on their values). Velocities are the forward-mode derivative dy/dD (torch.func.jvp) through
the input scaling x = psi D / 6 and the style s1 = D - 1, as the authors' code computes them.

Timing: seconds per output tile (default 128^3, input 224^3) of the forward pass and of the
forward pass with velocities, under autocast (fp16 by default, as the authors' PyTorch numbers),
median of --reps after a warm-up, synchronised; extrapolated to a --box^3 box.

Usage: python3 tools/gpu/torch_emulator_gpu.py [--tile 128] [--reps 5] [--dtype fp16|bf16|fp32]
                                               [--box 512] [--no-channels-last]
Prints "torch-emulator: tile T dtype D forward F s velocities V s box B s" as its last line.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F


class StyledConv(torch.nn.Module):
    """Styled convolution: u = style_weight s + style_bias; W' = W u (input channels);
    W'' = W' / sqrt(sum W'^2 + 1e-8) per output channel; y = conv(x, W'', stride) + b."""

    def __init__(self, cin, cout, k, stride=1, transposed=False):
        super().__init__()
        self.stride, self.transposed = stride, transposed
        shape = (cin, cout, k, k, k) if transposed else (cout, cin, k, k, k)
        self.style_weight = torch.nn.Parameter(0.1 * torch.randn(cin, 2))
        self.style_bias = torch.nn.Parameter(1 + 0.2 * torch.rand(cin))
        self.weight = torch.nn.Parameter(torch.randn(shape) / math.sqrt(cin * k ** 3))
        self.bias = torch.nn.Parameter(0.05 * torch.randn(cout))

    def forward(self, x, s):
        u = self.style_weight @ s + self.style_bias
        if self.transposed:
            w = self.weight * u[:, None, None, None, None]
            w = w * torch.rsqrt(w.pow(2).sum(dim=(0, 2, 3, 4), keepdim=True) + 1e-8)
            return F.conv_transpose3d(x, w.to(x.dtype), self.bias.to(x.dtype), stride=self.stride)
        w = self.weight * u[None, :, None, None, None]
        w = w * torch.rsqrt(w.pow(2).sum(dim=(1, 2, 3, 4), keepdim=True) + 1e-8)
        return F.conv3d(x, w.to(x.dtype), self.bias.to(x.dtype), stride=self.stride)


def crop(t, c):
    return t[:, :, c:-c, c:-c, c:-c]


def lrelu(t):
    return F.leaky_relu(t, 0.01)


class Residual(torch.nn.Module):
    def __init__(self, cin, cout, last=False):
        super().__init__()
        mid = max(cin, cout)
        self.c0 = StyledConv(cin, mid, 3)
        self.c2 = StyledConv(mid, cout, 3)
        self.skip = StyledConv(cin, cout, 1)
        self.last = last

    def forward(self, x, s):
        y = self.c2(lrelu(self.c0(x, s)), s) + crop(self.skip(x, s), 2)
        return y if self.last else lrelu(y)


class StyledVNet(torch.nn.Module):
    def __init__(self, w=64):
        super().__init__()
        self.l00, self.l01 = Residual(3, w), Residual(w, w)
        self.d0, self.l1 = StyledConv(w, w, 2, 2), Residual(w, w)
        self.d1, self.l2 = StyledConv(w, w, 2, 2), Residual(w, w)
        self.d2, self.c = StyledConv(w, w, 2, 2), Residual(w, w)
        self.u2, self.r2 = StyledConv(w, w, 2, 2, True), Residual(2 * w, w)
        self.u1, self.r1 = StyledConv(w, w, 2, 2, True), Residual(2 * w, w)
        self.u0, self.r00 = StyledConv(w, w, 2, 2, True), Residual(2 * w, w)
        self.r01 = Residual(w, 3, last=True)

    def forward(self, x, s):
        y0 = self.l01(self.l00(x, s), s)
        y1 = self.l1(lrelu(self.d0(y0, s)), s)
        y2 = self.l2(lrelu(self.d1(y1, s)), s)
        t = self.c(lrelu(self.d2(y2, s)), s)
        t = self.r2(torch.cat([crop(y2, 4), lrelu(self.u2(t, s))], 1), s)
        t = self.r1(torch.cat([crop(y1, 16), lrelu(self.u1(t, s))], 1), s)
        t = self.r00(torch.cat([crop(y0, 40), lrelu(self.u0(t, s))], 1), s)
        return self.r01(t, s) + crop(x, 48)


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--box", type=int, default=512)
    ap.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16")
    ap.add_argument("--no-channels-last", action="store_true")
    a = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    net = StyledVNet().to(dev).eval()
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == 3354776, f"parameter count {n_params}, spec says 3354776"
    n = a.tile + 96
    fmt = torch.contiguous_format if a.no_channels_last else torch.channels_last_3d
    psi = (6 * torch.randn(1, 3, n, n, n, device=dev)).to(memory_format=fmt)
    om, d0 = 0.3175, 0.8
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[a.dtype]

    def run(D):
        s = torch.stack([torch.full_like(D, (om - 0.3) * 5), D - 1])
        x = psi * D / 6
        with torch.autocast("cuda", dtype=amp or torch.float16, enabled=amp is not None):
            return net(x, s)

    D = torch.tensor(d0, device=dev)
    with torch.no_grad():
        t_fwd = timed(lambda: run(D), a.reps)
        t_vel = timed(lambda: torch.func.jvp(run, (D,), (torch.ones_like(D),)), a.reps)
    tiles = math.ceil(a.box / a.tile) ** 3
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN "
          f"{torch.backends.cudnn.version()}, {n_params} parameters, "
          f"{'channels-last' if not a.no_channels_last else 'contiguous'}")
    print(f"per tile: forward {t_fwd:.4f} s, forward + velocities {t_vel:.4f} s "
          f"(derivative costs {t_vel / t_fwd - 1:.2f}x the forward); box {a.box}^3 = {tiles} "
          f"tiles: {tiles * t_fwd:.1f} s forward, {tiles * t_vel:.1f} s with velocities")
    print(f"torch-emulator: tile {a.tile} dtype {a.dtype} forward {t_fwd:.5f} s velocities "
          f"{t_vel:.5f} s box {tiles * t_vel:.2f} s")


if __name__ == "__main__":
    main()
