"""Model-file verdicts: would loading this file run code, and what?

Nothing is imported, unpickled or loaded: containers are read as bytes and every
pickle a loader would run goes through the emulator in ``pickle_vm``. Formats without
pickles (GGUF, Keras, safetensors, ONNX, TensorFlow SavedModel, TFLite) are checked
structurally, at the top level and wherever they sit inside a container.
"""

from __future__ import annotations

from dataclasses import replace

from keyscope.model import ModelFinding, Severity
from keyscope.modelfiles.containers import (
    DEFAULT_REACH,
    READER_FAILED,
    Anomaly,
    Embedded,
    Reach,
    Stream,
    pickles_in,
)
from keyscope.modelfiles.formats.pickles import may_start_pickle
from keyscope.modelfiles.formats.registry import (
    format_names,
    holds_pickles,
    sniff,
    structured_issues,
)
from keyscope.modelfiles.kinds import HEADERLESS, PICKLE_SUFFIXES
from keyscope.modelfiles.kinds import is_model_candidate as is_model_candidate  # re-exported
from keyscope.modelfiles.kinds import model_kind as model_kind  # re-exported
from keyscope.modelfiles.pickle_vm import (
    Event,
    PickleReport,
    TimeBudget,
    analyze_pickle,
)
from keyscope.modelfiles.policy import Tier
from keyscope.modelfiles.structured import StructuredIssue

# Every registered format as at import (derived from formats/registry.py, which
# model_kind and analyze_model consult themselves).
MODEL_FORMATS = format_names()
MAX_NESTED = 2
MAX_DETAILS = 200  # calls and imports listed in one finding
DANGEROUS = frozenset({"executes-code", "unknown-import"})
TORCHSCRIPT = "__torch__."  # classes torch.jit.load compiles from the archive's code
GIT_LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # the model is elsewhere
SAFE_ALTERNATIVE = (
    "Load it only if you trust its author; prefer safetensors, or "
    "torch.load(weights_only=True), which refuses these names."
)
_TIER_SEVERITY = {
    Tier.NEVER: Severity.CRITICAL,
    Tier.UNKNOWN: Severity.MEDIUM,
    # A whole nn.Module or a scikit-learn estimator: shown, but not a CI failure at
    # the default --fail-on low (it is how those libraries ship models).
    Tier.ESTIMATOR: Severity.INFO,
    Tier.SAFE: Severity.INFO,
}



def analyze_model(
    path: str,
    data: bytes,
    extra_safe: frozenset[str] = frozenset(),
    kind: str | None = None,
    reach: Reach = DEFAULT_REACH,
) -> list[ModelFinding]:
    """Every finding for one file; an empty list means no pickle in it would run code
    (or it holds no pickle at all). ``kind``: what ``model_kind(data, path)`` said
    (None: sniff ``data`` here); ``reach``: how far the walk of containers reads."""
    out: list[ModelFinding] = []
    differentials: list[int] = []  # indexes into out
    budget = TimeBudget()  # one emulation time budget for all the pickles in the file
    try:
        if kind is None:
            kind = sniff(data)
        if kind in (None, HEADERLESS):
            _headerless(path, data, extra_safe, out, differentials, budget)
        else:
            _judge_structured(path, kind, data, (), out)
            if holds_pickles(kind):
                _walk(path, data, (), extra_safe, out, 0, differentials, budget, kind, reach)
    except Exception as exc:  # hostile input: what was found stays, the rest is reported
        out.append(_unreadable(path, (), exc))
    return _weigh_differentials(out, differentials)


def _headerless(
    path: str,
    data: bytes,
    extra_safe: frozenset[str],
    out: list[ModelFinding],
    differentials: list[int],
    budget: TimeBudget,
) -> None:
    """No magic number: a pickle of protocol 0-2 (or 4-5 without PROTO) is whatever
    pickle.load reads to a valid STOP, followed by anything. Text or binary that does
    not parse is not a pickle, unless it calls a never-allowed name before breaking
    (the loader would have run that)."""
    if may_start_pickle(data):
        stream = Stream((), data, 0, weak=True)
        if _pickle_stream(path, stream, extra_safe, out, 0, differentials, budget):
            return
    if path.lower().endswith(PICKLE_SUFFIXES) and not data.startswith(GIT_LFS_POINTER):
        out.append(
            ModelFinding(
                path,
                (),
                Severity.INFO,
                "not-a-pickle",
                f"{path} is named like a pickle checkpoint but is no pickle, model "
                "container or compressed file keyscope knows: pickle.load fails on it "
                "before calling anything, so it was not analysed further.",
                (),
                None,
            )
        )


def _weigh_differentials(out: list[ModelFinding], differentials: list[int]) -> list[ModelFinding]:
    """A differential (CRC, names, flags) is high next to a dangerous pickle, where it
    shows an attempt to hide it from other scanners; in a file where every copy was
    read and nothing dangerous was found (a damaged benign checkpoint), it is low."""
    if any(f.verdict in DANGEROUS and f.severity >= Severity.MEDIUM for f in out):
        return out
    low = set(differentials)
    return [replace(f, severity=Severity.LOW) if i in low else f for i, f in enumerate(out)]


def _unreadable(path: str, where: tuple[str, ...], exc: Exception) -> ModelFinding:
    """A file, member or stream whose reading or judging failed: not proven safe."""
    detail = f"{READER_FAILED} ({type(exc).__name__}): not scanned, not proven safe"
    return ModelFinding(
        path,
        where,
        Severity.LOW,
        "inconclusive",
        f"{_name(path, where)}: {detail}.",
        (detail,),
        None,
    )


def _judge_structured(
    path: str, kind: str | None, data: bytes, where: tuple[str, ...], out: list[ModelFinding]
) -> None:
    try:
        issues = structured_issues(kind, data)
    except Exception as exc:  # any reader on hostile bytes: reported, never raised
        issues = [
            StructuredIssue(
                (), "low", "anomaly", f"{kind} file: {READER_FAILED} ({type(exc).__name__})"
            )
        ]
    for issue in issues:
        chain = (*where, *issue.where)
        out.append(
            ModelFinding(
                path,
                chain,
                Severity.parse(issue.severity),
                issue.verdict,
                f"{_name(path, chain)}: {issue.detail}.",
                (issue.detail,),
                None,
            )
        )


def _walk(
    path: str,
    data: bytes,
    where: tuple[str, ...],
    extra_safe: frozenset[str],
    out: list[ModelFinding],
    depth: int,
    differentials: list[int],
    budget: TimeBudget,
    kind: str | None = None,
    reach: Reach = DEFAULT_REACH,
) -> None:
    """Judge every pickle, anomaly and embedded model file in ``data`` (of ``kind``,
    when it is known already), as far as ``reach``."""
    # never raises: unreadable members are anomalies
    items = pickles_in(data, where, kind=kind, reach=reach)
    for item in items:
        if isinstance(item, Embedded):
            if item.where:  # the top level is judged by analyze_model itself
                _judge_structured(path, item.kind, item.data, item.where, out)
            continue
        if isinstance(item, Anomaly):
            sev = Severity.LOW if item.severity == "low" else Severity.HIGH
            if item.severity == "differential":
                differentials.append(len(out))
            out.append(
                ModelFinding(
                    path,
                    item.where,
                    sev,
                    "anomaly",
                    f"{_name(path, item.where)}: {item.detail}.",
                    (),
                    None,
                )
            )
            continue
        _pickle_stream(path, item, extra_safe, out, depth, differentials, budget)


def _pickle_stream(
    path: str,
    item: Stream,
    extra_safe: frozenset[str],
    out: list[ModelFinding],
    depth: int,
    differentials: list[int],
    budget: TimeBudget,
) -> bool:
    """Judge one pickle stream (and the pickles nested in its values); False when a
    stream without a magic number turns out to be no pickle."""
    try:
        report = analyze_pickle(
            item.data,
            item.offset,
            max_streams=item.max_streams,
            extra_safe=extra_safe,
            headerless=item.weak,
            budget=budget,
        )
    except Exception as exc:  # one stream that cannot be judged: the others still are
        out.append(_unreadable(path, item.where, exc))
        return True
    if item.weak and not report.parsed and not report.runs_code():
        return False  # text or binary that merely starts like a pickle
    for offset, detail in report.anomalies:
        # A FRAME that file readers and pickle.loads read differently: a differential.
        differentials.append(len(out))
        out.append(
            ModelFinding(
                path,
                item.where,
                Severity.HIGH,
                "anomaly",
                f"{_name(path, item.where)}: {detail}.",
                (detail,),
                offset,
            )
        )
    finding = _judge(path, item, report)
    if finding is not None:
        out.append(finding)
    if depth < MAX_NESTED:
        for offset, nested in report.nested:
            _walk(
                path,
                nested,
                (*item.where, f"<bytes at offset {offset}>"),
                extra_safe,
                out,
                depth + 1,
                differentials,
                budget,
            )
    return True


def _judge(path: str, stream: Stream, report: PickleReport) -> ModelFinding | None:
    worst = report.worst
    name = _name(path, stream.where)
    events = [e for e in report.events if e.tier > Tier.SAFE]
    if worst == Tier.SAFE:
        if report.complete:
            return None
        broken = next((e for e in report.events if e.kind in ("malformed", "budget")), None)
        detail = broken.detail if broken else "the stream could not be read to its end"
        what = (
            "could not be fully analysed"
            if broken is not None and broken.kind == "budget"
            else "could not be read to its end"
        )
        return ModelFinding(
            path,
            stream.where,
            Severity.LOW,
            "inconclusive",
            f"{name} is a pickle that {what} ({detail}); "
            "nothing dangerous was seen before that, but it is not proven safe.",
            (detail,),
            broken.offset if broken else None,
        )
    top = [e for e in events if e.tier == worst]
    first = top[0]
    details = tuple(dict.fromkeys(_describe(e) for e in events[:MAX_DETAILS]))
    if len(events) > MAX_DETAILS or report.dropped:
        details += (f"… {len(events) - MAX_DETAILS + report.dropped} more",)
    if worst == Tier.NEVER:
        calls = [e for e in top if e.kind in ("call", "build", "ext", "dynamic-import")]
        what = (calls or top)[0].detail
        sentence = (
            f"Loading {name} with pickle, torch.load(weights_only=False), joblib or "
            f"numpy(allow_pickle=True) runs code: it {what}. {SAFE_ALTERNATIVE}"
        )
        verdict = "executes-code"
    elif worst == Tier.UNKNOWN:
        names = sorted({e.name for e in top if e.name})
        verdict = "unknown-import"
        if names and all(n.startswith(TORCHSCRIPT) for n in names):
            # TorchScript: torch.jit.load compiles the archive's code/ into these
            # classes; no Python module is imported, but the code runs when called.
            return ModelFinding(
                path,
                stream.where,
                Severity.LOW,
                verdict,
                f"{name} is a TorchScript module ({', '.join(names[:2])}"
                f"{' and more' if len(names) > 2 else ''}): torch.jit.load compiles the "
                "TorchScript code in the archive instead of importing Python, and that code "
                "runs when the model is called. torch.load(weights_only=True) refuses it; "
                "load it only from authors you trust.",
                details,
                first.offset,
            )
        sentence = (
            f"Loading {name} imports {', '.join(names[:3])}"
            f"{' and more' if len(names) > 3 else ''}, which no allowlist knows: a "
            f"custom class, or code that runs on load. {SAFE_ALTERNATIVE}"
        )
    else:
        names = sorted({e.name for e in top if e.name})
        sentence = (
            f"Loading {name} instantiates library classes ({', '.join(names[:3])}): "
            "safe only as far as those libraries are trusted."
        )
        verdict = "library-class"
    return ModelFinding(
        path, stream.where, _TIER_SEVERITY[worst], verdict, sentence, details, first.offset
    )


def _describe(e: Event) -> str:
    return f"{e.detail} (byte {e.offset}, {e.tier.name.lower()})"


def _name(path: str, where: tuple[str, ...]) -> str:
    return path if not where else f"{path} ({' > '.join(where)})"
