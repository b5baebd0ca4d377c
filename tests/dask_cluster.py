"""A real Dask cluster on loopback for the tests: ``dask scheduler`` and ``dask
worker`` processes (the ``distributed`` package's own command line), on private
ports, without dashboards, each worker one thread in its own process (no nanny: a
worker killed stays dead)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.notify_receivers import free_port

ROOT = Path(__file__).resolve().parents[1]


class DaskCluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._client: Any = None

    def start(self, workers: int) -> None:
        log = (self.folder / "scheduler.log").open("wb")
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-dashboard", "--no-show"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip
        for _ in range(workers):
            self.add_worker()
        self.wait_for(workers)

    def add_worker(self) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        log = (self.folder / f"worker{n}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--name", f"w{n}",
             "--nthreads", "1", "--no-nanny", "--no-dashboard",
             "--local-directory", str(self.folder / f"w{n}")],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    @property
    def client(self) -> Any:
        """A client of the test's own, to watch the scheduler."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout=30)
        return self._client

    def wait_for(self, workers: int) -> None:
        self.client.wait_for_workers(workers, timeout=60)

    def worker_address(self, name: str) -> str:
        for address, info in self.client.scheduler_info()["workers"].items():
            if info.get("name") == name:
                return str(address)
        raise LookupError(name)

    def wait_busy(self, name: str, timeout: float = 60) -> None:
        """Until worker ``name`` holds a task."""
        address = self.worker_address(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.processing().get(address):
                return
            time.sleep(0.01)
        raise TimeoutError(f"worker {name} got no task")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        for p in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
