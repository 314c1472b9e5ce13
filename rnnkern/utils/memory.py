"""Refusing, before allocating, what could not fit in this machine's memory: with
overcommit a huge allocation may succeed and the process be killed later, or
NumPy's own error names no layer. A leaf: imports nothing of rnnkern."""
from __future__ import annotations

import os


def physical_memory():
    """This machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes, what):
    """MemoryError naming ``what`` when ``nbytes`` exceed the machine's memory."""
    mem = physical_memory()
    if mem is not None and nbytes > mem:
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.3g} GiB, more than this "
                          f"machine's {mem / 2**30:.3g} GiB of memory")
