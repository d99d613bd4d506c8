#!/usr/bin/env bash
# Install the Debian packages lemur needs, only those missing. Quiet when nothing is missing.
set -euo pipefail
pkgs=(make pkg-config openmpi-bin libopenmpi-dev libfftw3-dev libfftw3-mpi-dev
      libhdf5-openmpi-dev hdf5-tools libgsl-dev libyaml-dev libopenblas-dev libdnnl-dev
      clang-format clang libclang-rt-14-dev python3 python3-numpy python3-h5py python3-torch python3-matplotlib python3-yaml)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "lemur: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "lemur: not root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "lemur: packages installed"
