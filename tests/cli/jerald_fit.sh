# lemur jerald-fit: a planted-parameter fit. Zel'dovich particles of lemur ic (32^3, 64 Mpc/h),
# target maps painted by lemur jerald with known parameters, fitted from JERALD's start values
# (alpha 1, gamma 0.5, kh 1, kl 8, nu 0) until the training loss falls by 1e-4; the map's P(k)
# then agrees with the target's within 0.5% for k < k_Nyquist / 2, the fit is the same at 1 and
# 3 ranks, the written parameter file runs unchanged in lemur jerald and reproduces the fitted
# map; a stellar map fitted after the dark-matter layers; bad targets stop with clear messages.
source "$(dirname "$0")/lib.bash"
root=$(cd "$(dirname "$0")/../.." && pwd)
d=$LEMUR_TMP/cli-jerald-fit
rm -rf "$d"; mkdir -p "$d"
cd "$d"
PY=${PYTHON:-/usr/bin/python3}

cat > ic.yml <<'YML'
box: {size: 64, n: 32}
ic: {write_particles: true, write_field: false}
output: {dir: ic}
run: {verbosity: 0}
YML
expect_ok "lemur ic writes ZA particles" "" "$LEMUR" ic ic.yml

cat > planted.yml <<'YML'
box: {size: 64, n: 32}
jerald:
  input: ic/ic_snapshot.hdf5
  maps:
    dm: {layers: [{alpha: 1.5, gamma: 0.65, kh: 1, kl: 8, nu: 0}]}
    stars:
      model: stellar
      green: dm
      layers: [{alpha: 1.5, gamma: 0.65, kh: 1, kl: 8, nu: 0}, {alpha: 2, gamma: 0.5, kh: 1, kl: 8, nu: 0}]
      final: {w: 0.8, mu: 1.5, b: 0.05}
output: {dir: planted}
run: {verbosity: 0}
YML
expect_ok "lemur jerald paints the planted targets" "" "$LEMUR" jerald planted.yml

fit_yml() { # targets (YAML block lines)
    cat <<YML
box: {size: 64, n: 32}
jerald:
  input: ic/ic_snapshot.hdf5
  maps:
    dm: {layers: [{alpha: 1, gamma: 0.5, kh: 1, kl: 8, nu: 0}]}
    stars: {model: stellar, green: dm, layers: [{alpha: 1}], final: {w: 1, mu: 1, b: 0}}
  fit:
    tolerance: 1e-4
    lr_start: 0.1
    lr_end: 0.001
    lr_tau: 200
    steps: 1000
    targets:
$1
output: {dir: out}
YML
}
fit_yml '      dm: {file: planted/jerald_maps.hdf5, dataset: maps/dm}' > fit.yml

# bad targets
expect_fail "target of another size" "jerald.fit.targets.dm: " "$LEMUR" jerald-fit fit.yml jerald.n_mesh=16
expect_fail "target size names jerald.n_mesh" "jerald.n_mesh^3 = 16^3" "$LEMUR" jerald-fit fit.yml jerald.n_mesh=16
expect_fail "missing dataset" "maps/nosuch" "$LEMUR" jerald-fit fit.yml jerald.fit.targets.dm.dataset=maps/nosuch
fit_yml '      nosuch: {file: planted/jerald_maps.hdf5, dataset: maps/dm}' > bad.yml
expect_fail "target of an unknown map" "jerald.fit.targets.nosuch: jerald.maps has no map 'nosuch'" \
    "$LEMUR" jerald-fit bad.yml
fit_yml '      stars: {file: planted/jerald_maps.hdf5, dataset: maps/stars, base: dm}' > bad.yml
expect_fail "base not fitted before" "jerald.fit.targets.stars.base = 'dm': that map is not fitted before" \
    "$LEMUR" jerald-fit bad.yml
check "a failed fit leaves no parameter file" [ ! -e out/jerald_fit.yml ]

# the planted fit at 1 and 3 ranks
expect_ok "fit at 1 rank stops on the tolerance" "map dm: stopped (tolerance)" \
    "$LEMUR" jerald-fit fit.yml run.verbosity=1
expect_ok "fit at 3 ranks stops on the tolerance" "map dm: stopped (tolerance)" \
    "${MPIRUN[@]}" -n 3 "$LEMUR" jerald-fit fit.yml output.dir=out3 run.verbosity=1
for f in jerald_fit.yml jerald_fit_history.txt jerald_fit_history.hdf5 jerald_fit_maps.hdf5 \
         jerald_fit_dm_power.txt jerald_fit_dm_target_power.hdf5; do
    check "output $f" [ -s "out/$f" ]
done
expect_ok "the fitted parameter file runs in lemur jerald" "jerald: wrote" \
    "$LEMUR" jerald out/jerald_fit.yml output.dir=out-maps run.verbosity=1
expect_ok "loss, spectra, ranks and maps of the planted fit" "OK" "$PY" - <<'PYEOF'
import h5py, numpy as np, yaml
h = h5py.File("out/jerald_fit_history.hdf5", "r")["dm"]
tr = h["loss_train"][:]
assert tr[-1] <= 1e-4 * tr[0], (tr[0], tr[-1])
names = h.attrs["parameter_names"]
names = (names.decode() if isinstance(names, bytes) else str(names)).split()
best = int(h.attrs["best_step"])
print("recovered (planted alpha 1.5, gamma 0.65, kh 1, kl 8, nu 0):",
      dict(zip(names, np.round(h["parameters"][best], 4))), "loss", tr[0], "->", tr[-1])
def pk(path):
    a = np.loadtxt(path)
    return a[:, 0], a[:, 1]
k, p = pk("out/jerald_fit_dm_power.txt")
_, pt = pk("out/jerald_fit_dm_target_power.txt")
knyq = np.pi * 32 / 64.0
sel = np.isfinite(pt) & (k > 0) & (k < knyq / 2)
err = np.abs(p[sel] / pt[sel] - 1).max()
assert sel.sum() >= 5 and err < 5e-3, err
print("max |P_fit / P_target - 1| for k < k_Nyq/2:", err)
nums = lambda f: np.array(list(yaml.safe_load(open(f))["jerald"]["maps"]["dm"]["layers"][0].values()))
a, b = nums("out/jerald_fit.yml"), nums("out3/jerald_fit.yml")
assert a.size == 5 and np.allclose(a, b, rtol=1e-9, atol=0), (a, b)
fitted = h5py.File("out/jerald_fit_maps.hdf5", "r")["fitted/dm"][:]
again = h5py.File("out-maps/jerald_maps.hdf5", "r")["maps/dm"][:]
target = h5py.File("out/jerald_fit_maps.hdf5", "r")["target/dm"][:]
planted = h5py.File("planted/jerald_maps.hdf5", "r")["maps/dm"][:]
assert np.array_equal(target, planted)
assert np.abs(fitted - again).max() <= 1e-6 * np.abs(again).max(), np.abs(fitted - again).max()
print("OK")
PYEOF

expect_ok "lemur run hands the ZA particles to jerald-fit in memory" "map dm: stopped (tolerance)" \
    "$LEMUR" run fit.yml 'run.stages=[ic, jerald-fit]' 'jerald.input=""' output.dir=out-run \
    run.verbosity=1
expect_ok "the in-memory fit equals the fit of the snapshot" "OK" "$PY" -c "
import yaml, numpy as np
p = lambda f: np.array(list(yaml.safe_load(open(f))['jerald']['maps']['dm']['layers'][0].values()))
a, b = p('out/jerald_fit.yml'), p('out-run/jerald_fit.yml')
assert np.allclose(a, b, rtol=1e-6, atol=0), (a, b)
print('OK')"
fit_yml '      hi: {file: planted/jerald_maps.hdf5, dataset: maps/dm, base: dm}' > bad.yml
sed -i 's/^    stars: .*/&\n    hi: {model: hi, stellar_map: stars, layers: [{alpha: 1, repel: {alpha: 1}}], final: {w: 1, mu: 1, b: 0}, depletion: {beta1: 1, beta2: 1, gamma3: 1, eta: 0, kh: 1, kl: 1, nu: 0, xi: 0}}/' bad.yml
expect_fail "an HI map takes no base" "jerald.fit.targets.hi.base = 'dm': HI layers carry" \
    "$LEMUR" jerald-fit bad.yml
expect_ok "tools/plot draws the loss history" "jerald_fit_history.png" \
    "$PY" "$root/tools/plot" out/jerald_fit_history.hdf5 --out plots

"$PY" -c "
import h5py
g = h5py.File('out/jerald_fit_history.hdf5', 'r')['dm']
names = g.attrs['parameter_names']
names = (names.decode() if isinstance(names, bytes) else str(names)).split()
best = g['parameters'][int(g.attrs['best_step'])]
print('     recovered (planted alpha 1.5, gamma 0.65, kh 1, kl 8, nu 0):',
      ', '.join(f'{n.split(\".\")[-1]} {v:.4f}' for n, v in zip(names, best)),
      f'after {g[\"step\"].size - 1} steps, loss {g[\"loss_train\"][0]:.3e} -> {g[\"loss_train\"][-1]:.3e}')"

# stellar after the dark-matter layers
fit_yml '      stars: {file: planted/jerald_maps.hdf5, dataset: maps/stars, base: dm}
      dm: {file: planted/jerald_maps.hdf5, dataset: maps/dm}' > fit2.yml
expect_ok "stellar fit after the dm layers" "map stars: stopped (tolerance)" \
    "$LEMUR" jerald-fit fit2.yml output.dir=out2 run.verbosity=1
expect_ok "the stellar map carries the fitted dm layers first" "OK" "$PY" -c "
import yaml
m = yaml.safe_load(open('out2/jerald_fit.yml'))['jerald']['maps']
assert len(m['stars']['layers']) == 2 and m['stars']['layers'][0] == m['dm']['layers'][0]
assert abs(m['stars']['final']['mu'] - 1.5) < 0.1, m['stars']['final']
print('OK')"
expect_ok "the two-map parameter file runs in lemur jerald" "jerald: wrote" \
    "$LEMUR" jerald out2/jerald_fit.yml output.dir=out2-maps run.verbosity=1
finish
