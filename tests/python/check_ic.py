#!/usr/bin/env python3
"""check_ic — `lemur ic` outputs read with h5py and checked against independent numpy references.

lemur ($LEMUR, set by tests/run.sh) writes the IC field and a Zel'dovich snapshot (one file and
three files) of a small box. Checked here, from N-GenIC (Springel 2005), Eisenstein & Hu 1998 and
the Gadget-4 format only:
  - the Gadget layout: every /Header and /Parameters attribute, dtypes and shapes, the mass
    Omega_m rho_crit (L/n)^3, NumPart_ThisFile summing to NumPart_Total over a multi-file set;
  - the field: psi_x/psi_y/psi_z/delta float32 [n, n, n]; spectral divergence with numpy FFTs:
    div psi = -delta; no power on the Nyquist planes; delta has zero mean;
  - the particles: ID = (i n + j) n + k, x = (q + D psi) mod L and v / sqrt(a) = a H f D psi / sqrt(a)
    with D and f from the growth integral D ~ E(a) int da / (a E)^3 evaluated here by Simpson's rule;
  - the three-file snapshot holds the one-file snapshot's particles in the same order.
"""
import os
import subprocess
import sys

import h5py
import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEMUR = os.environ.get("LEMUR", os.path.join(TOP, "build", "lemur"))
TMP = os.path.join(os.environ.get("LEMUR_TMP", os.path.join(TOP, "tests", "tmp")), "check_ic")
BOX, N, Z, OMEGA_M, H = 100.0, 24, 1.0, 0.3175, 0.6711
RHO_CRIT = 27.7536627  # 1e10 Msun/h per (Mpc/h)^3
results = {"passed": 0, "failed": 0}


def report(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}", flush=True)


def run_lemur(out, files):
    params = os.path.join(TMP, "ic.yml")
    with open(params, "w") as f:
        f.write(f"box: {{size: {BOX}, n: {N}}}\n"
                f"ic: {{seed: 99, redshift: {Z}, write_particles: true}}\n"
                f"output: {{dir: {out}, snapshot_files: {files}}}\nrun: {{verbosity: 0}}\n")
    r = subprocess.run([LEMUR, "ic", params], capture_output=True, text=True)
    report(f"lemur ic ({files} snapshot file(s)) exits 0", r.returncode == 0, r.stderr[-400:])
    return r.returncode == 0


def growth(a):
    """D(a) / D(1) and f(a) of flat LCDM from the growth integral (Simpson, 20001 points)."""
    def E(x):
        return np.sqrt(OMEGA_M / x**3 + 1 - OMEGA_M)

    def integral(b):
        x = np.linspace(1e-8, b, 20001)
        y = 1.0 / (x * E(x)) ** 3
        h = x[1] - x[0]
        return h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())

    Ia, I1 = integral(a), integral(1.0)
    D = E(a) * Ia / (E(1.0) * I1)
    f = -1.5 * OMEGA_M / (a**3 * E(a) ** 2) + 1.0 / (a**2 * E(a) ** 3 * Ia)
    return D, f, 100.0 * E(a)


def check_header(path):
    with h5py.File(path, "r") as f:
        h, p = f["Header"].attrs, f["Parameters"].attrs
        n3 = N**3
        want = {"NumPart_ThisFile": [0, n3, 0, 0, 0, 0], "NumPart_Total": [0, n3, 0, 0, 0, 0],
                "NumPart_Total_HighWord": [0] * 6, "NumFilesPerSnapshot": 1,
                "Time": 1 / (1 + Z), "Redshift": Z, "BoxSize": BOX, "Omega0": OMEGA_M,
                "OmegaLambda": 1 - OMEGA_M, "HubbleParam": H}
        for k, v in want.items():
            report(f"Header/{k}", k in h and np.allclose(h[k], v, rtol=1e-12, atol=0),
                   f"{h.get(k)} != {v}" if k in h and not np.allclose(h[k], v) else "")
        mass = OMEGA_M * RHO_CRIT * (BOX / N) ** 3
        report("Header/MassTable[1] = Omega_m rho_crit (L/n)^3",
               abs(h["MassTable"][1] - mass) < 1e-9 * mass, f"{h['MassTable'][1]} vs {mass}")
        report("Header count types", h["NumPart_Total"].dtype == np.uint64
               and h["NumPart_Total_HighWord"].dtype == np.uint32)
        report("Parameters repeat the cosmology", np.isclose(p["HubbleParam"], H)
               and np.isclose(p["Omega0"], OMEGA_M) and np.isclose(p["OmegaLambda"], 1 - OMEGA_M))
        g = f["PartType1"]
        ok = (g["Coordinates"].dtype == np.float32 and g["Coordinates"].shape == (n3, 3)
              and g["Velocities"].dtype == np.float32 and g["Velocities"].shape == (n3, 3)
              and g["ParticleIDs"].dtype == np.uint64 and g["ParticleIDs"].shape == (n3,))
        report("PartType1 dtypes and shapes", ok)
        report("lemur_config echoed", "lemur_config" in f.attrs and b"seed: 99" in
               (f.attrs["lemur_config"] if isinstance(f.attrs["lemur_config"], bytes)
                else f.attrs["lemur_config"].encode()))
        return g["Coordinates"][...], g["Velocities"][...], g["ParticleIDs"][...]


def check_field(path):
    with h5py.File(path, "r") as f:
        psi = [f[k][...] for k in ("psi_x", "psi_y", "psi_z")]
        delta = f["delta"][...]
        report("field datasets float32 [n, n, n]",
               all(a.dtype == np.float32 and a.shape == (N, N, N) for a in psi + [delta]))
        report("field BoxSize attribute", np.isclose(f.attrs["BoxSize"], BOX))
    k = 2 * np.pi * np.fft.fftfreq(N, BOX / N)
    kz = 2 * np.pi * np.fft.rfftfreq(N, BOX / N)
    kv = np.meshgrid(k, k, kz, indexing="ij")
    div = sum(1j * kv[d] * np.fft.rfftn(psi[d].astype(np.float64)) for d in range(3))
    dk = np.fft.rfftn(delta.astype(np.float64))
    err = np.linalg.norm(div + dk) / np.linalg.norm(dk)
    report("div psi = -delta (numpy FFT)", err < 1e-5, f"relative error {err:.2e}")
    nyq = np.abs(dk[N // 2]).max() + np.abs(dk[:, N // 2]).max() + np.abs(dk[:, :, N // 2]).max()
    report("no power on the Nyquist planes", nyq < 1e-5 * np.abs(dk).max(), f"{nyq:.2e}")
    report("delta has zero mean", abs(delta.astype(np.float64).mean()) < 1e-6)
    return psi


def check_particles(x, v, ids, psi):
    i, j, k = np.unravel_index(np.arange(N**3), (N, N, N))
    report("IDs are (i n + j) n + k in file order", np.array_equal(ids, np.arange(N**3, dtype=np.uint64)))
    a = 1 / (1 + Z)
    D, f, Hz = growth(a)
    q = np.stack([i, j, k], axis=1) * (BOX / N)
    disp = np.stack([p.ravel() for p in psi], axis=1).astype(np.float64)
    want = np.mod(q + D * disp, BOX)
    dx = np.abs(x - want)
    dx = np.minimum(dx, BOX - dx)
    report("x = (q + D psi) mod L", dx.max() < 2e-5 * BOX, f"max error {dx.max():.2e} Mpc/h")
    report("0 <= x < L", bool((x >= 0).all() and (x < BOX).all()))
    vwant = a * Hz * f * D * disp / np.sqrt(a)
    err = np.abs(v - vwant).max() / np.abs(vwant).max()
    report("v/sqrt(a) = a H f D psi / sqrt(a)", err < 1e-5, f"relative error {err:.2e}")


def check_multi(one, base):
    parts, total = [], None
    for i in range(3):
        with h5py.File(f"{base}.{i}.hdf5", "r") as f:
            h = f["Header"].attrs
            total = h["NumPart_Total"][1]
            report(f"file {i}: NumFilesPerSnapshot = 3", h["NumFilesPerSnapshot"] == 3)
            n_this = h["NumPart_ThisFile"][1]
            parts.append((f["PartType1/Coordinates"][...], f["PartType1/ParticleIDs"][...]))
            report(f"file {i}: dataset length = NumPart_ThisFile", len(parts[-1][1]) == n_this)
    x = np.concatenate([p[0] for p in parts])
    ids = np.concatenate([p[1] for p in parts])
    report("sum of NumPart_ThisFile = NumPart_Total", len(ids) == total == N**3)
    report("three files = one file, same order", np.array_equal(ids, one[2])
           and np.array_equal(x, one[0]))


def main():
    os.makedirs(TMP, exist_ok=True)
    one, three = os.path.join(TMP, "one"), os.path.join(TMP, "three")
    if run_lemur(one, 1) and run_lemur(three, 3):
        x, v, ids = check_header(os.path.join(one, "ic_snapshot.hdf5"))
        psi = check_field(os.path.join(one, "ic_field.hdf5"))
        check_particles(x, v, ids, psi)
        check_multi((x, v, ids), os.path.join(three, "ic_snapshot"))
    print(f"cases: passed={results['passed']} failed={results['failed']}")
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
