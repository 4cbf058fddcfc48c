"""A study's trials as they arrive, for samplers whose bookkeeping must not rescan the study.

Each ``sync`` looks only at the trials added since the last one and at those still unfinished
then (a running trial is replaced by a new object when it changes, so they are looked up again by
position). Used by ador's NSGA-II/III (ador/explore/flat_ga.py) and TPE (ador/explore/flat_tpe.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


class TrialFeed:
    def __init__(self) -> None:
        self._cursor = 0                  # trials of the study looked at so far
        self._pending: list[int] = []     # positions of trials unfinished when looked at

    def sync(self, study: Study) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """The trials finished since the last call (in the order looked at), and those unfinished now."""
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        todo, self._pending = self._pending, []
        todo.extend(range(self._cursor, len(trials)))
        self._cursor = len(trials)
        finished = []
        for i in todo:
            if trials[i].state.is_finished():
                finished.append(trials[i])
            else:
                self._pending.append(i)
        return finished, [trials[i] for i in self._pending]
