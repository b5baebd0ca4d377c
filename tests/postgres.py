"""A real PostgreSQL server for the inventory tests: the Debian package's ``initdb``
and ``pg_ctl``, a private data directory under /tmp and a free port on 127.0.0.1
(no Unix socket), fsync off. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user the package creates (``nobody`` without it),
through ``setpriv``. Each test gets a database of its own (``database()``)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "keyscope"  # the cluster's superuser (trust authentication, loopback only)


class PostgresError(RuntimeError):
    """The server could not be found, initialised or started."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    if which:
        return Path(which).resolve().parent
    raise PostgresError(
        "PostgreSQL is not installed (the inventory tests need the Debian package "
        "'postgresql', listed in scripts/os-packages.txt)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """One throwaway cluster."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="keyscope-pg-"))
        self.data = self.base / "data"
        self._as: list[str] = []
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise PostgresError("running as root without setpriv (util-linux)")
            self._as = [setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                        "--clear-groups", "--reset-env"]
            os.chown(self.base, account.pw_uid, account.pw_gid)
        os.chmod(self.base, 0o700)

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120,
                              cwd=self.base)
        if done.returncode:
            raise PostgresError(f"{argv[0]}: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER,
                  "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   "-c unix_socket_directories='' -c fsync=off -c max_connections=60")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.base / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        except PostgresError:
            pass
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)
