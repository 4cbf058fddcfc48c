"""Fitted GPU efficiencies and runtime profiles: read from calibration.yaml beside this file (or
from the file ``ADOR_CALIBRATION`` names), written by `ador calibrate`."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import yaml

from ador.config import from_mapping
from ador.errors import ConfigError
from ador.hardware.devices import GpuEfficiency, GpuSpec

PACKAGED_CALIBRATION = Path(__file__).with_name("calibration.yaml")
# the calibration the model uses: the shipped one, or ADOR_CALIBRATION (a file `ador calibrate` wrote)
CALIBRATION_FILE = Path(os.environ.get("ADOR_CALIBRATION") or PACKAGED_CALIBRATION)


CALIBRATION_KEYS = ("fit", "gpus", "runtimes")      # what `ador calibrate` writes


def parse_calibration(path: Path) -> dict:
    """The calibration file's document ({} without a file); a file that is not a calibration is a ConfigError."""
    if not path.exists():
        return {}
    # libyaml's parser where PyYAML has it: the same document, a tenth of the time (about 25 ms of
    # every command's start-up with the pure-Python parser)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(path.read_text(), Loader=loader) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        # the calibration is read by every command: one line, from the full loader's diagnosis
        from ador.config import load_yaml
        try:
            load_yaml(path)
        except ConfigError as diagnosis:
            raise ConfigError("ADOR_CALIBRATION", str(path), diagnosis.reason) from None
        raise ConfigError("ADOR_CALIBRATION", str(path), f"cannot be read ({err.__class__.__name__})") from None
    if not isinstance(doc, dict) or not set(doc) <= set(CALIBRATION_KEYS):
        keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise ConfigError("ADOR_CALIBRATION", str(path), f"not a calibration written by `ador calibrate` (it holds "
                                                         f"{keys}; a calibration holds {', '.join(CALIBRATION_KEYS)})")
    return doc


@lru_cache(maxsize=4)
def _document(path: Path = CALIBRATION_FILE) -> dict:
    if path != PACKAGED_CALIBRATION and not path.is_file():
        raise ConfigError("ADOR_CALIBRATION", str(path), "no such calibration file (ador calibrate writes one)")
    return parse_calibration(path)


def scoring_digest(path: Path | None = None) -> str:
    """A short hash of what in the calibration scores designs -- the GPU efficiencies and runtime
    profiles -- read afresh: a refit that moves no constant (another date, another cross-validation)
    keeps it, so stored studies still resume. "none" without a calibration file."""
    path = CALIBRATION_FILE if path is None else path
    if not path.exists():
        return "none"
    doc = parse_calibration(path)
    scoring = {key: doc.get(key) for key in ("gpus", "runtimes")}
    return hashlib.sha256(json.dumps(scoring, sort_keys=True).encode()).hexdigest()[:8]


def fit_record(path: Path | None = None) -> dict:
    """The calibration's ``fit`` section: what was fitted on what, its errors (``heldout``: the
    5-fold held-out errors by metric family, written by ``ador calibrate --cv``)."""
    return _document(CALIBRATION_FILE if path is None else path).get("fit") or {}


def load_calibration(path: Path = CALIBRATION_FILE) -> dict[str, GpuEfficiency]:
    """GPU name -> fitted efficiency; empty if nothing has been fitted yet."""
    return {name: from_mapping(GpuEfficiency, values, f"calibration.gpus.{name}")
            for name, values in (_document(path).get("gpus") or {}).items()}


@lru_cache(maxsize=4)
def fitted_runtimes(path: Path = CALIBRATION_FILE) -> dict:
    """Profile name -> fitted RuntimeProfile (one per serving stack, plus "default")."""
    from ador.hardware.runtime import runtime_from_mapping
    return {name: runtime_from_mapping({"name": name, **values}, f"calibration.runtimes.{name}")
            for name, values in (_document(path).get("runtimes") or {}).items()}


def calibrated(spec: GpuSpec) -> GpuSpec:
    fitted = load_calibration().get(spec.name)
    return replace(spec, efficiency=fitted) if fitted else spec
