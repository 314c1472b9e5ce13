#!/usr/bin/env bash
# rnnkern -- cibuildwheel's before-all on the manylinux_2_28 images
# (pyproject.toml [tool.cibuildwheel]): on x86-64, NVIDIA's CUDA compiler and
# static runtime from NVIDIA's RHEL 8 repository, so the wheels carry the CUDA
# kernels as packaging/build_wheels.sh's do; elsewhere nothing (the portable
# kernels). RNNKERN_CUDA=OFF skips it.
set -euo pipefail
if [ "$(uname -m)" != "x86_64" ] || [ "${RNNKERN_CUDA:-AUTO}" = "OFF" ]; then
  exit 0
fi
dnf install -y dnf-plugins-core
dnf config-manager --add-repo \
  https://developer.download.nvidia.com/compute/cuda/repos/rhel8/x86_64/cuda-rhel8.repo
dnf install -y cuda-nvcc-13-0 cuda-cudart-devel-13-0
ln -sf /usr/local/cuda-13.0 /usr/local/cuda
echo "nvcc: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
