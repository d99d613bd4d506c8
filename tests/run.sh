#!/usr/bin/env bash
# Run every lemur test and print the total as "N passed, N failed".
#   unit tests:      build/tests/test_*            (one process)
#   MPI tests:       build/tests/mpitest_*         (at 1, 2, 3 and 4 ranks, oversubscribed)
#   Python checks:   tests/python/check_*.py       (/usr/bin/python3; independent references)
#   shell checks:    tests/cli/*.sh                (CLI behaviour, error messages, pipelines)
#   format:          clang-format --dry-run --Werror
# Each item prints "cases: passed=N failed=M"; an item that crashes counts as one failure.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export LEMUR=$top/$build/lemur LEMUR_BUILD=$top/$build PYTHON=/usr/bin/python3
export LEMUR_TMP=${LEMUR_TMP:-$top/tests/tmp}
mkdir -p "$LEMUR_TMP"
passed=0; failed=0; failed_items=()
log=$(mktemp)

run_item() { # name, command...
    local name=$1; shift
    local t0=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local line p f
    line=$(grep -E '^cases: passed=[0-9]+ failed=[0-9]+$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line"); f=$(sed -E 's/.*failed=([0-9]+)/\1/' <<<"$line")
    else
        p=0; f=0
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failed_items+=("$name"); echo "FAIL $name ($p passed, $f failed, $((SECONDS - t0))s)"
        sed 's/^/    | /' "$log" | tail -n 60
    else
        echo "ok   $name ($p cases, $((SECONDS - t0))s)"
    fi
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] && run_item "$(basename "$t")" "$t"
done
for t in "$build"/tests/mpitest_*; do
    [ -x "$t" ] || continue
    for np in 1 2 3 4; do
        run_item "$(basename "$t") -n $np" mpirun -n $np --oversubscribe "$t"
    done
done
for t in tests/python/check_*.py; do
    [ -f "$t" ] && run_item "$(basename "$t")" $PYTHON "$t"
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] && run_item "cli/$(basename "$t")" bash "$t"
done
run_item "clang-format" bash -c 'make --no-print-directory format-check && echo "cases: passed=1 failed=0"'
rm -f "$log"
if [ ${#failed_items[@]} -ne 0 ]; then echo "failed: ${failed_items[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
