"""Shared bits of the examples: the quick mode the tests use, and plotting
(matplotlib is optional: without it the examples print their results and skip
the picture)."""
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("RNNKERN_EXAMPLES_QUICK") == "1"
HERE = os.path.dirname(os.path.abspath(__file__))


def out_path(name):
    """Where an example writes its files: beside it, or RNNKERN_EXAMPLES_OUT."""
    d = os.environ.get("RNNKERN_EXAMPLES_OUT", HERE)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("(matplotlib is not installed: no plot; pip install matplotlib)")
        return None
