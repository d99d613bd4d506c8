#!/usr/bin/python3
"""Gradients of `lemur jerald-fit` against PyTorch autograd of an independent implementation of the
JERALD chain (Rigo, Trotta & Viel 2025, arXiv 2501.09168), written from the paper's formulas.

Torch, float64, single process: CIC paint with differentiable weights (the particles move, so the
positions carry gradients through paint and readout), (rho + 1e-8)^gamma, FFT / N^3, the dark-matter
and stellar Green's functions (k = 0 taken as 1e-8), the 6th- and 4th-order finite-difference
gradient, CIC readout, x + grad phi wrapped; stellar map max(w (rho + 1e-8)^mu + b, 1e-12); HI layers
with the repulsive stellar term, depletion and final ReLU; loss (1/N_train) sum |O_s (F - T)|^p over
the training region x < N/2, O_s(k) = 1 + k^-n (k = 0 kept). The script writes a Gadget-layout
snapshot and a target file with h5py, runs `$LEMUR jerald-fit` with steps = 0 (one evaluation with
its gradient, written to jerald_fit_history.hdf5) and compares, for every trained parameter,
|g_lemur - g_torch| <= 1e-4 |g_torch| + 1e-7 max |g_torch| (lemur's meshes and particles are
float32; its gradients agree with torch's float64 to ~1e-6), and the losses to 1e-4.
Cases: dark matter (2 layers, L2 with smoothing, 16^3 mesh, order 6), stellar after the frozen dm
layer, HI (depletion included), and dark matter on an odd 15^3 mesh (order 4, L1).
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
LEMUR = os.environ["LEMUR"]
TMP = os.path.join(os.environ.get("LEMUR_TMP", "/tmp"), "check_jerald_fit")
NP, L = 16, 32.0
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = passed + ok, failed + (not ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")


# ---- the chain in torch ---------------------------------------------------------------------------
class Mesh:
    def __init__(self, n, order):
        self.n, self.order, self.h = n, order, L / n
        kf = 2 * np.pi / L
        m = torch.tensor(np.fft.fftfreq(n, 1.0 / n))
        mz = torch.tensor(np.fft.rfftfreq(n, 1.0 / n))
        self.k1 = [kf * m[:, None, None], kf * m[None, :, None], kf * mz[None, None, :]]
        k = torch.sqrt(self.k1[0] ** 2 + self.k1[1] ** 2 + self.k1[2] ** 2)
        self.k0 = k == 0
        self.k = torch.where(self.k0, torch.full_like(k, 1e-8), k)
        x = [kd * self.h for kd in self.k1]
        if order == 4:
            self.D = [(8 * torch.sin(a) - torch.sin(2 * a)) / (6 * self.h) for a in x]
        else:
            self.D = [(45 * torch.sin(a) - 9 * torch.sin(2 * a) + torch.sin(3 * a)) / (30 * self.h)
                      for a in x]

    def corners(self, pos):
        u = pos * (self.n / L)
        i0 = torch.floor(u).detach()
        t = u - i0
        i0 = i0.long()
        n = self.n
        for a in (0, 1):
            for b in (0, 1):
                for c in (0, 1):
                    w = ((t[:, 0] if a else 1 - t[:, 0]) * (t[:, 1] if b else 1 - t[:, 1])
                         * (t[:, 2] if c else 1 - t[:, 2]))
                    idx = (((i0[:, 0] + a) % n) * n + (i0[:, 1] + b) % n) * n + (i0[:, 2] + c) % n
                    yield idx, w

    def paint(self, pos):
        rho = torch.zeros(self.n ** 3)
        for idx, w in self.corners(pos):
            rho = rho.index_add(0, idx, w)
        return rho.reshape((self.n,) * 3) * self.n ** 3 / len(pos)

    def readout(self, field, pos):
        flat = field.reshape(-1)
        return sum(flat[idx] * w for idx, w in self.corners(pos))

    def fft(self, x):
        return torch.fft.rfftn(x) / self.n ** 3

    def ifft(self, xk):
        return torch.fft.irfftn(xk, s=(self.n,) * 3) * self.n ** 3


def green(form, M, p):
    k = M.k
    if form == "dm":
        e = -k / p["kl"] - p["kh"] / k
    else:
        e = -k ** 2 / p["kl"] ** 2 - p["kh"] ** 2 / k ** 2
    return -torch.exp(e) * k ** p["nu"]


def layer(M, pos, p, form, s=1e-2, stellar=None):
    rho = M.paint(pos)
    phi = s * p["alpha"] * green(form, M, p) * M.fft((rho + 1e-8) ** p["gamma"])
    if stellar is not None:
        q = p["repel"]
        phi = phi + s * q["alpha"] * (-green("sm", M, q)) * M.fft(stellar ** q["gamma"])
    disp = torch.stack([M.readout(M.ifft(-1j * M.D[d] * phi), pos) for d in range(3)], dim=1)
    return torch.remainder(pos + disp, L)


def final_map(M, model, pos, m, stellar=None):
    rho = M.paint(pos)
    if model == "dm":
        return rho
    f = m["final"]
    if model == "stellar":
        return torch.clamp(f["w"] * (rho + 1e-8) ** f["mu"] + f["b"], min=1e-12)
    d = m["depletion"]
    mhat = torch.clamp(stellar, min=1e-12)
    mhat = mhat / mhat.mean()
    filt_k = torch.where(M.k0, torch.zeros_like(M.k),
                         torch.exp(-M.k / d["kl"] - d["kh"] / M.k) * M.k ** d["nu"]) + d["xi"]
    filt = M.ifft(M.fft(mhat) * filt_k)
    depl = torch.relu(d["beta1"] * filt + d["eta"]) + d["beta2"] * mhat ** d["gamma3"]
    return torch.relu(f["w"] * torch.relu(rho + f["z_s"]) ** f["mu"] - depl + f["b"])


def evaluate(M, model, form, pos, m, stellar=None):
    s = 1e-3 if model == "hi" else 1e-2
    for p in m["layers"]:
        pos = layer(M, pos, p, "sm" if model == "hi" else form, s, stellar)
    return final_map(M, model, pos, m, stellar)


def loss(M, F, T, p, n_smooth):
    e = F - T
    if n_smooth:
        o = torch.where(M.k0, torch.ones_like(M.k), 1 + M.k ** -n_smooth)
        e = M.ifft(M.fft(e) * o)
    e = e[: M.n // 2]
    return (e.abs() if p == 1 else e ** 2).mean()


def tensors(m):
    """The parameter dict with every number a leaf tensor requiring a gradient."""
    if isinstance(m, dict):
        return {k: tensors(v) for k, v in m.items()}
    if isinstance(m, list):
        return [tensors(v) for v in m]
    return torch.tensor(float(m), requires_grad=True)


def grad_of(m, name):
    """Gradient of the parameter named as lemur names it (layers.0.kl, final.w, ...)."""
    parts = name.split(".")
    x = m
    for part in parts:
        x = x[int(part)] if part.isdigit() else x[part]
    return 0.0 if x.grad is None else x.grad.item()


# ---- inputs and runs --------------------------------------------------------------------------
def make_particles(seed=11):
    rng = np.random.default_rng(seed)
    n = NP
    m = np.fft.fftfreq(n, 1.0 / n)
    mz = np.fft.rfftfreq(n, 1.0 / n)
    k = [m[:, None, None], m[None, :, None], mz[None, None, :]]
    k2 = k[0] ** 2 + k[1] ** 2 + k[2] ** 2
    k2[0, 0, 0] = 1
    delta = np.fft.rfftn(rng.standard_normal((n, n, n))) * k2 ** -0.75
    delta[0, 0, 0] = 0
    psi = np.stack([np.fft.irfftn(1j * k[d] / k2 * delta, s=(n,) * 3) for d in range(3)], -1)
    psi *= 0.5 * (L / n) / psi.std()
    q = (np.indices((n, n, n)).transpose(1, 2, 3, 0) + 0.5) * (L / n)
    pos = np.mod(q + psi, L).reshape(-1, 3).astype(np.float32)
    pos[pos >= np.float32(L)] = 0
    return pos


def write_snapshot(path, pos):
    n = len(pos)
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        c = np.array([0, n, 0, 0, 0, 0], dtype=np.uint64)
        h.attrs.update(NumPart_ThisFile=c, NumPart_Total=c,
                       NumPart_Total_HighWord=np.zeros(6, np.uint32), MassTable=np.zeros(6),
                       Time=1.0, Redshift=0.0, BoxSize=L, NumFilesPerSnapshot=1, Omega0=0.3,
                       OmegaLambda=0.7, HubbleParam=0.7)
        g = f.create_group("PartType1")
        g["Coordinates"] = pos
        g["Velocities"] = np.zeros_like(pos)
        g["ParticleIDs"] = np.arange(n, dtype=np.uint64)


def flow(d):
    if isinstance(d, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in d.items()) + "}"
    if isinstance(d, list):
        return "[" + ", ".join(flow(v) for v in d) + "]"
    return str(d)


DM = dict(layers=[dict(alpha=40.0, gamma=0.6, kh=0.3, kl=3.0, nu=0.2),
                  dict(alpha=25.0, gamma=0.7, kh=0.5, kl=4.0, nu=-0.2)])
STARS = dict(layers=[dict(alpha=30.0, gamma=0.5, kh=0.2, kl=3.0, nu=0.1)],
             final=dict(w=1.2, mu=1.6, b=-0.05))
HI = dict(layers=[dict(alpha=300.0, gamma=0.5, kh=0.4, kl=3.0, nu=0.0,
                       repel=dict(alpha=120.0, gamma=0.7, kh=0.3, kl=2.0, nu=0.1))],
          final=dict(w=1.1, mu=1.5, b=0.02, z_s=0.1),
          depletion=dict(beta1=0.4, beta2=0.2, gamma3=0.8, eta=-0.1, kh=0.2, kl=2.0, nu=0.3, xi=0.05))


def run_case(name, pos0, n_mesh, order, p, n_smooth, maps):
    """maps: list of (name, model, params, base) fitted in this order; the targets are the torch
    maps of perturbed parameters (alpha x 1.3, mu + 0.1)."""
    out = os.path.join(TMP, name)
    os.makedirs(out, exist_ok=True)
    M = Mesh(n_mesh, order)
    pos = torch.tensor(pos0.astype(np.float64))
    tfile = os.path.join(out, "targets.hdf5")
    results, stellar = {}, None
    with h5py.File(tfile, "w") as f:
        for mname, model, m, base in maps:
            full = dict(m)
            if base:
                full["layers"] = maps[[x[0] for x in maps].index(base)][2]["layers"] + m["layers"]
            planted = {k: (v if k != "layers" else [dict(l, alpha=l["alpha"] * 1.3) for l in v])
                       for k, v in full.items()}
            if "final" in planted:
                planted["final"] = dict(planted["final"], mu=planted["final"]["mu"] + 0.1)
            with torch.no_grad():
                T = evaluate(M, model, "dm", pos, planted, stellar)
            f[f"t/{mname}"] = T.numpy().astype(np.float32)
            tm = tensors(full)
            F = evaluate(M, model, "dm", pos, tm, stellar)
            Tt = torch.tensor(f[f"t/{mname}"][...].astype(np.float64))
            lv = loss(M, F, Tt, p, n_smooth)
            lv.backward()
            results[mname] = (tm, lv.item(), len(full["layers"]) - len(m["layers"]))
            if model == "stellar":
                with torch.no_grad():
                    stellar = evaluate(M, model, "dm", pos, full)
    yml = os.path.join(out, "fit.yml")
    with open(yml, "w") as f:
        f.write(f"box: {{size: {L}, n: {NP}}}\njerald:\n  input: {os.path.join(TMP, 'snap.hdf5')}\n"
                f"  n_mesh: {n_mesh}\n  gradient_order: {order}\n  maps:\n")
        for mname, model, m, base in maps:
            extra = ", green: sm, stellar_map: stars" if model == "hi" else ", green: dm"
            f.write(f"    {mname}: {{model: {model}{extra}, "
                    + flow(m)[1:] + "\n")
        f.write(f"  fit:\n    steps: 0\n    loss: l{p}\n    smoothing_n: {n_smooth}\n    targets:\n")
        for mname, model, m, base in maps:
            b = f", base: {base}" if base else ""
            f.write(f"      {mname}: {{file: {tfile}, dataset: t/{mname}{b}}}\n")
        f.write(f"output: {{dir: {out}}}\nrun: {{verbosity: 0}}\n")
    r = subprocess.run([LEMUR, "jerald-fit", yml], capture_output=True, text=True)
    check(f"lemur jerald-fit runs ({name})", r.returncode == 0, r.stderr[-2000:])
    if r.returncode != 0:
        return
    with h5py.File(os.path.join(out, "jerald_fit_history.hdf5"), "r") as f:
        for mname, (tm, lv, first) in results.items():
            g = f[mname]
            names = g.attrs["parameter_names"]
            names = (names.decode() if isinstance(names, bytes) else str(names)).split()
            gl = g["gradient"][0]
            gt = np.array([grad_of(tm, n) for n in names])
            ll = g["loss_train"][0]
            check(f"{name} {mname} loss", abs(ll - lv) <= 1e-4 * lv, f"lemur {ll:.8e} torch {lv:.8e}")
            big = np.abs(gt).max()
            err = np.abs(gl - gt) / (np.abs(gt) + 0.05 * big)
            worst = int(err.argmax())
            ok = np.all(np.abs(gl - gt) <= 1e-4 * np.abs(gt) + 1e-7 * big) and big > 0
            check(f"{name} {mname} gradient ({len(names)} parameters)", ok,
                  f"worst {names[worst]}: lemur {gl[worst]:.6e} torch {gt[worst]:.6e}; "
                  f"largest rel. diff {(np.abs(gl - gt) / np.abs(gt)).max():.1e}, median "
                  f"{np.median(np.abs(gl - gt) / np.abs(gt)):.1e}")


def main():
    os.makedirs(TMP, exist_ok=True)
    pos0 = make_particles()
    write_snapshot(os.path.join(TMP, "snap.hdf5"), pos0)
    stars = dict(layers=STARS["layers"], final=STARS["final"])
    run_case("dm16", pos0, 16, 6, 2, 1.0, [("dm", "dm", DM, None)])
    run_case("stellar16", pos0, 16, 6, 2, 0.0,
             [("dm", "dm", DM, None), ("stars", "stellar", stars, "dm")])
    run_case("hi16", pos0, 16, 6, 2, 0.0, [("stars", "stellar", stars, None), ("hi", "hi", HI, None)])
    run_case("dm15", pos0, 15, 4, 1, 0.0, [("dm", "dm", DM, None)])
    print(f"cases: passed={passed} failed={failed}")
    return failed == 0


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
