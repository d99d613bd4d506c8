# `lemur ic`: outputs bitwise identical at 1-4 ranks (h5diff), and every class of bad input
# (seed, power-table range, missing / corrupt / misshapen / mistyped / incomplete ic.input,
# unwritable output) stops with a message naming the problem, a non-zero exit and no partial file.
source "$(dirname "$0")/lib.bash"
PYTHON=${PYTHON:-/usr/bin/python3}
d=$LEMUR_TMP/cli-ic
rm -rf "$d"; mkdir -p "$d"
cd "$d"
cat > ic.yml <<'EOF'
box: {size: 100, n: 24}
ic: {seed: 4321, lpt_order: 2, redshift: 2, write_particles: true}
output: {snapshot_files: 2}
run: {verbosity: 0}
EOF

# No file of a run may look finished after a failure: no outputs, no temporary files.
no_outputs() { [ -z "$(ls "$1" 2>/dev/null | grep -E 'ic_field|ic_snapshot')" ]; }

for np in 1 2 3 4; do
    "${MPIRUN[@]}" -n $np "$LEMUR" ic ic.yml output.dir=np$np >/dev/null 2>np$np.err
    check "ic at $np rank(s) succeeds" [ $? -eq 0 -a -f np$np/ic_field.hdf5 -a -f np$np/ic_snapshot.1.hdf5 ]
done
for np in 2 3 4; do
    same=0  # every object but the echoed configuration (its output.dir differs)
    for obj in psi_x psi_y psi_z delta; do
        h5diff np1/ic_field.hdf5 np$np/ic_field.hdf5 /$obj /$obj >/dev/null 2>&1 || same=1
    done
    for f in ic_snapshot.0.hdf5 ic_snapshot.1.hdf5; do
        for obj in Header Parameters PartType1; do
            h5diff np1/$f np$np/$f /$obj /$obj >/dev/null 2>&1 || same=1
        done
    done
    check "outputs at $np ranks are bitwise those of 1 rank (h5diff)" [ $same -eq 0 ]
done
h5diff np1/ic_field.hdf5 np2/ic_field.hdf5 psi_x psi_x >/dev/null 2>&1
check "h5diff sees the datasets" [ $? -eq 0 ]
"$LEMUR" ic ic.yml output.dir=seed2 ic.seed=4322 >/dev/null 2>&1
h5diff -q np1/ic_field.hdf5 seed2/ic_field.hdf5 delta delta >/dev/null 2>&1
check "another seed gives another field (the comparison can fail)" [ $? -ne 0 ]

expect_fail "seed 0 is refused" "ic.seed = 0 is out of range" "$LEMUR" ic ic.yml output.dir=bad ic.seed=0
expect_fail "seed 2^31 is refused" "ic.seed = 2147483648 is out of range" "$LEMUR" ic ic.yml output.dir=bad ic.seed=2147483648
expect_fail "unknown amplitude" "ic.amplitude" "$LEMUR" ic ic.yml output.dir=bad ic.amplitude=gaussian
printf '# k P\n0.01 2000\n0.1 6000\n0.5 800\n' > short.txt
expect_fail "power table shorter than the box's k range names the table" "short.txt" \
    "$LEMUR" ic ic.yml output.dir=bad cosmology.power_table=short.txt cosmology.normalise=false
check "no partial files after the table error" no_outputs bad

expect_fail "missing ic.input" "cannot open nope.hdf5" "$LEMUR" ic ic.yml output.dir=bad ic.input=nope.hdf5 ic.lpt_order=1
printf 'not hdf5 at all\n' > corrupt.hdf5
expect_fail "corrupt ic.input" "corrupt.hdf5: not an HDF5 file" "$LEMUR" ic ic.yml output.dir=bad ic.input=corrupt.hdf5 ic.lpt_order=1
head -c 4000 np1/ic_field.hdf5 > truncated.hdf5
expect_fail "truncated ic.input" "truncated.hdf5" "$LEMUR" ic ic.yml output.dir=bad ic.input=truncated.hdf5 ic.lpt_order=1
"$LEMUR" ic ic.yml output.dir=small box.n=16 ic.write_particles=false >/dev/null 2>&1
expect_fail "ic.input of another shape" "dataset psi_x has shape [16, 16, 16], expected [24, 24, 24]" \
    "$LEMUR" ic ic.yml output.dir=bad ic.input=small/ic_field.hdf5 ic.lpt_order=1
expect_fail "ic.input of another box" "the file's BoxSize is 100 Mpc/h but box.size is 200" \
    "$LEMUR" ic ic.yml output.dir=bad ic.input=np1/ic_field.hdf5 ic.lpt_order=1 box.size=200
$PYTHON - <<'EOF'
import h5py, numpy as np
with h5py.File("np1/ic_field.hdf5") as src:
    for name, fix in (("notype.hdf5", "int"), ("nopsi.hdf5", "drop")):
        with h5py.File(name, "w") as f:
            f.attrs["BoxSize"] = 100.0
            for k in ("psi_x", "psi_y", "psi_z"):
                if k == "psi_z" and fix == "drop":
                    continue
                data = src[k][...]
                f[k] = data.astype(np.int32) if (k == "psi_y" and fix == "int") else data
EOF
expect_fail "ic.input with an integer dataset" "dataset psi_y has type integer, expected float" \
    "$LEMUR" ic ic.yml output.dir=bad ic.input=notype.hdf5 ic.lpt_order=1
expect_fail "ic.input without psi_z" "nopsi.hdf5: dataset psi_z is missing" \
    "$LEMUR" ic ic.yml output.dir=bad ic.input=nopsi.hdf5 ic.lpt_order=1
expect_fail "ic.input with 2LPT is refused" "ic.lpt_order = 2 needs the generated linear field" \
    "$LEMUR" ic ic.yml output.dir=bad ic.input=np1/ic_field.hdf5
check "no partial files after the input errors" no_outputs bad
expect_ok "ic.input with Zel'dovich particles" "" "$LEMUR" ic ic.yml output.dir=fromfile ic.input=np1/ic_field.hdf5 ic.lpt_order=1
check "ic.input writes the snapshot but not the field" [ -f fromfile/ic_snapshot.0.hdf5 -a ! -f fromfile/ic_field.hdf5 ]

n=$("${MPIRUN[@]}" -n 3 "$LEMUR" ic ic.yml output.dir=bad ic.input=corrupt.hdf5 ic.lpt_order=1 2>&1 | grep -c "not an HDF5 file")
check "the message is printed once at 3 ranks" [ "$n" -eq 1 ]
finish
