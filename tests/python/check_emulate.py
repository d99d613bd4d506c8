#!/usr/bin/python3
"""`lemur emulate` end to end against an independent PyTorch reference, and its refusals.

A reduced-width (width 4) random V-Net in PyTorch (tests/python/emunet_torch.py) is saved as an
authors'-format checkpoint and converted with tools/convert-weights; a random linear displacement
field of a 16^3 box at the emulator's spacing (L = 31.25 Mpc/h) is written as an IC field file
(psi_x, psi_y, psi_z, BoxSize). `lemur emulate` runs on 1 rank (tile 8: 8 tiles) and on 3 ranks
(automatic tile; one rank owns no cell, the snapshot is split into 2 files), for z = 0.5 and 0. The
particles (sorted by ID) must equal the PyTorch forward pass and its forward-mode derivative in D
on the periodically padded box:
    x = q + Psi_NL (periodic)            |dx| <= 1e-4 max|Psi_NL|
    v = D f H / (1 + z) dPsi_NL/dD        |dv| <= 1e-4 max|v|      (Gadget stores v / sqrt(a))
and the 1- and 3-rank runs must agree to 1e-6 (the tiling changes, the arithmetic per cell does
not). `lemur run` with stages [ic, emulate] on 3 ranks hands the field from ic's x-slabs to the
emulator's blocks in memory and must give the particles of the 3-rank `lemur emulate` bitwise.
D and f come from the growth integral in numpy (checked against the published growth values).

Refusals (on 1 rank, or 2 where the ranks must agree), each with a non-zero exit, the expected message and no output file left behind: a model
with a wrongly shaped tensor and one with a missing tensor (the loader's message), a grid spacing
other than 1000/512 Mpc/h, Omega_m and z outside the training range with
emulator.allow_extrapolation: false (and a warning when true), a tile that is not a multiple of 8,
a tile that does not fit emulator.memory_limit, a missing input field, backend gpu without a usable
GPU (where there is none), a NaN in the input field (named with its cell), and a NaN and an
infinite weight (the loader names the tensor and the index of the first), and finite weights
whose output overflows (the emulator's output is refused). An empty emulator.model skips the stage with a notice.
Prints "cases: passed=N failed=M"."""

import glob
import math
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import emunet_torch as ref  # noqa: E402

LEMUR = os.environ.get("LEMUR", os.path.join(TOP, "build", "lemur"))
CONVERT = os.path.join(TOP, "tools", "convert-weights")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
MPIRUN = ["mpirun", "--oversubscribe", "-n"]
N, WIDTH, OMEGA_M, REDSHIFTS = 16, 4, 0.3175, [0.5, 0.0]
SPACING = 1000.0 / 512.0
passed = failed = 0


def check(ok, msg):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    passed, failed = passed + bool(ok), failed + (not ok)


# ---- flat LCDM growth from the integral D ∝ E ∫ da / (a E)^3 (independent of lemur) -----------
def growth(omega_m, a):
    """(D(a) with D(1) = 1, f(a)) by Gauss-Legendre quadrature of the growth integral."""
    def E(x):
        return np.sqrt(omega_m / x**3 + 1 - omega_m)

    def integral(amax):  # substitute a = amax u^2 (smooth integrand near 0)
        u, w = np.polynomial.legendre.leggauss(400)
        u, w = 0.5 * (u + 1), 0.5 * w
        x = amax * u * u
        return float(np.sum(w * 2 * amax * u / (x * E(x)) ** 3))

    def D_raw(x):
        return E(x) * integral(x)

    D = D_raw(a) / D_raw(1.0)
    f = -1.5 * omega_m / a**3 / E(a) ** 2 + 1.0 / (a**2 * E(a) ** 3 * integral(a))
    return D, f


def hubble(omega_m, z):
    return 100.0 * math.sqrt(omega_m * (1 + z) ** 3 + 1 - omega_m)


# ---- inputs ----------------------------------------------------------------------------------
def make_model(tmp):
    torch.manual_seed(5)
    net = ref.init_random(ref.StyledVNet(WIDTH), 5)
    ckpt, model = os.path.join(tmp, "emu.pt"), os.path.join(tmp, "emu.h5")
    torch.save({"model": net.state_dict(), "epoch": 0}, ckpt)
    r = subprocess.run([PYTHON, CONVERT, ckpt, model], capture_output=True, text=True)
    check(r.returncode == 0, "convert-weights: %s" % (r.stdout + r.stderr).strip())
    return net, model


def make_field(tmp, n, spacing):
    rng = np.random.default_rng(11)
    psi = (rng.standard_normal((3, n, n, n)) * 3.0).astype(np.float32)
    path = os.path.join(tmp, "field_%d_%g.hdf5" % (n, spacing))
    with h5py.File(path, "w") as f:
        for c, name in enumerate(("psi_x", "psi_y", "psi_z")):
            f[name] = psi[c]
        f.attrs["BoxSize"] = n * spacing
    return psi, path


def write_params(tmp, name, model, field, n=N, spacing=SPACING, **extra):
    out = os.path.join(tmp, "out_" + name)
    shutil.rmtree(out, ignore_errors=True)
    keys = {
        "box": {"size": n * spacing, "n": n},
        "cosmology": {"Omega_m": OMEGA_M},
        "ic": {"input": field},
        "emulator": {"model": model, "tile": 8, "backend": "cpu",
                     "redshifts": "[" + ", ".join(str(z) for z in REDSHIFTS) + "]",
                     "output_fields": "true"},
        "particles": {"n_files": 1},
        "output": {"dir": out},
    }
    for k, v in extra.items():
        sec, key = k.split("__")
        keys.setdefault(sec, {})[key] = v
    path = os.path.join(tmp, name + ".yml")
    with open(path, "w") as f:
        for sec, kv in keys.items():
            f.write(sec + ":\n")
            for k, v in kv.items():
                f.write("  %s: %s\n" % (k, v if not isinstance(v, str) or v.startswith("[")
                                        or v in ("true", "false") else '"%s"' % v))
    return path, out


def run(ranks, params, *over, command="emulate"):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = MPIRUN + [str(ranks), LEMUR, command, params] + list(over)
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


# ---- the reference and the comparison --------------------------------------------------------
def reference(net, psi, z):
    a = 1.0 / (1.0 + z)
    D, f = growth(OMEGA_M, a)
    padded = np.pad(psi, ((0, 0),) + ((ref.HALO, ref.HALO),) * 3, mode="wrap")
    torch.set_num_threads(2)
    y, dy = ref.emulate_jvp(net, torch.from_numpy(padded)[None], OMEGA_M, D)
    vf = D * f * hubble(OMEGA_M, z) / (1 + z)
    return y[0].numpy().astype(np.float64), dy[0].numpy().astype(np.float64) * vf


def read_snapshot(out, base):
    files = sorted(glob.glob(os.path.join(out, base + ".hdf5")) +
                   glob.glob(os.path.join(out, base + ".[0-9]*.hdf5")))
    pos, vel, ids, a = [], [], [], None
    for name in files:
        with h5py.File(name, "r") as f:
            pos.append(f["PartType1/Coordinates"][...])
            vel.append(f["PartType1/Velocities"][...])
            ids.append(f["PartType1/ParticleIDs"][...])
            a = float(f["Header"].attrs["Time"])
    ids = np.concatenate(ids)
    order = np.argsort(ids)
    return (np.concatenate(pos)[order].astype(np.float64),
            np.concatenate(vel)[order].astype(np.float64) * math.sqrt(a), ids[order], len(files))


def compare_snapshot(label, out, base, psi_nl, vel, n):
    pos, v, ids, nfiles = read_snapshot(out, base)
    check(nfiles > 0 and np.array_equal(ids, np.arange(n**3)),
          "%s: %s has the %d^3 IDs (i n + j) n + k once each (%d files)" % (label, base, n, nfiles))
    if len(ids) != n**3:
        return None
    L = n * SPACING
    q = np.stack(np.meshgrid(*([np.arange(n) * SPACING] * 3), indexing="ij"))
    expect = np.mod(q + psi_nl, L).reshape(3, -1).T
    d = np.mod(pos - expect + L / 2, L) - L / 2
    ex, ev = np.max(np.abs(d)), np.max(np.abs(v - vel.reshape(3, -1).T))
    sx, sv = np.max(np.abs(psi_nl)), np.max(np.abs(vel))
    check(ex <= 1e-4 * sx, "%s: positions vs PyTorch: max |dx| %.2e Mpc/h (|Psi_NL| <= %.2f)"
          % (label, ex, sx))
    check(ev <= 1e-4 * sv, "%s: velocities vs PyTorch JVP: max |dv| %.2e km/s (|v| <= %.1f)"
          % (label, ev, sv))
    return pos, v


def compare_fields(label, out, name, psi_nl, vel):
    path = os.path.join(out, name + ".hdf5")
    if not os.path.exists(path):
        check(False, "%s: %s written" % (label, path))
        return
    with h5py.File(path, "r") as f:
        p = np.stack([f[k][...] for k in ("psi_x", "psi_y", "psi_z")])
        v = np.stack([f[k][...] for k in ("vel_x", "vel_y", "vel_z")])
    ep, ev = np.max(np.abs(p - psi_nl)), np.max(np.abs(v - vel))
    check(ep <= 1e-4 * np.max(np.abs(psi_nl)) and ev <= 1e-4 * np.max(np.abs(vel)),
          "%s: %s: Psi_NL and v fields vs PyTorch (%.2e Mpc/h, %.2e km/s)" % (label, name, ep, ev))


def end_to_end(tmp, net, model):
    psi, field = make_field(tmp, N, SPACING)
    refs = [reference(net, psi, z) for z in REDSHIFTS]
    runs = {}
    for ranks, tile, nfiles in ((1, 8, 1), (3, 0, 2)):
        label = "%d rank%s, tile %s" % (ranks, "s" if ranks > 1 else "", tile or "auto")
        params, out = write_params(tmp, "e2e%d" % ranks, model, field,
                                   emulator__tile=tile, particles__n_files=nfiles)
        r = run(ranks, params)
        check(r.returncode == 0, "%s: lemur emulate ran %s" % (label, r.stderr.strip()[-800:]))
        check("tiles/s" in r.stdout and "ETA" in r.stdout, "%s: progress with rate and ETA" % label)
        if r.returncode:
            continue
        runs[ranks] = []
        for iz, z in enumerate(REDSHIFTS):
            base = "snapshot" if iz == 0 else "snapshot_z%g" % z
            got = compare_snapshot("%s, z = %g" % (label, z), out, base, *refs[iz], N)
            runs[ranks].append(got)
            fname = "emulated_field" if iz == 0 else "emulated_field_z%g" % z
            compare_fields("%s, z = %g" % (label, z), out, fname, *refs[iz])
        left = glob.glob(os.path.join(out, "*.tmp"))
        check(not left, "%s: no temporary file left (%s)" % (label, left))
    in_memory(tmp, model, field, runs.get(3))
    if 1 in runs and 3 in runs:
        for iz, z in enumerate(REDSHIFTS):
            a, b = runs[1][iz], runs[3][iz]
            if a is None or b is None:
                continue
            dx = np.max(np.abs(a[0] - b[0])) / np.max(np.abs(a[0]))
            dv = np.max(np.abs(a[1] - b[1])) / np.max(np.abs(a[1]))
            check(dx <= 1e-6 and dv <= 1e-6,
                  "z = %g: 1 and 3 ranks (tiles 8 and auto) agree: rel %.1e, %.1e" % (z, dx, dv))
    return field


def in_memory(tmp, model, field, from_file):
    """`lemur run` with stages [ic, emulate] on 3 ranks: ic reads ic.input into x-slabs and hands
    them to the emulator, which redistributes them into its blocks in memory; the particles equal
    bitwise those of `lemur emulate` reading the same field file into the blocks."""
    params, out = write_params(tmp, "mem3", model, field, particles__n_files=2)
    r = run(3, params, "run.stages=[ic, emulate]", command="run")
    check(r.returncode == 0 and "redistributed in memory" in r.stdout,
          "lemur run [ic, emulate], 3 ranks: the field redistributed in memory %s"
          % r.stderr.strip()[-800:])
    if r.returncode or not from_file:
        return
    for iz, z in enumerate(REDSHIFTS):
        if from_file[iz] is None:
            continue
        base = "snapshot" if iz == 0 else "snapshot_z%g" % z
        got = read_snapshot(out, base)
        same = all(np.array_equal(got[k], from_file[iz][k]) for k in (0, 1))
        check(same, "z = %g: the in-memory hand-off gives the particles of the file bitwise" % z)


# ---- refusals ----------------------------------------------------------------------------------
def bad_model(tmp, model, kind):
    path = os.path.join(tmp, "bad_%s.h5" % kind)
    shutil.copy(model, path)
    with h5py.File(path, "a") as f:
        g = f["layers/conv_l1.convs.2"]
        if kind == "shape":
            w = g["weight"][...]
            del g["weight"]
            g["weight"] = w[..., :2]
        else:
            del g["bias"]
    return path


def outputs_in(out):
    return glob.glob(os.path.join(out, "snapshot*")) + glob.glob(os.path.join(out, "emulated*"))


def expect_refusal(tmp, name, needles, model, field, ranks=1, warn=None, **extra):
    params, out = write_params(tmp, name, model, field, **extra)
    r = run(ranks, params)
    text = r.stdout + r.stderr
    ok = r.returncode != 0 and all(s in text for s in needles)
    check(ok, "%s: refused with %s" % (name, needles if ok else text.strip()[-600:]))
    if warn:
        check(warn in text, "%s: warns '%s'" % (name, warn))
    left = outputs_in(out)
    check(not left, "%s: no output left behind %s" % (name, left))
    return text


def refusals(tmp, model, field):
    expect_refusal(tmp, "bad_shape", ["conv_l1.convs.2/weight", "shape"],
                   bad_model(tmp, model, "shape"), field, ranks=2)
    expect_refusal(tmp, "missing_tensor", ["missing tensor", "conv_l1.convs.2/bias"],
                   bad_model(tmp, model, "missing"), field)
    psi, field2 = make_field(tmp, N, 2.0)
    expect_refusal(tmp, "spacing", ["box.size = 32", "box.n = 16", "2.000000", "1.953125"],
                   model, field2, spacing=2.0)
    expect_refusal(tmp, "omega_m", ["cosmology.Omega_m = 0.6", "training range",
                                    "allow_extrapolation"],
                   model, field, cosmology__Omega_m=0.6, emulator__allow_extrapolation="false")
    expect_refusal(tmp, "redshift", ["emulator.redshifts[0] = 4", "training range"], model, field,
                   emulator__redshifts="[4]", emulator__allow_extrapolation="false")
    expect_refusal(tmp, "omega_m_warning_then_tile", ["emulator.tile = 12", "multiple of 8"],
                   model, field, warn="extrapolating", cosmology__Omega_m=0.6, emulator__tile=12)
    expect_refusal(tmp, "memory", ["GiB of memory", "emulator.memory_limit",
                                   "smaller emulator.tile"],
                   model, field, ranks=2, emulator__tile=16, emulator__memory_limit=0.01)
    expect_refusal(tmp, "missing_field", ["no_such_field.hdf5"], model,
                   os.path.join(tmp, "no_such_field.hdf5"))
    nan_field = os.path.join(tmp, "nan_field.hdf5")
    shutil.copy(field, nan_field)
    with h5py.File(nan_field, "a") as f:
        f["psi_y"][3, 4, 5] = np.nan
    expect_refusal(tmp, "nan_input", ["nan_field.hdf5: dataset psi_y holds a non-finite value",
                                      "at cell [3, 4, 5]"], model, nan_field, ranks=2)
    nan_model = os.path.join(tmp, "nan_weight.h5")
    shutil.copy(model, nan_model)
    with h5py.File(nan_model, "a") as f:
        f["layers/conv_l1.convs.2/bias"][2] = np.nan
    expect_refusal(tmp, "nan_weight", ["model file '%s': tensor /layers/conv_l1.convs.2/bias holds "
                                       "a non-finite value (nan) at index [2]" % nan_model],
                   nan_model, field, ranks=2)
    inf_model = os.path.join(tmp, "inf_weight.h5")
    shutil.copy(model, inf_model)
    with h5py.File(inf_model, "a") as f:
        w = f["layers/conv_l1.convs.2/weight"]
        w[1, 2, 0, 2, 1] = -np.inf
        w[3, 0, 0, 0, 0] = np.inf
    expect_refusal(tmp, "inf_weight", ["tensor /layers/conv_l1.convs.2/weight holds a non-finite "
                                       "value (-inf) at index [1, 2, 0, 2, 1]"], inf_model, field)
    big_model = os.path.join(tmp, "overflowing_weight.h5")
    shutil.copy(model, big_model)
    with h5py.File(big_model, "a") as f:
        f["layers/conv_l1.convs.2/bias"][0] = 3e38
    expect_refusal(tmp, "overflowing_weight", ["the emulator's output", "is not finite at cell "
                                               "[0, 0, 0]", "emulator.model"],
                   big_model, field, ranks=2)
    params, out = write_params(tmp, "gpu", model, field, emulator__backend="gpu")
    r = run(1, params)
    gpu_ok = r.returncode == 0 or "no GPU can be used" in r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("lemur")]
    check(gpu_ok, "backend gpu: runs on a GPU or says why none can be used: %s" % said)
    params, out = write_params(tmp, "nomodel", "", field)
    r = run(1, params)
    check(r.returncode == 0 and "skipped" in r.stdout and "tools/convert-weights" in r.stdout
          and not outputs_in(out),
          "empty emulator.model: the stage is skipped with a notice on the weights")


def main():
    D1, f0 = growth(0.3175, 0.5)[0], growth(0.3175, 1.0)[1]
    check(abs(D1 - 0.605938) < 2e-6 and abs(f0 - 0.529457) < 2e-6,
          "numpy growth: D(z=1) = %.6f, f(0) = %.6f (spec: 0.605938, 0.529457)" % (D1, f0))
    tmp = os.path.join(os.environ.get("LEMUR_TMP") or tempfile.mkdtemp(), "check_emulate")
    os.makedirs(tmp, exist_ok=True)
    net, model = make_model(tmp)
    field = end_to_end(tmp, net, model)
    refusals(tmp, model, field)
    print("cases: passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
