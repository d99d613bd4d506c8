# lemur run with the data in memory (32^3): every write_* switch off succeeds and writes no field
# or snapshot; its spectra and maps equal bitwise those of the run that writes every file, and those
# of 2 ranks to rounding; resume runs ic again when the product a later stage needs was kept in
# memory only; a failing stage is recorded in the manifest and reported once; with a small random
# emulator (width 4) the emulator takes the linear field redistributed in memory and its particles
# give the same spectra as a run whose emulator reads the field back from ic's file.
source "$(dirname "$0")/lib.bash"
top=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
d=$LEMUR_TMP/cli-run-memory
rm -rf "$d"; mkdir -p "$d"
cfg=$top/config/default.yml
small=(box.n=32 box.size=62.5 power.n_mesh=32 jerald.n_mesh=32)
files=(ic.write_field=true ic.write_particles=true particles.write_snapshot=true)
nofiles=(ic.write_field=false ic.write_particles=false particles.write_snapshot=false
    emulator.output_fields=false jerald.write_particles=false)

# same_outputs A B TOL: every dataset of the spectra and maps of A equals B's (TOL 0: bitwise).
same_outputs() {
    $PYTHON - "$1" "$2" "$3" <<'PY'
import os, sys
import h5py
import numpy as np
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
names = [f for f in sorted(os.listdir(a)) if f.startswith(("power", "jerald_")) and f.endswith(".hdf5")]
bad = []
for n in names:
    with h5py.File(f"{a}/{n}", "r") as fa, h5py.File(f"{b}/{n}", "r") as fb:
        sets = []
        fa.visit(lambda o: sets.append(o) if isinstance(fa[o], h5py.Dataset) else None)
        for o in sets:
            x, y = np.asarray(fa[o]), np.asarray(fb[o])
            if tol == 0:
                ok = x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
            else:
                good = np.isfinite(x)
                ok = x.shape == y.shape and np.array_equal(good, np.isfinite(y)) and \
                    np.all(np.abs(x[good] - y[good]) <= tol * np.max(np.abs(x[good])))
            if not ok:
                bad.append(f"{n}:/{o}")
print(f"{len(names)} files compared")
sys.exit("differ: " + ", ".join(bad) if bad else 0)
PY
}

# ---- without an emulator: the IC particles are the run's ------------------------------------
"$LEMUR" run "$cfg" "${small[@]}" "${files[@]}" "output.dir=$d/files" >"$d/files.log" 2>&1
check "the run with every file succeeds" [ $? -eq 0 ]
expect_ok "the run with every write_* off succeeds" "outputs are in" \
    "$LEMUR" run "$cfg" "${small[@]}" "${nofiles[@]}" "output.dir=$d/mem"
check "no field or snapshot written" \
    [ -z "$(find "$d/mem" -name 'ic_field*' -o -name '*snapshot*')" -a -s "$d/mem/power.hdf5" ]
out=$("$LEMUR" run "$cfg" "${small[@]}" "${nofiles[@]}" "output.dir=$d/mem" 2>&1)
check "power and jerald borrow the particles from memory" \
    [ "$(grep -c "the run's particles taken from memory" <<<"$out")" -eq 2 ]
check "the particles are freed after jerald, their last reader" \
    grep -q "run: the run's particles freed" <<<"$out"
same_outputs "$d/files" "$d/mem" 0
check "spectra and maps equal bitwise with and without files" [ $? -eq 0 ]
expect_ok "the same at 2 ranks" "outputs are in" \
    "${MPIRUN[@]}" -n 2 "$LEMUR" run "$cfg" "${small[@]}" "${nofiles[@]}" "output.dir=$d/mem2"
same_outputs "$d/mem" "$d/mem2" 1e-12
check "spectra and maps equal at 1 and 2 ranks (1e-12)" [ $? -eq 0 ]

# ---- resume: ic kept its particles in memory only, so it runs again for power ----------------
"$LEMUR" run "$cfg" "${small[@]}" "${nofiles[@]}" "output.dir=$d/res" "run.stages=[ic]" \
    >"$d/res1.log" 2>&1
check "ic alone (nothing to keep, nothing written) succeeds" [ $? -eq 0 ]
out=$("$LEMUR" run "$cfg" "${small[@]}" "${nofiles[@]}" "output.dir=$d/res" run.resume=true \
    "run.stages=[ic, power]" 2>&1)
check "resume runs ic again, saying why" \
    grep -q "stage ic: runs again: power needs the run's particles, which was kept in memory only (ic.write_particles: false)" <<<"$out"
check "the resumed run's spectra equal the uninterrupted run's" cmp -s "$d/res/power.txt" "$d/mem/power.txt"
out=$("$LEMUR" run "$cfg" "${small[@]}" "${files[@]}" "output.dir=$d/files" run.resume=true 2>&1)
check "resume with the files skips every stage" \
    [ "$(grep -c 'already complete' <<<"$out")" -eq 4 ]

# ---- a failing stage: recorded in the manifest, reported once, exit 1 ------------------------
err=$("${MPIRUN[@]}" -n 2 "$LEMUR" run "$cfg" "${small[@]}" "${nofiles[@]}" "output.dir=$d/fail" \
    power.input=missing.hdf5 2>&1 >/dev/null)
rc=$?
check "a failing stage exits 1" [ $rc -eq 1 ]
check "its error is printed once" [ "$(grep -c 'lemur: error:.*missing.hdf5' <<<"$err")" -eq 1 ]
grep -A3 'name: power' "$d/fail/manifest.yml" | grep -q 'status: failed'
check "the manifest records the stage as failed" [ $? -eq 0 ]
grep -A3 'name: power' "$d/fail/manifest.yml" | grep -q 'reason: ".*missing.hdf5'
check "the manifest records the reason" [ $? -eq 0 ]
check "no stage runs after the failure" [ ! -e "$d/fail/jerald_maps.hdf5" ]

# ---- with a small random emulator: ic -> emulate in memory ----------------------------------
$PYTHON - "$d" "$top" <<'PY'
import subprocess, sys
import torch
sys.path.insert(0, sys.argv[2] + "/tests/python")
import emunet_torch as ref
torch.manual_seed(5)
net = ref.init_random(ref.StyledVNet(4), 5)
torch.save({"model": net.state_dict(), "epoch": 0}, sys.argv[1] + "/emu.pt")
subprocess.run(["/usr/bin/python3", sys.argv[2] + "/tools/convert-weights", sys.argv[1] + "/emu.pt",
                sys.argv[1] + "/emu.h5"], check=True, capture_output=True)
PY
check "a width-4 random model is converted" [ -s "$d/emu.h5" ]
emu=(emulator.model="$d/emu.h5" emulator.tile=32 emulator.backend=cpu)
"$LEMUR" run "$cfg" "${small[@]}" "${emu[@]}" "${nofiles[@]}" "output.dir=$d/emem" \
    "run.stages=[ic]" >/dev/null 2>&1
out=$("$LEMUR" run "$cfg" "${small[@]}" "${emu[@]}" "${nofiles[@]}" "output.dir=$d/emem" \
    run.resume=true 2>&1)
check "resume runs ic again for the field the emulator needs" \
    grep -q "stage ic: runs again: emulate needs the linear field, which was kept in memory only (ic.write_field: false)" <<<"$out"
check "the emulator takes the field redistributed in memory" \
    grep -q "emulate: the linear displacement field redistributed in memory" <<<"$out"
check "the field is freed once redistributed" \
    grep -q "run: the linear field freed" <<<"$out"
check "no field or snapshot written with the emulator" \
    [ -z "$(find "$d/emem" -name 'ic_field*' -o -name '*snapshot*')" -a -s "$d/emem/power.hdf5" ]
"$LEMUR" run "$cfg" "${small[@]}" "${emu[@]}" "${files[@]}" "output.dir=$d/efiles" \
    "run.stages=[ic]" >/dev/null 2>&1
out=$("$LEMUR" run "$cfg" "${small[@]}" "${emu[@]}" "${files[@]}" "output.dir=$d/efiles" \
    run.resume=true 2>&1)
check "the emulator run with files succeeds" [ $? -eq 0 -a -s "$d/efiles/snapshot.hdf5" ]
check "resume skips ic, whose field is in its file, and the emulator reads it back" \
    grep -q "emulate: reading the linear displacement field $d/efiles/ic_field.hdf5" <<<"$out"
same_outputs "$d/efiles" "$d/emem" 0
check "emulated spectra and maps equal bitwise with and without files" [ $? -eq 0 ]
finish
