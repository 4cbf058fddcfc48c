"""Exact Pareto fronts: every design of a search space scored with the population formulas.

``enumerate_front`` walks the space's grid in chunks (memory stays bounded by the chunk and the
front, never by the space), scores each chunk in one vectorised call, judges it as a study
judges a trial, and keeps only the feasible non-dominated designs and the range each objective
spans over all feasible designs. ``ador study enumerate FILE`` writes the result as JSON beside the
study's SQLite file (``<study>.front.json``); ``ador study report`` and the search-quality benchmark
read it to say which fraction of the exact front's hypervolume a sampler's front reaches.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ador.errors import ConfigError
from ador.explore.pareto import hypervolume, to_minimise

MAX_DESIGNS = 10 ** 8          # designs one enumeration may score
CHUNK_DESIGNS = 1 << 16        # designs scored per vectorised call
FRONT_SUFFIX = ".front.json"


@dataclass(frozen=True)
class ExactFront:
    """The feasible Pareto front of a whole space, and the range of each objective over every
    feasible design (``low``/``high`` in the objective's own units; hypervolume fractions are
    taken in that box)."""
    study: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    designs: int                         # knob combinations in the space (the grid of its knobs)
    valid: int                           # of them, accepted by the space's rules and the system
    feasible: int                        # of them, meeting every constraint
    low: tuple[float, ...]
    high: tuple[float, ...]
    points: tuple[tuple[float, ...], ...]   # objective values of the front's designs
    params: tuple[dict[str, Any], ...]      # their knob values
    seconds: float
    config_hash: str
    model_version: str
    # the same three counts of distinct designs (knob values a design makes inert name it once);
    # None where they were not counted (a derived switch, or a front written before they were)
    distinct_designs: int | None = None
    distinct_valid: int | None = None
    distinct_feasible: int | None = None

    def counts(self) -> str:
        """'N designs (V valid, F feasible)', distinct designs where counted, else knob combinations."""
        if self.distinct_designs is None:
            return (f"{self.designs:,} knob combinations ({self.valid:,} valid, {self.feasible:,} feasible; "
                    f"distinct designs not counted)")
        return (f"{self.distinct_designs:,} distinct designs ({self.distinct_valid:,} valid, "
                f"{self.distinct_feasible:,} feasible) from {self.designs:,} knob combinations")

    def scale(self):
        """Objectives to [0, 1] over the feasible designs of the space (in the minimising sense)."""
        lo = to_minimise([self.low], self.directions)[0]
        hi = to_minimise([self.high], self.directions)[0]
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        span = np.where(hi > lo, hi - lo, 1.0)
        return lambda q: (to_minimise(q, self.directions) - lo) / span

    def hypervolume(self) -> float:
        return hypervolume(list(self.points), self.directions, scale=self.scale())

    def fraction(self, points: Sequence[Sequence[float]]) -> float:
        """Hypervolume of ``points`` (feasible objective vectors) over the exact front's."""
        exact = self.hypervolume()
        return hypervolume(list(points), self.directions, scale=self.scale()) / exact if exact else float("nan")

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @staticmethod
    def load(path: Path) -> ExactFront:
        try:
            raw = json.loads(Path(path).read_text())
            return ExactFront(**{**raw, **{k: tuple(raw[k]) for k in ("objectives", "directions", "low", "high")},
                                 "points": tuple(tuple(p) for p in raw["points"]), "params": tuple(raw["params"])})
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ConfigError("front", str(path), f"not an exact front written by ador study enumerate ({err})") \
                from None


def front_path(url: str, name: str) -> Path | None:
    """Where the exact front of study ``name`` stored at ``url`` lives: beside its SQLite file."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(url[len(prefix):]).parent / f"{name}{FRONT_SUFFIX}"


def space_designs(study) -> int:
    total = 1
    for name, knob in study.space.knobs.items():
        total *= knob.size(f"search_space.knobs.{name}")
    return total


def _nondominated(q: np.ndarray) -> np.ndarray:
    import moocore
    if len(q) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(q, keep_weakly=True), dtype=bool)


def enumerate_front(study, *, limit: int = MAX_DESIGNS, chunk: int = CHUNK_DESIGNS, progress: bool = False,
                    stream=None) -> ExactFront:
    """Score every design of ``study``'s space and keep its exact feasible front."""
    from ador.explore.batch import BatchScorer, population_capable
    from ador.explore.config import model_version
    from ador.explore.runner import Scorer
    from ador.explore.columns import design_arrays
    from ador.progress import Progress
    if not population_capable(study):
        raise ConfigError("study", study.name, "cannot be enumerated: it needs the serving simulator, system knobs "
                                               "or an offered load, which have no population formulas")
    total = space_designs(study)
    if total > limit:
        raise ConfigError("search_space", f"{total:,} designs", f"too many to enumerate (at most {limit:,}); "
                                                                  "narrow the knobs or coarsen their steps")
    space = study.space
    names = list(space.knobs)
    grids = [np.array(space.knobs[n].grid(n)) for n in names]
    sizes = [len(g) for g in grids]
    score = BatchScorer(Scorer(study))
    k = len(study.metric_names)
    front_q = np.zeros((0, k))
    front_cols: dict[str, np.ndarray] = {n: g[:0] for n, g in zip(names, grids)}
    low = np.full(k, np.inf)
    high = np.full(k, -np.inf)
    valid = feasible = 0
    firsts = {n: g[0] for n, g in zip(names, grids)}
    distinct: list[int] | None = [0, 0, 0]           # designs, valid, feasible: one count per design
    bar = Progress(total=total, label=f"enumerate {study.name}", stream=stream) if progress else None
    start = time.perf_counter()
    try:
        for first in range(0, total, chunk):
            index = np.arange(first, min(total, first + chunk), dtype=np.int64)
            columns = {}
            rest = index.copy()
            for name, grid, size in zip(reversed(names), reversed(grids), reversed(sizes)):
                columns[name] = grid[rest % size]
                rest //= size
            designs = design_arrays(space, columns)
            ok = designs.valid.copy()
            if designs.arrays.n:
                metrics = score.metrics(designs.arrays)
                good = score.system_ok(designs.arrays) & score.feasible(metrics)
                ok[ok] = good
                values = np.column_stack([metrics[m] for m in study.metric_names])[good]
            else:
                values = np.zeros((0, k))
            valid += int(designs.valid.sum())
            feasible += int(ok.sum())
            if distinct is not None:
                canon = space.canonical(columns, firsts)
                distinct = None if canon is None else [
                    distinct[0] + int(canon.sum()), distinct[1] + int((canon & designs.valid).sum()),
                    distinct[2] + int((canon & ok).sum())]
            q = to_minimise(values, study.directions)
            if len(q):
                low, high = np.minimum(low, q.min(axis=0)), np.maximum(high, q.max(axis=0))
            merged = np.vstack([front_q, q])
            keep = _nondominated(merged)
            front_q = merged[keep]
            front_cols = {n: np.concatenate([front_cols[n], columns[n][ok]])[keep] for n in names}
            if bar:
                bar.update(int(index[-1]) + 1, feasible=feasible, front=len(front_q))
    finally:
        if bar:
            bar.close()
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in study.directions])
    order = np.lexsort(front_q.T[::-1]) if len(front_q) else np.zeros(0, dtype=int)
    # one entry per design: knob values that differ only in knobs the design makes inert name it once
    seen: set[tuple] = set()
    entries = []
    for i in order:
        values = {n: front_cols[n][i].item() for n in names}
        key = space.design_values(values)
        if key not in seen:
            seen.add(key)
            entries.append((i, values))
    points = tuple(tuple(float(v) for v in front_q[i] * sign) for i, _ in entries)
    params = tuple(values for _, values in entries)
    lo, hi = (low * sign, high * sign) if feasible else (np.full(k, math.nan), np.full(k, math.nan))
    return ExactFront(study=study.name, objectives=tuple(study.metric_names), directions=tuple(study.directions),
                      designs=total, valid=valid, feasible=feasible, low=tuple(map(float, lo)),
                      high=tuple(map(float, hi)), points=points, params=params,
                      seconds=time.perf_counter() - start, config_hash=study.config_hash(),
                      model_version=model_version(), distinct_designs=distinct[0] if distinct else None,
                      distinct_valid=distinct[1] if distinct else None,
                      distinct_feasible=distinct[2] if distinct else None)


def write_front(file: str, *, storage: str | None = None, storage_dir: str | None = None, limit: int = MAX_DESIGNS,
                progress: bool = True) -> str:
    """``ador study enumerate FILE``: the exact front of the study's space, written beside the
    study's SQLite file (where ``launch`` puts it); returns the summary line."""
    from ador.explore.config import load_study
    from ador.explore.locate import find_study_file, launch_storage
    study = load_study(find_study_file(file))
    url, folder = launch_storage(study.name, study.path, storage=storage, file_storage_url=study.spec.storage,
                                 directory=storage_dir)
    path = front_path(url, study.name)
    if path is None:
        raise ConfigError("--storage", url, "the exact front is stored beside a SQLite file: give a sqlite:/// URL")
    front = enumerate_front(study, limit=limit, progress=progress)
    if folder is not None:
        folder.mkdir(exist_ok=True)
    front.save(path)
    rate = front.designs / front.seconds if front.seconds else float("inf")
    return (f"{front.designs:,} knob combinations scored in {front.seconds:.1f} s ({rate:,.0f}/s): {front.counts()}; "
            f"exact front of {len(front.points)} distinct designs written to {path}")


def stored_front(study, url: str) -> ExactFront | None:
    """The exact front ``enumerate`` stored beside study ``study`` (None: none, or one made from
    another definition or another model version)."""
    from ador.explore.config import model_version
    path = front_path(url, study.name)
    if path is None or not path.is_file():
        return None
    front = ExactFront.load(path)
    if front.config_hash != study.config_hash() or front.model_version != model_version():
        return None
    return front
