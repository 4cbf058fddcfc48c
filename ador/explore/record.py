"""What a study and its trials store, and how it is read back (older layouts included).

A trial stores what optuna-dashboard, ``optuna.load_study`` and a resume need, and no more:

- its parameters (one per knob) and objective values;
- its feasibility as Optuna constraints (``Trial.set_constraint``: one named value per
  constraint, <= 0 feasible), so ``Study.best_trials`` is the feasible front;
- a compact record as user attributes: one number per metric of ``stored_metrics`` (scalars, so
  ``trials_dataframe()`` has a column for each), ``feasible``, and ``infeasible_reasons`` when
  there are any;
- for the reading commands, system attributes: a digest of its design (``ador_design``), its
  write id (``ador_uid``) and its row of the study's table (``ador_table_row``, one JSON array:
  ador/explore/table_rows.py), so a whole-table read is one row per trial instead of ~35.

The full design is rebuilt on demand from the parameters and the search space stored with the
study (``design_of``). Trials written before this layout kept the whole design (``design``) and a
``metrics`` dict as user attributes; both are still read.

A study keeps its settings (definition, model version, sampler, GPU baselines, ...) as Optuna
*system* attributes, out of what ``optuna studies`` prints and optuna-dashboard sends. Its user
attributes hold one compact entry per GPU baseline, ``baseline:<gpu>``: the study's objectives
on that GPU and whether it meets the study's SLOs and constraints (``feasible``, and ``misses``
with the reasons when it does not). Studies created before kept the settings as user
attributes; ``settings`` reads both.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from optuna.trial import FrozenTrial, TrialState

from ador.errors import AdorError, ConfigError

if TYPE_CHECKING:
    import optuna

    from ador.explore.config import Study
    from ador.hardware import Device

# metrics every trial keeps (besides the study's objectives and constrained metrics): what the
# tables, reports and plots show
STORED_METRICS = ("ttft_ms", "tbt_ms", "tbt_p99_ms", "e2e_ms", "output_tok_s", "output_tok_s_per_mm2",
                  "output_tok_s_per_package_mm2", "die_area_mm2", "dies", "package_area_mm2", "tdp_w", "cost_usd",
                  "memory_utilisation", "energy_per_token_j", "output_tok_s_per_w")
FEASIBLE = "feasible"
REASONS = "infeasible_reasons"
BASELINE_PREFIX = "baseline:"
# study settings, kept as system attributes (user attributes in studies made before)
SETTINGS = ("ador_config", "ador_config_hash", "ador_model_version", "ador_sampler", "ador_created",
            "ador_baselines", "ador_complete")


# --- trials ----------------------------------------------------------------------------------

def stored_metrics(study: Study) -> tuple[str, ...]:
    """The metrics a trial of ``study`` keeps: the common ones, its objectives, the metrics its
    constraints name and, in a system-level study, the deployment's (besides every ``serving_*``
    figure of a study judged by serving: values, intervals, replications)."""
    from ador.explore.metrics import SYSTEM_METRICS
    names = list(STORED_METRICS) + study.metric_names + [c.metric for c in study.all_constraints()]
    if study.spec.load is not None:
        names += sorted(SYSTEM_METRICS | {"system_die_area_mm2", "system_package_area_mm2"})
    return tuple(dict.fromkeys(names))


def trial_attrs(metrics: dict[str, float], reasons: list[str], keep: tuple[str, ...]) -> dict[str, Any]:
    """The user attributes of a scored trial."""
    out: dict[str, Any] = {m: float(v) for m, v in metrics.items() if m in keep or m.startswith("serving_")}
    out[FEASIBLE] = not reasons
    if reasons:
        out[REASONS] = list(reasons)
    return out


def metrics_of(trial: FrozenTrial, objectives: Sequence[str] = ()) -> dict[str, float]:
    """The metrics a trial stored (any layout); the ``objectives`` named are taken from its values,
    which every client stores (another client's trial has none of ador's attributes)."""
    old = trial.user_attrs.get("metrics")
    stored = old if isinstance(old, dict) else \
        {k: v for k, v in trial.user_attrs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if objectives and trial.values is not None:
        return {**stored, **dict(zip(objectives, trial.values))}
    return stored


def metric_of(trial: FrozenTrial, name: str, objectives: Sequence[str] = ()) -> float | None:
    """One metric (``metrics_of``), or None when it is missing or not finite."""
    v = metrics_of(trial, objectives).get(name)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def is_feasible(trial: FrozenTrial) -> bool:
    """A completed trial whose every constraint is <= 0 (Optuna's rule); a trial stored without
    constraints falls back on its ``feasible`` attribute."""
    if trial.state != TrialState.COMPLETE:
        return False
    constraints = trial.constraints
    if constraints:
        return all(v <= 0 for v in constraints.values())
    return bool(trial.user_attrs.get(FEASIBLE))


def reasons_of(trial: FrozenTrial) -> list[str]:
    return list(trial.user_attrs.get(REASONS) or [])


def design_of(study: Study, trial: FrozenTrial) -> Device:
    """The design a trial scored: rebuilt from its parameters and the study's search space (or
    read back from a trial that stored it whole)."""
    from ador.hardware import device_from_mapping
    stored = trial.user_attrs.get("design")
    if isinstance(stored, dict):
        return device_from_mapping(stored, f"trial {trial.number}: design")
    from ador.explore.params import knob_values
    from ador.explore.space import DESIGN
    try:
        values = knob_values(study.space, trial.params)
    except KeyError as err:
        raise ConfigError("trial", trial.number, f"has no value for knob {err.args[0]} of the stored search "
                                                 "space") from None
    device = values.get("system.device", DESIGN)      # a system-level study's trial may deploy a GPU
    if device != DESIGN:
        from ador.hardware import GPUS
        return GPUS[device]
    broken = study.space.violated(values)
    if broken:
        raise ConfigError("trial", trial.number, f"its knobs break the search space's constraints "
                                                 f"({'; '.join(broken)}): no design was built")
    try:
        return study.space.design(values, name=f"{study.name}-trial-{trial.number}")
    except AdorError as err:
        raise ConfigError("trial", trial.number, f"its knobs give no valid design ({err})") from None


def design_mapping(study: Study, trial: FrozenTrial) -> dict[str, Any]:
    """The trial's design as a mapping (YAML-ready), named after the study and trial."""
    from ador.hardware import device_to_mapping
    data = device_to_mapping(design_of(study, trial))
    data["name"] = f"{study.name}-trial-{trial.number}"
    return data


# --- studies ---------------------------------------------------------------------------------

def write_setting(durable: optuna.Study, key: str, value: Any) -> None:
    """Store one study setting (a system attribute, through the storage's public API)."""
    durable._storage.set_study_system_attr(durable._study_id, key, value)


def settings(durable: optuna.Study) -> dict[str, Any]:
    """The study's settings, wherever its ador version kept them."""
    storage, sid = durable._storage, durable._study_id
    system = storage.get_study_system_attrs(sid)
    found = {k: system[k] for k in SETTINGS if k in system}
    if len(found) < len(SETTINGS):
        user = storage.get_study_user_attrs(sid)
        found.update({k: user[k] for k in SETTINGS if k in user and k not in found})
    return found


def baselines_of(durable: optuna.Study) -> dict[str, dict[str, Any]]:
    """GPU -> its stored evaluation (metrics, feasible, infeasible_reasons, runtime, ...)."""
    return dict(settings(durable).get("ador_baselines") or {})


def baseline_summary(base: dict[str, Any], objectives: list[str]) -> dict[str, Any]:
    """The compact user attribute of one GPU baseline (what optuna-dashboard shows)."""
    metrics = base.get("metrics") or {}
    out: dict[str, Any] = {m: metrics[m] for m in objectives if m in metrics}
    out[FEASIBLE] = bool(base.get(FEASIBLE))
    if not out[FEASIBLE]:
        out["misses"] = "; ".join(base.get(REASONS) or [base.get("error", "not evaluated")])
    return out
