#!/usr/bin/env bash
# make demo: run the main job on config/default.yml and say where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=${RANKS:-1}
out=${OUT:-output/default}
echo "lemur demo: mpirun -n $ranks ./lemur run config/default.yml output.dir=$out"
mpirun -n "$ranks" --oversubscribe ./lemur run config/default.yml "output.dir=$out"
if compgen -G "$out/*.hdf5" >/dev/null || compgen -G "$out/*.h5" >/dev/null; then
    /usr/bin/python3 tools/plot "$out" || echo "lemur demo: plots skipped (tools/plot failed)"
fi
echo
echo "lemur demo: results are in $(cd "$out" && pwd):"
ls -l "$out" "$out/plots" 2>/dev/null
