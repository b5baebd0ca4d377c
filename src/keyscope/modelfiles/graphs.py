"""What the graph-format readers (ONNX, TensorFlow SavedModel, TFLite) share.

None of these formats holds Python code, but loading or running them can still reach
outside the model: see :mod:`onnx_graphs`, :mod:`tf_graphs` and :mod:`tflite_graphs`.
Everything is parsed with bounds-checked readers (:mod:`protowire` for protobuf, a
small FlatBuffers/FlexBuffers reader in :mod:`tflite_graphs`) under a field budget;
malformed input ends in an "inconclusive" issue, never in an exception.
"""

from __future__ import annotations

import re

from keyscope.modelfiles import protowire as pw
from keyscope.modelfiles.structured import StructuredIssue

MAX_FIELDS = 5_000_000  # protobuf fields read per file
MAX_PER_KIND = 20  # issues of one kind listed one by one before they are summed up
MAX_NAME = 1024


def unsafe_path(path: bytes) -> str | None:
    """Why a relative file reference escapes its directory, or None when it does not."""
    if b"\0" in path:
        return "contains a NUL byte (loaders written in C may cut the name there)"
    text = path.decode("utf-8", "replace")
    if text.startswith(("\\\\", "//")):
        return "is a UNC (network) or absolute path"
    if text.startswith(("/", "\\")):
        return "is an absolute path"
    if re.match(r"[A-Za-z]:", text):
        return "is a Windows drive path"
    if ".." in re.split(r"[/\\]", text):
        return "climbs out of the model's directory with '..'"
    return None


def show(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text if len(text) <= limit else text[:limit] + "…")


def unreadable(fmt: str, exc: Exception) -> StructuredIssue:
    what = (
        "is too large to read to its end" if isinstance(exc, pw.BudgetExceeded) else "is malformed"
    )
    return StructuredIssue(
        (),
        "low",
        "inconclusive",
        f"the {fmt} file {what} ({exc}); what was read before that is reported, "
        "the rest is not proven safe",
    )


class Tally:
    """Issues in file order, with at most ``MAX_PER_KIND`` listed for each kind and
    the rest counted into one closing issue per kind."""

    def __init__(self) -> None:
        self.issues: list[StructuredIssue] = []
        self._seen: dict[str, int] = {}
        self._last: dict[str, StructuredIssue] = {}

    def add(self, kind: str, issue: StructuredIssue) -> None:
        n = self._seen.get(kind, 0) + 1
        self._seen[kind] = n
        if n <= MAX_PER_KIND:
            self.issues.append(issue)
        self._last[kind] = issue

    def close(self) -> list[StructuredIssue]:
        for kind, n in self._seen.items():
            if n > MAX_PER_KIND:
                last = self._last[kind]
                self.issues.append(
                    StructuredIssue(
                        (),
                        last.severity,
                        last.verdict,
                        f"{n - MAX_PER_KIND} more places like the above ({kind}) are not listed",
                    )
                )
        return self.issues
