"""Where things are found, from any working directory: study files, search spaces, and the
storage of a study.

- A study file is a path, or the name of a study that ships with ador (``ador study launch
  llama3-70b-8dev``).
- A study file's ``search_space`` is looked up in ``search_spaces/`` beside the study file or
  beside its folder, beside the study file, then among the search spaces that ship with ador;
  other files it names (runtime profiles, a space's base design) beside the naming file.
- A study's storage is, in order: ``--storage``; the study file's ``storage:`` (a relative path
  beside the file); ``NAME.db`` in ``--storage-dir`` or in ``$ADOR_STUDIES``; ``NAME.db`` beside
  the study file (for a study that ships with ador: ``studies/NAME.db`` in the working directory,
  the one folder ``launch`` creates). Commands that read a study by name look in ``--storage-dir``,
  ``$ADOR_STUDIES``, then ``./NAME.db`` and ``./studies/NAME.db``; given a study file instead of a
  name, they find the storage exactly where ``launch`` put it.
"""
from __future__ import annotations

import os
from pathlib import Path

from ador.errors import ConfigError

STUDIES_ENV = "ADOR_STUDIES"
DEFAULT_DIR = Path("studies")          # the default storage folder of shipped studies (and by-name reads)
_PACKAGE = Path(__file__).resolve().parents[1]


def packaged_dir(kind: str) -> Path:
    """The folder of shipped ``studies`` or ``search_spaces``: inside the installed package, or
    beside it in a checkout (an editable install)."""
    for d in (_PACKAGE / kind, _PACKAGE.parent / kind):
        if d.is_dir():
            return d
    return _PACKAGE / kind


def is_packaged(path: Path) -> bool:
    return path.resolve().parent == packaged_dir("studies").resolve()


def packaged_studies() -> list[str]:
    return sorted(p.stem for p in packaged_dir("studies").glob("*.yaml"))


def find_study_file(arg: str) -> Path:
    """A study file by path, or a shipped study by name (with or without .yaml)."""
    path = Path(arg).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError("study file", arg, "is a directory, not a study file")
    if "/" not in arg:
        for candidate in (packaged_dir("studies") / arg, packaged_dir("studies") / f"{arg}.yaml"):
            if candidate.is_file():
                return candidate
    raise ConfigError("study file", arg, f"no such file, nor a study that ships with ador "
                                         f"(shipped: {', '.join(packaged_studies())})")


def find_beside(name: str, beside: Path, kind: str, field: str) -> Path:
    """A file that a study or search-space file names: absolute, or relative to the naming file
    (``beside``). A search space (``kind`` "search_spaces") is looked for in a ``search_spaces/``
    folder beside that file or beside its folder (the layout of ador's own studies/ and
    search_spaces/), beside the file itself, then among the spaces that ship with ador; the
    .yaml suffix may be left out."""
    path = Path(name).expanduser()
    here = beside.parent
    if path.is_absolute():
        candidates = [path]
    elif kind:
        candidates = [here / kind / path, here.parent / kind / path, here / path, packaged_dir(kind) / path]
    else:
        candidates = [here / path]
    if not path.suffix:
        candidates += [c.with_name(c.name + ".yaml") for c in candidates]
    for c in candidates:
        if c.is_file() and c.resolve() != beside.resolve():
            return c
    folders = [c for c in candidates if c.is_dir()]
    if folders:
        raise ConfigError(field, name, f"{folders[0]} is a directory, not a file")
    where = ", ".join(dict.fromkeys(str(c.parent) for c in candidates))
    raise ConfigError(field, name, f"no such file (looked in {where})")


def storage_dir(option: str | None) -> Path | None:
    """``--storage-dir``, else ``$ADOR_STUDIES``, else None."""
    chosen = option or os.environ.get(STUDIES_ENV) or None
    return Path(chosen).expanduser() if chosen else None


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def file_storage(url: str, beside: Path) -> str:
    """A study file's ``storage:`` with a relative file path made relative to the study file."""
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest and not Path(rest).is_absolute() and "://" not in rest and not rest.startswith(":memory:"):
                return prefix + str(beside.parent.resolve() / rest)
            return url
    if "://" not in url:           # a bare file name (x.db, x.journal)
        return str(beside.parent.resolve() / url) if not Path(url).is_absolute() else url
    return url


def launch_storage(name: str, study_file: Path | None, *, storage: str | None = None,
                   file_storage_url: str | None = None, directory: str | None = None) -> tuple[str, Path | None]:
    """Where ``launch`` stores study ``name`` and the one folder it may create (or None)."""
    if storage:
        return storage, None
    if file_storage_url:
        return file_storage_url, None
    chosen = storage_dir(directory)
    if chosen is not None:
        return sqlite_url(chosen / f"{name}.db"), None
    if study_file is None or is_packaged(study_file):
        return sqlite_url(DEFAULT_DIR / f"{name}.db"), DEFAULT_DIR
    return sqlite_url(study_file.parent / f"{name}.db"), None


def read_storage(name: str, *, directory: str | None = None) -> tuple[str, list[Path]]:
    """The storage a reading command opens for study ``name`` (given by name), and the places
    it looked (for the error when there is none)."""
    chosen = storage_dir(directory)
    if chosen is not None:
        return sqlite_url(chosen / f"{name}.db"), [chosen]
    looked = [Path("."), DEFAULT_DIR]
    for d in looked:
        if (d / f"{name}.db").is_file():
            return sqlite_url(d / f"{name}.db"), looked
    return sqlite_url(DEFAULT_DIR / f"{name}.db"), looked
