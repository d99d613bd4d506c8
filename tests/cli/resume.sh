# `lemur run` with run.resume: a run killed (SIGKILL) during its late stage leaves no file that looks
# finished; the rerun skips the completed stage and its outputs equal those of an uninterrupted run
# (bitwise at the same rank count). A resume under another configuration, an unknown stage and an
# unusable output.dir are refused with a message naming the problem.
source "$(dirname "$0")/lib.bash"
PYTHON=${PYTHON:-/usr/bin/python3}
d=$LEMUR_TMP/cli-resume
rm -rf "$d"; mkdir -p "$d/ref" "$d/kill"
cd "$d"
# The same relative paths in both directories: the configurations (and outputs) are identical.
cat > run.yml <<'EOF'
box: {size: 187.5, n: 96}
ic: {seed: 99, write_particles: true}
power: {input: out/ic_snapshot.hdf5, n_mesh: 192}
output: {dir: out}
run: {stages: [ic, power], verbosity: 1}
EOF
cp run.yml ref/; cp run.yml kill/
NP=2

(cd ref && "${MPIRUN[@]}" -n $NP "$LEMUR" run run.yml >run.log 2>&1)
check "uninterrupted run succeeds" [ $? -eq 0 -a -f ref/out/power.hdf5 ]

# stage_status DIR STAGE: the status of STAGE in DIR/manifest.yml (empty when absent).
stage_status() {
    awk -v s="$2" '$0 ~ "- name: "s"$" {f=1; next} f && /status:/ {print $2; exit}' \
        "$1/manifest.yml" 2>/dev/null
}

# Start the run in its own process group; kill the whole group once power is running.
cd kill
setsid "${MPIRUN[@]}" -n $NP "$LEMUR" run run.yml >run1.log 2>&1 &
pid=$!
seen=0
for _ in $(seq 600); do
    if [ "$(stage_status out power)" = running ]; then seen=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
# SIGKILL mpirun's group and every rank of this run (MPI launchers may give ranks their own
# process groups), as a batch system's kill would, and wait until none is left.
kill_run() {
    kill -9 -- -$pid 2>/dev/null
    local p here
    here=$(pwd -P)
    for _ in $(seq 100); do
        local left=0
        for p in $(pgrep -f "$LEMUR run run.yml"); do
            [ "$(readlink "/proc/$p/cwd")" = "$here" ] || continue
            kill -9 "$p" 2>/dev/null
            left=1
        done
        [ $left -eq 0 ] && break
        sleep 0.05
    done
}
kill_run
wait $pid 2>/dev/null
cd "$d"
check "the run was killed while power was running" [ $seen -eq 1 ]
check "the killed run left power 'running' in the manifest" [ "$(stage_status kill/out power)" = running ]
check "ic is complete in the manifest of the killed run" [ "$(stage_status kill/out ic)" = complete ]

# Every *.hdf5 / *.txt output must belong to a stage the manifest records as complete.
$PYTHON - kill/out <<'EOF'
import os, sys, yaml
d = sys.argv[1]
m = yaml.safe_load(open(os.path.join(d, "manifest.yml")))
done = {f["path"] for s in m["stages"] if s["status"] == "complete" for f in s.get("files") or []}
bad = [f for f in os.listdir(d) if f.endswith((".hdf5", ".txt")) and f not in done]
if bad:
    sys.exit("files that look complete but belong to no complete stage: " + ", ".join(bad))
EOF
check "no file that looks finished but is not (only .tmp names for partial outputs)" [ $? -eq 0 ]
ic_sum=$(cksum <kill/out/ic_field.hdf5)

(cd kill && "${MPIRUN[@]}" -n $NP "$LEMUR" run run.yml run.resume=true >run2.log 2>&1)
check "the resumed run succeeds" [ $? -eq 0 ]
check "the resumed run skips ic" grep -q "stage ic: already complete in out/manifest.yml, skipped" kill/run2.log
check "the resumed run runs power" grep -q "== stage 2/2: power ==" kill/run2.log
check "ic_field.hdf5 is not rewritten" [ "$(cksum <kill/out/ic_field.hdf5)" = "$ic_sum" ]
check "both stages complete after the resume" \
    [ "$(stage_status kill/out ic)$(stage_status kill/out power)" = completecomplete ]
same=0
for f in power.txt power_ell.txt power_momentum.txt; do
    cmp -s ref/out/$f kill/out/$f || { same=1; echo "differs: $f"; }
done
check "text spectra of the resumed run equal the uninterrupted run's (cmp)" [ $same -eq 0 ]
# HDF5 files carry object timestamps and the echoed configuration (whose run.resume differs):
# compare every object, every dataset and every other attribute exactly.
$PYTHON - ref/out kill/out ic_field.hdf5 ic_snapshot.hdf5 power.hdf5 <<'PY'
import sys
import h5py
import numpy as np

a, b, names = sys.argv[1], sys.argv[2], sys.argv[3:]
bad = []


def same(x, y):  # exact, NaN (an empty bin) equal to NaN
    x, y = np.asarray(x), np.asarray(y)
    nan = x.dtype.kind in "fc" and y.dtype.kind in "fc"
    return x.shape == y.shape and np.array_equal(x, y, equal_nan=nan)


for n in names:
    with h5py.File(f"{a}/{n}", "r") as fa, h5py.File(f"{b}/{n}", "r") as fb:
        oa, ob = [], []
        fa.visit(oa.append)
        fb.visit(ob.append)
        if sorted(oa) != sorted(ob):
            bad.append(f"{n}: other objects")
            continue
        for o in [None] + oa:
            x, y = (fa, fb) if o is None else (fa[o], fb[o])
            keys = (set(x.attrs) | set(y.attrs)) - {"config"}
            if any(k not in x.attrs or k not in y.attrs or
                   not same(x.attrs[k], y.attrs[k]) for k in keys):
                bad.append(f"{n}:/{o or ''} attributes")
            if isinstance(x, h5py.Dataset) and not same(x[()], y[()]):
                bad.append(f"{n}:/{o}")
if bad:
    sys.exit("differ: " + ", ".join(bad))
PY
check "HDF5 outputs of the resumed run equal the uninterrupted run's (every dataset, attribute)" [ $? -eq 0 ]
h5diff ref/out/ic_field.hdf5 kill/out/ic_field.hdf5 /psi_x /psi_x >/dev/null 2>&1
check "h5diff agrees on the displacement field" [ $? -eq 0 ]
check "no temporary files are left" [ -z "$(find kill/out -name '*.tmp*')" ]

cd kill
expect_fail "resume under another seed is refused, naming ic.seed" "ic.seed: 99 -> 7" \
    "$LEMUR" run run.yml run.resume=true ic.seed=7
expect_fail "the refusal says how to go on" "run.resume=false" \
    "$LEMUR" run run.yml run.resume=true ic.seed=7
expect_fail "an unknown stage is refused" "run.stages[1] = 'foo' is not a stage" \
    "$LEMUR" run run.yml "run.stages=[ic,foo]"
expect_fail "a stage lemur does not have is refused" "run.stages[1] = 'shear' is not a stage" \
    "$LEMUR" run run.yml "run.stages=[ic,shear]" output.dir=bias
expect_fail "a misspelt stage suggests the nearest" "did you mean 'power'?" \
    "$LEMUR" run run.yml "run.stages=[ic,pwer]" output.dir=bias
expect_fail "a stage listed twice is refused" "run.stages lists 'ic' twice" \
    "$LEMUR" run run.yml "run.stages=[ic,ic]" output.dir=bias
expect_fail "stages out of order are refused" "'ic' comes after 'power'" \
    "$LEMUR" run run.yml "run.stages=[power,ic]" output.dir=bias
expect_fail "an empty stage list is refused" "run.stages is empty" \
    "$LEMUR" run run.yml "run.stages=[]" output.dir=bias
printf 'x\n' > afile
expect_fail "a file as output.dir is refused" "'afile' exists and is not a directory" \
    "$LEMUR" run run.yml output.dir=afile
expect_fail "a directory under a file is refused" "afile" \
    "$LEMUR" run run.yml output.dir=afile/sub
expect_fail "an output.dir that cannot be created is refused" "cannot create directory '/proc/lemur-test'" \
    "$LEMUR" run run.yml output.dir=/proc/lemur-test
check "the refused runs changed nothing" [ "$(stage_status out power)" = complete -a ! -e bias/ic_field.hdf5 ]
finish
