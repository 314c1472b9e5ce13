"""The vectorised nonlinearities of every compiled ISA against float64.

The bounds below are the documented accuracy (README, "Accuracy"): measured
maxima on a dense grid, rounded up. NaN propagates, infinities saturate.
"""
import os
import platform

import numpy as np
import pytest

from rnnkern import backends as bk

COMPILED = bk.cpu_backends()   # the CPU ISAs' vectorised nonlinearities

# activation -> (max abs error, max rel error where |y| > 1e-30), over the grid
# (hard_sigmoid: absolute only, since x/6 + 1/2 itself cancels in float32 near x = -3)
BOUNDS = {
    "tanh": (1.2e-7, 2.5e-7),
    "sigmoid": (1.2e-7, 2e-7),
    "hard_sigmoid": (6e-8, None),
    "relu": (0.0, 0.0),
    "linear": (0.0, 0.0),
}
REF = {
    "tanh": np.tanh,
    "sigmoid": lambda x: np.exp(-np.logaddexp(0.0, -x)),  # 1 / (1 + e^-x) without overflow
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
}


def grid():
    dense = np.linspace(-12, 12, 400_001)
    tiny = np.concatenate([np.geomspace(1e-30, 1e-2, 2000), -np.geomspace(1e-30, 1e-2, 2000)])
    wide = np.concatenate([np.geomspace(12, 3e38, 500), -np.geomspace(12, 3e38, 500)])
    return np.concatenate([dense, tiny, wide, [0.0, -0.0]]).astype(np.float32)


def test_compiled_core_is_built():
    """The suite must not pass by skipping every kernel test: on x86-64 Linux
    the extension with its CPU ISAs is part of the install."""
    if os.environ.get("RNNKERN_TEST_ALLOW_PURE"):
        pytest.skip("RNNKERN_TEST_ALLOW_PURE is set")
    assert bk.core_available(), "rnnkern._core is not importable: the extension was not built"
    assert "scalar" in COMPILED
    if platform.machine() in ("x86_64", "AMD64") and not os.environ.get("RNNKERN_ISA"):
        from rnnkern import _core
        assert set(_core.cpu_isas()) >= {"scalar"}


@pytest.mark.parametrize("isa", COMPILED)
@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_activation_accuracy(isa, name):
    from rnnkern import _core
    x = grid()
    y = _core.testing.activate(isa, name, x).astype(np.float64)
    ref = REF[name](x.astype(np.float64))
    err = np.abs(y - ref)
    abs_bound, rel_bound = BOUNDS[name]
    assert err.max() <= abs_bound, f"{isa} {name}: max abs error {err.max():.3g} at x={x[err.argmax()]}"
    if rel_bound is not None:
        big = np.abs(ref) > np.finfo(np.float32).tiny  # normal float32 results
        rel = err[big] / np.abs(ref[big])
        assert rel.max() <= rel_bound, f"{isa} {name}: max rel error {rel.max():.3g}"


@pytest.mark.parametrize("isa", COMPILED)
@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_activation_special_values(isa, name):
    from rnnkern import _core
    x = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)
    y = _core.testing.activate(isa, name, x)
    assert np.isnan(y[0]), f"{isa} {name}: NaN was not propagated"
    ref = REF[name](x[1:].astype(np.float64))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(y[1:], ref, atol=1e-30, rtol=0, err_msg=f"{isa} {name}")


@pytest.mark.parametrize("isa", COMPILED)
def test_activation_tails(isa):
    """Every length 1..40 (vector tails of 4, 8 and 16 lanes) gives the same values."""
    from rnnkern import _core
    x = np.linspace(-5, 5, 40).astype(np.float32)
    full = _core.testing.activate(isa, "tanh", x)
    for n in range(1, 41):
        np.testing.assert_array_equal(_core.testing.activate(isa, "tanh", x[:n]), full[:n])
