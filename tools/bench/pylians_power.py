#!/usr/bin/python3
"""pylians_power — lemur's real-space P(k) side by side with Pylians3 (Villaescusa-Navarro 2018,
MAS_library CIC + Pk_library) on the same particles and mesh, both timed in this run.

    /usr/bin/python3 tools/bench/pylians_power.py [--n-side 256] [--n-mesh 256] [--threads 2]
                                                  [--build build] [--repeats 3]

The particles are the perturbed lattice of tools/bench/bench_common.h (bench_lattice: n_side^3
points displaced by up to 0.4 cells with a splitmix64 counter, box 1000 n_side / 512 Mpc/h),
rebuilt here bit for bit in numpy. lemur runs build/bench/bench_power at 1 rank x T threads and
T ranks x 1 thread (its "total" row: paint, FFT, k-space and binning, best of the repeats);
Pylians runs MASL.MA (CIC) and PKL.Pk (compensated for CIC, T threads), best of the repeats. The
script prints both times, their ratio, and P(k) of both at a few k (the binning differs, so the
values agree only to the few per cent of bin centring).

Pylians is optional: without the modules MAS_library and Pk_library the script says it is
skipped and exits 0 (it is not part of `make check`; `make bench` runs it).
"""
import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np


def lattice(n_side, box):
    """bench_lattice of bench_common.h for one rank: float32 positions (N, 3)."""
    n = n_side
    q = np.arange(n**3, dtype=np.uint64)
    g = np.stack([q // np.uint64(n * n), (q // np.uint64(n)) % np.uint64(n), q % np.uint64(n)], 1)
    pos = np.empty((n**3, 3), dtype=np.float32)
    h = box / n
    with np.errstate(over="ignore"):
        for d in range(3):
            z = q * np.uint64(3) + np.uint64(d)
            z = (z + np.uint64(0x9E3779B97F4A7C15)) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            off = (z >> np.uint64(11)).astype(np.float64) / 9007199254740992.0 - 0.5
            x = (g[:, d].astype(np.float64) + 0.8 * off) * h
            x = np.where(x < 0, x + box, np.where(x >= box, x - box, x))
            pos[:, d] = x.astype(np.float32)
    return pos


def run_lemur(build, n_mesh, n_side, ranks, threads, repeats):
    """bench_power's mean total seconds and its P(k) line for one layout."""
    exe = os.path.join(build, "bench", "bench_power")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", exe,
           str(n_mesh), str(n_side), str(repeats)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    total = float(re.search(r"^total\s+([0-9.]+)", out, re.M).group(1))
    pk = re.search(r"P\(k=([0-9.]+)\) = ([0-9.eE+-]+)", out)
    return total, (float(pk.group(1)), float(pk.group(2)))


def run_pylians(MASL, PKL, pos, box, n_mesh, threads, repeats):
    """Best seconds of CIC + P(k), and the spectrum."""
    best, pk = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        delta = np.zeros((n_mesh,) * 3, dtype=np.float32)
        try:
            MASL.MA(pos, delta, box, "CIC", verbose=False, threads=threads)
        except TypeError:  # older Pylians: MA has no threads argument
            MASL.MA(pos, delta, box, "CIC", verbose=False)
        delta /= np.mean(delta, dtype=np.float64)
        delta -= 1.0
        pk = PKL.Pk(delta, box, 0, "CIC", threads, False)
        best = min(best, time.perf_counter() - t0)
    return best, pk


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-side", type=int, default=256)
    ap.add_argument("--n-mesh", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    try:
        import MAS_library as MASL
        import Pk_library as PKL
    except ImportError as e:
        print(f"pylians_power: skipped: Pylians3 is not installed ({e}); install it from "
              "https://github.com/franciscovillaescusa/Pylians3 to compare")
        return 0
    exe = os.path.join(a.build, "bench", "bench_power")
    if not os.access(exe, os.X_OK):
        print(f"pylians_power: {exe} not found; build it with `make bench` first", file=sys.stderr)
        return 1
    box = 1000.0 * a.n_side / 512.0
    pos = lattice(a.n_side, box)
    t_py, pk = run_pylians(MASL, PKL, pos, box, a.n_mesh, a.threads, a.repeats)
    print(f"pylians_power: {a.n_side}^3 particles, {a.n_mesh}^3 mesh, box {box:g} Mpc/h, "
          f"{a.threads} thread(s)")
    print(f"{'code':<28} {'time [s]':>10} {'Pylians/lemur':>14}")
    print(f"{'Pylians MA(CIC) + Pk':<28} {t_py:10.3f} {1.0:14.2f}")
    for ranks, threads in ((1, a.threads), (a.threads, 1)):
        t, (k, p) = run_lemur(a.build, a.n_mesh, a.n_side, ranks, threads, a.repeats)
        print(f"{f'lemur {ranks} rank(s) x {threads} thread(s)':<28} {t:10.3f} {t_py / t:14.2f}")
    i = int(np.argmin(np.abs(pk.k3D - k)))
    print(f"P(k) at k = {k:.4f}: lemur {p:.6g}; Pylians at k = {pk.k3D[i]:.4f}: {pk.Pk[i, 0]:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
