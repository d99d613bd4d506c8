#!/usr/bin/env python3
"""check_fof — `lemur fof` against an independent friends-of-friends (Davis et al. 1985).

The reference links pairs found by scipy's cKDTree (periodic boxsize) whose minimum-image distance,
computed in double from the float32 positions, is below the linking length, and takes connected
components with a numpy union-find. Group properties follow the definitions directly (members
sorted by ID, unwrapped around the first, sums in float64).

Cases:
  - ZA and 2LPT boxes from `lemur ic` (b = 0.35, min_length 5 so small boxes have groups): the
    same groups (sizes, member sets, first IDs, order) and properties to 1e-6; the same catalogue
    at 3 ranks and from `lemur run` with the particles handed over in memory;
  - planted compact clusters straddling the slab faces of 2 and 3 ranks (odd 37-cell slabs) and
    the periodic boundary in x, y, z: the catalogue is bitwise the same at 1, 2 and 3 ranks, and
    with fof.n_files = 3 the files concatenate to the one-file catalogue;
  - the mass function of the planted clusters (known sizes): counts, dn/dlnM and Poisson errors;
    the Sheth & Tormen column is positive and falls with mass;
  - the same clusters as a Quijote-style two-file snapshot (kpc/h, uint32 IDs): the same groups;
  - halo spectra: b = P_hm / P_mm, and h5py reads every dataset with the documented types.
"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
from scipy.spatial import cKDTree

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEMUR = os.environ.get("LEMUR", os.path.join(TOP, "build", "lemur"))
TMP = os.path.join(os.environ.get("LEMUR_TMP", os.path.join(TOP, "tests", "tmp")), "check_fof")
results = {"passed": 0, "failed": 0}
GROUP_SETS = ["GroupLen", "GroupMass", "GroupPos", "GroupVel", "GroupVelDisp", "GroupRadius",
              "GroupFirstID", "GroupLenType", "GroupMassType", "MemberIDs", "MemberOffset"]


def report(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}", flush=True)


def run(ranks, params, *overrides, expect_ok=True):
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", LEMUR] if ranks > 1 else [LEMUR]
    cmd += ["fof", params, *overrides]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if (r.returncode == 0) != expect_ok:
        print(r.stdout[-3000:], r.stderr[-3000:])
    return r


# ---- reference -------------------------------------------------------------------------------

def min_image(d, box):
    d = np.where(d > 0.5 * box, d - box, d)
    return np.where(d < -0.5 * box, d + box, d)


def find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def reference_fof(x, ids, box, link, min_length):
    """Groups as lists of member indices (sorted by ID), in catalogue order."""
    x64 = x.astype(np.float64)
    tree = cKDTree(np.mod(x64, box), boxsize=box)
    pairs = tree.query_pairs(link * (1 + 1e-6), output_type="ndarray")
    if len(pairs):
        d = min_image(x64[pairs[:, 0]] - x64[pairs[:, 1]], box)
        pairs = pairs[(d * d).sum(axis=1) < link * link]
    parent = np.arange(len(x))
    for a, b in pairs:  # union-find: the larger root under the smaller
        ra, rb = find(parent, a), find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(parent, i) for i in range(len(x))])
    groups = []
    for r in np.unique(roots):
        m = np.nonzero(roots == r)[0]
        if len(m) >= min_length:
            groups.append(m[np.argsort(ids[m])])
    groups.sort(key=lambda m: (-len(m), ids[m[0]]))
    return groups


def reference_properties(m, x, v, box):
    x64, v64 = x[m].astype(np.float64), v[m].astype(np.float64)
    dx = min_image(x64 - x64[0], box)
    mx = dx.mean(axis=0)
    pos = np.mod(x64[0] + mx, box)
    vm = v64.mean(axis=0)
    disp = np.sqrt(((v64 - vm) ** 2).sum() / (3 * len(m)))
    rad = np.sqrt(((dx - mx) ** 2).sum() / len(m))
    return pos, vm, disp, rad


def read_snapshot(path):
    with h5py.File(path, "r") as f:
        a = f["Header"].attrs["Time"]
        g = f["PartType1"]
        x = g["Coordinates"][...]
        v = (g["Velocities"][...].astype(np.float64) * np.sqrt(a)).astype(np.float32)
        ids = g["ParticleIDs"][...].astype(np.uint64)
        return x, v, ids, float(f["Header"].attrs["BoxSize"]), f["Header"].attrs["MassTable"][1]


def read_catalogue(out, n_files=1):
    names = [f"{out}/fof_tab.hdf5"] if n_files == 1 else \
        [f"{out}/fof_tab.{i}.hdf5" for i in range(n_files)]
    cat = {}
    for name in names:
        with h5py.File(name, "r") as f:
            for k, ds in f["Group"].items():
                cat.setdefault(k, []).append(ds[...])
            cat["header"] = dict(f["Header"].attrs)
    return {k: (np.concatenate(v) if k != "header" else v) for k, v in cat.items()}


def compare(name, cat, groups, x, v, ids, box, mass):
    n = len(groups)
    ok = len(cat["GroupLen"]) == n and int(cat["header"]["Ngroups_Total"]) == n
    if not ok:
        report(name + ": number of groups", False, f"lemur {len(cat['GroupLen'])}, reference {n}")
        return
    report(name + f": {n} groups", n > 0)
    lens = np.array([len(m) for m in groups])
    report(name + ": sizes and order", np.array_equal(cat["GroupLen"], lens)
           and np.array_equal(cat["GroupFirstID"], [ids[m[0]] for m in groups]))
    off = cat["MemberOffset"]
    same = all(np.array_equal(cat["MemberIDs"][off[k]:off[k] + lens[k]], ids[groups[k]])
               for k in range(n))
    report(name + ": member sets", same)
    worst = 0.0
    for k, m in enumerate(groups):
        pos, vm, disp, rad = reference_properties(m, x, v, box)
        dpos = np.abs(min_image(cat["GroupPos"][k] - pos, box)).max() / box
        vs = max(1.0, np.abs(v).max())
        worst = max(worst, dpos, np.abs(cat["GroupVel"][k] - vm).max() / vs,
                    abs(cat["GroupVelDisp"][k] - disp) / vs,
                    abs(cat["GroupRadius"][k] - rad) / box,
                    abs(cat["GroupMass"][k] - len(m) * mass) / (len(m) * mass))
    report(name + ": properties to 1e-6", worst < 1e-6, f"worst relative difference {worst:.2e}")


# ---- cases -----------------------------------------------------------------------------------

def params_file(path, body):
    with open(path, "w") as f:
        f.write(body)
    return path


def lemur_ic_case(lpt):
    out = f"{TMP}/ic{lpt}"
    prm = params_file(f"{TMP}/ic{lpt}.yml", f"""box: {{size: 64, n: 32}}
ic: {{write_particles: true, write_field: false, lpt_order: {lpt}, seed: {7 + lpt}}}
output: {{dir: {out}}}
fof: {{linking_length: 0.35, min_length: 5, write_members: true, spectra: false}}
run: {{stages: [ic]}}
""")
    r = subprocess.run([LEMUR, "run", prm], capture_output=True, text=True)
    if r.returncode != 0:
        report(f"lemur ic (lpt {lpt})", False, r.stderr[-2000:])
        return
    snap = f"{out}/ic_snapshot.hdf5"
    r = run(1, prm, f"fof.input={snap}")
    if r.returncode != 0:
        report(f"lemur fof on the {'ZA' if lpt == 1 else '2LPT'} box", False)
        return
    x, v, ids, box, mass = read_snapshot(snap)
    link = 0.35 * box / round(len(x) ** (1 / 3))
    groups = reference_fof(x, ids, box, link, 5)
    label = "ZA" if lpt == 1 else "2LPT"
    compare(f"{label} 64 Mpc/h 32^3", read_catalogue(out), groups, x, v, ids, box, mass)
    one = read_catalogue(out)
    if lpt == 1:  # the fof stage of `lemur run`, on the IC particles held in memory
        r = subprocess.run([LEMUR, "run", prm, "run.stages=[ic, fof]", f"output.dir={out}run"],
                           capture_output=True, text=True)
        chained = read_catalogue(out + "run") if r.returncode == 0 else None
        report("lemur run with stages ic, fof: the same catalogue from memory",
               chained is not None and "taken from memory" in r.stdout + r.stderr
               and all(np.array_equal(one[k], chained[k]) for k in GROUP_SETS))
    r = run(3, prm, f"fof.input={snap}", f"output.dir={out}3")
    if r.returncode == 0:
        three = read_catalogue(out + "3")
        report(f"{label}: catalogue bitwise the same at 3 ranks",
               all(np.array_equal(one[k], three[k]) for k in GROUP_SETS))
    else:
        report(f"{label}: 3 ranks", False)


BOX = 100.0


def planted(seed=3):
    """Compact clusters of known sizes (jittered lattices of spacing 0.45 l) straddling x slab
    faces of 37-cell slabs at 2 and 3 ranks and the periodic boundary, plus isolated field
    particles more than 2 l from anything. Returns x, v, ids, sizes, link (b = 0.2)."""
    rng = np.random.default_rng(seed)
    h = BOX / 37
    centres = [(0.0, 50.0, 50.0), (19 * h, 20.0, 80.0), (13 * h, 70.0, 30.0), (26 * h, 40.0, 60.0),
               (60.0, 0.0, 99.9), (80.0, 99.95, 0.02), (30.0, 30.0, 30.0), (90.0, 60.0, 10.0),
               (45.0, 85.0, 45.0), (10.0, 10.0, 70.0), (70.0, 45.0, 85.0), (55.0, 15.0, 15.0)]
    sizes = [400, 300, 240, 200, 160, 120, 90, 64, 50, 40, 30, 24]
    n_total = 24000
    link = 0.2 * BOX / round(n_total ** (1 / 3))
    pts = []
    for c, s in zip(centres, sizes):
        side = int(np.ceil(s ** (1 / 3)))
        g = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:s]
        p = np.array(c) + (g - (side - 1) / 2) * 0.45 * link + rng.uniform(-0.05, 0.05, (s, 3)) * link
        pts.append(p)
    cl = np.concatenate(pts)
    field = rng.uniform(0, BOX, (3 * n_total, 3))
    tree = cKDTree(np.mod(cl, BOX), boxsize=BOX)
    field = field[tree.query(field, k=1)[0] > 2 * link]
    keep = []
    ft = cKDTree(field, boxsize=BOX)
    close = np.zeros(len(field), bool)
    for a, b in ft.query_pairs(2 * link):
        close[b] = True
    field = field[~close][: n_total - len(cl)]
    x = np.mod(np.concatenate([cl, field]), BOX).astype(np.float32) % np.float32(BOX)
    n = len(x)
    perm = rng.permutation(n)
    ids = np.empty(n, np.uint64)
    ids[perm] = np.arange(n, dtype=np.uint64) * 3 + 11
    v = rng.normal(0, 300, (n, 3)).astype(np.float32)
    del keep
    return x, v, ids, sizes, link


def write_gadget(path_base, x, v, ids, n_files=1, kpc=False, a=1.0):
    n = len(x)
    splits = [n * i // n_files for i in range(n_files + 1)]
    for i in range(n_files):
        name = f"{path_base}.hdf5" if n_files == 1 else f"{path_base}.{i}.hdf5"
        s = slice(splits[i], splits[i + 1])
        with h5py.File(name, "w") as f:
            hd = f.create_group("Header")
            this = np.array([0, splits[i + 1] - splits[i], 0, 0, 0, 0], dtype=np.uint32 if kpc else np.uint64)
            hd.attrs["NumPart_ThisFile"] = this
            hd.attrs["NumPart_Total"] = np.array([0, n, 0, 0, 0, 0], dtype=this.dtype)
            hd.attrs["NumPart_Total_HighWord"] = np.zeros(6, np.uint32)
            hd.attrs["MassTable"] = np.array([0, 65.0, 0, 0, 0, 0])
            hd.attrs["BoxSize"] = BOX * (1000 if kpc else 1)
            hd.attrs["Time"] = a
            hd.attrs["Redshift"] = 1 / a - 1
            hd.attrs["NumFilesPerSnapshot"] = n_files
            hd.attrs["Omega0"] = 0.3175
            hd.attrs["OmegaLambda"] = 0.6825
            hd.attrs["HubbleParam"] = 0.6711
            g = f.create_group("PartType1")
            g["Coordinates"] = (x[s].astype(np.float64) * (1000 if kpc else 1)).astype(np.float32)
            g["Velocities"] = (v[s] / np.sqrt(a)).astype(np.float32)
            g["ParticleIDs"] = ids[s].astype(np.uint32 if kpc else np.uint64)


def planted_cases():
    x, v, ids, sizes, link = planted()
    base = f"{TMP}/planted"
    write_gadget(base, x, v, ids)
    prm = params_file(f"{TMP}/planted.yml", f"""box: {{size: {BOX}, n: 29}}
fof: {{input: {base}.hdf5, min_length: 20, write_members: true, n_slab_cells: 37}}
power: {{n_mesh: 24}}
output: {{dir: {TMP}/p1}}
""")
    cats = {}
    for ranks in (1, 2, 3):
        r = run(ranks, prm, f"output.dir={TMP}/p{ranks}")
        if r.returncode != 0:
            report(f"planted clusters at {ranks} ranks", False)
            return
        cats[ranks] = read_catalogue(f"{TMP}/p{ranks}")
    n_part = len(x)
    ref = reference_fof(x, ids, BOX, 0.2 * BOX / n_part ** (1 / 3), 20)
    compare("planted clusters", cats[1], ref, x, v, ids, BOX, 65.0)
    report("planted: the planted sizes", sorted(cats[1]["GroupLen"].tolist(), reverse=True)
           == sorted([s for s in sizes if s >= 20], reverse=True))
    for ranks in (2, 3):
        report(f"planted: bitwise the same at {ranks} ranks (slab faces and periodic boundary)",
               all(np.array_equal(cats[1][k], cats[ranks][k]) for k in GROUP_SETS))
    r = run(2, prm, f"output.dir={TMP}/pf", "fof.n_files=3")
    multi = read_catalogue(f"{TMP}/pf", 3) if r.returncode == 0 else None
    same = multi is not None and all(
        np.array_equal(cats[1][k], multi[k]) for k in GROUP_SETS if k != "MemberOffset")
    report("planted: three files concatenate to the one-file catalogue", same
           and int(multi["header"]["NumFiles"]) == 3)
    mass_function_case(f"{TMP}/p1", sizes, 65.0)
    spectra_case(f"{TMP}/p1")
    # Quijote-style input: two files, kpc/h, uint32 IDs, a = 0.5
    q = f"{TMP}/quijote/snap_004"
    os.makedirs(os.path.dirname(q), exist_ok=True)
    write_gadget(q, x, v, ids, n_files=2, kpc=True, a=0.5)
    r = run(2, prm, f"fof.input={q}.0.hdf5", f"output.dir={TMP}/pq", "fof.spectra=false")
    if r.returncode == 0:
        qc = read_catalogue(f"{TMP}/pq")
        report("Quijote-style snapshot: the same groups and members",
               np.array_equal(qc["GroupLen"], cats[1]["GroupLen"])
               and np.array_equal(qc["MemberIDs"], cats[1]["MemberIDs"])
               and abs(qc["header"]["Redshift"] - 1.0) < 1e-12)
    else:
        report("Quijote-style snapshot", False)


def mass_function_case(out, sizes, mass):
    with h5py.File(f"{out}/fof_mass_function.hdf5", "r") as f:
        d = {k: f[k][...] for k in f}
        dlogm, volume = f.attrs["dlog10M"], f.attrs["volume"]
    m = np.array([s for s in sizes if s >= 20]) * mass
    lo = np.floor(np.log10(m).min() / dlogm)
    idx = (np.floor(np.log10(m) / dlogm) - lo).astype(int)
    counts = np.bincount(idx, minlength=len(d["count"]))
    norm = volume * dlogm * np.log(10)
    report("mass function: counts of the planted sizes", np.array_equal(d["count"], counts))
    report("mass function: dn/dlnM and Poisson errors",
           np.allclose(d["dndlnM"], counts / norm, rtol=1e-12, atol=0)
           and np.allclose(d["dndlnM_error"], np.sqrt(counts) / norm, rtol=1e-12, atol=0)
           and np.allclose(d["log10M"], (lo + np.arange(len(counts)) + 0.5) * dlogm))
    st = d["dndlnM_ST"]
    report("mass function: Sheth & Tormen curve positive and decreasing",
           bool(np.all(st > 0) and np.all(np.diff(st) < 0)))
    txt = np.loadtxt(f"{out}/fof_mass_function.txt")
    report("mass function: text file matches", np.allclose(np.atleast_2d(txt)[:, 3], counts))


def spectra_case(out):
    with h5py.File(f"{out}/halo_power.hdf5", "r") as f:
        k, phm, pmm, b = f["k"][...], f["P_hm"][...], f["P_mm"][...], f["b"][...]
        nh = f.attrs["N_part"]
    good = np.isfinite(b)
    report("halo spectra: b = P_hm / P_mm, N_halo", good.sum() > 3 and nh == 12
           and np.allclose(b[good], phm[good] / pmm[good], rtol=1e-12))


def types_case(out):
    with h5py.File(f"{out}/fof_tab.hdf5", "r") as f:
        g = f["Group"]
        ok = g["GroupLen"].dtype == np.int32 and g["GroupFirstID"].dtype == np.uint64
        ok &= all(g[k].dtype == np.float32 for k in ("GroupMass", "GroupPos", "GroupVel",
                                                     "GroupVelDisp", "GroupRadius"))
        h = f["Header"].attrs
        ok &= h["Ngroups_ThisFile"].dtype == np.uint64 and h["LinkingLength"] == 0.2
        ok &= all(k in h for k in ("NumFiles", "BoxSize", "Time", "Redshift", "Omega0",
                                   "OmegaLambda", "HubbleParam", "MinLength", "Nids_ThisFile",
                                   "Nsubgroups_ThisFile"))
        ok &= "Subhalo" in f
    report("fof_tab: Gadget-4 names and types", bool(ok))


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    lemur_ic_case(1)
    lemur_ic_case(2)
    planted_cases()
    types_case(f"{TMP}/p1")
    prm = params_file(f"{TMP}/bad.yml", f"fof: {{input: {TMP}/missing.hdf5}}\noutput: {{dir: {TMP}/bad}}\n")
    r = run(1, prm, expect_ok=False)
    report("missing input: clear message", r.returncode != 0 and "missing.hdf5" in r.stderr)
    print(f"cases: passed={results['passed']} failed={results['failed']}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
