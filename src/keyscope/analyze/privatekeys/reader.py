"""Private keys read offline: PEM (PKCS#1 RSA, SEC1 EC, DSA, PKCS#8, encrypted PKCS#8),
OpenSSH and PuTTY (.ppk v2 and v3). A key is reported only when its body has the
structure of a key (a stand-in like ``<your key>`` or a truncated body has not);
whether it is encrypted, its algorithm, size and comment, and the SHA-256 fingerprint
of its public half (as ``ssh-keygen -l`` prints it) are read from the bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from keyscope.analyze.privatekeys import der
from keyscope.errors import ParseError

PEM = re.compile(
    r"-----BEGIN (?P<label>(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?)PRIVATE KEY-----"
    r"(?P<body>[A-Za-z0-9+/=\s\\:,-]{16,16000}?)-----END (?P=label)PRIVATE KEY-----"
)
PUTTY = re.compile(
    r"PuTTY-User-Key-File-(?P<version>[23]): (?P<alg>[a-z0-9@.-]{3,40})\r?\n"
    r"(?P<fields>(?:[A-Za-z0-9-]{2,30}: [^\r\n]{0,300}\r?\n|[A-Za-z0-9+/=]{1,80}\r?\n){4,200}?)"
    r"Private-MAC: (?P<mac>[0-9a-f]{40,64})"
)
_CURVES = {
    "1.2.840.10045.3.1.7": ("P-256", 256), "1.3.132.0.34": ("P-384", 384),
    "1.3.132.0.35": ("P-521", 521), "1.3.132.0.10": ("secp256k1", 256),
    "1.2.840.10045.3.1.1": ("P-192", 192), "1.3.132.0.33": ("P-224", 224),
}
_PKCS8 = {
    "1.2.840.113549.1.1.1": "rsa", "1.2.840.113549.1.1.10": "rsa-pss",
    "1.2.840.10045.2.1": "ec", "1.2.840.10040.4.1": "dsa", "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448", "1.3.101.110": "x25519", "1.3.101.111": "x448",
}
_ENCRYPTION = {"1.2.840.113549.1.5.13": "PBES2", "1.2.840.113549.1.5.3": "PBES1 (DES)",
               "1.2.840.113549.1.12.1.3": "PKCS#12 3DES"}


@dataclass(frozen=True)
class PrivateKey:
    """A private key: where it came from, what it is, and its secret body."""

    format: str  # pkcs1 | sec1 | dsa | pkcs8 | pkcs8-encrypted | openssh | putty
    algorithm: str  # rsa | ec | dsa | ed25519 | … | unknown
    bits: int | None
    curve: str | None
    encrypted: bool
    cipher: str | None  # the encryption named in the key (None: not encrypted)
    comment: str | None  # OpenSSH's and PuTTY's comment (often user@host)
    public_fingerprint: str | None  # SHA256:… of the public key, as ssh-keygen -l prints
    body: str  # the Base64 body as found (the secret)


def read_pem(text: str) -> PrivateKey:
    """A PEM block (also with JSON's escaped line breaks); raises ``ParseError`` when
    its body is not a key of its label."""
    m = PEM.search(text)
    if m is None:
        raise ParseError("no PEM private key block")
    label = m.group("label").strip()
    raw_body = m.group("body").replace("\\r", "\n").replace("\\n", "\n")
    headers = dict(
        (k.strip(), v.strip()) for k, _, v in
        (line.partition(":") for line in raw_body.splitlines() if ":" in line)
    )
    b64 = "".join(line.strip() for line in raw_body.splitlines() if ":" not in line)
    if "\\" in b64 or not b64:
        raise ParseError("PEM body is not Base64")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("PEM body is not Base64 (a placeholder?)") from None
    if label == "OPENSSH":
        return _openssh(data, b64)
    if headers.get("Proc-Type", "").endswith("ENCRYPTED"):
        cipher = headers.get("DEK-Info", "").split(",")[0] or "unknown"
        algorithm = {"RSA": "rsa", "EC": "ec", "DSA": "dsa"}.get(label, "unknown")
        if len(data) < 64:
            raise ParseError("encrypted PEM body too short for a key")
        fmt = {"RSA": "pkcs1", "EC": "sec1", "DSA": "dsa"}.get(label, "pkcs8")
        return PrivateKey(fmt, algorithm, None, None, True, cipher, None, None, b64)
    fields = der.sequence(data)
    if label == "RSA":
        return _rsa(fields, b64, "pkcs1")
    if label == "EC":
        return _ec(fields, b64, "sec1", None)
    if label == "DSA":
        if len(fields) != 6 or any(tag != der.INTEGER for tag, _ in fields):
            raise ParseError("not a DSA private key")
        return PrivateKey("dsa", "dsa", der.bits(fields[1][1]), None, False, None, None, None,
                          b64)
    if label == "ENCRYPTED":
        if len(fields) != 2 or fields[0][0] != der.SEQUENCE or fields[1][0] != der.OCTET_STRING:
            raise ParseError("not an encrypted PKCS#8 key")
        alg = der.items(fields[0][1])
        name = der.oid(alg[0][1]) if alg and alg[0][0] == der.OID else "?"
        return PrivateKey("pkcs8-encrypted", "unknown", None, None, True,
                          _ENCRYPTION.get(name, name), None, None, b64)
    return _pkcs8(fields, b64)


def _rsa(fields: list[tuple[int, bytes]], b64: str, fmt: str) -> PrivateKey:
    if len(fields) < 9 or any(tag != der.INTEGER for tag, _ in fields[:9]):
        raise ParseError("not an RSA private key")
    n, e = fields[1][1], fields[2][1]
    blob = _ssh_string(b"ssh-rsa") + _ssh_string(e) + _ssh_string(n)
    return PrivateKey(fmt, "rsa", der.bits(n), None, False, None, None, _fingerprint(blob), b64)


def _ec(fields: list[tuple[int, bytes]], b64: str, fmt: str, curve_oid: str | None) -> PrivateKey:
    if len(fields) < 2 or fields[0][0] != der.INTEGER or fields[1][0] != der.OCTET_STRING:
        raise ParseError("not an EC private key")
    for tag, content in fields[2:]:
        if tag == 0xA0:  # [0] parameters: the curve
            inner = der.items(content)
            if inner and inner[0][0] == der.OID:
                curve_oid = der.oid(inner[0][1])
    curve, size = _CURVES.get(curve_oid or "", (curve_oid, len(fields[1][1]) * 8))
    return PrivateKey(fmt, "ec", size, curve, False, None, None, None, b64)


def _pkcs8(fields: list[tuple[int, bytes]], b64: str) -> PrivateKey:
    if (len(fields) < 3 or fields[0][0] != der.INTEGER or fields[1][0] != der.SEQUENCE
            or fields[2][0] != der.OCTET_STRING):
        raise ParseError("not a PKCS#8 private key")
    alg = der.items(fields[1][1])
    if not alg or alg[0][0] != der.OID:
        raise ParseError("PKCS#8: no algorithm")
    name = der.oid(alg[0][1])
    algorithm = _PKCS8.get(name, "unknown")
    inner = fields[2][1]
    if algorithm.startswith("rsa"):
        key = _rsa(der.sequence(inner), b64, "pkcs8")
        return PrivateKey("pkcs8", algorithm, key.bits, None, False, None, None,
                          key.public_fingerprint, b64)
    if algorithm == "ec":
        curve = der.oid(alg[1][1]) if len(alg) > 1 and alg[1][0] == der.OID else None
        return _ec(der.sequence(inner), b64, "pkcs8", curve)
    if algorithm in ("ed25519", "x25519", "ed448", "x448"):
        tag, content, _ = der.item(inner)
        if tag != der.OCTET_STRING or len(content) not in (32, 56, 57):
            raise ParseError("PKCS#8: not an Edwards/Montgomery key")
        return PrivateKey("pkcs8", algorithm, len(content) * 8, None, False, None, None, None,
                          b64)
    return PrivateKey("pkcs8", algorithm, None, None, False, None, None, None, b64)


def _ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class _Reader:
    """SSH wire format: uint32 lengths before strings."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def uint32(self) -> int:
        if self.at + 4 > len(self.data):
            raise ParseError("OpenSSH key: truncated")
        (value,) = struct.unpack_from(">I", self.data, self.at)
        self.at += 4
        return int(value)

    def string(self) -> bytes:
        size = self.uint32()
        if self.at + size > len(self.data):
            raise ParseError("OpenSSH key: a field runs past the end")
        value = self.data[self.at : self.at + size]
        self.at += size
        return value


def _public(blob: bytes) -> tuple[str, int | None, str | None]:
    """An SSH public key blob's algorithm, size and curve."""
    r = _Reader(blob)
    kind = r.string().decode("latin-1")
    if kind == "ssh-rsa":
        r.string()  # e
        return "rsa", der.bits(r.string()), None
    if kind.startswith("ecdsa-sha2-"):
        curve = r.string().decode("latin-1")
        return "ec", {"nistp256": 256, "nistp384": 384, "nistp521": 521}.get(curve), curve
    if kind == "ssh-ed25519":
        return "ed25519", 256, None
    if kind == "ssh-dss":
        return "dsa", der.bits(r.string()), None
    return kind, None, None


def _openssh(data: bytes, b64: str) -> PrivateKey:
    magic = b"openssh-key-v1\0"
    if not data.startswith(magic):
        raise ParseError("not an OpenSSH private key")
    r = _Reader(data[len(magic) :])
    cipher = r.string().decode("latin-1")
    r.string()  # kdf name
    r.string()  # kdf options
    if r.uint32() != 1:
        raise ParseError("OpenSSH key: not exactly one key")
    blob = r.string()
    algorithm, size, curve = _public(blob)
    private = r.string()
    comment = None
    encrypted = cipher != "none"
    if not encrypted:
        comment = _openssh_comment(private, algorithm)
    elif len(private) < 16:
        raise ParseError("OpenSSH key: encrypted part too short")
    return PrivateKey("openssh", algorithm, size, curve, encrypted, cipher if encrypted else None,
                      comment, _fingerprint(blob), b64)


def _openssh_comment(private: bytes, algorithm: str) -> str | None:
    r = _Reader(private)
    if r.uint32() != r.uint32():
        raise ParseError("OpenSSH key: check bytes differ (corrupt)")
    r.string()  # key type
    fields = {"rsa": 6, "ed25519": 2, "ec": 3, "dsa": 5}.get(algorithm)
    if fields is None:
        return None
    for _ in range(fields):
        r.string()
    return r.string().decode("utf-8", "replace") or None


def read_putty(text: str) -> PrivateKey:
    """A PuTTY key file (.ppk, versions 2 and 3); raises ``ParseError`` when its line
    counts or Base64 do not hold."""
    m = PUTTY.search(text)
    if m is None:
        raise ParseError("no PuTTY key file")
    lines = m.group("fields").splitlines()
    fields: dict[str, str] = {}
    blocks: dict[str, str] = {}
    i = 0
    while i < len(lines):
        name, _, value = lines[i].partition(": ")
        i += 1
        if name in ("Public-Lines", "Private-Lines"):
            count = int(value) if value.isdigit() else -1
            if count < 1 or i + count > len(lines):
                raise ParseError(f"PuTTY key: {name} does not match the lines that follow")
            blocks[name] = "".join(lines[i : i + count])
            i += count
        else:
            fields[name] = value
    if set(blocks) != {"Public-Lines", "Private-Lines"}:
        raise ParseError("PuTTY key: public or private lines missing")
    try:
        blob = base64.b64decode(blocks["Public-Lines"], validate=True)
        private = base64.b64decode(blocks["Private-Lines"], validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("PuTTY key: lines are not Base64") from None
    if len(private) < 16:
        raise ParseError("PuTTY key: private part too short")
    algorithm, size, curve = _public(blob)
    encryption = fields.get("Encryption", "none")
    return PrivateKey(
        "putty", algorithm, size, curve, encryption != "none",
        None if encryption == "none" else encryption, fields.get("Comment") or None,
        _fingerprint(blob), blocks["Private-Lines"],
    )
