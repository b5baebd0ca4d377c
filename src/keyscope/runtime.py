"""Process-level concerns of the command line: where a report goes, what a signal
does, and how every failure becomes one line on stderr with a documented exit code.

Exit codes: 0 success; 1 findings at or above --fail-on; 2 usage, input or
configuration error; 130 interrupted (SIGINT); 143 terminated (SIGTERM); 141 the
reader of standard output went away (a closed pipe).
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TextIO

from keyscope.errors import KeyscopeError
from keyscope.redact import mask, terminal_safe

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_PIPE = 128 + 13  # 141, as if killed by SIGPIPE
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

EXIT_CODES_HELP = """\
exit status:
  0    success (scan: nothing at or above --fail-on)
  1    findings at or above --fail-on
  2    usage, input or configuration error (one line on stderr)
  130  interrupted (SIGINT, Ctrl-C): the workers are stopped, no -o file is written
  141  standard output was closed early (e.g. piped into head)
  143  terminated (SIGTERM): as for 130"""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a scan unwinds as on Ctrl-C."""


@contextmanager
def signals_unwind() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` (SIGINT already raises
    KeyboardInterrupt), so workers are stopped and partial output removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ReportFile:
    """A report's destination: standard output, or FILE written through a temporary
    file beside it that replaces FILE only when the report is complete, so an error
    or a signal never leaves a truncated or half-written FILE behind. A FILE that is
    a device or a pipe (``/dev/stdout``, a FIFO) is written as the report goes."""

    def __init__(self, path: Path | None, inputs: Iterable[str | Path] = (), flag: str = "-o"):
        self.path = path
        self._tmp: str | None = None
        self._own = path is not None  # close the stream at the end (not stdout)
        if path is None:
            self.stream: TextIO = sys.stdout
            return
        for given in inputs:
            if _same_file(path, Path(given)):
                raise KeyscopeError(f"{flag} {path}: would overwrite an input of this command")
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise KeyscopeError(f"{flag} {path}: cannot write ({exc.strerror})") from None
        try:
            if mode is not None and stat.S_ISDIR(mode):
                raise KeyscopeError(f"{flag} {path}: is a directory")
            if mode is not None and not stat.S_ISREG(mode):
                self.stream = _text(os.open(path, os.O_WRONLY | os.O_TRUNC))
                return
            # Through a symbolic link, the file it names is replaced, not the link.
            self.path = Path(os.path.realpath(path))
            import tempfile  # only when a report goes to a file

            fd, self._tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent
            )
        except OSError as exc:
            raise KeyscopeError(f"{flag} {path}: cannot write ({exc.strerror})") from None
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        self.stream = _text(fd)

    def commit(self) -> None:
        """The report is complete: move it into place."""
        if not self._own:
            self.stream.flush()
            return
        self.stream.close()
        if self._tmp is None or self.path is None:
            return
        try:
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.discard()
            raise KeyscopeError(f"-o {self.path}: cannot write ({exc.strerror})") from None
        self._tmp = None

    def discard(self) -> None:
        """The report is incomplete (or already committed): remove the temporary file."""
        if self._own:
            self.stream.close()
        if self._tmp is None:
            return
        with suppress(OSError):
            os.unlink(self._tmp)
        self._tmp = None


def _text(fd: int) -> TextIO:
    # Paths that are not UTF-8 (surrogate escapes) are written as \udcXX rather than
    # failing the whole report.
    return open(fd, "w", encoding="utf-8", errors="backslashreplace")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def run_guarded(command: Callable[[], int]) -> int:
    """Run a command; map every failure to its exit code with at most one line on
    stderr. ``KEYSCOPE_DEBUG=1`` also prints the traceback of an unexpected error."""
    try:
        with signals_unwind():
            return command()
    except KeyscopeError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except Terminated:
        _say("keyscope: terminated")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        _say("keyscope: interrupted")
        return EXIT_INTERRUPTED
    except RecursionError:
        return _fail("input nested too deeply to read")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return _fail(f"{where}{exc.strerror or type(exc).__name__}")
    except Exception as exc:
        # The message may quote scanned content: name only the type and the place.
        import traceback

        if os.environ.get("KEYSCOPE_DEBUG"):
            traceback.print_exc()
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        place = f"{Path(frame.filename).name}:{frame.lineno}"
        return _fail(
            f"internal error ({type(exc).__name__} at {place}); "
            "please report it (KEYSCOPE_DEBUG=1 shows the traceback)"
        )


def exit_process(code: int) -> None:
    """End the process with ``code``. After SIGINT/SIGTERM the interpreter's own exit is
    skipped: it joins the worker pool's manager thread, which can wait forever on a
    result a terminated worker was half-way through sending."""
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(code)
    raise SystemExit(code)


def _fail(message: str) -> int:
    _say(f"keyscope: error: {terminal_safe(mask(message))}")
    return EXIT_ERROR


def _say(line: str) -> None:
    try:
        sys.stderr.write(f"{line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush
    does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
