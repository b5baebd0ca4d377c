"""Test data shipped inside installed packages: the private keys, tokens and JWTs of a
library's own test suite (``site-packages/Cryptodome/SelfTest/…``,
``site-packages/aiosmtpd/tests/certs/…``, the standard library's ``lib/python3.11/test/…``)
are published test vectors, not leaks."""

from __future__ import annotations

import re

_INSTALLED = re.compile(r"(?:site|dist)-packages[/\\]|[/\\]lib[/\\]python3(?:\.\d+)?[/\\]")
_TEST_DIR = re.compile(
    r"(?i)[/\\](?:tests?|testing|testdata|test_data|selftest|fixtures|testcerts|test_certs)[/\\]"
)


def installed_test_fixture(path: str) -> str | None:
    """Why a path is an installed package's test data, else ``None``."""
    installed = _INSTALLED.search(path)
    if installed and _TEST_DIR.search(path, installed.end() - 1):
        return "test data of an installed package (a published test vector)"
    return None
