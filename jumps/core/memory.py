"""The memory this process may use (for the build estimates and the rates generator's tables),
and the garbage collector paused around kernel calls."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager


def available_memory() -> float:
    """Bytes of memory available to this process (MemAvailable, or physical memory)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (restored after, even on error).

    A chunk's kernel call boxes and unboxes namedtuples of dozens of arrays; the allocations
    trigger collections that scan everything Numba keeps alive: 5-30% of the amplitude path's
    time at d = 64 (measured). Nothing a chunk allocates forms a cycle; reference counting
    frees it as before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
