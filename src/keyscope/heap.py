"""Memory: how the C heap hands large buffers back, and (``settled``) a scan's result
kept out of the cycle collector's way while it is reported.

How the C heap hands large buffers back: an archive's members come and go in
buffers of many megabytes, and glibc's allocator, once such a buffer is freed, raises
its threshold for serving allocations from memory maps (up to 32 MiB), so later large
buffers come from the heap, whose freed pages it keeps: a worker that read one big
member stayed tens of MiB larger for the rest of the scan. A fixed threshold serves
every buffer from this size on by a map of its own, returned to the system when freed."""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BUFFER = 2 * 1024 * 1024  # from this size on, maps of their own (not 1 MiB chunks)


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold at ``LARGE_BUFFER`` for this process; False where
    the allocator is not glibc's (nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER))


@contextmanager
def settled() -> Iterator[None]:
    """Inside: the objects alive on entry (a scan's result: a million of them for
    10,000 explained credentials) are left out of the cycle collector's passes, which
    otherwise walk them all again every few hundred thousand new objects while a report
    is built (a third of the JSON document's time). They are collected as usual after."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()



@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """Inside (when ``pause``): no cyclic garbage collection, for a process that only
    gathers what it keeps; after, what it gathered is left out of the collector's passes
    (``gc.freeze``: otherwise its first pass would walk every object made inside, as
    young ones, and again as they age) until :func:`settled` ends, and collection runs
    as before."""
    running = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.freeze()
        if running:
            gc.enable()
