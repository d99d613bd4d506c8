#!/usr/bin/env bash
# Weak scaling: the same number of particles per rank (256^3 per GPU) on 1, 8, 64, ... GPUs,
# growing the box at the emulator's spacing (box.size = box.n * 1000/512 Mpc/h).
#   jobs/weak-scaling.sh [max_nodes] [params.yml]
# Then: tools/scaling collect scaling/weak
set -euo pipefail
cd "$(dirname "$0")/.."
source jobs/env.sh
max=${1:-128}
params=${2:-config/quijote-fiducial.yml}
for ranks in 1 8 64 512 4096; do
    nodes=$(( (ranks + LEMUR_GPUS_PER_NODE - 1) / LEMUR_GPUS_PER_NODE ))
    [ "$nodes" -le "$max" ] || break
    n=$(/usr/bin/env python3 -c "print(round(256 * $ranks ** (1 / 3)))")
    size=$(/usr/bin/env python3 -c "print($n * 1000 / 512)")
    out=scaling/weak/ranks-$ranks
    mkdir -p "$out"
    sbatch --nodes="$nodes" --ntasks="$ranks" ${LEMUR_ACCOUNT:+-A "$LEMUR_ACCOUNT"} \
        -p "$LEMUR_PARTITION" --gpus-per-node="$LEMUR_GPUS_PER_NODE" \
        jobs/scaling-step.slurm "$params" "$out" "box.n=$n" "box.size=$size"
done
