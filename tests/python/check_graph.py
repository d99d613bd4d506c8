#!/usr/bin/python3
"""lemur's generic network engine (src/net.h) against the same graph built in PyTorch.

Each description (the generator of Kodi Ramanah et al. 2020, config/networks/superres-ramanah2020.yml,
and one using every op: odd and even kernels, GELU, ReLU, LeakyReLU, add, 3-way concat, crops,
nearest and trilinear upsampling, three inputs on two grids) is built as a torch.nn.Module with
PyTorch's own random initialisation; its state_dict goes through tools/convert-weights --network
into lemur's network file, which lemur's driver ($LEMUR_BUILD/tests/test_net --apply) runs on one
small tile. Inputs are cut with lemur's derived halos; PyTorch's trilinear interpolation
(align_corners=False) is cropped by one cell per side, the cells its edge clamping touches.
  output   max |lemur - torch| / max |torch| <= 1e-5
Also: the converter refuses a wrongly shaped, a missing, an extra and a non-finite tensor by name,
and lemur refuses a network file holding a NaN, naming the tensor.
Prints "cases: passed=N failed=M"."""

import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("LEMUR_BUILD", os.path.join(TOP, "build"))
DRIVER = os.path.join(BUILD, "tests", "test_net")
CONVERT = os.path.join(TOP, "tools", "convert-weights")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
PAPER = os.path.join(TOP, "config", "networks", "superres-ramanah2020.yml")
OPS = """name: ops
inputs:
  - {name: a, channels: 3, scale: 1}
  - {name: b, channels: 2, scale: 2}
  - {name: c, channels: 2, scale: 2}
nodes:
  - {name: bu, op: upsample, inputs: [b], mode: trilinear}
  - {name: cu, op: upsample, inputs: [c], mode: nearest}
  - {name: bk, op: crop, inputs: [bu], like: a}
  - {name: ck, op: crop, inputs: [cu], like: a}
  - {name: x, op: concat, inputs: [a, bk, ck]}
  - {name: l1.c2, op: conv3d, inputs: [x], kernel: 2, channels: 5}
  - {name: l1.c4, op: conv3d, inputs: [l1.c2], kernel: 4, channels: 4}
  - {name: g, op: gelu, inputs: [l1.c4]}
  - {name: c5, op: conv3d, inputs: [x], kernel: 5, channels: 4}
  - {name: l, op: leaky_relu, inputs: [c5], slope: 0.2}
  - {name: s, op: add, inputs: [g, l, l]}
  - {name: r, op: relu, inputs: [s]}
  - {name: k1, op: crop, inputs: [r], cells: 1}
  - {name: c3, op: conv3d, inputs: [r], kernel: 3, channels: 3}
  - {name: y, op: concat, inputs: [k1, c3]}
output: y
"""
passed = failed = 0


def check(ok, msg):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    passed, failed = passed + bool(ok), failed + (not ok)


class Graph(torch.nn.Module):
    """The description's graph in PyTorch: conv3d node 'p.q' is module p.q (nested)."""

    def __init__(self, desc):
        super().__init__()
        self.d = desc
        chans = {i["name"]: i["channels"] for i in desc["inputs"]}
        for nd in desc["nodes"]:
            c = [chans[i] for i in nd["inputs"]]
            if nd["op"] == "conv3d":
                parts, parent = nd["name"].split("."), self
                for p in parts[:-1]:
                    if not hasattr(parent, p):
                        parent.add_module(p, torch.nn.Module())
                    parent = getattr(parent, p)
                parent.add_module(parts[-1], torch.nn.Conv3d(c[0], nd["channels"], nd["kernel"]))
                chans[nd["name"]] = nd["channels"]
            else:
                chans[nd["name"]] = sum(c) if nd["op"] == "concat" else c[0]

    def conv(self, name):
        m = self
        for p in name.split("."):
            m = getattr(m, p)
        return m

    def forward(self, *xs):
        v = {i["name"]: x for i, x in zip(self.d["inputs"], xs)}
        for nd in self.d["nodes"]:
            a = [v[i] for i in nd["inputs"]]
            op = nd["op"]
            if op == "conv3d":
                y = self.conv(nd["name"])(a[0])
            elif op == "leaky_relu":
                y = F.leaky_relu(a[0], nd.get("slope", 0.01))
            elif op == "relu":
                y = F.relu(a[0])
            elif op == "gelu":
                y = F.gelu(a[0])
            elif op == "add":
                y = sum(a[1:], a[0])
            elif op == "concat":
                y = torch.cat(a, dim=1)
            elif op == "crop":
                c = nd["cells"] if "cells" in nd else (a[0].shape[2] - v[nd["like"]].shape[2]) // 2
                y = a[0][:, :, c:a[0].shape[2] - c, c:a[0].shape[3] - c, c:a[0].shape[4] - c]
            elif op == "upsample":
                if nd.get("mode", "nearest") == "trilinear":
                    y = F.interpolate(a[0], scale_factor=2, mode="trilinear", align_corners=False)
                    y = y[:, :, 1:-1, 1:-1, 1:-1]
                else:
                    y = F.interpolate(a[0], scale_factor=2, mode="nearest")
            v[nd["name"]] = y
        return v[self.d["output"]]


def run_case(label, text, M, tmp, seed):
    desc = yaml.safe_load(text)
    torch.manual_seed(seed)
    net = Graph(desc)
    dpath, sd, h5 = (os.path.join(tmp, label + e) for e in (".yml", ".pt", ".h5"))
    open(dpath, "w").write(text)
    torch.save(net.state_dict(), sd)
    r = subprocess.run([PYTHON, CONVERT, "--network", dpath, sd, h5], capture_output=True, text=True)
    check(r.returncode == 0, "%s: convert-weights %s" % (label, (r.stdout + r.stderr).strip()))
    if r.returncode:
        return
    # lemur's derived halos (the driver prints them; M = 0 only that): inputs are M / scale + 2 halo
    probe = subprocess.run([DRIVER, "--apply", h5, os.devnull, "0"] + [os.devnull] * len(desc["inputs"]),
                           capture_output=True, text=True)
    halos = None
    for line in (probe.stdout + probe.stderr).splitlines():
        if line.startswith("halo"):
            halos = [int(h) for h in line.split()[1:]]
    check(halos is not None, "%s: halos from lemur %s" % (label, halos))
    if halos is None:
        return
    g = torch.Generator().manual_seed(seed + 1)
    xs, paths = [], []
    for k, (inp, h) in enumerate(zip(desc["inputs"], halos)):
        n = M // inp.get("scale", 1) + 2 * h
        x = torch.randn(1, inp["channels"], n, n, n, generator=g).float()
        xs.append(x)
        paths.append(os.path.join(tmp, "%s_in%d.f32" % (label, k)))
        x.numpy().tofile(paths[-1])
    out = os.path.join(tmp, label + "_out.f32")
    r = subprocess.run([DRIVER, "--apply", h5, out, str(M)] + paths, capture_output=True, text=True)
    check(r.returncode == 0, "%s: lemur driver %s" % (label, (r.stdout + r.stderr).strip()[-300:]))
    if r.returncode:
        return
    with torch.no_grad():
        ref = net(*xs).numpy()
    got = np.fromfile(out, dtype=np.float32)
    check(got.size == ref.size, "%s: output has %d values, torch %d (shape %s)" % (label, got.size, ref.size, ref.shape))
    if got.size == ref.size:
        e = float(np.max(np.abs(got - ref.ravel())) / np.max(np.abs(ref)))
        check(e <= 1e-5, "%s: tile %d^3, halos %s: max |lemur - torch| / max |torch| = %.2e (<= 1e-5)"
              % (label, M, halos, e))


def refusals(tmp):
    text = open(PAPER).read()
    desc = yaml.safe_load(text)
    dpath = os.path.join(tmp, "paper.yml")
    open(dpath, "w").write(text)
    base = Graph(desc).state_dict()
    cases = []
    sd = dict(base)
    sd["m1a.c5.weight"] = torch.zeros(6, 2, 3, 3, 3)
    cases.append(("wrong shape", sd, "m1a.c5.weight has shape (6, 2, 3, 3, 3), expected (6, 2, 5, 5, 5)"))
    sd = dict(base)
    del sd["final.bias"]
    cases.append(("missing", sd, "missing tensors: final.bias"))
    sd = dict(base)
    sd["m9.c1.weight"] = torch.zeros(1)
    cases.append(("extra", sd, "unexpected tensors: m9.c1.weight"))
    sd = dict(base)
    w = sd["m2b.c3.weight"].clone()
    w[1, 2, 0, 1, 2] = float("nan")
    sd["m2b.c3.weight"] = w
    cases.append(("non-finite", sd, "m2b.c3.weight holds a non-finite value at index [1, 2, 0, 1, 2]"))
    for what, sd, want in cases:
        p = os.path.join(tmp, "bad.pt")
        torch.save(sd, p)
        r = subprocess.run([PYTHON, CONVERT, "--network", dpath, p, os.path.join(tmp, "bad.h5")],
                           capture_output=True, text=True)
        check(r.returncode == 1 and want in r.stderr, "converter refuses %s: %s" % (what, r.stderr.strip()[-160:]))
    good = os.path.join(tmp, "good.h5")
    r = subprocess.run([PYTHON, CONVERT, "--network", dpath, "--random", "5", good], capture_output=True, text=True)
    check(r.returncode == 0, "converter --random: %s" % (r.stdout + r.stderr).strip())
    with h5py.File(good, "r+") as f:
        f["weights/m1b.c7/weight"][0, 3, 1, 1, 1] = np.nan
    r = subprocess.run([DRIVER, "--apply", good, os.devnull, "8", os.devnull, os.devnull],
                       capture_output=True, text=True)
    check(r.returncode != 0 and "/weights/m1b.c7/weight holds a non-finite value" in r.stderr,
          "lemur refuses a NaN weight: %s" % r.stderr.strip()[-200:])


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(dir=os.environ.get("LEMUR_TMP")) as tmp:
        run_case("paper", open(PAPER).read(), 8, tmp, 11)
        run_case("ops", OPS, 4, tmp, 12)
        run_case("ops6", OPS, 6, tmp, 13)
        refusals(tmp)
    print("cases: passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
