"""Generated sections of hand-written Markdown documents: a command rewrites only what lies between
its own markers, so the prose around a generated table stays the author's."""
from __future__ import annotations

import os
from pathlib import Path

from ador.errors import ConfigError


def markers(command: str) -> tuple[str, str]:
    return f"<!-- BEGIN GENERATED: {command} -->", "<!-- END GENERATED -->"


def update_section(path: Path, command: str, body: str) -> None:
    """Replace the section ``command`` generated in ``path`` with ``body`` (appending it if absent)."""
    begin, end = markers(command)
    section = f"{begin}\n\n{body}\n\n{end}"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except UnicodeDecodeError:
        raise ConfigError("--update-doc", str(path), "not a UTF-8 text file; nothing was changed") from None
    except OSError as err:
        raise ConfigError("--update-doc", str(path), f"cannot be read ({err.strerror or err})") from None
    if begin in text and end in text.split(begin, 1)[1]:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text + ("\n\n" if text else "") + section + "\n"
    # written beside it and moved over it: a kill or a full disk leaves the old document whole
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError("--update-doc", str(path), f"cannot be written ({err.strerror or err})") from None


def span(values: list[float], fmt: str, sep: str = "-", unit: str = "") -> str:
    """``values`` as a range for prose, "lo-hi" in ``fmt`` (each end followed by ``unit``, the two
    joined by ``sep``), or one figure where both ends print alike."""
    lo, hi = format(min(values), fmt) + unit, format(max(values), fmt) + unit
    return lo if lo == hi else f"{lo}{sep}{hi}"
