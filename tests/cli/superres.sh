# `lemur superres` (Kodi Ramanah et al. 2020's generator, random weights): the HR density is
# bitwise the same at 1-4 ranks and for tiles of 8 and 16 (h5diff), `lemur run` handing the HR
# linear density over in memory gives the same file, the spectra match numpy's (independent FFT
# and binning of the written fields), and bad inputs stop with messages naming the key.
source "$(dirname "$0")/lib.bash"
PYTHON=${PYTHON:-/usr/bin/python3}
top=$(cd "$(dirname "$0")/../.." && pwd)
d=$LEMUR_TMP/cli-superres
rm -rf "$d"; mkdir -p "$d"
cd "$d"
"$PYTHON" "$top/tools/convert-weights" --network "$top/config/networks/superres-ramanah2020.yml" \
    --random 3 net.h5 >/dev/null
check "random network file written" [ -f net.h5 ]
cat > sr.yml <<'EOF2'
box: {size: 40, n: 16}
ic: {seed: 77, write_particles: true}
superres: {model: net.h5, lr_input: ic/ic_snapshot.hdf5, hr_input: ic/ic_field.hdf5, tile: 8}
run: {verbosity: 0, stages: [ic, superres]}
EOF2
"$LEMUR" ic sr.yml output.dir=ic >/dev/null 2>&1
check "ic for the inputs" [ -f ic/ic_field.hdf5 ]
for np in 1 2 3 4; do
    "${MPIRUN[@]}" -n $np "$LEMUR" superres sr.yml output.dir=np$np >/dev/null 2>np$np.err
    check "superres at $np rank(s) succeeds" [ $? -eq 0 -a -f np$np/superres.hdf5 -a -f np$np/superres_cross.txt ]
done
"$LEMUR" superres sr.yml output.dir=t16 superres.tile=16 >/dev/null 2>&1
for o in np2 np3 np4 t16; do
    h5diff np1/superres.hdf5 $o/superres.hdf5 delta delta >/dev/null 2>&1
    check "HR density of $o is bitwise that of 1 rank, tile 8" [ $? -eq 0 ]
done
"$LEMUR" superres sr.yml output.dir=w2 superres.model=net2.h5 >/dev/null 2>&1 || true
"$PYTHON" "$top/tools/convert-weights" --network "$top/config/networks/superres-ramanah2020.yml" \
    --random 4 net2.h5 >/dev/null
"$LEMUR" superres sr.yml output.dir=w2 superres.model=net2.h5 >/dev/null 2>&1
h5diff -q np1/superres.hdf5 w2/superres.hdf5 delta delta >/dev/null 2>&1
check "other weights give another density (the comparison can fail)" [ $? -ne 0 ]
"${MPIRUN[@]}" -n 2 "$LEMUR" run sr.yml output.dir=run "superres.hr_input=''" >/dev/null 2>run.err
check "lemur run [ic, superres] succeeds" [ $? -eq 0 -a -f run/superres.hdf5 ]
h5diff np1/superres.hdf5 run/superres.hdf5 delta delta >/dev/null 2>&1
check "lemur run (HR ICs in memory) gives the same HR density" [ $? -eq 0 ]

"$PYTHON" - np1 <<'EOF2'
import sys, h5py, numpy as np
d = sys.argv[1]
def spectrum(a, b, L, kmin, dk, nb):
    n = a.shape[0]
    fa, fb = np.fft.rfftn(a) / n**3, np.fft.rfftn(b) / n**3
    k1 = 2 * np.pi / L * np.fft.fftfreq(n, 1.0 / n)
    kz = 2 * np.pi / L * np.arange(n // 2 + 1)
    kk = np.sqrt(k1[:, None, None]**2 + k1[None, :, None]**2 + kz[None, None, :]**2)
    w = np.where((np.arange(n // 2 + 1) == 0) | (np.arange(n // 2 + 1) == n // 2), 1.0, 2.0)[None, None, :]
    w = np.broadcast_to(w, kk.shape)
    v = (fa * np.conj(fb)).real * L**3
    u = (kk - kmin) / dk
    ok = (kk > 0) & (u >= 0) & (u < nb)
    idx = u[ok].astype(int)
    P = np.bincount(idx, (w * v)[ok], nb) / np.maximum(np.bincount(idx, w[ok], nb), 1e-300)
    N = np.bincount(idx, w[ok], nb)
    return P, N
fails = 0
with h5py.File(d + "/superres.hdf5") as f:
    hr = f["delta"][...].astype(np.float64)
    L = float(f.attrs["BoxSize"])
with h5py.File(d + "/superres_power.hdf5") as f:
    P, N = spectrum(hr, hr, L, f.attrs["kmin"], f.attrs["dk"], len(f["k"]))
    sel = f["N_modes"][...] > 0
    e = np.max(np.abs(P[sel] - f["P"][...][sel]) / np.abs(P[sel]))
    ok = e < 1e-5 and np.array_equal(N[sel], f["N_modes"][...][sel])
    print(("ok   " if ok else "FAIL ") + "P(k) of the HR density against numpy: %.2e" % e)
    fails += not ok
with h5py.File(d + "/superres_cross.hdf5") as f:
    sr = hr.reshape(8, 2, 8, 2, 8, 2).mean(axis=(1, 3, 5))
    Pss, _ = spectrum(sr, sr, L, f.attrs["kmin"], f.attrs["dk"], len(f["k"]))
    sel = f["N_modes"][...] > 0
    e = np.max(np.abs(Pss[sel] - f["P_sr"][...][sel]) / np.abs(Pss[sel]))
    r = f["r"][...][sel]
    rr = f["P_x"][...][sel] / np.sqrt(f["P_lr"][...][sel] * f["P_sr"][...][sel])
    ok = e < 1e-5 and np.allclose(r, rr, rtol=1e-12) and np.all(np.abs(r) <= 1 + 1e-9) and r[0] > 0.5
    print(("ok   " if ok else "FAIL ") + "P of the averaged HR density against numpy %.2e; r(k) = %s" % (e, np.round(r, 3)))
    fails += not ok
sys.exit(fails)
EOF2
check "spectra against numpy" [ $? -eq 0 ]

expect_fail "missing model file" "net_missing.h5" "$LEMUR" superres sr.yml output.dir=bad superres.model=net_missing.h5
expect_fail "empty lr_input" "superres.lr_input" "$LEMUR" superres sr.yml output.dir=bad superres.lr_input=
expect_fail "tile not a multiple of 8" "superres.tile = 12" "$LEMUR" superres sr.yml output.dir=bad superres.tile=12
expect_fail "box.n not a multiple of 8" "box.n = 20" "$LEMUR" superres sr.yml output.dir=bad box.n=20
cat > one.yml <<'EOF2'
name: one
inputs:
  - {name: a, channels: 1}
nodes:
  - {name: c, op: conv3d, inputs: [a], kernel: 3, channels: 1}
output: c
EOF2
"$PYTHON" "$top/tools/convert-weights" --network one.yml --random 1 one.h5 >/dev/null
expect_fail "a network without the LR input" "two one-channel inputs" "$LEMUR" superres sr.yml output.dir=bad superres.model=one.h5
check "no output of a failed run" [ ! -e bad/superres.hdf5 ]
finish
