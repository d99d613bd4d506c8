# Reliability: bad parameter files, non-finite inputs, a full disk, unwritable outputs and signals.
# Every case asserts the exit status (1), the message, a single message at 2 ranks, no crash or
# hang (a 60 s limit) and that no temporary file (*.tmp) is left behind.
source "$(dirname "$0")/lib.bash"
d=$LEMUR_TMP/cli-reliability
rm -rf "$d"; mkdir -p "$d"
cd "$d"
PY=${PYTHON:-/usr/bin/python3}

# judge NAME NEEDLE DIR RC OUTPUT: RC is 1, NEEDLE in OUTPUT (one error line, no crash), no *.tmp
# under DIR.
judge() {
    local name=$1 needle=$2 dir=$3 rc=$4 out=$5 left n
    left=$( [ -d "$dir" ] && find "$dir" -name '*.tmp')
    n=$(grep -c "lemur: error" <<<"$out")
    if [ "$rc" -eq 1 ] && grep -qF -- "$needle" <<<"$out" && [ -z "$left" ] && [ "$n" -eq 1 ] &&
        ! grep -qE "Segmentation|Signal:|Abort" <<<"$out"; then
        cli_passed=$((cli_passed + 1)); echo "ok   $name ($((SECONDS - t_case)) s)"
    else
        cli_failed=$((cli_failed + 1))
        echo "FAIL $name (rc=$rc, $n error line(s), left: ${left:-none}): wanted '$needle' in:"
        tail -n 5 <<<"$out"
    fi
}
# refuse NAME NEEDLE DIR CMD...: run CMD (60 s at most) and judge it.
refuse() {
    local name=$1 needle=$2 dir=$3; shift 3
    local out rc
    t_case=$SECONDS
    out=$(timeout 60 "$@" 2>&1); rc=$?
    judge "$name" "$needle" "$dir" $rc "$out"
}
# refuse_fast NAME SECONDS NEEDLE DIR CMD...: refuse, within SECONDS of wall time.
refuse_fast() {
    local name=$1 limit=$2; shift 2
    local t0 t1
    t0=$(date +%s.%N); refuse "$name" "$@"; t1=$(date +%s.%N)
    check "$name: within $limit s" awk "BEGIN { exit !($t1 - $t0 < $limit) }"
}

# ---- parameter files ------------------------------------------------------------------------
printf 'box: {size: 31.25, n: 16}\n' > good.yml
: > empty.yml
printf '# nothing\n\n   # here\n' > comments.yml
printf 'box: {n: 16}\n---\nbox: {n: 32}\n' > two_docs.yml
printf -- '- box\n- ic\n' > list.yml
printf 'just a string\n' > scalar.yml
printf 'ic: {seed: 1e20}\n' > seed_exp.yml
printf 'ic: {seed: 99999999999999999999}\n' > seed_digits.yml
printf 'box: {n: 2.5}\n' > n_real.yml
printf 'box: {size: .nan}\n' > size_nan.yml
printf 'box: {size: [1, 2]}\n' > size_list.yml
printf 'ic: 5\n' > section_scalar.yml
printf 'box:\n  size:\n    a: 1\n' > leaf_mapping.yml
printf 'box: {size: "62.5}\n' > open_quote.yml
printf 'box: {size: 62.5}\nic: {seed: \0 }\n' > nul.yml
printf 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n' > laughs.yml
printf '%0100d: 1\n' 0 | tr 0 k > long_key.yml
$PY -c "open('deep.yml', 'w').write('box: ' + '[' * 100000 + ']' * 100000 + '\n')"
$PY -c "open('deep_block.yml', 'w').write(''.join(' ' * i + 'k%d:\n' % i for i in range(40)))"
$PY -c "open('huge.yml', 'w').write('# padding\n' * 600000)"
mkdir -p a_directory.yml
printf '0.01 1000\n0.1 nan\n1 10\n' > pk_nan.txt
printf '0.01 1000\ninf 100\n1 10\n' > pk_inf.txt

refuse "empty file" "no parameters (the file is empty or holds only comments)" . "$LEMUR" info empty.yml
refuse "comment-only file" "comments.yml: no parameters" . "$LEMUR" info comments.yml
refuse "second YAML document" "two_docs.yml:2: a second YAML document; expected one document" . "$LEMUR" info two_docs.yml
refuse "/dev/zero" "'/dev/zero' is larger than 4 MiB" . "$LEMUR" info /dev/zero
refuse "a directory" "'a_directory.yml' is a directory: expected a YAML parameter file" . "$LEMUR" info a_directory.yml
refuse "a 6 MB file" "'huge.yml' is larger than 4 MiB" . "$LEMUR" info huge.yml
refuse_fast "100000-deep flow nesting" 5 "deep.yml:1: nesting deeper than 32 levels" . "$LEMUR" info deep.yml
refuse "40-deep block nesting" "deep_block.yml:33: nesting deeper than 32 levels" . "$LEMUR" info deep_block.yml
refuse "100-character key" "a key of 100 characters; keys are at most 64" . "$LEMUR" info long_key.yml
refuse_fast "alias fan-out" 5 "anchors and aliases (&name, *name) are not supported" . "$LEMUR" info laughs.yml
refuse "top-level list" "list.yml:1: expected a mapping of sections (such as 'box:') at the top level, found a list" . "$LEMUR" info list.yml
refuse "top-level scalar" "expected a mapping of sections at the top level" . "$LEMUR" info scalar.yml
refuse "seed 1e20" "ic.seed = 1e20 is out of range: expected an integer in [1, 2147483647]" . "$LEMUR" info seed_exp.yml
refuse "seed of 20 digits" "ic.seed = 99999999999999999999 is out of range" . "$LEMUR" info seed_digits.yml
refuse "box.n 2.5" "box.n: '2.5' is not an integer" . "$LEMUR" info n_real.yml
refuse "box.size .nan" "box.size: '.nan' is not a number" . "$LEMUR" info size_nan.yml
refuse "a list for a number" "box.size: expected a number, found a list" . "$LEMUR" info size_list.yml
refuse "a scalar for a section in a file" "section_scalar.yml:1: 'ic' is a section: expected a mapping" . "$LEMUR" info section_scalar.yml
refuse "a mapping for a value" "expected a value, found a mapping, for 'box.size'" . "$LEMUR" info leaf_mapping.yml
refuse "an unclosed quote" "open_quote.yml" . "$LEMUR" info open_quote.yml
refuse "a NUL byte" "nul.yml:2: a NUL byte: expected a YAML text file" . "$LEMUR" info nul.yml
refuse "missing file" "cannot open parameter file 'absent.yml'" . "$LEMUR" info absent.yml
refuse "box=3 on the command line" "command line: 'box' is a section: expected a mapping, not a value (valid keys here: size, n)" . "$LEMUR" info good.yml box=3
refuse "seed=1e20 on the command line" "command line: ic.seed = 1e20 is out of range" . "$LEMUR" info good.yml ic.seed=1e20
refuse "empty override" "command line: empty value for 'box.size'" . "$LEMUR" info good.yml box.size=
refuse "override without '='" "expected key.path=value" . "$LEMUR" info good.yml box.size
refuse "deep override" "command line:1: nesting deeper than 32 levels" . "$LEMUR" info good.yml "run.stages=$(printf '[%.0s' {1..40})"
refuse "alias in an override" "anchors and aliases" . "$LEMUR" info good.yml 'run.stages=[*x]'
refuse "second document in an override" "command line:2: a second YAML document" . "$LEMUR" info good.yml $'box.size=1\n---\n2'
refuse "NaN in the power table" "pk_nan.txt:2: 'nan' is not a number (column 2)" . "$LEMUR" info good.yml cosmology.power_table=pk_nan.txt
refuse "infinite k in the power table" "pk_inf.txt:2: 'inf' is not a number (column 1)" . "$LEMUR" info good.yml cosmology.power_table=pk_inf.txt
refuse "error once at 2 ranks" "nesting deeper than 32 levels" . "${MPIRUN[@]}" -n 2 "$LEMUR" info deep.yml

# ---- non-finite values -----------------------------------------------------------------------
base=(box.size=31.25 box.n=16 power.n_mesh=16 jerald.n_mesh=16 run.verbosity=0)
"$LEMUR" ic good.yml "${base[@]}" ic.write_particles=true output.dir=src >/dev/null 2>&1
check "source outputs written" [ -s src/ic_field.hdf5 ] && [ -s src/ic_snapshot.hdf5 ]
$PY - <<'PY'
import shutil, h5py, numpy as np
def poison(src, dst, name, index, value):
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        f[name][index] = value
poison("src/ic_field.hdf5", "field_nan.hdf5", "psi_x", (1, 2, 3), np.nan)
poison("src/ic_field.hdf5", "field_inf.hdf5", "psi_z", (12, 0, 5), np.inf)
poison("src/ic_snapshot.hdf5", "snap_nan.hdf5", "PartType1/Coordinates", (77, 1), np.nan)
poison("src/ic_snapshot.hdf5", "snap_inf_v.hdf5", "PartType1/Velocities", (4000, 2), -np.inf)
poison("src/ic_snapshot.hdf5", "snap_late.hdf5", "PartType1/Coordinates", (4095, 0), np.nan)
shutil.copy("src/ic_snapshot.hdf5", "snap_box.hdf5")
with h5py.File("snap_box.hdf5", "a") as f:
    f["Header"].attrs["BoxSize"] = 50.0
PY
for np_ in 1 2; do
    refuse "NaN in ic.input at $np_ rank(s)" "field_nan.hdf5: dataset psi_x holds a non-finite value (nan) at cell [1, 2, 3]" out_f$np_ \
        "${MPIRUN[@]}" -n $np_ "$LEMUR" ic good.yml "${base[@]}" ic.input=field_nan.hdf5 output.dir=out_f$np_
    check "no snapshot from a NaN field at $np_ rank(s)" [ ! -e out_f$np_/ic_snapshot.hdf5 ]
    refuse "NaN coordinate into power at $np_ rank(s)" "snap_nan.hdf5: dataset PartType1/Coordinates holds a non-finite value (nan) at row 77, column 1" out_p$np_ \
        "${MPIRUN[@]}" -n $np_ "$LEMUR" power good.yml "${base[@]}" power.input=snap_nan.hdf5 output.dir=out_p$np_
    refuse "NaN in the last rank's rows at $np_ rank(s)" "at row 4095, column 0" out_l$np_ \
        "${MPIRUN[@]}" -n $np_ "$LEMUR" power good.yml "${base[@]}" power.input=snap_late.hdf5 output.dir=out_l$np_
    refuse "BoxSize disagreeing with box.size at $np_ rank(s)" "power.input = snap_box.hdf5: the file's BoxSize is 50 Mpc/h but box.size is 31.25" out_b$np_ \
        "${MPIRUN[@]}" -n $np_ "$LEMUR" power good.yml "${base[@]}" power.input=snap_box.hdf5 output.dir=out_b$np_
done
refuse "infinite field value" "dataset psi_z holds a non-finite value (inf) at cell [12, 0, 5]" out_fi \
    "$LEMUR" ic good.yml "${base[@]}" ic.input=field_inf.hdf5 output.dir=out_fi
refuse "infinite velocity into power" "PartType1/Velocities holds a non-finite value (-inf) at row 4000, column 2" out_v \
    "$LEMUR" power good.yml "${base[@]}" power.input=snap_inf_v.hdf5 output.dir=out_v
refuse "NaN coordinate into jerald" "PartType1/Coordinates holds a non-finite value (nan) at row 77" out_j \
    "$LEMUR" jerald good.yml "${base[@]}" jerald.input=snap_nan.hdf5 output.dir=out_j \
    "jerald.maps={dm: {layers: [{alpha: 1}]}}"
check "no jerald maps from a NaN snapshot" [ ! -e out_j/jerald_maps.hdf5 ]
overflow='{s: {model: stellar, layers: [{alpha: 1.0}], final: {w: 1.0, mu: 200, b: 0}}}'
for np_ in 1 2; do
    refuse "an overflowing JERALD map at $np_ rank(s)" "jerald: map s is not finite at cell" out_o$np_ \
        "${MPIRUN[@]}" -n $np_ "$LEMUR" jerald good.yml "${base[@]}" jerald.input=src/ic_snapshot.hdf5 \
        "jerald.maps=$overflow" output.dir=out_o$np_
    check "no maps file from an overflowing map at $np_ rank(s)" [ ! -e out_o$np_/jerald_maps.hdf5 ]
done

# ---- lemur info runs the checks of every stage of run.stages ---------------------------------
hi_nostellar='{h: {model: hi, layers: [{alpha: 1, repel: {alpha: 1}}], final: {w: 1, mu: 1, b: 0}, depletion: {beta1: 1, beta2: 1, gamma3: 1, eta: 0, kh: 1, kl: 1, nu: 0, xi: 0}}}'
$PY - <<'PY'
import shutil, h5py
shutil.copy("src/ic_field.hdf5", "field_box.hdf5")
with h5py.File("field_box.hdf5", "a") as f:
    f.attrs["BoxSize"] = 50.0
PY
refuse "info: box.n 17" "box.n = 17 is not usable for the white noise: expected an even number" . "$LEMUR" info good.yml box.n=17
refuse "info: box.n 97" "box.n = 97 is not usable for the white noise" . "$LEMUR" info good.yml box.n=97
refuse "info: an unknown stage" "run.stages[1] = 'shear' is not a stage" . "$LEMUR" info good.yml "run.stages=[ic, shear]"
refuse "info: no stage" "run.stages is empty" . "$LEMUR" info good.yml "run.stages=[]"
refuse "info: a stage twice" "run.stages lists 'ic' twice (items 0 and 1)" . "$LEMUR" info good.yml "run.stages=[ic, ic, power]"
refuse "info: stages out of order" "run.stages: 'ic' comes after 'power'" . "$LEMUR" info good.yml "run.stages=[power, ic]"
refuse "info: a stellar map without final" "jerald.maps.s.final: a stellar map needs its final parameters" . \
    "$LEMUR" info good.yml "jerald.maps={s: {model: stellar, layers: [{alpha: 1}]}}"
refuse "info: hi without stellar_map" "jerald.maps.h.stellar_map: the hi map 'h' needs a stellar map" . \
    "$LEMUR" info good.yml "jerald.maps=$hi_nostellar"
refuse "info: backend gpu without a GPU" "emulator.backend = gpu, but no GPU can be used" . \
    "$LEMUR" info good.yml emulator.model=model.hdf5 emulator.backend=gpu
refuse "info: emulator tile" "emulator.tile = 12: the output tile side must be a multiple of" . \
    "$LEMUR" info good.yml emulator.model=model.hdf5 emulator.tile=12
refuse "info: power mesh" "power.n_mesh: 1; expected an integer in [2, 65536]" . \
    "$LEMUR" info good.yml power.n_mesh=1
refuse "info: power bins" "power.kmin = 100, power.kmax = 1.6085, power.dk = 0.201062 h/Mpc leave no bin" . \
    "$LEMUR" info good.yml power.kmin=100
check "info: jerald and power are not checked outside run.stages" "$LEMUR" info good.yml power.kmin=100 \
    "jerald.maps=$hi_nostellar" "run.stages=[ic]" run.verbosity=0
for key in power.input power.reference jerald.input fof.input; do
    refuse "info: the BoxSize of $key at 2 ranks" "$key = snap_box.hdf5: the file's BoxSize is 50 Mpc/h but box.size is 31.25" . \
        "${MPIRUN[@]}" -n 2 "$LEMUR" info good.yml $key=snap_box.hdf5
done
refuse "info: the BoxSize of ic.input at 2 ranks" "ic.input = field_box.hdf5: the file's BoxSize is 50 Mpc/h" . \
    "${MPIRUN[@]}" -n 2 "$LEMUR" info good.yml ic.input=field_box.hdf5
refuse "info: a missing power.input" "cannot open snapshot absent.hdf5: no such file" . "$LEMUR" info good.yml power.input=absent.hdf5
check "info: matching inputs pass" "$LEMUR" info good.yml run.verbosity=0 ic.input=src/ic_field.hdf5 \
    power.input=src/ic_snapshot.hdf5 jerald.input=src/ic_snapshot.hdf5 fof.input=src/ic_snapshot.hdf5
refuse "run refuses before the ic stage" "jerald.maps.s.final: a stellar map needs its final parameters" out_r \
    "$LEMUR" run good.yml "${base[@]}" "jerald.maps={s: {model: stellar, layers: [{alpha: 1}]}}" output.dir=out_r
check "nothing written by a refused run" [ ! -e out_r/ic_field.hdf5 ]
for stage in jerald fof; do
    refuse "$stage refuses a BoxSize disagreeing with box.size" "$stage.input = snap_box.hdf5: the file's BoxSize is 50 Mpc/h" out_$stage \
        "$LEMUR" $stage good.yml "${base[@]}" $stage.input=snap_box.hdf5 output.dir=out_$stage "jerald.maps={dm: {layers: [{alpha: 1}]}}"
done

# ---- used_parameters.yml stays beside the outputs it describes -------------------------------
"$LEMUR" run good.yml "${base[@]}" "run.stages=[ic, power]" output.dir=done >/dev/null 2>&1
cp done/used_parameters.yml used_before.yml
refuse "a failing command into a finished folder" "cannot open snapshot absent.hdf5" done \
    "$LEMUR" power good.yml "${base[@]}" ic.seed=9 power.input=absent.hdf5 output.dir=done
check "used_parameters.yml untouched by a failing command" cmp -s used_before.yml done/used_parameters.yml
refuse "a refused run into a finished folder" "run.stages lists 'power' twice" done \
    "$LEMUR" run good.yml "${base[@]}" ic.seed=9 "run.stages=[ic, power, power]" output.dir=done
check "used_parameters.yml untouched by a refused run" cmp -s used_before.yml done/used_parameters.yml
refuse "a run failing in its first stage into a finished folder" "holds a non-finite value (nan)" done \
    "${MPIRUN[@]}" -n 2 "$LEMUR" run good.yml "${base[@]}" ic.input=field_nan.hdf5 "run.stages=[ic, power]" output.dir=done
check "used_parameters.yml untouched by a failed run" cmp -s used_before.yml done/used_parameters.yml
"$LEMUR" run good.yml "${base[@]}" ic.seed=9 "run.stages=[ic, power]" power.input=absent.hdf5 output.dir=done >/dev/null 2>&1
check "a run whose first stage succeeded writes used_parameters.yml" grep -q "seed: 9" done/used_parameters.yml
"$LEMUR" power good.yml "${base[@]}" ic.seed=11 power.input=src/ic_snapshot.hdf5 output.dir=done >/dev/null 2>&1
check "a command that succeeded writes used_parameters.yml" grep -q "seed: 11" done/used_parameters.yml

# ---- unwritable outputs ----------------------------------------------------------------------
: > a_file
for np_ in 1 2; do
    refuse "output.dir under a file at $np_ rank(s)" "'a_file' exists and is not a directory" . \
        "${MPIRUN[@]}" -n $np_ "$LEMUR" ic good.yml "${base[@]}" output.dir=a_file/out
done
refuse "output.dir in /proc" "cannot create directory '/proc/lemur-reliability'" . \
    "$LEMUR" ic good.yml "${base[@]}" output.dir=/proc/lemur-reliability/out
refuse "power.input is a directory" "a_directory.yml" out_dir \
    "$LEMUR" power good.yml "${base[@]}" power.input=a_directory.yml output.dir=out_dir

# ---- a full disk (a small tmpfs) -------------------------------------------------------------
mnt=$d/tmpfs
mkdir -p "$mnt"
if mount -t tmpfs -o size=300k tmpfs "$mnt" 2>/dev/null; then
    run32=(box.size=62.5 box.n=32 power.n_mesh=32 jerald.n_mesh=32 ic.write_particles=true
        run.verbosity=0 "run.stages=[ic, power, jerald]")
    for np_ in 1 2; do
        rm -rf "$mnt"/*
        refuse_fast "disk full in the field file at $np_ rank(s)" 15 "ic_field.hdf5.tmp: writing dataset" "$mnt" \
            "${MPIRUN[@]}" -n $np_ "$LEMUR" run good.yml "${run32[@]}" output.dir="$mnt/o"
    done
    umount "$mnt"; mount -t tmpfs -o size=1200k tmpfs "$mnt"
    for np_ in 1 2; do
        rm -rf "$mnt"/*
        refuse_fast "disk full in the snapshot at $np_ rank(s)" 15 "writing snapshot file $mnt/o/ic_snapshot.hdf5.tmp failed" "$mnt" \
            "${MPIRUN[@]}" -n $np_ "$LEMUR" run good.yml "${run32[@]}" output.dir="$mnt/o"
        check "the finished field file is kept at $np_ rank(s)" [ -s "$mnt/o/ic_field.hdf5" ]
    done
    rm -rf "$mnt"/*
    mkdir -p "$mnt/o"
    head -c 1000000 /dev/zero > "$mnt/filler"
    refuse "no room to start a file" "cannot create $mnt/o/ic_snapshot.hdf5.tmp (temporary name of $mnt/o/ic_snapshot.hdf5): No space left on device" "$mnt" \
        "$LEMUR" ic good.yml "${run32[@]}" ic.write_field=false output.dir="$mnt/o"
    umount "$mnt"
else
    echo "SKIP disk-full cases: mounting a tmpfs is not allowed here"
fi

# ---- signals ---------------------------------------------------------------------------------
maps=$($PY -c "print('{' + ', '.join('m%d: {layers: [{alpha: 1}, {alpha: 1}, {alpha: 1}]}' % i for i in range(8)) + '}')")
# maps of about 0.3 s each, so that the signal reliably lands while maps remain
slow=(box.size=62.5 box.n=32 jerald.n_mesh=128 ic.write_particles=true ic.write_field=false
    run.verbosity=1 "run.stages=[ic, jerald]" "jerald.maps=$maps")
# interrupt NAME SIGNAL RANKS: start a run, signal its ranks once the second map is under way.
interrupt() {
    local name=$1 sig=$2 np_=$3 out=$d/sig_$2_$3
    rm -rf "$out"
    "${MPIRUN[@]}" -n $np_ "$LEMUR" run good.yml "${slow[@]}" output.dir="$out" >"$out.log" 2>&1 &
    local pid=$!
    t_case=$SECONDS
    for _ in $(seq 400); do grep -q "map m1" "$out.log" 2>/dev/null && break; sleep 0.05; done
    kill -"$sig" $(pgrep -P "$pid" -f "$LEMUR") 2>/dev/null
    wait $pid
    judge "$name" "interrupted by $sig between jerald maps" "$out" $? "$(cat "$out.log")"
    check "$name: the manifest marks jerald interrupted" \
        grep -q "status: interrupted" "$out/manifest.yml"
}
interrupt "SIGTERM at 1 rank" SIGTERM 1
interrupt "SIGINT at 1 rank" SIGINT 1
interrupt "SIGTERM at 2 ranks" SIGTERM 2
expect_ok "resume after SIGTERM completes the run" "outputs are in" \
    "$LEMUR" run good.yml "${slow[@]}" output.dir="$d/sig_SIGTERM_1" run.resume=true
finish
