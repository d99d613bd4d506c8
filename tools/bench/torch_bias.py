#!/usr/bin/python3
"""torch_bias — the Lagrangian-bias network of lemur bias (Wu, Munoz & Eisenstein 2023) in
PyTorch on the same cores, for the ratio to lemur's bench_bias: inference (features by float64
FFTs, the 5 x 64 GELU nn.Sequential in float32 under no_grad, NGP painting of the weights) in
particles per second, and one training epoch (10% of the particles, batches of about 1e5, the
cell sums, the loss of lemur bias-fit with its integral term, autograd and Adam) in float64 as
lemur trains, and in float32.

usage: torch_bias.py [n [n_train [epochs]]]       (defaults 256 100 1; OMP_NUM_THREADS threads,
                                                    default 1)
The linear field is a Gaussian random field with a power-law spectrum (the cost does not depend
on the spectrum); positions are the Lagrangian grid displaced by a random 2-cell jitter."""

import math
import os
import sys
import time

import torch


def features(delta, box, scales):
    n = delta.shape[0]
    dk = torch.fft.rfftn(delta) / n**3
    k1 = 2 * math.pi / box * torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
    kz = 2 * math.pi / box * torch.arange(n // 2 + 1, dtype=torch.float64)
    k = torch.meshgrid(k1, k1, kz, indexing="ij")
    k2 = k[0]**2 + k[1]**2 + k[2]**2
    k2s = torch.where(k2 > 0, k2, torch.ones_like(k2))
    cols = []
    for R in scales:
        W = torch.exp(-0.5 * k2 * R * R) * dk
        W[0, 0, 0] = 0
        dR = torch.zeros_like(delta)
        s2 = torch.zeros_like(delta)
        for a in range(3):
            for b in range(a, 3):
                p = torch.fft.irfftn(k[a] * k[b] / k2s * W, s=delta.shape) * n**3
                if a == b:
                    dR += p
                s2 += p * p * (1 if a == b else 2)
        L = torch.fft.irfftn(-k2 * W, s=delta.shape) * n**3
        cols += [dR, L, s2 - dR * dR]
    th = torch.stack([c.reshape(-1) for c in cols], dim=1)
    return (th / th.std(dim=0)).float()


def net_of(n_in, dtype):
    torch.manual_seed(1)
    layers = []
    for i in range(5):
        layers += [torch.nn.Linear(n_in if i == 0 else 64, 64), torch.nn.GELU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(64, 1)).to(dtype)


def main(argv):
    n = int(argv[0]) if argv else 256
    n_train = int(argv[1]) if len(argv) > 1 else 100
    epochs = int(argv[2]) if len(argv) > 2 else 1
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    box = n * 1000.0 / 512
    print("torch_bias: PyTorch %s, %d thread(s), %d^3 particles (load average %s)"
          % (torch.__version__, threads, n, open("/proc/loadavg").read().split()[0]))
    g = torch.Generator().manual_seed(3)
    delta = torch.fft.irfftn(torch.randn(n, n, n // 2 + 1, dtype=torch.complex128, generator=g),
                             s=(n, n, n))
    q = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32)] * 3, indexing="ij"),
                    dim=-1).reshape(-1, 3)
    x = torch.remainder((q + 2 * torch.rand(q.shape, generator=g)) * (box / n), box)
    t0 = time.time()
    th = features(delta, box, [1.0, 2.83, 8.0])
    t_feat = time.time() - t0
    cov = (th.double().T @ th.double()) / th.shape[0]
    V = torch.zeros(9, 7, dtype=torch.float64)
    lam = torch.zeros(7, dtype=torch.float64)
    col = 0
    for idx, keep in (([0, 1, 3, 4, 6, 7], 4), ([2, 5, 8], 3)):
        w, v = torch.linalg.eigh(cov[idx][:, idx])
        for c in range(keep):
            lam[col], V[idx, col] = w[-1 - c], v[:, -1 - c]
            col += 1
    T = (V / lam.sqrt()).float()
    net = net_of(7, torch.float32)
    t0 = time.time()
    with torch.no_grad():
        f = torch.pow(10.0, net(th @ T)[:, 0])
    t_mlp = time.time() - t0
    t0 = time.time()
    c = torch.floor(x / (box / n)).long() % n
    mesh = torch.zeros(n**3, dtype=torch.float64).index_add_(
        0, (c[:, 0] * n + c[:, 1]) * n + c[:, 2], f.double())
    hk = torch.fft.rfftn((mesh * (n**3 / n**3) - 1).reshape(n, n, n))
    t_paint = time.time() - t0
    tot = t_feat + t_mlp + t_paint
    print("inference: features %.3f s, mlp %.3f s (%.3g sites/s), paint %.3f s; total %.3f s, "
          "%.4g particles/s" % (t_feat, t_mlp, n**3 / t_mlp, t_paint, tot, n**3 / tot))
    del hk, mesh, delta

    # training: 10% of the particles, cells of an n_train^3 mesh in batches of about 1e5
    sel = torch.rand(n**3, generator=g) < 0.1
    xs, ths = x[sel], (th @ T)[sel]
    ct = torch.floor(xs / (box / n_train)).long() % n_train
    cell = (ct[:, 0] * n_train + ct[:, 1]) * n_train + ct[:, 2]
    nb = max(1, round(len(xs) / 1e5))
    batch = (cell * 2654435761) % nb
    target = torch.rand(n_train**3, generator=g, dtype=torch.float64) * 2 - 1
    A = n_train**3 / (n**3 * 0.1)
    for dtype in (torch.float64, torch.float32):
        net = net_of(7, dtype)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        xin, tg = ths.to(dtype), target.to(dtype)
        order = [torch.nonzero(batch == b)[:, 0] for b in range(nb)]
        t0 = time.time()
        for e in range(1, epochs + 1):
            eps = 0 if e == 1 else max(10**(-1 - 3 * math.log10(e)), 1e-4)
            for idx in order:
                opt.zero_grad()
                y = net(xin[idx])[:, 0]
                fb = torch.pow(10.0, y)
                cb, inv = torch.unique(cell[idx], return_inverse=True)
                sf = torch.zeros(len(cb), dtype=dtype).index_add_(0, inv, fb)
                loss = ((A * sf - 1 - tg[cb])**2).sum() + (torch.clamp(-5 - y, min=0)**4).sum()
                if eps > 0:
                    loss = loss + (fb.mean() - 1)**2 / eps**2
                loss.backward()
                opt.step()
        dt = (time.time() - t0) / max(epochs, 1)
        print("training (%s): %d sampled particles, %d batches, %.3f s per epoch"
              % (str(dtype).split(".")[1], len(xs), nb, dt))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
