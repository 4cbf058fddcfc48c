"""Run the ``ador`` command with test instrumentation, for tests that kill it.

- ``ADOR_TEST_COMMIT_LOG=PATH``: right after each write returns (its commit is done: one trial,
  or a batch in one transaction), the trials' ids (system attribute ``ador_uid``) are appended to
  PATH, so a test can compare what the killed process committed with what the storage holds;
  ``PATH.intent`` gets them just before each write (what a kill may leave stored but not logged).
- ``ADOR_TEST_MUTANT=buffer50``: a deliberately broken recorder that holds the latest 50 trials
  in memory (reporting them written) and writes only those older; the kill test must catch it.
  ``ADOR_TEST_MUTANT=phantom``: one that stores, with its first write, a trial it was not given.
- ``ADOR_TEST_SLOW_CREATE=SECONDS``: each setting written while a study is created waits up to
  SECONDS (random), to widen the window a kill can land in; with ``ADOR_TEST_CREATE_STARTED=PATH``
  the first such write creates PATH, so a test can aim its kill at the creation however long the
  process took to start.
"""
import copy
import os
import random
import sys
import time
import uuid

import optuna

from ador.cli import main
from ador.explore import recorder

real_write = recorder.TrialRecorder.write_many

if os.environ.get("ADOR_TEST_MUTANT") == "buffer50":
    def write(self, trials, **kw):
        buffer = self.__dict__.setdefault("_buffer", [])
        buffer.extend(trials)
        if len(buffer) > 50:
            real_write(self, buffer[:-50])
            del buffer[:-50]
        return [-1 - i for i in range(len(trials))]        # ids that no stored trial has
elif os.environ.get("ADOR_TEST_MUTANT") == "phantom":
    def write(self, trials, **kw):
        """Stores, with its first write, one trial more than it was given (a copy under a new id)."""
        if not self.__dict__.get("_haunted"):
            self._haunted = True
            ghost = copy.copy(trials[0])
            ghost.system_attrs = {**ghost.system_attrs, "ador_uid": uuid.uuid4().hex}
            return real_write(self, [*trials, ghost], **kw)[:len(trials)]
        return real_write(self, trials, **kw)
else:
    write = real_write

log_path = os.environ.get("ADOR_TEST_COMMIT_LOG")
if log_path:
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    intent_fd = os.open(log_path + ".intent", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def logged_write(self, trials, **kw):
        for trial in trials:
            if "ador_uid" not in trial.system_attrs:      # ador gives every trial its id before writing it
                trial.system_attrs = {**trial.system_attrs, "ador_uid": uuid.uuid4().hex}
        # before the write: what may be stored (a kill after the commit, before the log below)
        os.write(intent_fd, "".join(t.system_attrs["ador_uid"] + "\n" for t in trials).encode())
        ids = write(self, trials, **kw)
        os.write(log_fd, "".join(t.system_attrs["ador_uid"] + "\n" for t in trials).encode())
        return ids
    recorder.TrialRecorder.write_many = logged_write

slow = float(os.environ.get("ADOR_TEST_SLOW_CREATE") or 0)
started = os.environ.get("ADOR_TEST_CREATE_STARTED")
if slow:
    from ador.explore import runner
    # every write of a creation: settings, baseline summaries, the objectives' names
    for owner, method in ((optuna.Study, "set_user_attr"), (optuna.Study, "set_metric_names"),
                          (runner, "write_setting")):
        real = getattr(owner, method)

        def slowed(*args, _real=real, **kwargs):
            if started and not os.path.exists(started):
                open(started, "w").close()
            time.sleep(random.uniform(0, slow))
            return _real(*args, **kwargs)
        setattr(owner, method, slowed)

sys.exit(main(sys.argv[1:]))
