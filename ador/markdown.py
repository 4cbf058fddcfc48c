"""Generated sections of hand-written Markdown documents: a command rewrites only what lies between
its own markers, so the prose around a generated table stays the author's."""
from __future__ import annotations

from pathlib import Path


def markers(command: str) -> tuple[str, str]:
    return f"<!-- BEGIN GENERATED: {command} -->", "<!-- END GENERATED -->"


def update_section(path: Path, command: str, body: str) -> None:
    """Replace the section ``command`` generated in ``path`` with ``body`` (appending it if absent)."""
    begin, end = markers(command)
    section = f"{begin}\n\n{body}\n\n{end}"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text.split(begin, 1)[1]:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text + ("\n\n" if text else "") + section + "\n"
    path.write_text(text)


def span(values: list[float], fmt: str, sep: str = "-", unit: str = "") -> str:
    """``values`` as a range for prose, "lo-hi" in ``fmt`` (each end followed by ``unit``, the two
    joined by ``sep``), or one figure where both ends print alike."""
    lo, hi = format(min(values), fmt) + unit, format(max(values), fmt) + unit
    return lo if lo == hi else f"{lo}{sep}{hi}"
