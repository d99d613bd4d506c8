#!/usr/bin/python3
"""lemur's emulator against an independent PyTorch reference written from Jamieson et al. 2024
(tests/python/emunet_torch.py).

For a reduced-width network (width 8) and the full-width one (width 64), each on one tile of output
8^3 (input 104^3): random weights saved as an authors'-format checkpoint (state = {'model':
state_dict}) -> tools/convert-weights -> lemur's model file -> lemur's single-tile driver
($LEMUR_BUILD/tests/test_emunet in driver mode), compared with PyTorch on the same input:
  Ψ_NL      max |lemur - torch| / max |torch| <= 1e-5   (PyTorch forward, float32: the primal
                                                          of the forward-mode pass)
  dΨ_NL/dD  max |lemur - torch| / max |torch| <= 1e-4   (torch.autograd.forward_ad JVP, float32)
The style is Ωm = 0.3175, D = 0.605938 (z = 1). Prints "cases: passed=N failed=M"."""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import emunet_torch as ref  # noqa: E402

BUILD = os.environ.get("LEMUR_BUILD", os.path.join(TOP, "build"))
DRIVER = os.path.join(BUILD, "tests", "test_emunet")
CONVERT = os.path.join(TOP, "tools", "convert-weights")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
OMEGA_M, D = 0.3175, 0.605938
passed = failed = 0


def check(ok, msg):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    passed, failed = passed + bool(ok), failed + (not ok)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def run_case(width, tmp, seed):
    torch.manual_seed(seed)
    net = ref.init_random(ref.StyledVNet(width), seed)
    ckpt = os.path.join(tmp, "emu_w%d.pt" % width)
    model = os.path.join(tmp, "emu_w%d.h5" % width)
    torch.save({"model": net.state_dict(), "epoch": 0}, ckpt)
    r = subprocess.run([PYTHON, CONVERT, ckpt, model], capture_output=True, text=True)
    check(r.returncode == 0, "width %d: convert-weights %s" % (width, (r.stdout + r.stderr).strip()))
    if r.returncode:
        return
    M, n = 8, 8 + 2 * ref.HALO
    g = torch.Generator().manual_seed(seed + 1)
    psi = (torch.randn(1, 3, n, n, n, generator=g) * 3.0).float()
    psi_path, out = os.path.join(tmp, "psi_w%d.f32" % width), os.path.join(tmp, "out_w%d" % width)
    psi.numpy().tofile(psi_path)
    env = dict(os.environ, LEMUR_EMU_MODEL=model, LEMUR_EMU_INPUT=psi_path, LEMUR_EMU_OUTPUT=out,
               LEMUR_EMU_TILE=str(M), LEMUR_EMU_OMEGA_M=repr(OMEGA_M), LEMUR_EMU_D=repr(D),
               OMP_NUM_THREADS=os.environ.get("LEMUR_CHECK_THREADS", "2"))
    t0 = time.time()
    r = subprocess.run([DRIVER], env=env, capture_output=True, text=True)
    t_lemur = time.time() - t0
    print(r.stdout.strip())
    check(r.returncode == 0, "width %d: lemur driver ran (%.1f s) %s" % (width, t_lemur, r.stderr.strip()))
    if r.returncode:
        return
    y = np.fromfile(out + ".psi", dtype=np.float32).reshape(3, M, M, M)
    dy = np.fromfile(out + ".dpsi", dtype=np.float32).reshape(3, M, M, M)
    t0 = time.time()
    ty, tdy = ref.emulate_jvp(net, psi, OMEGA_M, D)
    t_torch = time.time() - t0
    ty_fwd, tdy = ty[0].numpy(), tdy[0].numpy()
    ev, et = rel(y, ty_fwd), rel(dy, tdy)
    check(ev <= 1e-5, "width %d: Psi_NL vs PyTorch forward: max rel error %.2e (<= 1e-5; |Psi| <= %.2f "
          "Mpc/h)" % (width, ev, np.max(np.abs(ty_fwd))))
    check(et <= 1e-4, "width %d: dPsi/dD vs PyTorch forward-mode JVP: max rel error %.2e (<= 1e-4; "
          "|dPsi/dD| <= %.2f Mpc/h)" % (width, et, np.max(np.abs(tdy))))
    # the bypass alone would give Ψ D: the network must contribute (a failing case can fail)
    check(rel(y, psi[0, :, 48:-48, 48:-48, 48:-48].numpy() * D) > 1e-3,
          "width %d: the network part is not negligible" % width)
    print("  timings: lemur forward + forward/velocities %.1f s, PyTorch JVP %.1f s" % (t_lemur, t_torch))


def main():
    torch.set_num_threads(int(os.environ.get("LEMUR_CHECK_THREADS", "2")))
    if not os.path.exists(DRIVER):
        check(False, "driver %s not built (make tests-build)" % DRIVER)
    else:
        tmp = os.environ.get("LEMUR_TMP") or tempfile.mkdtemp()
        os.makedirs(tmp, exist_ok=True)
        run_case(8, tmp, 1)
        run_case(64, tmp, 2)
    print("cases: passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
