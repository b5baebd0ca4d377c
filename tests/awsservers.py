"""Real AWS-compatible servers on loopback for the verify tests, each with a log of the
requests it answered.

``S3rver``: the npm package ``@20minutes/s3rver`` (pinned in ``tests/s3rver``), which
checks the SigV4 and SigV2 signatures of presigned URLs with the one key pair it is
given. ``MotoServer``: ``moto_server`` (moto's own, from the ``test`` extra) in
authentication mode: once ``lock()`` is called, every request needs a SigV4 signature
made with the secret of an access key created in moto's IAM.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence, Sized
from pathlib import Path
from typing import Any

from tests.azurite import _die_with_parent, _drain, end_child

S3RVER_DIR = Path(__file__).resolve().with_name("s3rver")
S3RVER_MODULE = S3RVER_DIR / "node_modules" / "@20minutes" / "s3rver"
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server could not be installed or started."""


def install_s3rver(timeout: float = 300.0) -> None:
    """``npm ci`` in tests/s3rver unless the package is there already."""
    if S3RVER_MODULE.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ServerError(f"npm not found on PATH (npm ci --prefix {S3RVER_DIR})")
    cmd = [npm, "ci", "--prefix", str(S3RVER_DIR), "--no-audit", "--no-fund"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not S3RVER_MODULE.exists():
        raise ServerError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-3000:]}")


class _Process:
    """A child process whose output lines are collected (and watched) as it runs."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers: list[threading.Thread] = []
        self.workdir = tempfile.mkdtemp(prefix="keyscope-server-")

    def spawn(self, cmd: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            list(cmd), cwd=self.workdir, env=env, text=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=_drain, args=(self.process.stdout, self.lines, None),
                             daemon=True),
            threading.Thread(target=_drain, args=(self.process.stderr, self.errors, None),
                             daemon=True)]
        for reader in self._readers:
            reader.start()

    def wait_for(self, pattern: str, where: list[str], timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(where):
                found = regex.search(line)
                if found:
                    return found
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"server did not start: {''.join(self.errors)[-3000:]}")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        end_child(process, self._readers)
        self._readers = []
        shutil.rmtree(self.workdir, ignore_errors=True)


class S3rver(_Process):
    """One @20minutes/s3rver with one key pair and the given buckets."""

    def __init__(self, key_id: str, secret: str, buckets: Sequence[str]) -> None:
        super().__init__()
        self.key_id, self.secret, self.buckets = key_id, secret, tuple(buckets)
        self.port = 0

    def start(self) -> S3rver:
        install_s3rver()
        node = shutil.which("node")
        if node is None:
            raise ServerError("node not found on PATH")
        env = {**os.environ, "S3_KEY_ID": self.key_id, "S3_SECRET": self.secret}
        data = os.path.join(self.workdir, "data")
        self.spawn([node, str(S3RVER_DIR / "serve.js"), data, *self.buckets], env)
        self.port = int(self.wait_for(r'"port":(\d+)', self.lines).group(1))
        return self

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        """Every request answered so far: method, url, range, status."""
        records = [json.loads(line) for line in list(self.lines)]
        return [r for r in records if "method" in r]


class MotoServer(_Process):
    """``moto_server`` on a free loopback port; authentication is on after ``lock()``."""

    def __init__(self) -> None:
        super().__init__()
        self.port = 0

    def start(self) -> MotoServer:
        with socket.socket() as probe:  # moto_server needs a port number given
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        binary = Path(sys.executable).with_name("moto_server")
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "1000000",
               "MOTO_CALL_RESET_API": "true", "AWS_DEFAULT_REGION": "us-east-1"}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        self.spawn([str(binary), "-H", HOST, "-p", str(self.port)], env)
        self.wait_for(r"Running on http://", self.errors)
        return self

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def authenticate_after(self, count: int) -> None:
        """From now on, every request after ``count`` more needs a valid signature
        (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``, reset through its own API)."""
        body = str(count).encode()
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", body,
                                         {"Content-Type": "text/plain"}, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as answer:
            assert answer.status == 200

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path and query, status) of every request in moto's access log."""
        log = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
        plain = (re.sub(r"\x1b\[[0-9;]*m", "", line) for line in list(self.errors))
        return [(m["method"], m["target"], int(m["status"]))
                for line in plain if (m := log.search(line))]


def settle(requests: Callable[[], Sized], before: int, expected: int) -> None:
    """Wait until a server's access log (``requests``, read by a thread from what the
    server writes after each answer) holds ``expected`` lines after its first ``before``
    (at most 10 s: a loaded machine took over 0.2 s), then 0.2 s more for any line that
    should not come."""
    deadline = time.monotonic() + 10
    while len(requests()) - before < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
