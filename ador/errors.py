"""Errors ador reports to users in one line.

Every error a user can cause (a bad name, a malformed file, an impossible design) is an
``AdorError``; the CLI prints its message on one line and exits non-zero. Anything else is a bug
and keeps its traceback.
"""
from __future__ import annotations

from typing import Any


class AdorError(Exception):
    """Base class of the errors that are the user's to fix."""


class ConfigError(AdorError, ValueError):
    """A field holds a value ador cannot use. The message names the field and the value."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{_one_line(str(field))}={_short(value)}: {_one_line(str(reason))}")

    def under(self, prefix: str) -> "ConfigError":
        """The same error with its field placed under ``prefix`` (``hbm.stacks`` -> ``device.hbm.stacks``)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)(field, self.value, self.reason)


class UnknownNameError(ConfigError):
    """A model, hardware preset, precision or other registry name that does not exist."""


class DoesNotFitError(AdorError):
    """The design cannot hold the model (weights, KV cache and activations exceed device memory)."""


def _one_line(text: str) -> str:
    """Control characters (a field named in a hostile file may hold any) shown escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
