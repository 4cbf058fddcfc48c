"""What each seed of each study recommends: the knee of its front (normalised distance to the ideal
point, ador/explore/pareto.py) and the two corners beside it, read from storage."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ador.explore.config import Study
from ador.explore.pareto import front_trials
from ador.explore.record import design_mapping, design_of, metrics_of
from ador.hardware import AdorChip
from ador.headline.plan import SEEDS
from ador.headline.runs import seeded, storage_url
from ador.report.data import KNEE, picks


@dataclass(frozen=True)
class Pick:
    """One design of one seed's front."""
    seed: int
    which: str                  # "knee", "lowest tbt_p99_ms", ...
    trial: int
    design: AdorChip
    mapping: dict[str, Any]     # the design as a YAML mapping (written beside the report)
    metrics: dict[str, float]   # as the study stored them


@dataclass(frozen=True)
class Searched:
    """One role's study over its seeds."""
    role: str
    study: Study                # the first seed's (every seed shares the file's rules)
    trials: dict[int, int]      # seed -> completed trials
    front_sizes: dict[int, int]  # seed -> distinct feasible Pareto designs
    knees: dict[int, Pick]
    corners: dict[int, list[Pick]]
    fronts: dict[int, list[tuple[float, ...]]]    # seed -> objective values of the front

    @property
    def seeds(self) -> list[int]:
        return sorted(self.knees)


def load(role: str, storage_dir: str | Path, seeds: Sequence[int] = SEEDS) -> Searched:
    """Every seed's picks of ``role`` (seeds whose study has no feasible design are left out)."""
    from ador.explore.runner import load_stored
    knees, corners, trials, sizes, fronts = {}, {}, {}, {}, {}
    first = None
    for seed in seeds:
        study = seeded(role, seed)
        first = first or study
        stored, durable, _ = load_stored(study.name, storage_url(storage_dir, study))
        done = durable.get_trials(deepcopy=False)
        trials[seed] = sum(1 for t in done if t.state.name == "COMPLETE")
        front = front_trials(done, stored.directions, space=stored.space)
        sizes[seed] = len(front)
        fronts[seed] = [tuple(t.values) for t in front]
        chosen = picks(stored, done)
        if not chosen:
            continue
        made = {which: Pick(seed, which, t.number, _chip(design_of(stored, t)), design_mapping(stored, t),
                            metrics_of(t)) for which, t in chosen.items()}
        knees[seed] = made.pop(KNEE)
        corners[seed] = list(made.values())
    if first is None:
        raise ValueError("no seeds")
    return Searched(role, first, trials, sizes, knees, corners, fronts)


def _chip(device) -> AdorChip:
    if not isinstance(device, AdorChip):       # the headline's studies search the ADOR template only
        raise TypeError(f"{device.name} is not an ADOR design")
    return device


def feasible_population(role: str, storage_dir: str | Path, seed: int) -> list[tuple[AdorChip, dict[str, float]]]:
    """Every distinct feasible design of one seed's study, with its stored metrics."""
    from ador.explore.record import is_feasible
    from ador.explore.runner import load_stored
    study = seeded(role, seed)
    stored, durable, _ = load_stored(study.name, storage_url(storage_dir, study))
    seen: dict[tuple, tuple[AdorChip, dict[str, float]]] = {}
    for t in sorted(durable.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state.name == "COMPLETE" and is_feasible(t):
            key = tuple(sorted((k, repr(v)) for k, v in t.params.items()))
            if key not in seen:
                seen[key] = (_chip(design_of(stored, t)), metrics_of(t))
    return list(seen.values())


@dataclass(frozen=True)
class Spread:
    """A quantity over seeds: its median and range."""
    values: dict[int, float]

    @property
    def median(self) -> float:
        return statistics.median(self.values.values())

    @property
    def low(self) -> float:
        return min(self.values.values())

    @property
    def high(self) -> float:
        return max(self.values.values())

    def text(self, fmt: str = "{:.2f}x") -> str:
        if len(self.values) == 1:
            return fmt.format(self.median)
        if fmt.format(self.low) == fmt.format(self.high):
            return f"{fmt.format(self.median)} (every seed)"
        return f"{fmt.format(self.median)} ({fmt.format(self.low)}-{fmt.format(self.high)})"


def median_seed(spread: Spread) -> int:
    """The seed whose value is the median (the lower middle one for an even count): its design is
    the one the report names."""
    ordered = sorted(spread.values, key=lambda s: (spread.values[s], s))
    return ordered[(len(ordered) - 1) // 2]

