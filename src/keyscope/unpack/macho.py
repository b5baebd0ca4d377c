"""Mach-O binaries (an iOS app's executable, its frameworks and dylibs, object files)
as members by section, and universal ("fat") files as one member per slice.

The raw scan of a binary already finds ASCII C strings, and UTF-16 ones holding a
``sig``/``AccountKey`` marker; what it cannot say is where they are. So a thin Mach-O
is read through its load commands: each section with bytes in the file is a member
named ``SEGMENT,section`` (``__TEXT,__cstring``: one string per line, so a finding's
line is the string's number; ``__TEXT,__ustring``: UTF-16 decoded to UTF-8, one per
line; other sections as they are), and the bytes no section covers (symbol and
string tables, the code signature's entitlements …) are one member ``<other>``. A
slice of a universal file is named by its CPU (``arm64!/__TEXT,__cstring``). An App
Store binary whose ``LC_ENCRYPTION_INFO`` says FairPlay-encrypted is a Skipped entry:
most of ``__TEXT`` is unreadable there, so finding nothing proves nothing.

Load commands, sections and slices are bounds-checked before anything is read;
damage ends the walk with a Skipped entry, and the bytes after the load commands are
still scanned (the header and load commands, names and paths, are not).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from keyscope.model import Skipped
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import admit, member, spent_members
from keyscope.unpack.interface import Budget, Expander, member_path

THIN = {b"\xce\xfa\xed\xfe": ("<", 28), b"\xcf\xfa\xed\xfe": ("<", 32),
        b"\xfe\xed\xfa\xce": (">", 28), b"\xfe\xed\xfa\xcf": (">", 32)}  # fmt: skip
FAT = {b"\xca\xfe\xba\xbe": struct.Struct(">iiIII"),  # cputype, subtype, offset, size, align
       b"\xca\xfe\xba\xbf": struct.Struct(">iiQQI4x")}  # fmt: skip
MAX_SLICES = 32  # a Java class file shares CAFEBABE: its version (>= 45) reads as the count
MAX_SECTIONS = 4096
MAX_COMMANDS = 4096  # real binaries have a few dozen
LC_SEGMENT, LC_SEGMENT_64, LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64 = 0x1, 0x19, 0x21, 0x2C
_ZEROFILL = {0x1, 0xC, 0x12}  # section types with no bytes in the file
_CSTRINGS = 0x2  # S_CSTRING_LITERALS
_CPUS = {7: "i386", 0x01000007: "x86_64", 12: "arm", 0x0100000C: "arm64",
         0x0200000C: "arm64_32", 18: "ppc", 0x01000012: "ppc64"}  # fmt: skip
_ARM = {9: "armv7", 11: "armv7s", 12: "armv7k"}  # subtypes of CPU_TYPE_ARM


class _Damaged(Exception):
    pass


@dataclass(frozen=True)
class Section:
    """One section with bytes in the file."""

    segment: str
    name: str
    offset: int
    size: int
    flags: int

    @property
    def label(self) -> str:
        return f"{self.segment},{self.name}"


@dataclass
class Thin:
    """What the load commands of one thin Mach-O say: its sections, where the load
    commands end, the encrypted range (if any) and why the walk stopped (if it did)."""

    sections: list[Section]
    commands_end: int
    encrypted: tuple[int, int, int] | None = None  # cryptoff, cryptsize, cryptid
    problem: str | None = None


class MachOExpander(Expander):
    """Thin Mach-O files by section; universal files by slice."""

    name = "mach-o"
    first = bytes({m[0] for m in (*THIN, *FAT)})

    def claims(self, blob: Blob) -> bool:
        head = bytes(blob.data[:8])
        if head[:4] in THIN:
            endian, size = THIN[head[:4]]
            if len(blob.data) < size:
                return False
            sizeofcmds = struct.unpack_from(endian + "I", blob.data, 20)[0]
            return bool(size + sizeofcmds <= len(blob.data))
        if head[:4] in FAT and len(head) == 8:
            return fat_slices(blob.data) is not None
        return False

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        slices = fat_slices(blob.data) if bytes(blob.data[:4]) in FAT else None
        if slices is not None:
            for name, offset, size in slices:
                skip, stop = admit(blob, name, size, budget)
                if skip is not None:
                    yield skip
                    if stop:
                        return
                    continue
                yield member(blob, name, bytes(blob.data[offset : offset + size]))
            return
        thin = read_thin(blob.data)
        if thin.encrypted is not None and thin.encrypted[2] != 0:
            off, size, cryptid = thin.encrypted
            reason = (f"FairPlay-encrypted binary (cryptid {cryptid}): {size} bytes at offset "
                      f"{off}, most of __TEXT, cannot be read; scan a decrypted copy")
            yield Skipped(member_path(blob), reason)
        if thin.problem is not None:
            yield Skipped(member_path(blob), f"Mach-O load commands damaged: {thin.problem}")
        yield from spent_members(blob, _members(blob.data, thin), budget)


def fat_slices(data: bytes) -> list[tuple[str, int, int]] | None:
    """(CPU name, offset, size) of each slice of a universal file, or None when the
    header does not describe slices inside the file (a Java class file, damage)."""
    entry = FAT.get(bytes(data[:4]))
    if entry is None or len(data) < 8:
        return None
    count = struct.unpack_from(">I", data, 4)[0]
    if not 1 <= count <= MAX_SLICES or 8 + count * entry.size > len(data):
        return None
    out: list[tuple[str, int, int]] = []
    for i in range(count):
        cpu, subtype, offset, size, _ = entry.unpack_from(data, 8 + i * entry.size)
        if offset < 8 + count * entry.size or offset + size > len(data):
            return None
        name = _cpu_name(cpu, subtype)
        if any(n == name for n, _, _ in out):
            name = f"{name} #{i + 1}"
        out.append((name, offset, size))
    return out


def read_thin(data: bytes) -> Thin:
    """The sections and encryption info of a thin Mach-O, read from its load commands."""
    endian, header = THIN[bytes(data[:4])]
    ncmds, sizeofcmds = struct.unpack_from(endian + "II", data, 16)
    end = header + sizeofcmds
    thin = Thin([], min(end, len(data)))
    at = header
    try:
        if ncmds > MAX_COMMANDS:
            raise _Damaged(f"{ncmds} load commands (more than {MAX_COMMANDS})")
        for _ in range(ncmds):
            if at + 8 > end:
                raise _Damaged(f"load command at {at} runs past the {sizeofcmds} bytes declared")
            cmd, size = struct.unpack_from(endian + "II", data, at)
            if size < 8 or at + size > end:
                raise _Damaged(f"load command at {at} has size {size}")
            if cmd in (LC_SEGMENT, LC_SEGMENT_64):
                _segment(data, endian, at, size, cmd == LC_SEGMENT_64, thin)
            elif cmd in (LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64) and size >= 20:
                thin.encrypted = struct.unpack_from(endian + "III", data, at + 8)
            at += size
    except _Damaged as exc:
        thin.problem = str(exc)
    return thin


def _segment(data: bytes, endian: str, at: int, size: int, wide: bool, thin: Thin) -> None:
    base, record = (72, 80) if wide else (56, 68)
    if size < base:
        raise _Damaged(f"segment command at {at} has size {size}")
    nsects = struct.unpack_from(endian + "I", data, at + base - 8)[0]
    if base + nsects * record > size:
        raise _Damaged(f"segment at {at} declares {nsects} sections in {size} bytes")
    fields = endian + ("16s16sQQIIIII" if wide else "16s16sIIIIIII")
    for i in range(nsects):
        if len(thin.sections) >= MAX_SECTIONS:
            raise _Damaged(f"more than {MAX_SECTIONS} sections")
        name, segment, _, length, offset, _, _, _, flags = struct.unpack_from(
            fields, data, at + base + i * record
        )
        if flags & 0xFF in _ZEROFILL or not length or not offset:
            continue
        if offset + length > len(data):
            raise _Damaged(f"section {_name(segment)},{_name(name)} runs past the file")
        thin.sections.append(Section(_name(segment), _name(name), offset, length, flags))


def _members(data: bytes, thin: Thin) -> Iterator[tuple[str, bytes]]:
    """Each section's bytes (strings one per line), then the bytes no section holds."""
    covered: list[tuple[int, int]] = []
    for section in thin.sections:
        raw = bytes(data[section.offset : section.offset + section.size])
        covered.append((section.offset, section.offset + section.size))
        if section.name == "__ustring":
            raw = raw.decode("utf-16-le", "replace").encode("utf-8")
            raw = raw.replace(b"\0", b"\n")
        elif section.flags & 0xFF == _CSTRINGS or section.name == "__cstring":
            raw = raw.replace(b"\0", b"\n")
        yield section.label, raw
    other = bytearray()
    at = thin.commands_end  # the header and load commands: names and paths, no values
    for start, stop in sorted(covered):
        if start > at:
            other += data[at:start]
        at = max(at, stop)
    other += data[at:]
    if other.strip(b"\0"):
        yield "<other>", bytes(other)


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _cpu_name(cpu: int, subtype: int) -> str:
    if cpu == 0x0100000C and subtype & 0xFF == 2:
        return "arm64e"
    if cpu == 12 and subtype in _ARM:
        return _ARM[subtype]
    return _CPUS.get(cpu, f"cpu {cpu:#x}")
