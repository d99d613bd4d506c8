#!/usr/bin/python3
"""tools/convert-weights: a reduced-width (width 4) random network as the authors' PyTorch
checkpoint and as the JAX port's .npz (nested pickled dict, and flat keys) converts to the same
model file, tensor for tensor, with the documented attributes; a checkpoint or .npz with a
missing, extra or wrongly shaped tensor is refused with a message naming it; lemur's reader
(the test_emunet driver) refuses a converted file whose tensor was given a wrong shape, naming
it. Prints "cases: passed=N failed=M"."""

import os
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

CONVERT = os.path.join(TOP, "tools", "convert-weights")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
DRIVER = os.path.join(os.environ.get("LEMUR_BUILD", os.path.join(TOP, "build")), "tests", "test_emunet")
passed = failed = 0
JAX_LAYER = {"convs.0": "conv_0", "convs.2": "conv_1", "skip": "skip"}


def check(ok, msg):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    passed, failed = passed + bool(ok), failed + (not ok)


def convert(inp, out):
    r = subprocess.run([PYTHON, CONVERT, inp, out], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def jax_params(sd):
    """The JAX port's nested dict: params[block][conv_0|conv_1|skip][tensor], up-convolution
    kernels as [Cout, Cin, 2, 2, 2] flipped."""
    params = {}
    for name, t in sd.items():
        block, layer, tensor = name.split(".")[0], ".".join(name.split(".")[1:-1]), name.split(".")[-1]
        a = t.detach().numpy().copy()
        if block.startswith("up_") and tensor == "weight":
            a = np.ascontiguousarray(np.transpose(a, (1, 0, 2, 3, 4))[:, :, ::-1, ::-1, ::-1])
        params.setdefault(block, {}).setdefault(JAX_LAYER[layer], {})[tensor] = a
    return params


def save_npz_nested(path, params):
    box = np.empty((), dtype=object)
    box[()] = params
    np.savez(path, params=box)


def same_model(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = sorted(fa["layers"].keys())
        if names != sorted(fb["layers"].keys()):
            return False
        return all(np.array_equal(fa["layers"][n][t][()], fb["layers"][n][t][()])
                   for n in names for t in ("style_weight", "style_bias", "weight", "bias"))


def bias_cases(tmp):
    """--from bias: a state_dict of the Lagrangian-bias nn.Sequential and its orthogonalisation."""
    torch.manual_seed(4)
    layers = []
    for i in range(5):
        layers += [torch.nn.Linear(7 if i == 0 else 64, 64), torch.nn.GELU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(64, 1))
    sd = net.state_dict()
    rng = np.random.default_rng(2)
    orth = {"scales": np.array([1.0, 2.83, 8.0]), "V": rng.normal(size=(9, 7)),
            "Lambda": rng.uniform(0.5, 2, 7)}
    pt, npz, h5 = (os.path.join(tmp, n) for n in ("bias_sd.pt", "bias_orth.npz", "bias.h5"))

    def conv(state, o, expect=None, what=""):
        torch.save(state, pt)
        np.savez(npz, **o)
        r = subprocess.run([PYTHON, CONVERT, "--from", "bias", "--orth", npz, pt, h5],
                           capture_output=True, text=True)
        msg = (r.stdout + r.stderr).strip()
        if expect is None:
            return r.returncode, msg
        check(r.returncode == 1 and expect in msg, "bias: %s refused: %s" % (what, msg))

    rc, msg = conv({"state_dict": {"module." + k: v for k, v in sd.items()}}, orth)
    ok = rc == 0
    if ok:
        with h5py.File(h5, "r") as f:
            ok = f.attrs["format"] == "lemur-bias-mlp" and np.array_equal(f["orth/V"][()], orth["V"]) \
                and np.array_equal(f["orth/Lambda"][()], orth["Lambda"]) \
                and np.array_equal(f["scales"][()], orth["scales"]) \
                and list(f["orth/kept"][()]) == [0, 1, 2, 3, 0, 1, 2] \
                and all(np.array_equal(f["mlp/weight_%d" % i][()], sd["%d.weight" % (2 * i)].numpy())
                        and np.array_equal(f["mlp/bias_%d" % i][()], sd["%d.bias" % (2 * i)].numpy())
                        for i in range(6))
    check(ok, "bias: a state_dict (under 'state_dict', 'module.' prefix) and its orthogonalisation "
          "convert, every tensor unchanged: " + msg)
    bad = dict(sd)
    bad["4.weight"] = torch.ones(64, 63)
    conv(bad, orth, "tensor 4.weight has shape (64, 63), expected (64, 64)", "a wrongly shaped layer")
    bad = dict(sd)
    bad["10.bias"] = torch.tensor([float("nan")])
    conv(bad, orth, "tensor 10.bias holds a non-finite value at index [0]", "a NaN bias")
    bad = dict(sd)
    del bad["6.bias"]
    conv(bad, orth, "missing tensors: 6.bias", "a missing tensor")
    conv(sd, dict(orth, V=orth["V"][:, :6]), "tensor V has shape (9, 6), expected (9, 7)",
         "a wrongly shaped V")
    lam = orth["Lambda"].copy()
    lam[3] = -1
    conv(sd, dict(orth, Lambda=lam), "Lambda[3] = -1; expected > 0", "a negative eigenvalue")
    vv = orth["V"].copy()
    vv[2, 1] = np.inf
    conv(sd, dict(orth, V=vv), "tensor V holds a non-finite value at index [2, 1]", "an infinite V")
    torch.save(sd, pt)
    r = subprocess.run([PYTHON, CONVERT, "--from", "bias", pt, h5], capture_output=True, text=True)
    check(r.returncode == 1 and "needs --orth" in r.stderr, "bias: no --orth refused: " + r.stderr.strip())


def main():
    tmp = os.environ.get("LEMUR_TMP") or tempfile.mkdtemp()
    os.makedirs(tmp, exist_ok=True)
    net = ref.init_random(ref.StyledVNet(4), 3)
    sd = net.state_dict()
    check(len(sd) == 132, "the reference network has %d tensors (132 expected)" % len(sd))
    pt, h5 = os.path.join(tmp, "conv_w4.pt"), os.path.join(tmp, "conv_w4.h5")
    torch.save({"model": sd, "optimizer": {}}, pt)
    rc, msg = convert(pt, h5)
    check(rc == 0, "PyTorch checkpoint converts: " + msg)
    with h5py.File(h5, "r") as f:
        a = f.attrs
        check(a["format"] == "lemur-emulator-model" and a["format_version"] == 1 and a["width"] == 4
              and a["halo"] == 48 and len(f["layers"]) == 33 and len(f["blocks"]) == 15,
              "model file attributes: format, version 1, width 4, halo 48, 33 layers, 15 blocks")
        ok = all(np.array_equal(f["layers"][".".join(n.split(".")[:-1])][n.split(".")[-1]][()],
                                t.numpy()) for n, t in sd.items())
        check(ok, "every tensor is stored unchanged under /layers/<block>.<layer>/<tensor>")
        check(f["blocks/up_r1"].attrs["concat_from"] == "conv_l1" and f["blocks/up_r1"].attrs["concat_crop"] == 16
              and f["layers/up_r1.convs.0"].attrs["kind"] == "tconv", "up_r1: tconv, concat conv_l1 cropped by 16")

    nested = os.path.join(tmp, "conv_w4_nested.npz")
    save_npz_nested(nested, jax_params(sd))
    rc, msg = convert(nested, os.path.join(tmp, "conv_w4_jax.h5"))
    check(rc == 0 and same_model(h5, os.path.join(tmp, "conv_w4_jax.h5")),
          "JAX .npz (nested params) converts to the same model file: " + msg)
    flat = os.path.join(tmp, "conv_w4_flat.npz")
    p = jax_params(sd)
    np.savez(flat, **{"params/%s/%s/%s" % (b, l, t): v for b in p for l in p[b] for t, v in p[b][l].items()})
    rc, msg = convert(flat, os.path.join(tmp, "conv_w4_flat.h5"))
    check(rc == 0 and same_model(h5, os.path.join(tmp, "conv_w4_flat.h5")),
          "JAX .npz (flat keys) converts to the same model file: " + msg)

    def refuse(state, expect, what, path="bad.pt"):
        full = os.path.join(tmp, path)
        if path.endswith(".npz"):
            save_npz_nested(full, state)
        else:
            torch.save(state, full)
        rc, msg = convert(full, os.path.join(tmp, "bad.h5"))
        check(rc == 1 and all(e in msg for e in expect), "%s refused: %s" % (what, msg))

    bad = dict(sd)
    del bad["conv_l1.skip.bias"]
    refuse({"model": bad}, ["missing tensors: conv_l1.skip.bias"], "missing tensor")
    bad = dict(sd)
    bad["conv_c.convs.2.scale"] = torch.ones(4)
    refuse({"model": bad}, ["unexpected tensors: conv_c.convs.2.scale"], "extra tensor")
    bad = dict(sd)
    bad["up_r1.convs.0.weight"] = torch.ones(4, 4, 3, 3, 3)
    refuse({"model": bad}, ["tensor up_r1.convs.0.weight has shape (4, 4, 3, 3, 3), expected (4, 4, 2, 2, 2)"],
           "wrong shape")
    bad = dict(sd)
    bad["up_r1.convs.0.weight"] = sd["up_r1.convs.0.weight"].clone()
    bad["up_r1.convs.0.weight"][1, 2, 0, 1, 1] = float("nan")
    refuse({"model": bad}, ["tensor up_r1.convs.0.weight holds a non-finite value at index "
                            "[1, 2, 0, 1, 1]"], "NaN weight")
    refuse({"state": sd}, ["no state['model']"], "checkpoint without 'model'")
    bad = jax_params(sd)
    del bad["conv_c"]["conv_1"]["weight"]
    refuse(bad, ["missing tensors: params/conv_c/conv_1/weight"], "JAX .npz with a missing tensor", "bad.npz")

    if os.path.exists(DRIVER):
        broken = os.path.join(tmp, "conv_w4_broken.h5")
        with h5py.File(h5, "r") as f, h5py.File(broken, "w") as g:
            for k in f.keys():
                f.copy(k, g)
            for k, v in f.attrs.items():
                g.attrs[k] = v
            del g["layers/conv_r1.skip/weight"]
            g["layers/conv_r1.skip/weight"] = np.zeros((4, 8, 1, 1, 2), dtype=np.float32)
        env = dict(os.environ, LEMUR_EMU_MODEL=broken, LEMUR_EMU_INPUT="/dev/null",
                   LEMUR_EMU_OUTPUT=os.path.join(tmp, "unused"))
        r = subprocess.run([DRIVER], env=env, capture_output=True, text=True)
        out = r.stdout + r.stderr
        check(r.returncode != 0 and "tensor /layers/conv_r1.skip/weight has shape [4,8,1,1,2], "
              "expected [4,8,1,1,1]" in out, "lemur's reader names the wrongly shaped tensor: "
              + " ".join(l.strip() for l in out.splitlines() if "shape" in l))
    else:
        check(False, "driver %s not built" % DRIVER)
    bias_cases(tmp)
    print("cases: passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
