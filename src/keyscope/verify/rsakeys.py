"""The RSA public key (modulus, exponent) inside a private key or an X.509
certificate, read with a small DER walker: enough to tell whether a leaked private
key is the one a service publishes a certificate for, without a crypto library.

Only structure is read (no signature is checked); anything malformed gives ``None``.
"""

from __future__ import annotations

import base64
import binascii
import re

RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_SEQUENCE, _INTEGER, _BIT_STRING, _OCTET_STRING, _OID = 0x30, 0x02, 0x03, 0x04, 0x06
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----(?P<body>[A-Za-z0-9+/=\s]+)-----END [A-Z0-9 ]+-----")

PublicKey = tuple[int, int]  # (modulus, public exponent)


class _Malformed(Exception):
    pass


def private_key_public(der_or_b64: bytes | str) -> PublicKey | None:
    """The public half of an RSA private key: PKCS#8 (``BEGIN PRIVATE KEY``) or
    PKCS#1 (``BEGIN RSA PRIVATE KEY``), as DER, Base64 or PEM."""
    der = _der(der_or_b64)
    if der is None:
        return None
    try:
        items = _children(der, 0, len(der), _SEQUENCE)
        if len(items) >= 3 and items[1][0] == _SEQUENCE and items[2][0] == _OCTET_STRING:
            if RSA_OID not in der[items[1][1] : items[1][2]]:
                return None
            inner = der[items[2][1] : items[2][2]]
            items, der = _children(inner, 0, len(inner), _SEQUENCE), inner
        ints = [i for i in items[:3] if i[0] == _INTEGER]
        if len(ints) < 3:
            return None
        return _int(der, ints[1]), _int(der, ints[2])
    except _Malformed:
        return None


def certificate_public(pem_or_der: bytes | str) -> PublicKey | None:
    """The RSA public key of an X.509 certificate (PEM or DER)."""
    der = _der(pem_or_der)
    if der is None:
        return None
    try:
        cert = _children(der, 0, len(der), _SEQUENCE)
        tbs = _inside(der, cert[0], _SEQUENCE)
        fields = tbs[1:] if tbs and tbs[0][0] == 0xA0 else tbs  # [0] version
        # serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo
        if len(fields) < 6:
            return None
        spki = _inside(der, fields[5], _SEQUENCE)
        if len(spki) < 2 or spki[1][0] != _BIT_STRING:
            return None
        if RSA_OID not in der[spki[0][1] : spki[0][2]]:
            return None
        bits = der[spki[1][1] + 1 : spki[1][2]]  # past the unused-bits byte
        key = _children(bits, 0, len(bits), _SEQUENCE)
        if len(key) < 2 or key[0][0] != _INTEGER or key[1][0] != _INTEGER:
            return None
        return _int(bits, key[0]), _int(bits, key[1])
    except _Malformed:
        return None


def _der(value: bytes | str) -> bytes | None:
    if isinstance(value, bytes) and value[:1] == bytes([_SEQUENCE]):
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    pem = _PEM.search(text)
    body = pem.group("body") if pem else text
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at ``pos``."""
    if pos + 2 > end:
        raise _Malformed
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            raise _Malformed
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise _Malformed
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int, tag: int) -> list[tuple[int, int, int]]:
    """The elements inside the constructed element of type ``tag`` at ``start``."""
    return _inside(data, _tlv(data, start, end), tag)


def _inside(data: bytes, element: tuple[int, int, int], tag: int) -> list[tuple[int, int, int]]:
    """The elements inside ``element`` (tag, content start, content end), of type ``tag``."""
    outer, pos, stop = element
    if outer != tag:
        raise _Malformed
    out: list[tuple[int, int, int]] = []
    while pos < stop and len(out) < 64:
        item = _tlv(data, pos, stop)
        out.append(item)
        pos = item[2]
    return out


def _int(data: bytes, item: tuple[int, int, int]) -> int:
    return int.from_bytes(data[item[1] : item[2]], "big")
