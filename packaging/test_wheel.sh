#!/usr/bin/env bash
# rnnkern -- prove an installed artifact (a wheel, or the sdist) as a user gets it:
# a fresh virtual environment, no compiler on PATH (for the wheel), no source
# tree beside it (the tests are copied alone to an empty folder), then
#  - the test subset that covers every backend and both adapters (below), run
#    against the installed package;
#  - each CPU ISA forced through RNNKERN_ISA and compared with the reference;
#  - where no NVIDIA driver is, `cuda` reported unavailable with its reason.
#
#   bash packaging/test_wheel.sh dist/rnnkern-0.1.0-cp311-cp311-manylinux_2_28_x86_64.whl
#   bash packaging/test_wheel.sh dist/rnnkern-0.1.0.tar.gz      # the sdist (compiles)
#   bash packaging/test_wheel.sh --installed   # what this interpreter has installed
#                                              # (cibuildwheel's test step)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${RNNKERN_TEST_PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/rnnkern-wheel-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

if [ "$1" = "--installed" ]; then
  artifact="(installed)"
  v=$(dirname "$(command -v python)")
  run() { "$@"; }
else
artifact=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
"$py" -m venv "$work/venv"
v="$work/venv/bin"
"$v/python" -m pip install -q --upgrade pip
# the extras the subset uses: NumPy (the only run-time dependency), pytest, and
# PyTorch + Keras for the adapters (torch==2.13.0: the CPU build on this disk)
case "$artifact" in
  *.whl) # no compiler: PATH holds only the venv and a few plain tools
    mkdir -p "$work/bin"
    for tool in sh bash env uname cat ls rm mkdir cp mv sed grep awk tr head tail date; do
      p=$(command -v "$tool" || true)
      [ -n "$p" ] && ln -s "$p" "$work/bin/$tool"
    done
    PATH="$v:$work/bin" "$v/python" -m pip install -q "$artifact[test]"
    if PATH="$v:$work/bin" command -v gcc cc g++ c++ nvcc > /dev/null 2>&1; then
      echo "a compiler is on the test PATH"; exit 1
    fi
    run() { PATH="$v:$work/bin" "$@"; } ;;
  *) if [ "${RNNKERN_TEST_SUBSET:-}" = build ]; then
      "$v/python" -m pip install -q "$artifact" pytest   # the build subset needs no extras
    else
      "$v/python" -m pip install -q "$artifact[test]"
    fi
    run() { "$@"; } ;;
esac
echo "installed $(basename "$artifact") in $(( $(date +%s) - start )) s"
fi

mkdir -p "$work/t"
cp -r "$repo/tests" "$work/t/tests"
cd "$work/t"
run "$v/python" - <<'EOF'
import os, rnnkern, rnnkern.backends as bk
import rnnkern._core
assert "site-packages" in rnnkern.__file__, rnnkern.__file__
from importlib.metadata import version
assert version("rnnkern") == rnnkern.__version__, (version("rnnkern"), rnnkern.__version__)
print("rnnkern", rnnkern.__version__, "from", os.path.dirname(rnnkern.__file__))
print("backends:", bk.backends(), "cuda:", bk.cuda_status())
ok, why = bk.cuda_status()
import ctypes
try:
    ctypes.CDLL("libcuda.so.1")
    have_driver = True
except OSError:
    have_driver = False
built = bool(rnnkern._core.cuda_status()[0])
if not built:                       # an sdist built without nvcc: says so
    assert not ok and "built without CUDA" in why, (ok, why)
elif not have_driver:               # no driver: unavailable, and the reason says so
    assert not ok and "no NVIDIA driver" in why, (ok, why)
EOF
# every CPU ISA the machine has, forced, against the reference
for isa in scalar avx2 avx512; do
  RNNKERN_ISA=$isa run "$v/python" - "$isa" <<'EOF'
import sys
import numpy as np
import rnnkern.backends as bk
from rnnkern import ops
isa = sys.argv[1]
if isa not in bk.backends():
    print(f"{isa}: not on this CPU"); sys.exit(0)
assert bk.get_backend("auto").name == isa, (isa, bk.cpu_backends())   # RNNKERN_ISA caps "auto"
rng = np.random.default_rng(0)
for cell, G in (("simple_rnn", 1), ("lstm", 4), ("gru", 3)):
    x = rng.standard_normal((5, 7, 6)).astype(np.float32)
    W = rng.standard_normal((6, G * 9)).astype(np.float32) * 0.3
    U = rng.standard_normal((9, G * 9)).astype(np.float32) * 0.3
    b = rng.standard_normal((2, G * 9) if cell == "gru" else (G * 9,)).astype(np.float32)
    h0 = np.zeros((5, 9), np.float32)
    c0 = h0 if cell == "lstm" else None
    mine = ops.rnn_forward(cell, x, W, U, b, h0, c0, training=True, backend="auto")
    ref = ops.rnn_forward(cell, x, W, U, b, h0, c0, training=True, backend="reference")
    dy = rng.standard_normal(mine[0].shape).astype(np.float32)
    g1, g0 = ops.rnn_backward(mine[3], dy), ops.rnn_backward(ref[3], dy)
    for a, r in [(mine[0], ref[0])] + [(p, q) for p, q in zip(g1, g0) if q is not None]:
        err = float(np.max(np.abs(np.asarray(a) - np.asarray(r))))
        assert err < 1e-4, (isa, cell, err)
print(f"{isa}: forward and BPTT match the reference")
EOF
done
# the subset (README's test command runs everything on a source build; this proves
# the artifact): the kernels of every CPU ISA against the reference, the GPU
# backends on cuda-emu through the layers, both adapters against torch.nn and Keras
# (their in-place device paths included), hostile array inputs on every backend,
# the compiled module's stub. RNNKERN_TEST_ALL=1: the whole suite instead;
# RNNKERN_TEST_SUBSET=build: only the packaging and stub tests (a quick sdist check,
# after a wheel's subset has proved the same source: that the sdist compiles,
# installs and dispatches every ISA, above; CI checks the sdist's files instead,
# packaging/check_sdist.py).
if [ "${RNNKERN_TEST_ALL:-0}" = 1 ]; then
  run "$v/python" -m pytest -q -p no:cacheprovider tests
elif [ "${RNNKERN_TEST_SUBSET:-}" = build ]; then
  run "$v/python" -m pytest -q -p no:cacheprovider tests/test_core_stub.py \
    tests/test_packaging.py
else
  run "$v/python" -m pytest -q -p no:cacheprovider tests/test_kernels.py -k "not cuda"
  run "$v/python" -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    -k "layers_on_the_gpu or keeps_its_weights or bad_input or tune_from"
  run "$v/python" -m pytest -q -p no:cacheprovider tests/test_torch.py -k "parity or compile"
  # (not the failed-launch recoveries: child processes on cuda-emu, ~30 s, whose code
  # is the source tree's; README's test command runs them)
  run "$v/python" -m pytest -q -p no:cacheprovider tests/test_torch_device.py \
    tests/test_core_stub.py tests/test_bad_input.py tests/test_device_arrays.py \
    tests/test_packaging.py -k "not failed_launch"
  run "$v/python" -m pytest -q -p no:cacheprovider tests/test_keras_adapter.py \
    -k "device_path or (fit_parity and plain) or save"
fi
echo "artifact test passed in $(( $(date +%s) - start )) s"
