"""The Dask side of ``--cluster``, the only module that imports Dask (``distributed``,
the optional extra ``keyscope[cluster]``).

``tcp://HOST:PORT`` connects to a running scheduler (``dask scheduler``, its workers
``dask worker tcp://HOST:PORT --nthreads 1``); ``local:N`` starts a ``LocalCluster``
of N one-thread worker processes on this machine. Each target is one task
(``task.scan_target``), and a large repository's pieces are tasks added as its
first task answers with them; a worker that dies mid-task has its task run again on another
worker by the scheduler (up to its ``allowed-failures``), and since a future yields
its result once, nothing comes back twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from keyscope.errors import KeyscopeError
from keyscope.fleet.task import TargetResult, scan_target

if TYPE_CHECKING:
    from keyscope.fleet.task import Task
    from keyscope.scan import ScanOptions

CONNECT_SECONDS = 30


class Cluster:
    """A connection to a scheduler (and the local cluster started for ``local:N``)."""

    def __init__(self, address: str) -> None:
        try:
            dask = _distributed()
        except ImportError:
            raise KeyscopeError(
                "--cluster needs Dask: pip install 'keyscope[cluster]'"
            ) from None
        self.local: Any = None
        if address.startswith("local:"):
            workers = _workers(address)
            self.local = dask.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address="127.0.0.1:0",  # a free port on loopback
                silence_logs=logging.ERROR,
            )  # fmt: skip
            address = self.local.scheduler_address
        elif not address.startswith(("tcp://", "tls://")):
            raise KeyscopeError(f"--cluster {address}: expected tcp://HOST:PORT or local:N")
        try:
            self.client: Any = dask.Client(address, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise KeyscopeError(f"--cluster {address}: cannot connect ({exc})") from None
        self.address = address

    def dashboard(self) -> str | None:
        """The scheduler's dashboard address, when it serves one."""
        info = self.client.scheduler_info()
        if "dashboard" not in info.get("services", {}):
            return None
        link = str(self.client.dashboard_link)
        if self.local is not None and not _has_dashboard():
            link += " (its pages need bokeh: pip install bokeh)"
        return link

    def running(self) -> int:
        """Tasks the workers hold now."""
        with suppress(Exception):  # a progress figure: never fails the scan
            processing: dict[str, Any] = self.client.processing()
            return sum(len(keys) for keys in processing.values())
        return 0

    def run(
        self,
        targets: Sequence[Task],
        options: ScanOptions,
        on_result: Callable[[int, TargetResult], Sequence[Task]],
        split_bytes: int = 0,
    ) -> None:
        """Scan every target as a task; ``on_result(index, result)`` as each ends, in
        the order they end. A target whose task ends with an error (its workers died
        too often) comes back ``failed``. ``on_result`` may return more tasks (the
        pieces of a large repository): they are submitted at once and numbered on
        from the last index given."""
        tasks = list(targets)
        futures: dict[Any, int] = {}

        def submit(i: int) -> Any:
            future = self.client.submit(scan_target, tasks[i], options, split_bytes, pure=False,
                                        key=f"keyscope-target-{i}-{id(self):x}")  # fmt: skip
            futures[future] = i
            return future

        queue = _distributed().as_completed([submit(i) for i in range(len(tasks))])
        try:
            for future in queue:
                i = futures.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # KilledWorker: it killed every worker it met
                    why = f"its task failed ({type(exc).__name__})"
                    task = tasks[i]
                    name = task if isinstance(task, str) else task.name
                    result = TargetResult(name, failed=why)
                more = on_result(i, result)
                future.release()
                for task in more:
                    tasks.append(task)
                    queue.add(submit(len(tasks) - 1))
        except BaseException:
            self.client.cancel(list(futures))
            raise

    def close(self) -> None:
        with suppress(Exception):
            self.client.close()
        if self.local is not None:
            with suppress(Exception):
                self.local.close()


def _distributed() -> Any:
    """The ``distributed`` module (untyped)."""
    import importlib

    return importlib.import_module("distributed")


def _workers(address: str) -> int:
    text = address.split(":", 1)[1]
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise KeyscopeError(f"--cluster {address}: expected local:N, N from 1 to 1024")
    return int(text)


def _has_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None
