"""A real Dask cluster on loopback for the tests: ``dask scheduler`` and ``dask
worker`` processes (the ``distributed`` package's own command line), on private
ports, without dashboards, each worker one thread in its own process (no nanny: a
worker killed stays dead)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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

    def _ask(self, code: str, timeout: float = 90) -> str:
        """Run ``code`` with ``client`` connected to the scheduler, in a process of its
        own: importing Dask here would change how this test process pickles exceptions
        (tblib), which other tests check."""
        prelude = f"from distributed import Client\nclient = Client({self.address!r}, timeout=30)\n"
        done = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                              text=True, env=self.env, timeout=timeout, check=True)  # fmt: skip
        return done.stdout.strip()

    def wait_for(self, workers: int) -> None:
        self._ask(f"client.wait_for_workers({workers}, timeout=60)")

    def watch_busy(self, name: str) -> subprocess.Popen[str]:
        """A process that prints ``ready`` once connected, then ``busy`` as soon as
        worker ``name`` holds a task (start it before the work)."""
        code = (
            "from distributed import Client\n"
            f"client = Client({self.address!r}, timeout=30)\n"
            "import time\n"
            "workers = client.scheduler_info()['workers']\n"
            f"[address] = [a for a, w in workers.items() if w.get('name') == {name!r}]\n"
            "print('ready', flush=True)\n"
            "while not client.processing().get(address):\n"
            "    time.sleep(0.01)\n"
            "print('busy', flush=True)\n"
        )
        watcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                   text=True, env=self.env)  # fmt: skip
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready"
        return watcher

    def stop(self) -> None:
        for p in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def assert_each_once(jsonl: str, single: dict[str, Any]) -> None:
    """The findings a ``--format jsonl`` scan streamed: each location once (nothing
    reported twice after a worker died), and every one of the single-machine scan's
    ``--format json`` document (nothing lost)."""
    lines = [json.loads(line) for line in jsonl.splitlines()]
    streamed = [(r["fingerprint"], json.dumps(r["location"], sort_keys=True))
                for r in lines if r["type"] == "finding"]  # fmt: skip
    assert len(streamed) == len(set(streamed))
    expected = {(f["fingerprint"], json.dumps(loc, sort_keys=True))
                for f in single["findings"] for loc in f["locations"]}  # fmt: skip
    assert set(streamed) == expected
