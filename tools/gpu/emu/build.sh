#!/usr/bin/env bash
# Build lemur's GPU conformance harness against a CPU emulation of the CUDA runtime, cuDNN and
# cuBLAS (tools/gpu/emu/*.cc), for machines without a GPU: the CUDA backend's host code compiled
# as plain C++ with the CUDA headers, its kernels' item functions run in CPU loops.
#   bash tools/gpu/emu/build.sh [outdir]      (make gpu-emu calls it with outdir build-gpu-emu)
# Produces outdir/gpu-conformance-emu (run with --skip-full: the full-width network is slow on a
# CPU) and outdir/bench-emulator-emu (the benchmark's flow on tiny tiles, e.g. --width 4 --tiles 8). Needs only g++, gcc and the CUDA headers (CUDA_HOME, default /usr/local/cuda; cudnn.h
# there or under CUDNN_HOME).
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$top"
out=${1:-build-gpu-emu}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
CC=${HOST_CC:-gcc}
CXX=${HOST_CXX:-g++}
JOBS=${JOBS:-$(nproc)}
cudnn_h=$(find -L "${CUDNN_HOME:-$CUDA_HOME}" "$CUDA_HOME" /usr/include -maxdepth 4 -name cudnn.h -print -quit 2>/dev/null || true)
[ -n "$cudnn_h" ] || { echo "emu/build.sh: cudnn.h not found (set CUDNN_HOME)" >&2; exit 1; }
inc="-Isrc -Itests -Itools/gpu -I$CUDA_HOME/include -I$(dirname "$cudnn_h")"
cflags="-O2 -std=c11 -D_XOPEN_SOURCE=700 -Wall -Wextra -Wno-unused-parameter -fopenmp $inc"
cxxflags="-O2 -std=c++17 -Wall -Wextra -Wno-unused-parameter -fopenmp $inc"
srcs="src/error.c src/alloc.c src/timer.c src/nn.c src/nn_ref.c src/box.c src/tiling.c tools/gpu/vnet.c tools/gpu/cpu_net.c
      $(ls src/gpu/*.cu | grep -v '/nn_cuda_kernels.cu$') $(ls tools/gpu/emu/*.cc)"
mkdir -p "$out/obj"
compile() { # source
    local src=$1 obj="$out/obj/$(echo "$1" | tr '/' '_').o"
    case "$src" in
    *.c) "$CC" $cflags -c -o "$obj" "$src" ;;
    *) "$CXX" -x c++ $cxxflags -c -o "$obj" "$src" ;;
    esac
}
export -f compile
export out CC CXX cflags cxxflags
printf '%s\n' $srcs tools/gpu/gpu_conformance.c tools/gpu/bench_emulator.c |
    xargs -P "$JOBS" -I{} bash -c 'compile {}'
objs=""
for s in $srcs; do objs="$objs $out/obj/$(echo "$s" | tr '/' '_').o"; done
for prog in gpu_conformance bench_emulator; do
    "$CXX" -o "$out/$(echo "$prog" | tr '_' '-')-emu" "$out/obj/tools_gpu_$prog.c.o" $objs -fopenmp -lm
done
echo "emu/build.sh: built $out/gpu-conformance-emu and $out/bench-emulator-emu"
