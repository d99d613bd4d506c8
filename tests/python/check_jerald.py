#!/usr/bin/python3
"""Independent numpy reference of the JERALD displacement layers and maps (Rigo, Trotta & Viel 2025, arXiv 2501.09168).

Written from the spec alone, single process, float64: CIC paint and readout, (rho + 1e-8)^gamma,
FFT / N^3, the dark-matter and stellar (LDL) Green's functions, the 6th- and 4th-order
finite-difference gradient, the stellar and HI final maps with depletion. Particles are stored as
float32 between layers, as lemur stores them. The script writes a Gadget-layout snapshot with
h5py, runs `$LEMUR jerald` on it and compares:
  - displaced positions (per particle ID) to 1e-5 Mpc/h,
  - maps to 1e-5 relative per cell: |lemur - numpy| <= 1e-5 (T + 1e-3 <T>), T the magnitude of
    the terms the cell sums (rho; w rho^mu and |b|; for HI also the depletion terms), so that
    cancellations near the ReLU edges are judged against the numbers that cancel,
  - the spectrum of every map against numpy's (compensated, 2 pi/L bins),
for a 32^3 mesh (6th order) and an odd 27^3 mesh (4th order), 2 dark-matter layers, a stellar
and an HI map (2 layers); then that 2, 3 and 4 ranks give the maps of 1 rank: rms difference
<= 1e-6 of the map's rms and largest difference <= 2e-6 of its largest value (the float32
positions set this floor: CIC sums are added in a rank-dependent order, and a 1-ulp change of a
coordinate moves ~ulp N/L of a particle's mass between cells).
"""
import os
import subprocess
import sys

import h5py
import numpy as np

LEMUR = os.environ["LEMUR"]
TMP = os.path.join(os.environ.get("LEMUR_TMP", "/tmp"), "check_jerald")
NP, L = 32, 32.0
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name} {detail}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


# ---- model parameters (the parameter file below says the same) --------------------------------
DM_LAYERS = [dict(alpha=60.0, gamma=0.5, kh=0.3, kl=4.0, nu=0.5),
             dict(alpha=40.0, gamma=0.8, kh=0.5, kl=6.0, nu=-0.3)]
SM_LAYERS = [dict(alpha=50.0, gamma=0.6, kh=0.2, kl=3.0, nu=0.2)]
SM_FINAL = dict(w=1.3, mu=1.7, b=-0.05)
HI_LAYERS = [dict(alpha=400.0, gamma=0.5, kh=0.4, kl=3.0, nu=0.0,
                  repel=dict(alpha=150.0, gamma=0.7, kh=0.3, kl=2.0, nu=0.1)),
             dict(alpha=300.0, gamma=0.9, kh=0.1, kl=5.0, nu=0.2,
                  repel=dict(alpha=80.0, gamma=0.4, kh=0.6, kl=2.5, nu=-0.2))]
HI_FINAL = dict(w=1.1, mu=1.6, b=0.02, z_s=0.1)
HI_DEPL = dict(beta1=0.4, beta2=0.2, gamma3=0.8, eta=-0.1, kh=0.2, kl=2.0, nu=0.3, xi=0.05)


def flow(d):
    return "{" + ", ".join(f"{k}: {flow(v) if isinstance(v, dict) else v}" for k, v in d.items()) + "}"


def params_text(snap, out, extra=""):
    layers = lambda ls: "\n".join(f"        - {flow(l)}" for l in ls)
    return f"""box: {{size: {L}, n: {NP}}}
jerald:
  input: {snap}
  write_particles: true
  maps:
    dm:
      layers:
{layers(DM_LAYERS)}
    stars:
      model: stellar
      layers:
{layers(SM_LAYERS)}
      final: {flow(SM_FINAL)}
    hi:
      model: hi
      stellar_map: stars
      layers:
{layers(HI_LAYERS)}
      final: {flow(HI_FINAL)}
      depletion: {flow(HI_DEPL)}
{extra}output: {{dir: {out}}}
run: {{verbosity: 0}}
"""


# ---- the numpy reference -------------------------------------------------------------------------
class Mesh:
    def __init__(self, n, order):
        self.n, self.order, self.h = n, order, L / n
        m = np.fft.fftfreq(n, 1.0 / n)
        mz = np.fft.rfftfreq(n, 1.0 / n)
        kf = 2 * np.pi / L
        self.k1 = [kf * m[:, None, None], kf * m[None, :, None], kf * mz[None, None, :]]
        self.k = np.sqrt(self.k1[0] ** 2 + self.k1[1] ** 2 + self.k1[2] ** 2)

    def stencil(self, pos):
        u = pos.astype(np.float64) * (self.n / L)
        i0 = np.floor(u).astype(np.int64)
        t = u - i0
        n = self.n
        for a in (0, 1):
            for b in (0, 1):
                for c in (0, 1):
                    w = ((t[:, 0] if a else 1 - t[:, 0]) * (t[:, 1] if b else 1 - t[:, 1])
                         * (t[:, 2] if c else 1 - t[:, 2]))
                    idx = (((i0[:, 0] + a) % n) * n + (i0[:, 1] + b) % n) * n + (i0[:, 2] + c) % n
                    yield idx, w

    def paint(self, pos):
        rho = np.zeros(self.n ** 3)
        for idx, w in self.stencil(pos):
            rho += np.bincount(idx, weights=w, minlength=self.n ** 3)
        return rho.reshape((self.n,) * 3) * self.n ** 3 / len(pos)

    def readout(self, field, pos):
        flat = field.ravel()
        return sum(flat[idx] * w for idx, w in self.stencil(pos))

    def fft(self, x):
        return np.fft.rfftn(x) / self.n ** 3

    def ifft(self, xk):
        return np.fft.irfftn(xk, s=(self.n,) * 3) * self.n ** 3

    def D(self, k):
        x = k * self.h
        if self.order == 4:
            return (8 * np.sin(x) - np.sin(2 * x)) / (6 * self.h)
        return (45 * np.sin(x) - 9 * np.sin(2 * x) + np.sin(3 * x)) / (30 * self.h)


def green(form, k, p):
    k = np.where(k == 0, 1e-8, k)
    if form == "dm":
        e = -k / p["kl"] - p["kh"] / k
    else:
        e = -k ** 2 / p["kl"] ** 2 - p["kh"] ** 2 / k ** 2
    return -np.exp(e) * k ** p["nu"]


def layer(M, pos, p, form, s=1e-2, stellar=None):
    rho = M.paint(pos)
    phi = s * p["alpha"] * green(form, M.k, p) * M.fft((rho + 1e-8) ** p["gamma"])
    if stellar is not None:
        q = p["repel"]
        phi += s * q["alpha"] * (-green("sm", M.k, q)) * M.fft(stellar ** q["gamma"])
    disp = np.stack([M.readout(M.ifft(-1j * M.D(M.k1[d]) * phi), pos) for d in range(3)], axis=1)
    return np.mod(pos.astype(np.float64) + disp, L).astype(np.float32)


def map_dm(M, pos):
    for p in DM_LAYERS:
        pos = layer(M, pos, p, "dm")
    rho = M.paint(pos)
    return pos, rho, rho


def map_stellar(M, pos):
    for p in SM_LAYERS:
        pos = layer(M, pos, p, "sm")
    rho = M.paint(pos)
    f = SM_FINAL
    t = f["w"] * (rho + 1e-8) ** f["mu"]
    return pos, np.maximum(t + f["b"], 1e-12), np.abs(t) + abs(f["b"])


def map_hi(M, pos, stellar):
    for p in HI_LAYERS:
        pos = layer(M, pos, p, "sm", s=1e-3, stellar=stellar)
    rho = M.paint(pos)
    d, f = HI_DEPL, HI_FINAL
    mhat = np.maximum(stellar, 1e-12)
    mhat = mhat / mhat.mean()
    kk = np.where(M.k == 0, 1e-8, M.k)
    filt = M.ifft(M.fft(mhat) * (np.exp(-kk / d["kl"] - d["kh"] / kk) * kk ** d["nu"] + d["xi"]))
    depl = np.maximum(d["beta1"] * filt + d["eta"], 0) + d["beta2"] * mhat ** d["gamma3"]
    t = f["w"] * np.maximum(rho + f["z_s"], 0) ** f["mu"]
    terms = (np.abs(t) + np.abs(d["beta1"] * filt) + abs(d["eta"])
             + np.abs(d["beta2"] * mhat ** d["gamma3"]) + abs(f["b"]))
    return pos, np.maximum(t - depl + f["b"], 0), terms


def spectrum(M, field):
    dk = M.fft(field / field.mean() - 1)
    h = M.h
    win = np.ones_like(M.k)
    for kd in M.k1:
        x = kd * h / 2
        win = win * np.where(x == 0, 1.0, np.sin(x) / np.where(x == 0, 1, x)) ** 2
    p = np.abs(dk / win) ** 2
    w = np.full(M.k.shape, 2.0)
    w[:, :, 0] = 1
    if M.n % 2 == 0:
        w[:, :, -1] = 1
    kf = 2 * np.pi / L
    nb = int(np.floor(np.pi * M.n / L / kf + 1e-12))
    b = np.floor(M.k / kf * (1 + 1e-12) + 1e-12).astype(int)
    sel = (M.k > 0) & (b < nb)
    nm = np.bincount(b[sel], weights=w[sel], minlength=nb)
    with np.errstate(invalid="ignore"):
        pk = np.bincount(b[sel], weights=(w * p)[sel], minlength=nb) * L ** 3 / nm
    return pk, nm


# ---- inputs and runs -----------------------------------------------------------------------------
def make_particles(seed=5):
    """A lattice with Zel'dovich-like displacements of a power-law Gaussian field (rms ~ 0.6
    cell), so that the layers see real structure."""
    rng = np.random.default_rng(seed)
    n = NP
    m = np.fft.fftfreq(n, 1.0 / n)
    mz = np.fft.rfftfreq(n, 1.0 / n)
    k = [m[:, None, None], m[None, :, None], mz[None, None, :]]
    k2 = k[0] ** 2 + k[1] ** 2 + k[2] ** 2
    k2[0, 0, 0] = 1
    white = np.fft.rfftn(rng.standard_normal((n, n, n)))
    delta = white * k2 ** -0.75
    delta[0, 0, 0] = 0
    psi = np.stack([np.fft.irfftn(1j * k[d] / k2 * delta, s=(n,) * 3) for d in range(3)], -1)
    psi *= 0.6 * (L / n) / psi.std()
    q = (np.indices((n, n, n)).transpose(1, 2, 3, 0) + 0.5) * (L / n)
    pos = np.mod(q + psi, L).reshape(-1, 3).astype(np.float32)
    pos[pos >= np.float32(L)] = 0
    return pos, np.arange(n ** 3, dtype=np.uint64)


def write_snapshot(path, pos, ids):
    n = len(pos)
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        counts = np.array([0, n, 0, 0, 0, 0], dtype=np.uint64)
        h.attrs["NumPart_ThisFile"] = counts
        h.attrs["NumPart_Total"] = counts
        h.attrs["NumPart_Total_HighWord"] = np.zeros(6, dtype=np.uint32)
        h.attrs["MassTable"] = np.array([0, 1.0, 0, 0, 0, 0])
        h.attrs["Time"] = 1.0
        h.attrs["Redshift"] = 0.0
        h.attrs["BoxSize"] = L
        h.attrs["NumFilesPerSnapshot"] = 1
        h.attrs["Omega0"] = 0.3175
        h.attrs["OmegaLambda"] = 0.6825
        h.attrs["HubbleParam"] = 0.6711
        g = f.create_group("PartType1")
        g["Coordinates"] = pos
        g["Velocities"] = np.zeros_like(pos)
        g["ParticleIDs"] = ids


def run_lemur(snap, out, ranks=1, overrides=()):
    os.makedirs(out, exist_ok=True)
    yml = os.path.join(out, "params.yml")
    with open(yml, "w") as f:
        f.write(params_text(snap, out))
    cmd = [LEMUR, "jerald", yml, *overrides]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
    return r.returncode == 0


def read_positions(out, name):
    with h5py.File(os.path.join(out, f"jerald_{name}_particles.hdf5"), "r") as f:
        ids = f["PartType1/ParticleIDs"][:]
        pos = f["PartType1/Coordinates"][:]
    return pos[np.argsort(ids)]


def read_maps(out):
    with h5py.File(os.path.join(out, "jerald_maps.hdf5"), "r") as f:
        return {k: f["maps"][k][:].astype(np.float64) for k in f["maps"]}


def pos_error(a, b):
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return np.minimum(d, L - d).max()


def map_error(a, b, terms):
    """Largest |a - b| / (T + 1e-3 <T>), T the magnitude of the terms of each cell."""
    return (np.abs(a - b) / (terms + 1e-3 * terms.mean())).max()


def compare_reference(snap, pos0, n_mesh, order):
    out = os.path.join(TMP, f"mesh{n_mesh}")
    ok = run_lemur(snap, out, 1, [f"jerald.n_mesh={n_mesh}", f"jerald.gradient_order={order}"])
    check(f"lemur jerald runs (mesh {n_mesh}^3, order {order})", ok)
    if not ok:
        return
    M = Mesh(n_mesh, order)
    ref, terms = {}, {}
    pos_dm, ref["dm"], terms["dm"] = map_dm(M, pos0)
    pos_sm, ref["stars"], terms["stars"] = map_stellar(M, pos0)
    pos_hi, ref["hi"], terms["hi"] = map_hi(M, pos0, ref["stars"])
    maps = read_maps(out)
    for name, pos in (("dm", pos_dm), ("stars", pos_sm), ("hi", pos_hi)):
        moved = pos_error(pos, pos0)
        err = pos_error(read_positions(out, name), pos)
        check(f"{name} positions (mesh {n_mesh})", err < 1e-5 and moved > 0.05,
              f"max |dx| = {err:.2e} Mpc/h (largest displacement {moved:.3f} Mpc/h)")
        e = map_error(maps[name], ref[name], terms[name])
        spread = ref[name].std() / ref[name].mean()
        check(f"{name} map (mesh {n_mesh})", e < 1e-5 and spread > 0.1,
              f"max rel err = {e:.2e} (map rms/mean {spread:.2f})")
        with h5py.File(os.path.join(out, f"jerald_{name}_power.hdf5"), "r") as f:
            pk, nm = f["P"][:], f["N_modes"][:]
        rpk, rnm = spectrum(M, ref[name])
        full = rnm > 0
        ep = np.abs(pk[full] / rpk[full] - 1).max()
        same = np.array_equal(nm, rnm) and np.all(np.isnan(pk[~full]))
        check(f"{name} spectrum (mesh {n_mesh})", ep < 1e-4 and same,
              f"max rel err = {ep:.2e} over {full.sum()} bins with modes")
    return maps


def compare_ranks(snap, maps1):
    for ranks in (2, 3, 4):
        out = os.path.join(TMP, f"ranks{ranks}")
        ok = run_lemur(snap, out, ranks, ["jerald.n_mesh=32"])
        if not ok:
            check(f"lemur jerald on {ranks} ranks", False)
            continue
        maps = read_maps(out)
        for k in sorted(maps1):
            d = maps[k] - maps1[k]
            rms = np.sqrt((d ** 2).mean() / (maps1[k] ** 2).mean())
            mx = np.abs(d).max() / np.abs(maps1[k]).max()
            check(f"{k} map on {ranks} ranks equals 1 rank", rms <= 1e-6 and mx <= 2e-6,
                  f"rms diff {rms:.1e} of rms, max diff {mx:.1e} of max")


def main():
    os.makedirs(TMP, exist_ok=True)
    pos0, ids = make_particles()
    snap = os.path.join(TMP, "snap.hdf5")
    write_snapshot(snap, pos0, ids)
    maps = compare_reference(snap, pos0, 32, 6)
    compare_reference(snap, pos0, 27, 4)
    if maps:
        compare_ranks(snap, maps)
    print(f"cases: passed={passed} failed={failed}")
    return failed == 0


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
