"""Worker processes: how they end with the process that started them, and
:func:`forked_map`, which spreads a pure function over a list already in memory across
processes forked from this one (a large report's findings: nothing is sent to them,
only their results come back)."""

from __future__ import annotations

import gc
import multiprocessing
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

_T = TypeVar("_T")
_R = TypeVar("_R")

# What a forked process maps: set in the parent just before the fork, inherited.
_ITEMS: Sequence[Any] = ()
_FN: Callable[[Any], Any] | None = None


def die_with_parent() -> None:
    """Linux: the kernel sends this process SIGTERM when the process that started it
    ends, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def forked_map(
    items: Sequence[_T], fn: Callable[[_T], _R], jobs: int, chunk: int = 500
) -> Iterator[_R]:
    """``fn(item)`` for each of ``items``, in order: with ``jobs`` > 1, at least two
    chunks of ``chunk`` items, and on Linux (where forking a running process is safe),
    the chunks are mapped by ``jobs`` processes forked from this one, a few chunks ahead
    of the caller; else here. ``fn`` must not depend on state it changes (each process
    has its own copy)."""
    if jobs <= 1 or len(items) < 2 * chunk or not sys.platform.startswith("linux"):
        yield from map(fn, items)
        return
    from concurrent.futures import ProcessPoolExecutor  # a small report starts no pool

    global _ITEMS, _FN
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("fork"), initializer=_start
    )
    starts = iter(range(0, len(items), chunk))
    ahead: deque[Future[list[_R]]] = deque()

    def submit() -> None:
        start = next(starts, None)
        if start is not None:
            ahead.append(pool.submit(_map_chunk, start, min(start + chunk, len(items))))

    for stream in (sys.stdout, sys.stderr):  # a child that flushes them at its end
        with suppress(AttributeError, OSError, ValueError):  # prints nothing twice
            stream.flush()
    try:
        # with "fork" the pool forks all its processes at the first submit: they inherit
        # these two, which the parent then lets go
        _ITEMS, _FN = items, fn
        submit()
        _ITEMS, _FN = (), None
        for _ in range(2 * jobs - 1):
            submit()
        while ahead:
            done = ahead.popleft().result()
            submit()
            yield from done
    finally:
        _ITEMS, _FN = (), None
        pool.shutdown(wait=True, cancel_futures=True)


def _start() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()
    gc.freeze()  # what it inherited stays: the collector need not walk it


def _map_chunk(start: int, end: int) -> list[Any]:
    assert _FN is not None
    return [_FN(item) for item in _ITEMS[start:end]]
