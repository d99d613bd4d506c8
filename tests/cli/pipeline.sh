# lemur run on the default parameters (shrunk to 32^3): every stage chained in memory, the
# manifest, plots, identical spectra at 1 and 2 ranks, and every shipped parameter file valid.
source "$(dirname "$0")/lib.bash"
top=$(cd "$(dirname "$0")/../.." && pwd)
d=$LEMUR_TMP/cli-pipeline
rm -rf "$d"; mkdir -p "$d"
small=(box.n=32 box.size=62.5 power.n_mesh=32 jerald.n_mesh=32)

for f in "$top"/config/*.yml; do
    if grep -qE '^ *backend: *gpu' "$f"; then # info checks the backend as the emulator would
        expect_ok "$(basename "$f") is valid but for its GPU" "the configuration is valid" \
            "$LEMUR" info "$f" emulator.backend=auto
        out=$("$LEMUR" info "$f" 2>&1)
        check "$(basename "$f") is valid on a GPU, or info says why none can be used" \
            grep -qE "the configuration is valid|emulator.backend = gpu, but no GPU can be used" <<<"$out"
    else
        expect_ok "$(basename "$f") is valid" "the configuration is valid" "$LEMUR" info "$f"
    fi
done
for np in 1 2; do
    expect_ok "default run at $np rank(s)" "outputs are in" "${MPIRUN[@]}" -n $np "$LEMUR" run \
        "$top/config/default.yml" "${small[@]}" "output.dir=$d/np$np"
done
expect_ok "emulate skipped without a model, with the way to get one" "tools/convert-weights" \
    "$LEMUR" run "$top/config/default.yml" "${small[@]}" "output.dir=$d/skip" "run.stages=[emulate]"
out=$("$LEMUR" run "$top/config/default.yml" "${small[@]}" "output.dir=$d/mem" 2>&1)
check "power and jerald take the particles from memory" \
    [ "$(grep -c 'taken from memory' <<<"$out")" -eq 2 ]
for f in ic_field.hdf5 ic_snapshot.hdf5 power.hdf5 power.txt jerald_maps.hdf5 manifest.yml \
    used_parameters.yml timings.json; do
    check "np1 wrote $f" [ -s "$d/np1/$f" ]
done
check "manifest: every stage complete" \
    [ "$(grep -c 'status: complete' "$d/np1/manifest.yml")" -eq 4 ]
check "manifest lists the spectra" grep -q 'path: "power.hdf5"' "$d/np1/manifest.yml"
check "no temporary files left" [ -z "$(find "$d/np1" -name '*.tmp')" ]
/usr/bin/python3 - "$d/np1/power.hdf5" "$d/np2/power.hdf5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
ok = True
for name in ("P", "P_ell", "P_momentum"):
    x, y = np.asarray(a[name]), np.asarray(b[name])
    good = np.isfinite(x)
    scale = np.max(np.abs(x[good]))
    err = np.max(np.abs(x[good] - y[good])) / scale
    print(f"{name}: max |1 rank - 2 ranks| / max = {err:.2e}")
    ok &= err < 1e-6
sys.exit(0 if ok else 1)
PY
check "P(k), multipoles and momentum equal at 1 and 2 ranks (1e-6)" [ $? -eq 0 ]
expect_ok "tools/plot makes PNGs" "power_spectrum.png" /usr/bin/python3 "$top/tools/plot" "$d/np1"
check "plots written" [ "$(ls "$d/np1/plots"/*.png | wc -l)" -ge 4 ]
finish
