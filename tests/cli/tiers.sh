# The tiers of lemur's architecture hold (tools/check-tiers), and the check catches what breaks them.
source "$(dirname "$0")/lib.bash"
cd "$(dirname "$0")/../.."
tiers=tools/check-tiers

expect_ok "src/ keeps to its tiers" "0 violations" $PYTHON $tiers .
tiers_err() { "$PYTHON" "$tiers" "$1" 1>&2; } # violations on stderr, where expect_fail looks

# Planted violations, each in a copy of src/: the check names the file and line.
plant() { # NAME FILE LINE-TEXT NEEDLE: add LINE-TEXT at the top of FILE in a copy, expect NEEDLE
    local name=$1 file=$2 text=$3 needle=$4 copy
    copy=$(mktemp -d -p "$LEMUR_TMP")
    cp -r src "$copy/src"
    { echo "$text"; cat "src/$file"; } >"$copy/src/$file"
    expect_fail "$name" "$needle" tiers_err "$copy"
    rm -rf "$copy"
}
plant "kernels may not include mpi/" cic.c '#include "mpi/comm.h"' \
    "src/cic.c:1: kernels file includes mpi header mpi/comm.h"
plant "kernels may not include <mpi.h>" box.c '#include <mpi.h>' \
    "src/box.c:1: kernels file includes mpi header <mpi.h>"
plant "kernels may not include gpu/" tiling.c '#include "gpu/gpu.h"' \
    "src/tiling.c:1: kernels file includes gpu header gpu/gpu.h"
plant "gpu/ may not include mpi/" gpu/nocuda.c '#include "mpi/decomp.h"' \
    "src/gpu/nocuda.c:1: gpu file includes mpi header mpi/decomp.h"
plant "base may not include kernels" alloc.c '#include "particles.h"' \
    "src/alloc.c:1: base file includes kernels header particles.h"
plant "mpi/ may not include a plan" mpi/fft.c '#include "power_plan.h"' \
    "src/mpi/fft.c:1: mpi file includes plans header power_plan.h"
plant "kernels may not include <cudnn.h>" nn.c '#include <cudnn.h>' \
    "src/nn.c:1: kernels file includes gpu header <cudnn.h>"
plant "a header states its tier" cic.h '/* cic (tier: driver) — wrong */' \
    "src/cic.h:1: header states tier 'driver' but its path makes it 'kernels'"
finish
