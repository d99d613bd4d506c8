#!/usr/bin/env bash
# Strong and weak scaling on this machine (no SLURM): the series of jobs/strong-scaling.sh and
# jobs/weak-scaling.sh at rank counts one workstation can hold, with tools/scaling local.
#   jobs/local-scaling.sh [max_ranks] [params.yml] [key.path=value ...]
# Results: scaling/local-strong and scaling/local-weak (scaling.txt, scaling.json, PNG plots).
# Strong: a fixed 128^3 box at the emulator's spacing (250 Mpc/h); weak: ~64^3 particles per rank
# (box.n the multiple of 8 nearest 64 P^(1/3)).
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-4}
params=${2:-config/default.yml}
shift $(( $# > 2 ? 2 : $# ))
stages=${LEMUR_SCALING_STAGES:-ic,power}
lemur=${LEMUR:-./lemur}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

ranks=()
r=1
while [ "$r" -le "$max" ]; do ranks+=("$r"); r=$((r * 2)); done
tools/scaling local --lemur "$lemur" --ranks "${ranks[@]}" --params "$params" --stages "$stages" \
    --out scaling/local-strong box.size=250 box.n=128 "$@"

# Weak: one series point per rank count, each in its own directory, collected together.
for r in "${ranks[@]}"; do
    n=$(/usr/bin/python3 -c "print(8 * round(8 * $r ** (1 / 3)))")  # a multiple of 8
    size=$(/usr/bin/python3 -c "print($n * 1000 / 512)")
    tools/scaling local --lemur "$lemur" --ranks "$r" --params "$params" --stages "$stages" \
        --out scaling/local-weak "box.n=$n" "box.size=$size" "$@" >/dev/null
done
tools/scaling collect scaling/local-weak
