# lemur jerald: bad parameters stop with a message naming the map, layer and parameter; a good
# run writes the maps, the spectra and the displaced particles, alone and through lemur run.
source "$(dirname "$0")/lib.bash"
d=$LEMUR_TMP/cli-jerald
rm -rf "$d"; mkdir -p "$d"
cd "$d"

# A 16^3 snapshot (Gadget layout) on a perturbed lattice.
${PYTHON:-/usr/bin/python3} - <<'PY'
import h5py, numpy as np
n, L = 16, 40.0
q = (np.indices((n, n, n)).reshape(3, -1).T + 0.5) * (L / n)
pos = np.mod(q + 0.8 * np.sin(2 * np.pi * q[:, [1, 2, 0]] / L), L).astype(np.float32)
with h5py.File("snap.hdf5", "w") as f:
    h = f.create_group("Header")
    c = np.array([0, n ** 3, 0, 0, 0, 0], dtype=np.uint64)
    h.attrs.update(NumPart_ThisFile=c, NumPart_Total=c, NumPart_Total_HighWord=np.zeros(6, np.uint32),
                   MassTable=np.zeros(6), Time=1.0, Redshift=0.0, BoxSize=L, NumFilesPerSnapshot=1,
                   Omega0=0.3, OmegaLambda=0.7, HubbleParam=0.7)
    g = f.create_group("PartType1")
    g["Coordinates"] = pos
    g["Velocities"] = np.zeros_like(pos)
    g["ParticleIDs"] = np.arange(n ** 3, dtype=np.uint64)
PY

head() { printf 'box: {size: 40, n: 16}\noutput: {dir: %s/out}\njerald:\n  input: %s\n' "$d" "$1"; }
hi='hi: {model: hi, stellar_map: STELLAR, layers: [{alpha: 1, repel: {alpha: 1}}], final: {w: 1, mu: 1, b: 0}, depletion: {beta1: 1, beta2: 1, gamma3: 1, eta: 0, kh: 1, kl: 1, nu: 0, xi: 0}}'
bad() { # name, needle, maps (YAML flow mapping), overrides...
    local name=$1 needle=$2 maps=$3; shift 3
    { head nosuch.hdf5; printf '  maps: %s\n' "$maps"; } > bad.yml
    expect_fail "$name" "$needle" "$LEMUR" jerald bad.yml "$@"
}
bad "NaN alpha" "jerald.maps.dm.layers.1.alpha: '.nan' is not a number" \
    '{dm: {layers: [{alpha: 1}, {alpha: .nan}]}}'
bad "infinite nu" "jerald.maps.dm.layers.0.nu: 'inf' is not a number" '{dm: {layers: [{alpha: 1, nu: inf}]}}'
bad "NaN gamma" "jerald.maps.stars.layers.0.gamma: 'nan' is not a number" \
    '{stars: {model: stellar, layers: [{alpha: 1, gamma: nan}], final: {w: 1, mu: 1, b: 0}}}'
bad "kl = 0" "jerald.maps.dm.layers.1.kl = 0 is out of range: expected a value in (0, inf)" \
    '{dm: {layers: [{alpha: 1}, {alpha: 1, kl: 0}]}}'
bad "negative kh" "jerald.maps.dm.layers.0.kh = -0.5 is out of range: expected a value in [0, inf)" \
    '{dm: {layers: [{alpha: 1, kh: -0.5}]}}'
bad "repel kl" "jerald.maps.hi.layers.0.repel.kl = -1 is out of range" \
    "{${hi/repel: \{alpha: 1\}/repel: {alpha: 1, kl: -1\}}, st: {model: stellar, final: {w: 1, mu: 1, b: 0}}}"
bad "missing alpha" "missing required key 'jerald.maps.dm.layers.0.alpha'" '{dm: {layers: [{gamma: 1}]}}'
bad "HI without stellar map" "jerald.maps.hi.stellar_map: the hi map 'hi' needs a stellar map" \
    "{${hi/stellar_map: STELLAR, /}}"
bad "HI with an unknown stellar map" "jerald.maps.hi.stellar_map = 'STELLAR': no such map" "{$hi}"
bad "HI fed by a dm map" "jerald.maps.hi.stellar_map = 'dm': that map has model dm" \
    "{dm: {layers: [{alpha: 1}]}, ${hi/STELLAR/dm}}"
bad "HI layer without repel" "jerald.maps.hi.layers.0.repel: an HI layer needs its repulsive" \
    "{${hi/, repel: \{alpha: 1\}/}, st: {model: stellar, final: {w: 1, mu: 1, b: 0}}}"
bad "stellar map without final" "jerald.maps.st.final: a stellar map needs its final parameters" \
    '{st: {model: stellar, layers: [{alpha: 1}]}}'
bad "n_mesh 1 is not FFT-able" "jerald.n_mesh = 1" '{dm: {layers: [{alpha: 1}]}}' jerald.n_mesh=1
bad "gradient order" "jerald.gradient_order = 5: expected 4 or 6" '{dm: {layers: [{alpha: 1}]}}' \
    jerald.gradient_order=5
{ head nosuch.hdf5; printf '  n_mesh: 8\n'; } > empty.yml
expect_ok "no maps: the stage is skipped" "no map in jerald.maps" "$LEMUR" jerald empty.yml
bad "missing snapshot" "cannot open snapshot nosuch.hdf5" '{dm: {layers: [{alpha: 1}]}}'
check "a failed run leaves no maps file" [ ! -e out/jerald_maps.hdf5 ]

{ head snap.hdf5; cat <<'YML'
  write_particles: true
  maps:
    dm: {layers: [{alpha: 20}, {alpha: 10, green: sm}]}
    st: {model: stellar, layers: [{alpha: 20}], final: {w: 1, mu: 1.5, b: 0}}
    hi:
      model: hi
      stellar_map: st
      layers: [{alpha: 100, repel: {alpha: 50}}]
      final: {w: 1, mu: 1.6, b: 0, z_s: 0.1}
      depletion: {beta1: 0.4, beta2: 0.2, gamma3: 0.8, eta: -0.1, kh: 0.2, kl: 2, nu: 0.3, xi: 0.05}
YML
} > good.yml
sed -i 's/, green: sm//' good.yml
expect_ok "lemur jerald on 2 ranks" "jerald: wrote $d/out/jerald_maps.hdf5" \
    "${MPIRUN[@]}" -n 2 "$LEMUR" jerald good.yml
for f in jerald_maps.hdf5 jerald_dm_power.hdf5 jerald_dm_power.txt jerald_hi_power.txt \
         jerald_st_particles.hdf5; do
    check "output $f" [ -s "out/$f" ]
done
check "no temporary files left" [ -z "$(ls out | grep '\.tmp')" ]
check "text spectrum has the nbodykit header" grep -q '^# k P N' out/jerald_dm_power.txt
expect_ok "maps carry their parameters" "OK" ${PYTHON:-/usr/bin/python3} -c "
import h5py
text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
f = h5py.File('out/jerald_maps.hdf5', 'r')
a = f['maps/hi'].attrs
assert f['maps/dm'].shape == (16, 16, 16) and text(a['model']) == 'hi'
assert list(a['alpha']) == [100.0] and list(a['repel_alpha']) == [50.0] and a['final_z_s'] == 0.1
assert text(a['stellar_map']) == 'st' and text(f['maps/dm'].attrs['green']) == 'dm'
assert abs(f['maps/dm'].attrs['mean'] - 1) < 1e-6 and 'stellar_map: st' in text(f.attrs['lemur_config'])
print('OK')"
expect_ok "lemur run chains the jerald stage" "== stage jerald done" \
    "$LEMUR" run good.yml 'run.stages=[jerald]' jerald.write_particles=false output.dir=out-run
finish
