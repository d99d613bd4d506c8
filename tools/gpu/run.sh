#!/usr/bin/env bash
# What a GPU machine runs for lemur's CUDA backend (from the repository root):
#   bash tools/gpu/run.sh conformance   build (make gpu-bench), then the conformance harness
#   bash tools/gpu/run.sh bench         build, then bench-emulator and the PyTorch comparison
#   bash tools/gpu/run.sh all           both
# Extra arguments after the mode go to bench-emulator (e.g. --tiles 128,auto --profile). Logs go to
# $OUT when set (the device tool's output folder), else build-gpu-bench/logs. Needs nvcc, gcc,
# the CUDA libraries (cuDNN, cuBLAS) and, for the comparison, python3 with PyTorch.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-all}
shift || true
logs=${OUT:-build-gpu-bench/logs}
mkdir -p "$logs"
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv 2>&1 |
    tee "$logs/device.txt"
if ! make --no-print-directory gpu-bench >"$logs/build.log" 2>&1; then
    tail -n 40 "$logs/build.log"
    echo "run.sh: build failed (log: $logs/build.log)"
    exit 1
fi
rc=0
if [ "$mode" = conformance ] || [ "$mode" = all ]; then
    ./build-gpu-bench/gpu-conformance 2>&1 | tee "$logs/conformance.log"
    rc=${PIPESTATUS[0]}
fi
if [ "$mode" = bench ] || [ "$mode" = all ]; then
    ./build-gpu-bench/bench-emulator "$@" 2>&1 | tee "$logs/bench.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    PYTHONUNBUFFERED=1 python3 tools/gpu/torch_emulator_gpu.py --tile 128 2>&1 |
        tee "$logs/torch.log"
    python3 - "$logs/bench.log" "$logs/torch.log" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 13 and f[0] == "128" and f[1] in ("bf16", "fp16", "tf32", "fp32"):
        rows[f[1]] = (float(f[2]), float(f[3]))
m = None
for line in open(sys.argv[2]):
    m = re.search(r"forward ([0-9.]+) s velocities ([0-9.]+) s", line) or m
if m and rows:
    tf, tv = float(m.group(1)), float(m.group(2))
    print(f"\nPyTorch fp16 autocast, tile 128: forward {tf:.4f} s, with velocities {tv:.4f} s")
    for p, (f, v) in rows.items():
        print(f"lemur {p}: forward {f:.4f} s ({tf / f:.2f}x faster), with velocities {v:.4f} s "
              f"({tv / v:.2f}x faster)")
PY
fi
exit $rc
