"""A study's trials as they arrive, for samplers whose bookkeeping must not rescan the study.

Each ``sync`` looks only at the trials added since the last one and at those still unfinished
then (a running trial is replaced by a new object when it changes, so they are looked up again by
position). A feed reads one study: a sampler given another study (Optuna's samplers may be), or
unpickled (the feed keeps no study through a pickle), sees ``read_another`` true and starts its
bookkeeping afresh. Used by ador's NSGA-II/III (ador/explore/flat_ga.py) and TPE
(ador/explore/flat_tpe.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


class TrialFeed:
    _bound = False                        # (a feed pickled before ``start`` existed)

    def __init__(self) -> None:
        self._study: tuple[object, int] | None = None    # (storage, study id) read
        self._cursor = 0                  # trials of the study looked at so far
        self._pending: list[int] = []     # positions of trials unfinished when looked at
        self._bound = False               # started on a study (``start``) before reading any trial

    def start(self, study: Study) -> None:
        """Read ``study`` from now on, though it has no trials yet (its reader holds bookkeeping for
        it already: a sampler primed with a stored study's trials)."""
        assert not self.started, "a feed reads one study"
        self._study = (study._storage, study._study_id)
        self._bound = True

    def is_reading(self, study: Study) -> bool:
        return self._study is not None and self._study[0] is study._storage and self._study[1] == study._study_id

    @property
    def started(self) -> bool:
        """Whether it has read a study (in this process, or before a pickle)."""
        return self._study is not None or self._cursor > 0 or self._bound

    def read_another(self, study: Study) -> bool:
        """Whether it has read a study other than ``study`` (or one before a pickle): its reader's
        bookkeeping is another study's, to be dropped with the feed. A fresh feed has read none."""
        return self.started and not self.is_reading(study)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_study": None}        # storages do not pickle; read afresh after

    def sync(self, study: Study) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """The trials finished since the last call (in the order looked at), and those unfinished now."""
        if not self.is_reading(study):
            assert self._study is None, "a feed reads one study: the sampler starts a new feed for another"
            self._study = (study._storage, study._study_id)
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
