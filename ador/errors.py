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

    def __reduce__(self):
        # crosses process boundaries (a study's worker processes) with its fields, not its message alone
        return type(self), (self.field, self.value, self.reason)

    def under(self, prefix: str) -> "ConfigError":
        """The same error with its field placed under ``prefix`` (``hbm.stacks`` -> ``device.hbm.stacks``)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)(field, self.value, self.reason)


class UnevenSplitError(ConfigError):
    """A count that the dies of a device cannot share evenly: a fault of the combination of two
    fields (``dies`` and the count), not of either alone."""


class UnknownNameError(ConfigError):
    """A model, hardware preset, precision or other registry name that does not exist."""


class DoesNotFitError(AdorError):
    """The design cannot hold the model (weights, KV cache and activations exceed device memory)."""


def _one_line(text: str) -> str:
    """Control characters (a field named in a hostile file may hold any) shown escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


_REPR = None


def _short(value: Any) -> str:
    """At most 80 characters, computed in bounded time: a value from a hostile file may be a
    huge tree (YAML aliases), a string of megabytes or an int of thousands of digits."""
    global _REPR
    if _REPR is None:
        import reprlib
        _REPR = reprlib.Repr()
        _REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 4, 6, 6
        _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 80, 80, 40
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        text = f"<a whole number of {len(str(value)) if value.bit_length() < 13000 else 'over 4,000'} digits>"
    else:
        try:
            text = _REPR.repr(value)
        except (ValueError, RecursionError):
            text = f"<{type(value).__name__}>"
    text = _one_line(text)
    return text if len(text) <= 80 else text[:77] + "..."
