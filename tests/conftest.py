"""Shared fixtures: a seeded generator and the backends usable on this machine."""
import os
import random
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import tolerances`

import rnnkern  # noqa: E402
from rnnkern.layers.base import set_global_seed  # noqa: E402

# "reference" always; the compiled ISAs (and cuda-emu / cuda) when built and usable here.
BACKENDS = rnnkern.backends()
# The compiled CPU ISAs: what the layer tests' packing and threading checks are about
# (the GPU backends pack nothing; test_kernels.py and test_cuda.py test them).
COMPILED_BACKENDS = [b for b in BACKENDS if b not in ("reference", "cuda-emu", "cuda")]


def compiled_backend_params():
    """Parameters for tests that compare a compiled backend with the reference:
    one skipped placeholder when nothing is compiled, so the skip is visible."""
    if COMPILED_BACKENDS:
        return COMPILED_BACKENDS
    return [pytest.param(None, marks=pytest.mark.skip(reason="no compiled backend built"),
                         id="no-compiled-backend")]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    """Every backend usable on this machine."""
    return request.param


@pytest.fixture(params=compiled_backend_params())
def compiled_backend(request):
    """Every compiled backend (skipped when none is built)."""
    return request.param


@pytest.fixture(autouse=True)
def _stable_global_seeds(request):
    """Every test starts from global generators seeded by its own id, so a test
    draws the same values in every process, alone or in the whole suite, whatever
    ran before it: Python's ``random``, NumPy's global generator, torch's (when a
    test module imported torch) and rnnkern's (layers without a seed of their own).
    The seed is a CRC of the test id, never ``hash()``, whose value for a str
    changes with each process (PYTHONHASHSEED)."""
    seed = zlib.crc32(request.node.nodeid.encode())
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    set_global_seed(seed)
    yield
    set_global_seed(None)


# hypothesis (tests/test_fuzz.py): "ci", the default, tries the same examples in
# every run (derandomized: drawn from a digest of each test, never hash(); no
# example database, so no earlier run changes what is tried); RNNKERN_FUZZ=long
# searches from fresh randomness with 25 times the examples (test_fuzz.budget).
try:
    from hypothesis import settings as _hyp_settings
except ImportError:     # the fuzz tests skip themselves
    pass
else:
    _hyp_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    _hyp_settings.register_profile("long", derandomize=False, database=None, print_blob=True)
    _hyp_settings.load_profile("long" if os.environ.get("RNNKERN_FUZZ") == "long" else "ci")
