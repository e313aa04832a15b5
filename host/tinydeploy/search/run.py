"""The search driver: storage, workers, progress, and the Pareto front.

Every worker runs the same command against one Optuna storage: an SQLite file in the output directory by default (an
interrupted search resumes with the same command), or PostgreSQL (``--storage postgresql://...``) shared by workers on
several machines. Optuna gives each trial its number inside the storage's transaction, so workers never duplicate
one; the study stops taking new trials when ``--trials`` have finished in all (constraint rejections and early stops
included). Every trial carries its worker's name (host:pid) from the transaction that creates it, so a trial left running
by a worker killed at any moment is failed: at once when that worker ran on this machine (its process is gone), else by
Optuna's heartbeat after ``GRACE_SECONDS``.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ..errors import TinyDeployError

HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 120
WORKER = f"{socket.gethostname()}:{os.getpid()}"
FINISHED = ("COMPLETE", "PRUNED")  # what counts toward --trials: a failed or killed trial is run again


def storage_url(storage: str | None, out_dir: Path) -> str:
    return storage or f"sqlite:///{(out_dir / 'search.db').resolve()}"


def check_storage_url(url: str) -> None:
    """A storage this command can use (before anything is written), or a one-line error that says what to do."""
    if url.startswith(("postgresql", "postgres")):
        try:
            import psycopg  # noqa: F401  (SQLAlchemy 2.1's default PostgreSQL driver)
        except ImportError:
            raise TinyDeployError("PostgreSQL storage needs the psycopg driver", "pip install 'psycopg[binary]'") from None
    elif not url.startswith("sqlite"):
        raise TinyDeployError(f"unsupported storage {url.split(':')[0]!r}",
                              "Use sqlite:///FILE (the default) or postgresql://USER@HOST:PORT/DB")


def open_storage(url: str):
    """An Optuna RDB storage with heartbeats, or a one-line error that says what to do."""
    import optuna

    check_storage_url(url)
    kw = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return _worker_tagged_storage()(url, engine_kwargs=kw, heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS)
        except Exception as e:  # sqlalchemy's OperationalError and kin: the server or file cannot be reached
            if any(m in str(e) for m in ("duplicate key", "UNIQUE constraint", "already exists")):
                # two workers creating Optuna's tables at the same moment (a row or a whole table, such as
                # alembic_version, PostgreSQL's DuplicateTable): the other one won; open them again
                time.sleep(0.5 + attempt)
                continue
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            # a server that cannot be reached is the environment (exit 3); a bad SQLite path is the user's input (2)
            raise TinyDeployError(f"cannot open the search storage ({first[:160]})",
                                  "Check the URL, that the server runs and the database exists",
                                  exit_code=3 if url.startswith("postgres") else 2) from None
    raise TinyDeployError("cannot open the search storage (its tables kept changing under it)",
                          "Run the command again")


def _worker_tagged_storage():
    """Optuna's RDB storage whose new trials carry ``user_attrs["worker"] = WORKER`` from the transaction that creates
    them. Tagged by the objective instead, a worker killed between Optuna's ``ask()`` and that write (tens of
    milliseconds) left a running trial nobody could recognise as its orphan. Overrides the step Optuna 5.0's cached
    storage calls (``_create_new_trial``; the version is pinned, and tests/test_search.py checks the tag)."""
    from datetime import datetime

    import optuna
    from optuna.trial import FrozenTrial, TrialState

    class WorkerTaggedStorage(optuna.storages.RDBStorage):
        def _create_new_trial(self, study_id, template_trial=None):
            if template_trial is None:  # a trial of this worker's ask() (an enqueued one comes with its template)
                template_trial = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None,
                                             datetime_start=datetime.now(), datetime_complete=None, params={},
                                             distributions={}, user_attrs={"worker": WORKER}, system_attrs={},
                                             intermediate_values={}, trial_id=-1)
            return super()._create_new_trial(study_id, template_trial)

    return WorkerTaggedStorage


def fail_orphans(study) -> int:
    """Fail this machine's trials whose worker process is gone (killed, so Optuna never heard of its end)."""
    from optuna.trial import TrialState

    host, n = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker", "")
        h, _, pid = w.rpartition(":")
        if h == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            study.tell(t.number, state=TrialState.FAIL)
            n += 1
    return n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(getattr(TrialState, s) for s in FINISHED)))


def front(study) -> list:
    """The completed trials no other completed trial beats on both objectives (accuracy up, latency down), fastest
    first."""
    from optuna.trial import TrialState

    from ..plotting import pareto

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and "duplicate_of" not in t.user_attrs]
    return [done[i] for i in pareto([(t.values[1], t.values[0]) for t in done])]


def progress_line(study, trial, target: int, t_start: float, mine: int, timeout: float | None = None) -> str:
    """One line per finished trial: what it was, what it scored or why it stopped, the front, time left."""
    from optuna.trial import TrialState

    c = trial.user_attrs.get("candidate", "{}")
    desc = c
    try:
        from .space import Candidate

        desc = Candidate.from_json(c).describe()
    except (ValueError, KeyError):
        pass
    if trial.state == TrialState.COMPLETE and "duplicate_of" in trial.user_attrs:
        what = f"proposed again: trial {trial.user_attrs['duplicate_of']}'s figures, not trained twice"
    elif trial.state == TrialState.COMPLETE:
        what = (f"{trial.user_attrs.get('metric', 'accuracy')} {trial.values[0]:.4f}, {trial.values[1]:.2f} ms "
                f"({trial.user_attrs.get('latency_kind')}), {trial.user_attrs.get('model_bytes', 0):,} B")
    elif trial.state == TrialState.PRUNED:
        rejected = trial.user_attrs.get("rejected")
        what = f"rejected {rejected}" if rejected else "stopped early: below the median of faster trials"
    else:
        what = "failed: " + str(trial.system_attrs.get("fail_reason", "see the log")).splitlines()[0][:200]
    n = finished(study)
    f = front(study)
    best = max((t.values[0] for t in f), default=None)
    elapsed = time.monotonic() - t_start
    need = None if mine == 0 or n >= target else elapsed / mine * (target - n)
    if timeout is not None:  # this worker stops starting trials at its --timeout
        need = max(timeout - elapsed, 0) if need is None else min(need, max(timeout - elapsed, 0))
    left = "" if need is None else f", about {need / 60:.0f} min left for this worker"
    return (f"trial {trial.number} ({n}/{target}): {desc} -> {what} | front {len(f)} model(s)"
            + (f", best {best:.4f}" if best is not None else "") + f" | {elapsed / 60:.1f} min{left}")
