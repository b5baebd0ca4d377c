"""keyscope: find leaked cloud-storage credentials and explain what they unlock.

The public names below are loaded when first used, so that importing one submodule
(the CLI, a worker) does not load the whole library."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyscope.analyze.policy import Policy
    from keyscope.config import load_policy
    from keyscope.errors import KeyscopeError, NotStorageCredential, ParseError
    from keyscope.explain import explain
    from keyscope.model import Explanation, Severity

__version__ = "0.1.0"

_WHERE = {
    "Explanation": "keyscope.model",
    "KeyscopeError": "keyscope.errors",
    "NotStorageCredential": "keyscope.errors",
    "ParseError": "keyscope.errors",
    "Policy": "keyscope.analyze.policy",
    "Severity": "keyscope.model",
    "explain": "keyscope.explain",
    "load_policy": "keyscope.config",
}

__all__ = [
    "Explanation",
    "KeyscopeError",
    "NotStorageCredential",
    "ParseError",
    "Policy",
    "Severity",
    "__version__",
    "explain",
    "load_policy",
]


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'keyscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
