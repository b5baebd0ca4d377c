"""keyscope: find leaked cloud-storage credentials and explain what they unlock."""

from keyscope.analyze.policy import Policy
from keyscope.config import load_policy
from keyscope.errors import KeyscopeError, NotStorageCredential, ParseError
from keyscope.explain import explain
from keyscope.model import Explanation, Severity

__version__ = "0.1.0"

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
