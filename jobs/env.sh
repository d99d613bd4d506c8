# Site settings shared by lemur's job scripts: edit these for your cluster, or export them before
# calling sbatch. Nothing here is specific to one machine.
: "${LEMUR_MODULES:=openmpi fftw hdf5-parallel gsl cuda}"   # modules to load, space separated
: "${LEMUR_ACCOUNT:=}"                                        # SLURM account (-A), empty: default
: "${LEMUR_PARTITION:=gpu}"                                   # SLURM partition of GPU nodes
: "${LEMUR_GPUS_PER_NODE:=4}"                                 # GPUs (= ranks) per node
: "${LEMUR_CPUS_PER_GPU:=8}"                                  # CPU cores per rank
: "${LEMUR_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lemur}"
: "${LEMUR_MPIRUN:=srun}"                                     # srun, or mpirun

lemur_load_modules() {
    if command -v module >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        module load $LEMUR_MODULES
    fi
}

lemur_launch() { # ranks, then the lemur arguments
    local ranks=$1; shift
    if [ "$LEMUR_MPIRUN" = srun ]; then
        srun --ntasks="$ranks" --gpus-per-task=1 --cpus-per-task="$LEMUR_CPUS_PER_GPU" \
            --gpu-bind=none "$LEMUR_BIN" "$@"
    else
        mpirun -n "$ranks" --map-by "ppr:$LEMUR_GPUS_PER_NODE:node:PE=$LEMUR_CPUS_PER_GPU" \
            "$LEMUR_BIN" "$@"
    fi
}
