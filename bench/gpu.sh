#!/usr/bin/env bash
# rnnkern on a GPU machine, in one command (about 6 minutes on an H200 before the fit
# step, at most 90 s more):
#   build    the extension with its CUDA backend (sm_90 only; RNNKERN_CUDA_ARCHS=...
#            to change), keeping each kernel's ptxas report (registers, spills);
#            then an import check run outside the source tree (inside it, Python
#            would import the sources, which have no compiled module);
#   bench    bench/gpu_bench.py: the cuda backend against cuDNN with device-resident
#            tensors, fp32 against cuDNN with TF32 off (TF32 column beside), every
#            row against issue #19's target (PASS/FAIL), the automatic plan against
#            the per-step family (both timed, checked to agree), rnnkern's bf16
#            beside its tf32 (target >= 1.3x at S3 and DB1024);
#   tests    the real-device tests (tests/test_cuda.py with every plan forced,
#            tests/test_device_arrays.py, the option grid of tests/test_kernels.py);
#   sanitize compute-sanitizer memcheck, racecheck and synccheck over
#            bench/gpu_sanitize.py (every family, one small case each).
# Every step runs whatever an earlier one showed (a failing test does not stop the
# benchmark); each has a time limit; the exit status is non-zero if any failed.
#   probe    bench/gpu_probe.py: the persistent loops' device time a step across
#            forced partitions (T = 1 against T = 100);
#   precision bench/precision_error.py: each precision mode's normwise error
#            against float64, per cell, forward and gradients (seconds);
#   micro    bench/gpu_micro.py (run before bench): the cost model's parameters measured
#            directly (mma.sync latency and rate, TF32 and bf16; the grid barrier at 1 to
#            all SMs' blocks; the L2 and memory round trip of a dependent load);
#   fit      bench/gpu_fit.py: the notebook models' fit with their recurrent layers on
#            cuda (weights kept on the device, and the host's update) beside the CPU;
# RNNKERN_GPU_STEPS="build micro bench fit probe precision tests sanitize" (the default)
# picks steps.
# No package registry is needed: the machine's nvcc, CUDA PyTorch, pybind11,
# scikit-build-core, cmake and ninja are used (pip --no-build-isolation).
# Results go to $OUT (default bench/results/gpu), which the device tool brings back.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${OUT:-bench/results/gpu}
mkdir -p "$out"
out=$(cd "$out" && pwd)
archs=${RNNKERN_CUDA_ARCHS:-90}
steps=${RNNKERN_GPU_STEPS:-build micro bench fit probe precision tests sanitize}
start=$(date +%s)
status=0
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
want() { [[ " $steps " == *" $1 "* ]]; }
fail() { echo "FAILED: $*"; status=1; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
nvcc --version | tail -1 | tee -a "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" | tee -a "$out/gpu.txt"

if want build; then
  step "build (CUDA archs $archs)"
  if timeout 300 python3 -m pip install --no-build-isolation --no-deps -v . \
      --config-settings=cmake.define.RNNKERN_CUDA=ON \
      --config-settings=cmake.define.RNNKERN_CUDA_ARCHS="$archs" \
      --config-settings=build-dir=build/gpu > "$out/build.log" 2>&1; then
    grep -E "ptxas info *: (Compiling entry|Used)|spill" "$out/build.log" > "$out/ptxas.txt" || true
  else
    tail -40 "$out/build.log"; fail "build"
  fi
fi
(cd /tmp && python3 -c "import rnnkern as rk, rnnkern.backends as b; print(rk.__file__, rk.backends(), b.cuda_status())") \
  | tee -a "$out/gpu.txt" || fail "import"

if want micro; then
  step "micro-benchmarks: the cost model's parameters (mma latency and rate, grid barrier, L2)"
  (cd /tmp && timeout 60 python3 "$repo/bench/gpu_micro.py" --out "$out") 2>&1 | tee "$out/micro.log" \
    || fail "micro"
fi

if want bench; then
  step "benchmark: cuda vs cuDNN, device-resident"
  (cd /tmp && timeout 240 python3 "$repo/bench/gpu_bench.py" --out "$out") 2>&1 | tee "$out/bench.log" \
    || fail "benchmark"
fi

if want fit; then
  step "fit: the notebook models on cuda (weights kept on the device, or the host's update) vs the CPU"
  (cd /tmp && timeout 90 python3 "$repo/bench/gpu_fit.py" --reps 3 --out "$out") 2>&1 \
    | tee "$out/fit.txt" || fail "fit"
fi

if want probe; then
  step "probe: the persistent loops' time a step across partitions"
  (cd /tmp && timeout 120 python3 "$repo/bench/gpu_probe.py" --out "$out") > "$out/probe.log" 2>&1 \
    || fail "probe"
  tail -30 "$out/probe.log"
fi

if want precision; then
  step "precision modes: error against float64"
  (cd /tmp && timeout 60 python3 "$repo/bench/precision_error.py" --backend cuda \
     --dims 16,20,128,48 --seed 1) > "$out/precision.txt" 2>&1 || fail "precision"
  cat "$out/precision.txt"
fi

if want tests; then
  step "real-device tests"
  (cd /tmp && timeout 240 python3 -m pytest -q -p no:cacheprovider "$repo/tests/test_cuda.py" \
     "$repo/tests/test_device_arrays.py" "$repo/tests/test_kernels.py" \
     "$repo/tests/test_torch_device.py" "$repo/tests/test_ddp.py" \
     "$repo/tests/test_device_updates.py" \
     -k "(cuda and not emu) or nccl" 2>&1) \
    > "$out/tests.txt" || fail "tests"
  tail -25 "$out/tests.txt"
fi

if want sanitize; then
  step "compute-sanitizer: memcheck, racecheck, synccheck"
  : > "$out/sanitizer.txt"
  for tool in memcheck racecheck synccheck; do
    echo "== $tool" >> "$out/sanitizer.txt"
    (cd /tmp && timeout 120 compute-sanitizer --tool $tool --error-exitcode 3 \
       python3 "$repo/bench/gpu_sanitize.py" >> "$out/sanitizer.txt" 2>&1) || fail "sanitizer $tool"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Error|error" "$out/sanitizer.txt" | tail -3
  done
fi
step "done (status $status)"
exit $status
