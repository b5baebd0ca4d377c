"""Private keys: PEM made by ``cryptography`` (PKCS#1 RSA, SEC1 EC, DSA, PKCS#8, their
encrypted forms), OpenSSH keys by ``ssh-keygen``, PuTTY keys by ``puttygen`` (v2, v3,
encrypted). Each is found, explained offline (algorithm, size, comment, the SHA-256
fingerprint ``ssh-keygen -l`` prints), rated high, or low when encrypted; public keys,
certificates and stand-ins are never findings; the key body is masked everywhere."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.analyze.privatekeys.explainer import pem_candidates, putty_candidates
from keyscope.analyze.privatekeys.reader import read_pem
from keyscope.errors import ParseError
from keyscope.explain import explain
from keyscope.model import Explanation
from keyscope.redact import mask
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW
from tests.test_gcp import key_info
from tests.test_redaction import assert_hidden, outputs

PEM = serialization.Encoding.PEM
NONE = serialization.NoEncryption()
PASSPHRASE = b"correct horse battery"


def one(text: str) -> Explanation:
    found = explain(text, NOW)
    assert len(found) == 1, [e.sentence for e in found]
    return found[0]


def ssh_fingerprint(public: object) -> str:
    """SHA256:… of a public key's OpenSSH blob, as ssh-keygen -l prints it."""
    line = public.public_bytes(serialization.Encoding.OpenSSH,  # type: ignore[attr-defined]
                               serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP384R1())
ED = ed25519.Ed25519PrivateKey.generate()
DSA = dsa.generate_private_key(key_size=2048)


def pem(key: object, fmt: serialization.PrivateFormat,
        encryption: serialization.KeySerializationEncryption = NONE) -> str:
    return key.private_bytes(PEM, fmt, encryption).decode()  # type: ignore[attr-defined]


TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
PKCS8 = serialization.PrivateFormat.PKCS8
# name → (PEM, algorithm, bits, format, encrypted)
PEMS = {
    "rsa-pkcs1": (pem(RSA, TRADITIONAL), "rsa", 2048, "pkcs1", False),
    "rsa-pkcs8": (pem(RSA, PKCS8), "rsa", 2048, "pkcs8", False),
    "ec-sec1": (pem(EC, TRADITIONAL), "ec", 384, "sec1", False),
    "ec-pkcs8": (pem(EC, PKCS8), "ec", 384, "pkcs8", False),
    "ed25519-pkcs8": (pem(ED, PKCS8), "ed25519", 256, "pkcs8", False),
    "dsa": (pem(DSA, TRADITIONAL), "dsa", 2048, "dsa", False),
    "rsa-pkcs8-encrypted": (pem(RSA, PKCS8, serialization.BestAvailableEncryption(PASSPHRASE)),
                            "unknown", None, "pkcs8-encrypted", True),
    "rsa-pkcs1-encrypted": (pem(RSA, TRADITIONAL,
                                serialization.BestAvailableEncryption(PASSPHRASE)),
                            "rsa", None, "pkcs1", True),
}


@pytest.mark.parametrize("name", sorted(PEMS))
def test_pem_keys_explained(name: str) -> None:
    text, algorithm, bits, fmt, encrypted = PEMS[name]
    e = one(text)
    d = e.access.details
    assert (e.access.provider, d["algorithm"], d["bits"], d["format"], d["encrypted"]) == (
        "private-key", algorithm, bits, fmt, encrypted)
    assert e.severity.label == ("low" if encrypted else "high")
    assert e.access.kind == ("encrypted-private-key" if encrypted else "private-key")
    body = "".join(line for line in text.splitlines()[1:-1] if ":" not in line)
    assert body[8:60] not in e.redacted and body[8:60] not in e.sentence
    if name == "ec-sec1":
        assert d["curve"] == "P-384"
    if name.startswith("rsa-pkcs") and not encrypted:
        assert d["public_key_fingerprint"] == ssh_fingerprint(RSA.public_key())


def _ssh_keygen(tmp_path: Path, kind: str, passphrase: str = "", bits: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"id_{kind}{'_enc' if passphrase else ''}"
    args = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "deploy@ml-runner-3",
            "-f", str(path)]
    subprocess.run(args + (["-b", bits] if bits else []), check=True)
    return path


def _fingerprint(path: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


@pytest.mark.parametrize(("kind", "algorithm", "bits"),
                         [("ed25519", "ed25519", 256), ("rsa", "rsa", 3072),
                          ("ecdsa", "ec", 256)])
def test_openssh_keys_explained(tmp_path: Path, kind: str, algorithm: str, bits: int) -> None:
    path = _ssh_keygen(tmp_path, kind)
    e = one(path.read_text())
    d = e.access.details
    assert (d["format"], d["algorithm"], d["bits"], d["encrypted"]) == (
        "openssh", algorithm, bits, False)
    assert e.access.account == "deploy@ml-runner-3"
    assert d["public_key_fingerprint"] == _fingerprint(path)
    assert e.log_fingerprints["public_key_fingerprint"] == _fingerprint(path)
    assert _fingerprint(path) in e.sentence and e.severity.label == "high"


def test_encrypted_openssh_key_is_low(tmp_path: Path) -> None:
    path = _ssh_keygen(tmp_path, "ed25519", passphrase="correct horse")
    e = one(path.read_text())
    assert (e.access.details["cipher"], e.severity.label) == ("aes256-ctr", "low")
    assert {r.code for r in e.reasons} == {"private-key", "encrypted-private-key"}
    assert e.access.details["public_key_fingerprint"] == _fingerprint(path)


PUTTYGEN = shutil.which("puttygen") or "puttygen"  # Debian putty-tools (scripts/os-packages.txt)


@pytest.mark.parametrize("version", ["2", "3"])
def test_putty_keys_explained(tmp_path: Path, version: str) -> None:
    source = _ssh_keygen(tmp_path, "ed25519")
    plain, locked = tmp_path / "k.ppk", tmp_path / "k-enc.ppk"
    (tmp_path / "pass").write_text("correct horse\n")
    common = [str(PUTTYGEN), str(source), "-O", "private", "--ppk-param", f"version={version}"]
    subprocess.run([*common, "-o", str(plain)], check=True)
    subprocess.run([*common, "--new-passphrase", str(tmp_path / "pass"), "-o", str(locked)],
                   check=True)
    assert plain.read_text().startswith(f"PuTTY-User-Key-File-{version}: ssh-ed25519")
    e = one(plain.read_text())
    d = e.access.details
    assert (d["format"], d["algorithm"], d["encrypted"], e.severity.label) == (
        "putty", "ed25519", False, "high")
    assert (e.access.account, d["public_key_fingerprint"]) == (
        "deploy@ml-runner-3", _fingerprint(source))
    e = one(locked.read_text())
    assert (e.access.details["cipher"], e.severity.label) == ("aes256-cbc", "low")


def _certificate() -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "models.contoso.example")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(EC.public_key()).serial_number(7)
            .not_valid_before(datetime.now(UTC)).not_valid_after(datetime.now(UTC)
                                                                 + timedelta(days=30))
            .sign(EC, hashes.SHA256()))
    return cert.public_bytes(PEM).decode()


def test_public_keys_certificates_and_stand_ins_are_never_findings(tmp_path: Path) -> None:
    source = _ssh_keygen(tmp_path / "keys", "ed25519")
    source.unlink()  # the public half stays
    (tmp_path / "pub.pem").write_text(RSA.public_key().public_bytes(
        PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    (tmp_path / "cert.pem").write_text(_certificate())
    (tmp_path / "template.md").write_text(
        "-----BEGIN PRIVATE KEY-----\n<your private key>\n-----END PRIVATE KEY-----\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----\n"
        'MARKER = "-----BEGIN OPENSSH PRIVATE KEY-----"\n')
    truncated = PEMS["rsa-pkcs1"][0].splitlines()
    (tmp_path / "cut.pem").write_text("\n".join(truncated[:5] + truncated[-1:]) + "\n")
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False))
    assert result.findings == []
    with pytest.raises(ParseError):
        read_pem("\n".join(truncated[:5] + truncated[-1:]))


def test_a_service_account_key_file_is_one_finding(tmp_path: Path) -> None:
    """The PEM inside a Google service-account key is that key's secret: one finding
    (the Google Cloud rule's), not two."""
    (tmp_path / "sa.json").write_text(json.dumps(key_info(), indent=2))
    found = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False)).findings
    assert [f.rule_id for f in found] == ["gcp-service-account-key"]


def test_keys_in_json_and_kubernetes_secrets(tmp_path: Path) -> None:
    ec_pem = PEMS["ec-sec1"][0]
    (tmp_path / "config.json").write_text(json.dumps({"tls_key": ec_pem}))
    (tmp_path / "tls.yaml").write_text(
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\ndata:\n  tls.key: "
        + base64.b64encode(PEMS["rsa-pkcs8"][0].encode()).decode() + "\n")
    found = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False)).findings
    assert sorted((Path(f.locations[0].path).name, f.rule_id, f.locations[0].origin)
                  for f in found) == [("config.json", "private-key", ()),
                                      ("tls.yaml", "private-key", ("base64",))]


def test_key_bodies_masked_in_every_format(tmp_path: Path) -> None:
    texts = [PEMS[n][0] for n in ("rsa-pkcs1", "ec-pkcs8", "rsa-pkcs8-encrypted")]
    source = _ssh_keygen(tmp_path / "keys", "ed25519")
    texts.append(source.read_text())
    (tmp_path / "keys.txt").write_text("\n".join(texts))
    outs = outputs(tmp_path)
    lines = [line for t in texts for line in t.splitlines()[1:-1] if ":" not in line]
    assert_hidden([line[4:] for line in lines if len(line) > 20], outs)
    masked = mask("\n".join(texts))
    assert all(line[4:] not in masked for line in lines if len(line) > 20)


def _mutations() -> st.SearchStrategy[bytes]:
    seeds = [base64.b64decode("".join(PEMS[n][0].splitlines()[1:-1]))
             for n in ("rsa-pkcs1", "ec-sec1", "rsa-pkcs8", "ed25519-pkcs8", "dsa")]
    seed = st.sampled_from(seeds)
    return st.tuples(seed, st.integers(0, 400), st.binary(max_size=6), st.integers(0, 8)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + t[3]:])


@settings(max_examples=300, deadline=None, database=None)
@given(_mutations(), st.sampled_from(["RSA ", "EC ", "DSA ", "", "ENCRYPTED ", "OPENSSH "]))
def test_hostile_key_bodies_never_raise(body: bytes, label: str) -> None:
    """Whatever bytes a PEM block holds, the parser answers Candidate or Rejected."""
    text = (f"-----BEGIN {label}PRIVATE KEY-----\n{base64.b64encode(body).decode()}\n"
            f"-----END {label}PRIVATE KEY-----")
    assert pem_candidates(text, lambda: text, NOW) is not None
    putty = ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: c\n"
             f"Public-Lines: 1\n{base64.b64encode(body[:60]).decode()}\nPrivate-Lines: 1\n"
             f"{base64.b64encode(body[60:120]).decode() or 'AAAA'}\nPrivate-MAC: {'0' * 64}")
    assert putty_candidates(putty, NOW) is not None


def test_installed_packages_test_keys_are_not_reported(tmp_path: Path) -> None:
    """A key in a test folder of an installed package (pycryptodome's SelfTest, the
    standard library's test/certdata) is a published test vector; the same key in a
    project's own files, or shipped as package data, is reported."""
    key = PEMS["ec-pkcs8"][0]
    site = tmp_path / "lib/python3.11/site-packages"
    for rel in ("Cryptodome/SelfTest/PublicKey/test_import_ECC.py", "somelib/tests/certs/a.key"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(key)
    (tmp_path / "lib/python3.11/test/certdata").mkdir(parents=True)
    (tmp_path / "lib/python3.11/test/certdata/keycert.pem").write_text(key)
    (site / "proxy").mkdir()
    (site / "proxy/ca.key").write_text(key)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/tls.key").write_text(key)
    found = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False)).findings
    assert [sorted(Path(loc.path).relative_to(tmp_path).as_posix() for loc in f.locations)
            for f in found] == [["deploy/tls.key", "lib/python3.11/site-packages/proxy/ca.key"]]
