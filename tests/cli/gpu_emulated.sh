# The CUDA backend's conformance harness over the CPU emulation of CUDA, cuDNN and cuBLAS
# (tools/gpu/emu): every op and a reduced V-Net, fp32 and bf16, against the reference backend.
# It checks the backend's host logic and kernels wherever the CUDA headers exist; the real GPU
# run is `bash tools/gpu/run.sh conformance` on a GPU machine.
top=$(cd "$(dirname "$0")/../.." && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
if [ ! -f "$cuda/include/cuda_runtime.h" ] || [ ! -f "$cuda/include/cudnn.h" ]; then
    echo "skipped: no CUDA toolkit headers under $cuda"
    echo "cases: passed=0 failed=0"
    exit 0
fi
cd "$top"
make --no-print-directory gpu-emu >/dev/null || { echo "make gpu-emu failed"; exit 1; }
exec build-gpu-emu/gpu-conformance-emu --skip-full --net-width 4 --net-tile 8 --precisions fp32,bf16
