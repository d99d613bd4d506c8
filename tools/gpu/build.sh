#!/usr/bin/env bash
# Build lemur's GPU conformance harness and emulator benchmark with the CUDA toolkit alone (nvcc,
# gcc, cuDNN, cuBLAS, the CUDA runtime; no MPI, FFTW, HDF5, oneDNN or yaml), for GPU machines:
#   bash tools/gpu/build.sh [outdir]      (make gpu-bench calls it with outdir build-gpu-bench)
# Produces outdir/gpu-conformance and outdir/bench-emulator. Environment: CUDA_HOME (default
# /usr/local/cuda), CUDNN_HOME (a cuDNN outside CUDA_HOME), GPU_ARCHS (nvcc -gencode flags),
# HOST_CC (default gcc), JOBS (parallel compilations, default the CPU count).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=${1:-build-gpu-bench}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=${NVCC:-$CUDA_HOME/bin/nvcc}
HOST_CC=${HOST_CC:-gcc}
GPU_ARCHS=${GPU_ARCHS:-"-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90"}
JOBS=${JOBS:-$(nproc)}

# Directory holding header $1 (searched under the given roots), and the directory of library $2.
python_nvidia() { python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true; }
find_dir() { # name roots...
    local name=$1 root d; shift
    for root in "$@"; do
        [ -d "$root" ] || continue
        d=$(find -L "$root" -maxdepth 4 -name "$name" -print -quit 2>/dev/null || true)
        if [ -n "$d" ]; then dirname "$d"; return 0; fi
    done
    return 1
}
pynv=$(python_nvidia)
roots=("${CUDNN_HOME:-/nonexistent}" "$CUDA_HOME" /usr/include /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local)
[ -n "$pynv" ] && roots+=("$pynv")
cudnn_inc=$(find_dir cudnn.h "${roots[@]}") || { echo "build.sh: cudnn.h not found (set CUDNN_HOME)" >&2; exit 1; }
cudnn_lib=$(find_dir 'libcudnn.so*' "${roots[@]}") || { echo "build.sh: libcudnn.so not found (set CUDNN_HOME)" >&2; exit 1; }
cudnn_so=$(cd "$cudnn_lib" && ls libcudnn.so.9* libcudnn.so 2>/dev/null | head -n 1)
cublas_lib=$(find_dir 'libcublas.so*' "$CUDA_HOME/lib64" "$CUDA_HOME" ${pynv:+"$pynv"}) || { echo "build.sh: libcublas.so not found" >&2; exit 1; }
cublas_so=$(cd "$cublas_lib" && ls libcublas.so libcublas.so.[0-9]* 2>/dev/null | head -n 1)
cublaslt_so=$(cd "$cublas_lib" && ls libcublasLt.so libcublasLt.so.[0-9]* 2>/dev/null | head -n 1)
cudart_lib=$(find_dir 'libcudart.so*' "$CUDA_HOME/lib64" "$CUDA_HOME") || { echo "build.sh: libcudart.so not found" >&2; exit 1; }
echo "build.sh: cuDNN headers $cudnn_inc, library $cudnn_lib/$cudnn_so; cuBLAS $cublas_lib/$cublas_so"

inc="-Isrc -Itests -Itools/gpu -I$CUDA_HOME/include -I$cudnn_inc"
cflags="-O3 -march=native -std=c11 -D_XOPEN_SOURCE=700 -Wall -Wextra -Wno-unused-parameter -fopenmp $inc"
nvflags="-O3 -std=c++17 $GPU_ARCHS $inc -Xcompiler -fPIC,-Wall"
lib_c="src/error.c src/alloc.c src/timer.c src/nn.c src/nn_ref.c src/box.c src/tiling.c tools/gpu/vnet.c tools/gpu/cpu_net.c"
lib_cu="$(ls src/gpu/*.cu) tools/gpu/gemm_rate.cu"
mkdir -p "$out/obj"

# Compile every source (in parallel) into out/obj.
compile() { # source
    local src=$1 obj="$out/obj/$(echo "$1" | tr '/' '_').o"
    case "$src" in
    *.cu) "$NVCC" $nvflags -c -o "$obj" "$src" ;;
    *.c) "$HOST_CC" $cflags -c -o "$obj" "$src" ;;
    esac
}
export -f compile
export out NVCC HOST_CC nvflags cflags
printf '%s\n' $lib_c $lib_cu tools/gpu/gpu_conformance.c tools/gpu/bench_emulator.c |
    xargs -P "$JOBS" -I{} bash -c 'compile {}'

objs=""
for s in $lib_c $lib_cu; do objs="$objs $out/obj/$(echo "$s" | tr '/' '_').o"; done
libs="-L$cudnn_lib -Wl,-rpath,$cudnn_lib -l:$cudnn_so -L$cublas_lib -Wl,-rpath,$cublas_lib -l:$cublas_so"
[ -n "$cublaslt_so" ] && libs="$libs -l:$cublaslt_so"
libs="$libs -L$cudart_lib -Wl,-rpath,$cudart_lib -lcudart -lstdc++ -lm -fopenmp"
for prog in gpu_conformance bench_emulator; do
    name=$(echo "$prog" | tr '_' '-')
    "$HOST_CC" -o "$out/$name" "$out/obj/tools_gpu_$prog.c.o" $objs $libs
done
echo "build.sh: built $out/gpu-conformance and $out/bench-emulator"
