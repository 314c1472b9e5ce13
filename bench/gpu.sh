#!/usr/bin/env bash
# rnnkern on a GPU machine, in one command (inside 10 minutes on an H200):
#   1. build the extension with its CUDA backend (sm_90 only: the H200 is
#      compute capability 9.0; `RNNKERN_CUDA_ARCHS=...` to change), keeping the
#      ptxas resource report (registers, shared memory, spills) of each kernel;
#   2. the real-device tests (tests/test_cuda.py: cuda against cuda-emu and the
#      reference, determinism, the pool; tests/test_device_arrays.py: PyTorch
#      CUDA tensors in place, the CUDA-graph path) and the option grid on `cuda`;
#   3. rnnkern-bench, the cuda backend against PyTorch's cuDNN RNNs (torch-cuda)
#      at S1-S4 and two DeepBench LSTM training shapes (H 512 N 64, H 1024
#      N 32, T 25; C = H as DeepBench has it), JSON + table; then the cuda
#      backend again at S1-S4 with its time loops as CUDA graphs
#      (RNNKERN_CUDA_GRAPHS=1), for the graph-vs-launches ratio.
# No package registry is needed: the machine's nvcc, CUDA PyTorch, pybind11,
# scikit-build-core, cmake and ninja are used (pip --no-build-isolation).
# Results go to $OUT (default bench/results/gpu), which the device tool brings back.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results/gpu}
mkdir -p "$out"
archs=${RNNKERN_CUDA_ARCHS:-90}
start=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
nvcc --version | tail -1 | tee -a "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" | tee -a "$out/gpu.txt"

step "build (CUDA archs $archs)"
python3 -m pip install --no-build-isolation --no-deps -v . \
  --config-settings=cmake.define.RNNKERN_CUDA=ON \
  --config-settings=cmake.define.RNNKERN_CUDA_ARCHS="$archs" \
  --config-settings=build-dir=build/gpu > "$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log"; exit 1; }
grep -E "ptxas info|spill|Compiling entry" "$out/build.log" > "$out/ptxas.txt" || true
python3 -c "import rnnkern as rk, rnnkern.backends as b; print(rk.backends(), b.cuda_status())" | tee -a "$out/gpu.txt"

step "real-device tests"
(cd /tmp && python3 -m pytest -q -p no:cacheprovider "$OLDPWD/tests/test_cuda.py" \
   "$OLDPWD/tests/test_device_arrays.py" "$OLDPWD/tests/test_kernels.py" \
   -k "cuda and not cuda-emu" 2>&1 | tail -15) | tee "$out/tests.txt"

step "benchmark: cuda vs cuDNN (torch-cuda)"
(cd /tmp && rnnkern-bench --shapes default 25,64,512,512 25,32,1024,1024 \
   --backends cuda,torch-cuda --json "$OLDPWD/$out/bench.json" --no-progress \
   --budget 0.3 2>&1) | tee "$out/bench.txt"

step "benchmark: cuda with its time loops as CUDA graphs"
(cd /tmp && RNNKERN_CUDA_GRAPHS=1 rnnkern-bench --shapes default --backends cuda \
   --json "$OLDPWD/$out/bench-graphs.json" --no-progress --budget 0.3 2>&1) \
  | tee "$out/bench-graphs.txt"
step "done"
