"""The output-format contract, and the view of a scan every format renders.

A scan tells its ``Format``, in this order: ``finding`` for each credential at one
location as soon as it is found (only if the format ``streams``; never one the
baseline accepts), ``verified`` once after ``--verify`` (only with ``--verify``),
then ``finish`` with the whole result. A document format writes everything in
``finish``; a streaming format writes as it is told. When a scan writing to standard
output is cut short (SIGINT/SIGTERM), ``interrupted`` is called instead of ``finish``.
``keyscope explain`` calls ``explain`` on the formats that set ``explains``.
The formats themselves are listed in ``report/registry.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, TextIO

from keyscope.redact import for_terminal, redacted

if TYPE_CHECKING:
    from keyscope.model import (
        Explanation,
        Finding,
        ImageProvenance,
        Owner,
        RawFinding,
        ScanResult,
    )


@dataclass(frozen=True)
class FormatOptions:
    """Everything a format may be told besides the data, the same for every format."""

    color: bool = False  # ANSI colours (a terminal, no -o)
    verbose: bool = False  # every skipped file, why candidates were set aside
    every: bool = False  # every location of a secret (--all-locations)
    roots: tuple[str, ...] = ()  # the scanned paths as given (SARIF URIs are relative)
    # (paths shown under, https address of the repository, folder inside it): the
    # scanned repositories' web addresses, for links (html; sources/weburl.py)
    web: tuple[tuple[str, str, str], ...] = ()
    show_secrets: bool = False  # --show-secrets: the html page says that it shows them
    jobs: int = 1  # processes a format may use to make a large report (--jobs)


class Format(ABC):
    """An output format writing to one stream. Subclasses override what they use."""

    streams: ClassVar[bool] = False  # wants ``finding`` calls while the scan runs
    explains: ClassVar[bool] = False  # offered by ``keyscope explain``

    def __init__(self, out: TextIO, options: FormatOptions) -> None:
        self.out = out
        self.options = options

    def finding(self, raw: RawFinding) -> None:  # noqa: B027 (optional hook)
        """A credential at one location, as found (called only when ``streams``)."""

    def verified(self, findings: Sequence[Finding]) -> None:  # noqa: B027
        """The merged findings after ``--verify``, each with its verification."""

    @abstractmethod
    def finish(self, result: ScanResult) -> None:
        """The scan is complete: write the document, or what closes the stream."""

    def interrupted(self, reason: str) -> None:  # noqa: B027
        """The scan was cut short; what was written stays, ``finish`` never comes."""

    def explain(self, explanations: list[Explanation], now: datetime) -> None:
        """``keyscope explain``: the explained credentials (formats with ``explains``)."""
        raise NotImplementedError(f"{type(self).__name__} does not render explain")


# the layers the pipeline decodes (pipeline.py), last in an origin; the steps before
# them are archive members (unpack/)
DECODED_LAYERS = frozenset({"base64", "utf-16"})


def split_origin(origin: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An origin as (archive members, decoded layers): ``("app.zip", "a.txt", "base64")``
    is ``(("app.zip", "a.txt"), ("base64",))``."""
    members = len(origin)
    while members and origin[members - 1] in DECODED_LAYERS:
        members -= 1
    return origin[:members], origin[members:]


def image_story(p: ImageProvenance) -> str:
    """A container image file's story: ``added in layer 1 (`COPY …`), deleted in layer 2
    (`RUN rm …`): still in the image``."""

    def step(layer: int, created_by: str | None) -> str:
        if not created_by:
            return f"layer {layer}"
        cut = created_by if len(created_by) <= 80 else created_by[:79] + "…"
        return f"layer {layer} (`{cut}`)"

    added = f"added in {step(p.layer, p.created_by)}"
    if p.removed_in is None:
        return f"{added}, in the final file system"
    how = "overwritten" if p.overwritten else "deleted"
    return f"{added}, {how} in {step(p.removed_in, p.removed_by)}: still in the image"


def owner_text(owner: Owner) -> str:
    """``Alice <alice@example.com>``, ``@acme/web``: an owner as one line shows it."""
    if owner.email and owner.email != owner.name:
        return f"{owner.name} <{owner.email}>"
    return owner.name


def member_place(path: str, origin: tuple[str, ...]) -> str:
    """The file, or the member inside it, that ``origin`` names: ``outer.zip!/a.txt``
    (decoded layers left out)."""
    return "!/".join((path, *split_origin(origin)[0]))


def shown(result: ScanResult, *, terminal: bool = False) -> ScanResult:
    """``result`` as a report may show it: every string masked (the secret itself only
    under --show-secrets) and, for a terminal, every control character escaped."""
    view = for_terminal if terminal else redacted
    return replace(
        result,
        findings=view(result.findings),
        model_findings=view(result.model_findings),
        skipped=view(result.skipped),
        history_cut=view(result.history_cut),
    )
