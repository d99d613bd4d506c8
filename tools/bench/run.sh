#!/usr/bin/env bash
# make bench: every benchmark of tools/bench at 1 and 2 ranks (BENCH_RANKS to change), tables on
# stdout; bench_power, bench_jerald and bench_fft at 1x1, 1x2 and 2x1 ranks x threads
# (BENCH_LAYOUTS; their arguments in BENCH_power, BENCH_jerald and BENCH_fft, e.g.
# BENCH_jerald="128 256 2"). Benchmarks that are single-process by design (the NN engine on one
# tile) run once with all cores as OpenMP threads. Each benchmark prints its own floor next to its
# measurements.
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=${BENCH_RANKS:-1 2}
status=0
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    name=$(basename "$b")
    case $name in
    bench_emulator | bench_superres)
        echo "== $name (1 process, $(nproc) threads) =="
        OMP_NUM_THREADS=$(nproc) "$b" || status=1
        ;;
    bench_power | bench_jerald | bench_fft)
        # the hybrid layouts of a 2-core node: 1 rank, 1 rank x 2 threads, 2 ranks x 1 thread
        # (threads need --bind-to none: mpirun binds each rank to one core by default)
        args=BENCH_${name#bench_}; args=${!args:-}
        for layout in ${BENCH_LAYOUTS:-1x1 1x2 2x1}; do
            np=${layout%x*} nt=${layout#*x}
            echo "== $name ($np rank(s) x $nt thread(s)) $args =="
            OMP_NUM_THREADS=$nt mpirun -n "$np" --oversubscribe --bind-to none "$b" $args || status=1
        done
        ;;
    *)
        for np in $ranks; do
            echo "== $name ($np rank(s), 1 thread each) =="
            OMP_NUM_THREADS=1 mpirun -n "$np" --oversubscribe "$b" || status=1
        done
        ;;
    esac
done
for py in tools/bench/*.py; do
    [ -f "$py" ] || continue
    echo "== $(basename "$py") =="
    /usr/bin/python3 "$py" || status=1
done
exit $status
