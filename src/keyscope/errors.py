"""Exceptions a library caller may catch. The CLI maps them to exit code 2."""

from __future__ import annotations


class KeyscopeError(Exception):
    """Base class for every error keyscope reports to its user."""


class ParseError(KeyscopeError):
    """The input is not a well-formed credential; the message names what is wrong."""


class NotStorageCredential(ParseError):
    """The input is a recognisable look-alike (e.g. a Service Bus SAS), not Azure Storage."""


class ConfigError(KeyscopeError):
    """A policy or configuration file is invalid."""
