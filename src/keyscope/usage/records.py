"""One storage log request as keyscope reads it (:class:`LogRecord`), from each format:
Azure Monitor resource-log JSON, Log Analytics rows (CSV or JSON export) and classic
``$logs`` lines (v1.0, v2.0). A line that is not a request raises :class:`Malformed`."""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CLASSIC_FIELDS = {"1.0": 30, "2.0": 38}
MAX_FIELD = 8192  # characters kept of any one field
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_ENTITY = re.compile(r"&(?:[A-Za-z]{2,8}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# Log Analytics portal CSV: "12/7/2026, 7:05:03.123 PM"
_US = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*([AP]M)?$"
)


class Malformed(ValueError):
    """The text is not a storage log request in the format it claims."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """The fields of one request that usage reports."""

    form: str  # "resource" | "analytics" | "classic"
    time: datetime
    operation: str
    status: int | None
    status_text: str
    auth_type: str
    token_hash: str  # AuthenticationHash / identity.tokenHash ("" in classic logs)
    caller: str  # the address without its port
    user_agent: str
    uri: str
    object_key: str
    account: str
    category: str  # StorageRead|StorageWrite|StorageDelete ("" in classic logs)
    bytes_in: int  # request body: written by the caller
    bytes_out: int  # response body: read by the caller


def parse_time(text: str) -> datetime:
    """ISO-8601 (any number of fraction digits) or the portal's US form, as UTC."""
    t = text.strip()
    m = _ISO.match(t)
    if m:
        y, mo, d, hh, mm, ss, frac, tz = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss or 0),
                          int((frac or "0")[:6].ljust(6, "0")), tzinfo=UTC)
        except ValueError:
            raise Malformed(f"bad time {t[:40]!r}") from None
        if tz and tz not in ("Z", "+00:00", "+0000", "-00:00"):
            raise Malformed(f"time {t[:40]!r} is not UTC")
        return dt
    m = _US.match(t)
    if m:
        mo, d, y, hh, mm, ss, frac, ampm = m.groups()
        hour = int(hh)
        if ampm:
            hour = hour % 12 + (12 if ampm == "PM" else 0)
        try:
            return datetime(int(y), int(mo), int(d), hour, int(mm), int(ss or 0),
                            int((frac or "0")[:6].ljust(6, "0")), tzinfo=UTC)
        except ValueError:
            raise Malformed(f"bad time {t[:40]!r}") from None
    raise Malformed(f"bad time {t[:40]!r}")


def caller_address(text: str) -> str:
    """``ip:port`` → ip (``[v6]:port`` → v6; a bare address stays)."""
    t = text.strip()
    if t.startswith("["):
        return t[1 : t.find("]")] if "]" in t else t
    if t.count(":") == 1:
        return t.partition(":")[0]
    return t


def _int(value: object) -> int:
    if value is None or value == "":
        return 0
    try:
        n = int(str(value).strip() or 0)
    except ValueError:
        raise Malformed(f"not a number: {str(value)[:20]!r}") from None
    return max(n, 0)


def _status(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise Malformed(f"bad status code {str(value)[:20]!r}") from None


def _text(value: object) -> str:
    return "" if value is None else str(value)[:MAX_FIELD]


def from_resource(obj: Mapping[str, Any]) -> LogRecord:
    """A record of an ``insights-logs-storage*`` ``PT1H.json`` blob."""
    if not isinstance(obj, Mapping):
        raise Malformed("not a JSON object")
    props = obj.get("properties") or {}
    identity = obj.get("identity") or {}
    if not isinstance(props, Mapping) or not isinstance(identity, Mapping):
        raise Malformed("properties/identity are not objects")
    op = obj.get("operationName")
    when = obj.get("time")
    if not isinstance(op, str) or not op or not isinstance(when, str):
        raise Malformed("no operationName or time")
    return LogRecord(
        form="resource",
        time=parse_time(when),
        operation=op[:200],
        status=_status(obj.get("statusCode")),
        status_text=_text(obj.get("statusText")),
        auth_type=_text(identity.get("type")),
        token_hash=_text(identity.get("tokenHash")),
        caller=caller_address(_text(obj.get("callerIpAddress"))),
        user_agent=_text(props.get("userAgentHeader")),
        uri=_text(obj.get("uri")),
        object_key=_text(props.get("objectKey")),
        account=_text(props.get("accountName")),
        category=_text(obj.get("category")),
        bytes_in=_int(props.get("requestBodySize")),
        bytes_out=_int(props.get("responseBodySize")),
    )


def analytics_column(name: str) -> str:
    """A Log Analytics export's column name without the portal's ``[UTC]`` suffix."""
    return name.strip().strip('"').split(" [", 1)[0]


def from_analytics(row: Mapping[str, Any]) -> LogRecord:
    """A row of ``StorageBlobLogs`` (or File/Queue/Table) as Log Analytics exports it."""
    op = row.get("OperationName")
    when = row.get("TimeGenerated")
    if not isinstance(op, str) or not op or not isinstance(when, str):
        raise Malformed("no OperationName or TimeGenerated")
    return LogRecord(
        form="analytics",
        time=parse_time(when),
        operation=op[:200],
        status=_status(row.get("StatusCode")),
        status_text=_text(row.get("StatusText")),
        auth_type=_text(row.get("AuthenticationType")),
        token_hash=_text(row.get("AuthenticationHash")),
        caller=caller_address(_text(row.get("CallerIpAddress"))),
        user_agent=_text(row.get("UserAgentHeader")),
        uri=_text(row.get("Uri")),
        object_key=_text(row.get("ObjectKey")),
        account=_text(row.get("AccountName")),
        category=_text(row.get("Category")),
        bytes_in=_int(row.get("RequestBodySize")),
        bytes_out=_int(row.get("ResponseBodySize")),
    )


def from_csv_line(line: str, columns: Sequence[str]) -> LogRecord:
    """One data line of a Log Analytics CSV export whose header gave ``columns``."""
    try:
        values = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        raise Malformed("not a CSV line") from None
    if len(values) != len(columns):
        raise Malformed(f"{len(values)} fields, the header has {len(columns)}")
    return from_analytics(dict(zip(columns, values, strict=True)))


def split_classic(line: str) -> list[str]:
    """Split a ``$logs`` line on ``;`` outside quotes and outside HTML entities (the
    request URL is logged unquoted with ``&amp;``); quoted fields lose their quotes;
    every field is HTML-unescaped (``&quot;`` ``&amp;``)."""
    if "\0" in line:
        raise Malformed("NUL in a $logs line")
    if "&" in line:
        line = _ENTITY.sub(lambda m: m.group(0)[:-1] + "\0", line)
    try:
        fields = next(csv.reader([line], delimiter=";", quotechar='"', strict=True))
    except (csv.Error, StopIteration):
        raise Malformed("unbalanced quotes") from None
    return [html.unescape(f.replace("\0", ";")) if "&" in f else f for f in fields]


def from_classic(line: str) -> LogRecord:
    """A Storage Analytics (``$logs``) v1.0 or v2.0 line."""
    fields = split_classic(line.rstrip("\r\n"))
    want = CLASSIC_FIELDS.get(fields[0] if fields else "")
    if want is None or len(fields) != want:
        raise Malformed(f"{len(fields)} fields; $logs {fields[0][:8] if fields else ''!r} "
                        "lines have 30 (1.0) or 38 (2.0)")
    return LogRecord(
        form="classic",
        time=parse_time(fields[1]),
        operation=fields[2][:200],
        status=_status(fields[4]),
        status_text=fields[3][:200],
        auth_type=fields[7][:40],
        token_hash="",
        caller=caller_address(fields[15]),
        user_agent=fields[27][:MAX_FIELD],
        uri=fields[11][:MAX_FIELD],
        object_key=fields[12][:MAX_FIELD],
        account=fields[9][:64],
        category="",
        bytes_in=_int(fields[18]),
        bytes_out=_int(fields[20]),
    )
