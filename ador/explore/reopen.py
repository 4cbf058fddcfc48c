"""Reopening a stored study, for the commands that read it and those that add trials to it.

Kept apart from the runner (ador/explore/runner.py), which imports the samplers, the scoring and
the serving simulator: a command that only reads a study (status, best, export) imports none of
them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ador.errors import ConfigError
from ador.explore.config import Study, model_version, study_from_dict
from ador.explore.locate import STUDIES_ENV, launch_storage, read_storage
from ador.explore.record import REASONS, settings
from ador.explore.storage import NoStorageError, check_study_name, open_storage, redact
from ador.explore.stored import StoredTrials

optuna.logging.set_verbosity(optuna.logging.WARNING)

COMPLETE_KEY = "ador_complete"   # written last when a study is created: without it the creation was cut short


def is_made(durable: optuna.Study) -> bool:
    """Creation finished: the marker, or trials (a study made before the marker existed)."""
    return bool(settings(durable).get(COMPLETE_KEY)) or bool(StoredTrials(durable._storage, durable._study_id).counts())


def fail_orphans(durable: optuna.Study) -> int:
    """Mark RUNNING trials as FAIL. ador's workers never leave a trial RUNNING in storage (a trial is
    written once, finished), so a RUNNING trial belongs to a client that died mid-trial (a plain
    Optuna process, or an older ador); left alone it would never finish."""
    storage = durable._storage
    orphans = StoredTrials(storage, durable._study_id).load(states=(TrialState.RUNNING,), user_attrs=False)
    for t in orphans:
        storage.set_trial_user_attr(t._trial_id, REASONS, ["worker died while this trial was running"])
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(orphans)


def check_same(study: Study, attrs: dict[str, Any]) -> None:
    if attrs.get("ador_config_hash") != study.config_hash():
        stored = attrs.get("ador_config", {})
        current = study.to_dict()
        changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        raise ConfigError("study", study.name, f"the stored study was created from a different definition "
                                               f"(changed: {', '.join(changed) or 'details'}); launch it under "
                                               f"another name or restore the original file")
    if attrs.get("ador_model_version") != model_version():
        raise ConfigError("study", study.name, f"the stored study was scored by model {attrs.get('ador_model_version')}"
                                               f", this ador is {model_version()}; results would mix two models, "
                                               f"so launch it under another name")


def load_stored(name: str, storage_url: str | None, *, write: bool = False, storage_dir: str | None = None,
                reads_only: bool = False) -> tuple[Study, optuna.Study, str]:
    """Reopen a stored study from its storage alone (no study file needed). ``name`` is a study
    name, or a study file (its storage is found where ``launch`` put it). ``write``: the caller
    will add trials (RUNNING trials of dead clients are failed first); reading creates nothing.
    ``reads_only``: the caller reads only through ador's reads and Optuna's storage API (status,
    best, export), which a database then answers without Optuna's storage (open_storage)."""
    url, looked = storage_url, list[Path]()
    if name.endswith((".yaml", ".yml")) and not storage_url:
        from ador.explore.config import load_study
        from ador.explore.locate import find_study_file
        study_file = load_study(find_study_file(name))
        name = study_file.name
        url, _ = launch_storage(name, study_file.path, file_storage_url=study_file.spec.storage,
                                directory=storage_dir)
    check_study_name(name)
    if url is None:
        url, looked = read_storage(name, directory=storage_dir)
    try:
        storage = open_storage(url, create=False, reads_only=reads_only and not write)
    except NoStorageError as err:
        where = f" (looked in {', '.join(str(d) for d in looked)}; --storage-dir or ${STUDIES_ENV} name " \
                "another folder)" if looked else ""
        raise ConfigError("study", name, f"no such study: {err.value} {err.reason}{where}") from None
    try:
        durable = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise ConfigError("study", name, f"no such study in {redact(url)} "
                                         f"(studies: {', '.join(names) or 'none'})") from None
    try:
        attrs = settings(durable)
    except RecursionError:
        raise ConfigError("study", name, "its stored settings are nested too deeply to read") from None
    if not is_made(durable):
        raise ConfigError("study", name, "has no settings: its creation was interrupted (launch it again to finish "
                                         "it) or it was not made by ador")
    if "ador_config" not in attrs:
        raise ConfigError("study", name, "was not created by ador (no stored definition)")
    study = study_from_dict(attrs["ador_config"], name)
    if write:
        fail_orphans(durable)
    return study, durable, url
