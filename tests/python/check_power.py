#!/usr/bin/env python3
"""check_power — `lemur power` and `lemur compare` against an independent numpy implementation.

The reference follows the nbodykit / FastPM conventions (Hand et al. 2018; Feng et al. 2016) from
scratch: CIC painting with np.add.at over the 8 corners, numpy FFTs, interlacing in nbodykit's
convention (second mesh shifted by +h/2, phase e^{+ik.h/2}; lemur shifts by -h/2, which is the
same estimator), the sinc^2 compensation, Hermitian weights derived from where -k falls, and bins
from exact integer arithmetic (isqrt of |m|^2) for the default binning. Mode counts are also
checked against a count over the full complex grid.

Particles (clustered, fixed seed) are written as a Gadget-4-style HDF5 snapshot with h5py; lemur
($LEMUR, set by tests/run.sh) runs on 1-3 ranks; the results must agree to 1e-5 relative. Bad
inputs (missing dataset, positions outside the box, impossible mesh) must give clear messages.
"""
import math
import os
import subprocess
import sys

import h5py
import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEMUR = os.environ.get("LEMUR", os.path.join(TOP, "build", "lemur"))
TMP = os.path.join(os.environ.get("LEMUR_TMP", os.path.join(TOP, "tests", "tmp")), "check_power")
RTOL = 1e-5
BOX, Z, OMEGA_M = 100.0, 0.5, 0.3
results = {"passed": 0, "failed": 0}


def report(name, ok, detail="", quiet=False):
    """One case; detail is printed with the result (only on failure when quiet)."""
    results["passed" if ok else "failed"] += 1
    show = detail and not (quiet and ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if show else ''}", flush=True)


# ---- input ------------------------------------------------------------------------------------

def make_particles(seed, n):
    """Clustered positions (float32 in [0, BOX)) and velocities (km/s, with bulk flows)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, BOX, (10, 3))
    flows = rng.normal(0, 250, (10, 3))
    which = rng.integers(0, 10, n)
    clustered = rng.random(n) < 0.6
    x = np.where(clustered[:, None], centres[which] + rng.normal(0, BOX / 12, (n, 3)),
                 rng.uniform(0, BOX, (n, 3)))
    v = np.where(clustered[:, None], flows[which], 0.0) + rng.normal(0, 150, (n, 3))
    return np.mod(x, BOX).astype(np.float32) % np.float32(BOX), v


def write_snapshot(path, x, v, with_velocities=True):
    """Gadget-4 layout: /Header attributes, /PartType1/{Coordinates, Velocities, ParticleIDs}."""
    a = 1.0 / (1.0 + Z)
    n = len(x)
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        counts = np.array([0, n, 0, 0, 0, 0], dtype=np.uint64)
        h.attrs["NumPart_ThisFile"] = counts
        h.attrs["NumPart_Total"] = counts
        h.attrs["NumPart_Total_HighWord"] = np.zeros(6, dtype=np.uint32)
        h.attrs["MassTable"] = np.array([0, 1.0, 0, 0, 0, 0])
        h.attrs["BoxSize"] = BOX
        h.attrs["Redshift"] = Z
        h.attrs["Time"] = a
        h.attrs["NumFilesPerSnapshot"] = 1
        h.attrs["Omega0"] = OMEGA_M
        h.attrs["OmegaLambda"] = 1 - OMEGA_M
        h.attrs["HubbleParam"] = 0.7
        h.attrs["Flag_DoublePrecision"] = 0
        g = f.create_group("PartType1")
        g["Coordinates"] = x.astype(np.float32)
        if with_velocities:
            g["Velocities"] = (v / math.sqrt(a)).astype(np.float32)
        g["ParticleIDs"] = np.arange(n, dtype=np.uint64)


def velocities_as_read(path):
    """Velocities as lemur holds them: the file's v/sqrt(a) times sqrt(a), in float32."""
    with h5py.File(path, "r") as f:
        a = float(f["Header"].attrs["Time"])
        return (f["PartType1/Velocities"][...].astype(np.float64) * math.sqrt(a)).astype(np.float32)


def run_lemur(command, outdir, settings, nproc):
    os.makedirs(outdir, exist_ok=True)
    params = os.path.join(outdir, "params.yml")
    with open(params, "w") as f:
        f.write(f"box:\n  size: {BOX}\n")
        f.write("power:\n")
        for key, value in settings.items():
            f.write(f"  {key}: {value}\n")
        f.write(f"output:\n  dir: {outdir}\n")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    cmd = ["mpirun", "-n", str(nproc), "--oversubscribe", LEMUR, command, params]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


# ---- the reference ----------------------------------------------------------------------------

def paint(x, n, weights, shift):
    """CIC: node i at i h; lower node floor(u), u = x/h + shift; weights 1-t and t per axis."""
    u = x.astype(np.float64) * (n / BOX) + shift
    i0 = np.floor(u).astype(np.int64)
    t = u - i0
    mesh = np.zeros((n, n, n))
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                w = weights * np.where(a, t[:, 0], 1 - t[:, 0]) \
                    * np.where(b, t[:, 1], 1 - t[:, 1]) * np.where(c, t[:, 2], 1 - t[:, 2])
                np.add.at(mesh, ((i0[:, 0] + a) % n, (i0[:, 1] + b) % n, (i0[:, 2] + c) % n), w)
    return mesh


def wavevectors(n):
    kf = 2 * np.pi / BOX
    kx = kf * np.fft.fftfreq(n, 1.0 / n)
    kz = kf * np.arange(n // 2 + 1)
    return np.meshgrid(kx, kx, kz, indexing="ij")


def field_k(x, n, weights, norm, interlace, compensate):
    """FFT(painted weights)/norm/n^3 with interlacing and compensation, DC removed."""
    f = np.fft.rfftn(paint(x, n, weights, 0.0)) / (norm * n ** 3)
    kx, ky, kz = wavevectors(n)
    h = BOX / n
    if interlace:
        f2 = np.fft.rfftn(paint(x, n, weights, 0.5)) / (norm * n ** 3)
        f = 0.5 * (f + f2 * np.exp(0.5j * h * (kx + ky + kz)))
    if compensate:
        f /= (np.sinc(kx * h / (2 * np.pi)) * np.sinc(ky * h / (2 * np.pi))
              * np.sinc(kz * h / (2 * np.pi))) ** 2
    f[0, 0, 0] = 0
    return f


def hermitian_weights(n):
    """1 where -k is again a stored mode of the half space (kz index 0, and n/2 for even n)."""
    iz = np.arange(n // 2 + 1)
    return np.where((-iz) % n <= n // 2, 1.0, 2.0)[None, None, :] * np.ones((n, n, 1))


def bin_index(n, kmin=0.0, dk=None):
    """Bin of every stored mode (-1: excluded). Default bins: isqrt(|m|^2) exactly."""
    m = np.fft.fftfreq(n, 1.0 / n).astype(np.int64)
    mx, my, mz = np.meshgrid(m, m, np.arange(n // 2 + 1), indexing="ij")
    m2 = mx * mx + my * my + mz * mz
    if dk is None:
        b = np.vectorize(math.isqrt)(m2)
    else:
        u = (2 * np.pi / BOX * np.sqrt(m2) - kmin) / dk
        assert np.all(np.abs(u - np.round(u)) > 1e-6), "test bins must avoid lattice edges"
        b = np.where(u >= 0, np.floor(u), -1).astype(np.int64)
    return np.where(m2 == 0, -1, b)


def binned(n, fields_a, fields_b, n_bins, bins, ell=(0,), los=2):
    """V <Σ_c Re a_c b_c*> L_ell(mu) (2 ell + 1) per bin; mean |k|; counts."""
    kx, ky, kz = wavevectors(n)
    kk = np.sqrt(kx ** 2 + ky ** 2 + kz ** 2)
    mu = np.divide((kx, ky, kz)[los], kk, out=np.zeros_like(kk), where=kk > 0)
    w = hermitian_weights(n)
    prod = sum((a * np.conj(b)).real for a, b in zip(fields_a, fields_b))
    sel = (bins >= 0) & (bins < n_bins)
    legendre = {0: np.ones_like(mu), 2: 0.5 * (3 * mu ** 2 - 1),
                4: (35 * mu ** 4 - 30 * mu ** 2 + 3) / 8}
    counts = np.bincount(bins[sel], w[sel], n_bins)
    k = np.bincount(bins[sel], (w * kk)[sel], n_bins) / counts
    p = [(2 * l + 1) * BOX ** 3 * np.bincount(bins[sel], (w * prod * legendre[l])[sel], n_bins)
         / counts for l in ell]
    return k, p, counts


def full_grid_counts(n, n_bins):
    """Mode counts over the full complex grid (both k and -k present), DC excluded."""
    m = np.fft.fftfreq(n, 1.0 / n).astype(np.int64)
    mx, my, mz = np.meshgrid(m, m, m, indexing="ij")
    b = np.vectorize(math.isqrt)(mx * mx + my * my + mz * mz).ravel()
    b = b[1:]  # the DC mode is element 0
    return np.bincount(b[b < n_bins], minlength=n_bins)[:n_bins].astype(float)


# ---- comparisons ------------------------------------------------------------------------------

def close(name, got, want, scale=None):
    got, want = np.asarray(got, float), np.asarray(want, float)
    ok_rows = ~np.isnan(want)
    tol = RTOL * (np.abs(want) if scale is None else np.asarray(scale))
    err = np.abs(got - want)
    ok = got.shape == want.shape and np.all(np.isnan(got) == np.isnan(want)) \
        and np.all(err[ok_rows] <= tol[ok_rows])
    rel = np.max((err / np.where(want != 0, np.abs(want) if scale is None else scale, 1))[ok_rows])
    report(name, ok, f"max relative difference {rel:.2e}")
    return rel


def density_and_momentum(x, v, n, interlace, compensate):
    ones = np.ones(len(x))
    d = field_k(x, n, ones, len(x) / n ** 3, interlace, compensate)
    p = [field_k(x, n, v[:, c].astype(np.float64), len(x) / n ** 3, interlace, compensate)
         for c in range(3)]
    return d, p


def check_power_case(label, n, nproc, interlace, compensate, seed):
    out = os.path.join(TMP, label)
    snap = os.path.join(out, "snap.hdf5")
    os.makedirs(out, exist_ok=True)
    x, v = make_particles(seed, 6000)
    write_snapshot(snap, x, v)
    r = run_lemur("power", out, {"input": snap, "n_mesh": n, "interlace": str(interlace).lower(),
                                 "compensate": str(compensate).lower(), "multipoles": "true",
                                 "momentum": "true", "los": "z"}, nproc)
    report(f"{label}: lemur power ran on {nproc} ranks", r.returncode == 0, r.stderr[-2000:],
           quiet=True)
    if r.returncode != 0:
        return
    vr = velocities_as_read(snap)
    n_bins = n // 2
    bins = bin_index(n)
    d, p = density_and_momentum(x, vr, n, interlace, compensate)
    k, (P,), counts = binned(n, [d], [d], n_bins, bins)
    _, (Pm,), _ = binned(n, p, p, n_bins, bins)
    H = 100 * math.sqrt(OMEGA_M * (1 + Z) ** 3 + 1 - OMEGA_M)
    xs = x.copy()
    xs[:, 2] = (x[:, 2].astype(np.float64) + vr[:, 2] * (1 + Z) / H).astype(np.float32)
    xs = np.mod(xs.astype(np.float64), BOX)
    ds, _ = density_and_momentum(xs, vr, n, interlace, compensate)
    _, Pl, _ = binned(n, [ds], [ds], n_bins, bins, ell=(0, 2, 4), los=2)
    with h5py.File(os.path.join(out, "power.hdf5"), "r") as f:
        close(f"{label}: N_modes (rfft weights)", f["N_modes"][...], counts)
        close(f"{label}: N_modes (full grid count)", f["N_modes"][...], full_grid_counts(n, n_bins))
        close(f"{label}: mean k", f["k"][1:], k[1:])
        close(f"{label}: P(k)", f["P"][1:], P[1:])
        close(f"{label}: P_0 (redshift space)", f["P_ell"][0, 1:], Pl[0][1:])
        for i, ell in ((1, 2), (2, 4)):
            close(f"{label}: P_{ell}", f["P_ell"][i, 1:], Pl[i][1:], scale=np.abs(Pl[0][1:]))
        close(f"{label}: P_momentum", f["P_momentum"][1:], Pm[1:])
        cfg = f.attrs["config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else str(cfg)
        report(f"{label}: attributes", int(f.attrs["N_part"]) == len(x)
               and abs(f.attrs["shot_noise"] / (BOX ** 3 / len(x)) - 1) < 1e-12
               and list(f.attrs["N_mesh"]) == [n] * 3 and f.attrs["z"] == Z
               and f"n_mesh: {n}" in cfg)
    text = np.loadtxt(os.path.join(out, "power.txt"))
    close(f"{label}: power.txt P column", text[1:, 1], P[1:])
    with open(os.path.join(out, "power.txt")) as f:
        lines = f.read().splitlines()
    report(f"{label}: text header and metadata trailer",
           lines[0].split() == ["#", "k", "P", "N"] and "# metadata 7" in lines
           and any(l.startswith("# shotnoise") for l in lines)
           and any(l.startswith("# Lx") for l in lines))


def check_custom_bins(nproc):
    """dk, kmin, kmax given; compensation off; x line of sight; shot noise subtracted."""
    label, n = "custom_bins", 20
    out = os.path.join(TMP, label)
    os.makedirs(out, exist_ok=True)
    snap = os.path.join(out, "snap.hdf5")
    x, v = make_particles(11, 5000)
    write_snapshot(snap, x, v)
    kmin, dk, kmax = 0.05, 0.0913, 0.6
    r = run_lemur("power", out, {"input": snap, "n_mesh": n, "compensate": "false", "dk": dk,
                                 "kmin": kmin, "kmax": kmax, "los": "x",
                                 "subtract_shotnoise": "true", "momentum": "false"}, nproc)
    report(f"{label}: lemur power ran on {nproc} ranks", r.returncode == 0, r.stderr[-2000:],
           quiet=True)
    if r.returncode != 0:
        return
    n_bins = int(math.floor((kmax - kmin) / dk))
    bins = bin_index(n, kmin, dk)
    vr = velocities_as_read(snap)
    d, _ = density_and_momentum(x, vr, n, False, False)
    k, (P,), counts = binned(n, [d], [d], n_bins, bins)
    H = 100 * math.sqrt(OMEGA_M * (1 + Z) ** 3 + 1 - OMEGA_M)
    xs = x.copy()
    xs[:, 0] = (x[:, 0].astype(np.float64) + vr[:, 0] * (1 + Z) / H).astype(np.float32)
    ds, _ = density_and_momentum(np.mod(xs.astype(np.float64), BOX), vr, n, False, False)
    _, Pl, _ = binned(n, [ds], [ds], n_bins, bins, ell=(0, 2, 4), los=0)
    shot = BOX ** 3 / len(x)
    with h5py.File(os.path.join(out, "power.hdf5"), "r") as f:
        report(f"{label}: {n_bins} bins", f["k"].shape == (n_bins,))
        close(f"{label}: N_modes", f["N_modes"][...], counts)
        close(f"{label}: mean k", f["k"][...], k)
        close(f"{label}: P(k) - shot noise", f["P"][...], P - shot, scale=np.abs(P))
        close(f"{label}: P_0", f["P_ell"][0], Pl[0] - shot, scale=np.abs(Pl[0]))
        close(f"{label}: P_2", f["P_ell"][1], Pl[1], scale=np.abs(Pl[0]))
        close(f"{label}: P_4", f["P_ell"][2], Pl[2], scale=np.abs(Pl[0]))


def check_compare(nproc):
    """Two snapshots: A, and B = A with small extra displacements; r, s, T, P_AB."""
    label, n = "compare", 18
    out = os.path.join(TMP, label)
    os.makedirs(out, exist_ok=True)
    xa, v = make_particles(5, 6000)
    rng = np.random.default_rng(99)
    xb = (np.mod(xa + rng.normal(0, 2.0, xa.shape), BOX).astype(np.float32)) % np.float32(BOX)
    write_snapshot(os.path.join(out, "a.hdf5"), xa, v)
    write_snapshot(os.path.join(out, "b.hdf5"), xb, v)
    r = run_lemur("compare", out, {"input": os.path.join(out, "a.hdf5"), "n_mesh": n,
                                   "reference": os.path.join(out, "b.hdf5"),
                                   "interlace": "true"}, nproc)
    report(f"{label}: lemur compare ran on {nproc} ranks", r.returncode == 0, r.stderr[-2000:],
           quiet=True)
    if r.returncode != 0:
        return
    n_bins, bins = n // 2, bin_index(n)
    da, _ = density_and_momentum(xa, v, n, True, True)
    db, _ = density_and_momentum(xb, v, n, True, True)
    _, (paa,), _ = binned(n, [da], [da], n_bins, bins)
    _, (pbb,), _ = binned(n, [db], [db], n_bins, bins)
    _, (pab,), _ = binned(n, [da], [db], n_bins, bins)
    rr = pab / np.sqrt(paa * pbb)
    with h5py.File(os.path.join(out, "compare.hdf5"), "r") as f:
        close(f"{label}: P_AA", f["P_AA"][1:], paa[1:])
        close(f"{label}: P_BB", f["P_BB"][1:], pbb[1:])
        close(f"{label}: P_AB (cross)", f["P_AB"][1:], pab[1:])
        close(f"{label}: r(k)", f["r"][1:], rr[1:])
        close(f"{label}: 1 - r^2", f["s"][1:], 1 - rr[1:] ** 2, scale=np.full(n_bins - 1, 1.0))
        close(f"{label}: T(k)", f["T"][1:], np.sqrt(paa[1:] / pbb[1:]))
    text = np.loadtxt(os.path.join(out, "compare.txt"))
    close(f"{label}: compare.txt r column", text[1:, 1], rr[1:])


def last_error(r):
    lines = [l for l in r.stderr.splitlines() if "error:" in l]
    return lines[-1] if lines else r.stderr[-300:]


def check_bad_inputs():
    out = os.path.join(TMP, "bad")
    os.makedirs(out, exist_ok=True)
    x, v = make_particles(3, 500)
    snap = os.path.join(out, "novel.hdf5")
    write_snapshot(snap, x, v, with_velocities=False)
    r = run_lemur("power", out, {"input": snap, "n_mesh": 8}, 2)
    report("missing Velocities: clear error", r.returncode != 0 and "Velocities" in r.stderr
           and r.stderr.count("error:") == 1, last_error(r))
    r = run_lemur("power", out, {"input": os.path.join(out, "absent.hdf5"), "n_mesh": 8}, 1)
    report("missing file: clear error", r.returncode != 0 and "absent.hdf5" in r.stderr,
           last_error(r))
    snap = os.path.join(out, "ok.hdf5")
    write_snapshot(snap, x, v)
    r = run_lemur("power", out, {"input": snap, "n_mesh": 1}, 1)
    report("n_mesh 1: clear error", r.returncode != 0 and "power.n_mesh" in r.stderr,
           last_error(r))
    xo = x.copy()
    xo[:7, 0] += np.float32(BOX)
    xo[7:10, 1] -= np.float32(BOX)
    write_snapshot(os.path.join(out, "outside.hdf5"), xo, v)
    r = run_lemur("power", out, {"input": os.path.join(out, "outside.hdf5"), "n_mesh": 8,
                                 "multipoles": "false", "momentum": "false"}, 2)
    ok = r.returncode == 0 and "10 particles" in (r.stderr + r.stdout) and "outside" in r.stderr
    warning = [l for l in r.stderr.splitlines() if "warning" in l]
    report("positions outside the box: wrapped with a warning count", ok,
           warning[0] if warning else r.stderr[-300:])


def main():
    np.seterr(invalid="ignore", divide="ignore")  # empty bins (only the DC mode) give NaN
    if not os.access(LEMUR, os.X_OK):
        report(f"lemur binary at {LEMUR}", False, "not found; build it first (make)")
    else:
        check_power_case("cubic16", 16, 2, interlace=False, compensate=True, seed=1)
        check_power_case("odd15_interlaced", 15, 3, interlace=True, compensate=True, seed=2)
        check_custom_bins(1)
        check_compare(2)
        check_bad_inputs()
    print(f"cases: passed={results['passed']} failed={results['failed']}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
