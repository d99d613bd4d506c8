#!/usr/bin/env bash
# Strong scaling: a fixed 1024^3 box (2000 Mpc/h, the emulator's spacing) on 1, 2, 4, ... nodes.
#   jobs/strong-scaling.sh [max_nodes] [params.yml]
# Submits one job per node count (each in scaling/strong/nodes-N); when they are done:
#   tools/scaling collect scaling/strong
set -euo pipefail
cd "$(dirname "$0")/.."
source jobs/env.sh
max=${1:-16}
params=${2:-config/quijote-fiducial.yml}
nodes=1
while [ "$nodes" -le "$max" ]; do
    out=scaling/strong/nodes-$nodes
    mkdir -p "$out"
    sbatch --nodes="$nodes" ${LEMUR_ACCOUNT:+-A "$LEMUR_ACCOUNT"} -p "$LEMUR_PARTITION" \
        --gpus-per-node="$LEMUR_GPUS_PER_NODE" jobs/scaling-step.slurm "$params" "$out" \
        box.size=2000 box.n=1024
    nodes=$((nodes * 2))
done
