"""`tinydeploy search` with real parts: real Optuna storages (an SQLite file; a PostgreSQL server started here),
real worker processes, real training on a small subset of the pneumonia dataset, the TF-free analyzer as the judge
of fit. Latency comes from the cycle model here (--no-emulate) to keep the tests short; the emulated path is the same
`measure()` the study and `build --arena measured` use, tested in test_emulate.py."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import missing, run_cli

pytestmark = pytest.mark.slow  # trains with TensorFlow

BASE = ("search", "--dataset", "pneumonia", "--subset", "300", "--epochs", "1", "--no-emulate")


def _study(url: str, name: str = "pneumonia-nano33ble"):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=url)


def test_a_candidate_that_cannot_fit_is_rejected_before_training(tmp_path):
    """With 144 bytes of RAM left for the application no candidate fits: every trial is rejected by the analyzer
    before it trains: no epoch is run (its time is not asserted: the tests share the cores)."""
    out = tmp_path / "s"
    r = run_cli(*BASE, "--trials", "3", "--reserve-ram", "262000", "-o", out, "--json", "-", timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["trials"]["PRUNED"] == 3 and rep["rejected_before_or_after_training"] == 3 and rep["front"] == []
    assert "epoch 1/1" not in r.stderr and r.stderr.count("rejected before training: does not fit:") == 3
    study = _study(f"sqlite:///{out / 'search.db'}")
    for t in study.trials:  # a large candidate may exceed flash too; every one exceeds RAM
        assert t.user_attrs["rejected"].startswith("before training") and "RAM +" in t.user_attrs["rejected"]
        assert "val_curve" not in t.user_attrs  # not one epoch


def test_an_interrupted_search_resumes_with_the_same_command(tmp_path):
    """Kill a worker (SIGKILL: no chance to clean up) while it trains; the same command then fails the orphaned trial,
    runs the rest, and a third run finds the study complete."""
    out = tmp_path / "s"
    args = [sys.executable, "-m", "tinydeploy", *BASE, "--trials", "3", "-o", str(out)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"sqlite:///{out / 'search.db'}"
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:  # wait for one finished trial and the next one running
            time.sleep(1)
            if (out / "search.db").exists():
                try:
                    states = [t.state.name for t in _study(url).trials]
                except Exception:  # the study is not created yet
                    continue
                if "RUNNING" in states and len(states) >= 2:
                    break
        else:
            pytest.fail("the first worker never reached its second trial")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    before = {t.number: t.state.name for t in _study(url).trials}
    assert "RUNNING" in before.values()
    r = run_cli(*BASE, "--trials", "3", "-o", out, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "1 trial(s) left running by a killed worker on this machine: marked failed" in r.stderr
    trials = _study(url).trials
    assert [t.number for t in trials] == list(range(len(trials)))  # numbered once each, none lost
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and states.count("FAIL") == 1
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 3  # the killed trial does not count toward --trials
    for t in trials:  # the finished trials before the kill are kept as they were
        if t.number in before and before[t.number] != "RUNNING":
            assert t.state.name == before[t.number]
    r = run_cli(*BASE, "--trials", "3", "-o", out, "--json", "-", timeout=600)
    assert r.returncode == 0 and len(_study(url).trials) == len(trials), r.stderr
    rep = json.loads(r.stdout)
    for row in rep["front"]:  # each front model is ready for `tinydeploy build`
        assert (out / row["file"]).read_bytes()[:8][4:8] == b"TFL3"
        assert (out / row["file"].replace(".tflite", ".samples.npz")).exists()
    b = run_cli(*BASE, "--trials", "5", "--epochs", "2", "-o", out)  # another setting cannot join this study
    assert b.returncode == 2 and "made with epochs=1" in b.stderr


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A real PostgreSQL server in a temporary directory on a loopback port, stopped afterwards. The server refuses
    to run as root: it runs as the `postgres` user that Debian's package creates."""
    initdb, server = _pg_bin("initdb"), _pg_bin("postgres")
    if not (initdb and server):
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg
    except ImportError:
        missing("psycopg is not installed (pip install 'psycopg[binary]')")
    d = Path(tempfile.mkdtemp(prefix="tdpg-"))
    os.chmod(d, 0o755)
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, initdb, "-D", str(d / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    srv = subprocess.Popen([*as_user, server, "-D", str(d / "data"), "-p", str(port), "-k", str(d),
                            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                c = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        else:
            pytest.fail("PostgreSQL did not start")
        c.execute("CREATE DATABASE search")
        c.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/search"
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def test_two_workers_share_one_postgresql_storage(tmp_path, postgres):
    """Two worker processes, the same command each, one PostgreSQL storage: every trial numbered once, none lost
    (each completed trial holds its model), both workers took part, and the study stops at --trials."""
    args = [sys.executable, "-m", "tinydeploy", *BASE, "--trials", "4", "--storage", postgres]
    ws = [subprocess.Popen([*args, "-o", str(tmp_path / f"w{i}")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True) for i in range(2)]
    errs = [w.communicate(timeout=900)[1] for w in ws]
    assert [w.returncode for w in ws] == [0, 0], errs
    trials = _study(postgres).trials
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # no duplicates, no gaps
    assert 4 <= len(trials) <= 5  # a worker may start one trial while the other finishes the fourth
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials), [t.state.name for t in trials]
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, workers
    for t in trials:
        if t.state.name == "COMPLETE":
            assert len(t.values) == 2 and (t.user_attrs.get("tflite_b64") or "duplicate_of" in t.user_attrs)
    # each worker wrote the same front from the shared storage (its models included, ready for `build`)
    fronts = [json.loads((tmp_path / f"w{i}" / "search.json").read_text())["front"] for i in range(2)]
    done = [json.loads((tmp_path / f"w{i}" / "search.json").read_text())["trials"] for i in range(2)]
    assert max(d["COMPLETE"] + d["PRUNED"] for d in done) == len(trials)
    assert "password" not in json.dumps(fronts)
    last = max(range(2), key=lambda i: (tmp_path / f"w{i}" / "search.json").stat().st_mtime)
    assert [r["trial"] for r in fronts[last]] and all((tmp_path / f"w{last}" / r["file"]).exists() for r in fronts[last])


_KILLED_AFTER_ASK = """
import os, signal, sys
from tinydeploy.search import run
import optuna
study = optuna.create_study(study_name="s", storage=run.open_storage(sys.argv[1]), load_if_exists=True)
study.ask()  # the trial exists now, RUNNING; the worker dies before any objective code runs
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_killed_right_after_asking_leaves_a_trial_marked_as_its_orphan(tmp_path):
    """The moment CI's interrupted-search test once hit (the trial created, its worker tag not yet written): the tag
    comes with the trial's creation, so the orphan is found. Without it, fail_orphans finds nothing."""
    from tinydeploy.search import run

    url = f"sqlite:///{tmp_path / 'search.db'}"
    p = subprocess.run([sys.executable, "-c", _KILLED_AFTER_ASK, url], capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    study = _study(url, "s")
    (orphan,) = study.trials
    host, _, pid = orphan.user_attrs["worker"].rpartition(":")
    assert orphan.state.name == "RUNNING" and host == socket.gethostname() and int(pid) != os.getpid()
    assert run.fail_orphans(study) == 1 and _study(url, "s").trials[0].state.name == "FAIL"
    import optuna

    mine = optuna.load_study(study_name="s", storage=run.open_storage(url))
    mine.ask()  # this process's own running trial is never an orphan
    assert run.fail_orphans(mine) == 0


def test_a_candidate_proposed_again_is_not_trained_twice():
    """The sampler may propose a finished candidate again (TPE does, late in a search): the trial takes the first
    one's figures without training, and the front lists the model once."""
    import optuna

    from tinydeploy import boards
    from tinydeploy.compress.datasets import load_dataset
    from tinydeploy.search.objective import Objective, SearchConfig
    from tinydeploy.search.run import front

    ds = load_dataset("pneumonia").subset(300, None)
    study = optuna.create_study(directions=["maximize", "minimize"])
    params = {"family": "cnn", "stages": 2, "width0": 8, "width1": 12, "kernel0": 3, "kernel1": 3, "resolution": 16,
              "head": "gap", "compression": "ptq"}
    study.enqueue_trial(params)
    study.enqueue_trial(params)
    study.optimize(Objective(ds, SearchConfig(board=boards.load("nano33ble"), epochs=1, emulate=False)), n_trials=2)
    first, again = study.trials
    assert first.state.name == again.state.name == "COMPLETE" and again.values == first.values
    assert "val_curve" in first.user_attrs and "val_curve" not in again.user_attrs  # not one epoch the second time
    assert again.user_attrs["duplicate_of"] == 0 and [t.number for t in front(study)] == [0]


def test_early_stopping_asks_optunas_median_pruner_about_faster_trials_only():
    """Optuna refuses intermediate reports in multi-objective studies; the callback asks MedianPruner through a view
    of the completed trials at least as fast as this one. Below their median: stopped; above it, or when every
    completed trial is slower (a fast candidate may belong on the front), or fewer than 3 are faster: it goes on."""
    import optuna

    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.search.objective import _pruning_callback

    _, keras = import_tf()
    study = optuna.create_study(directions=["maximize", "minimize"])
    for acc, ms in ((0.80, 10.0), (0.82, 12.0), (0.84, 14.0)):
        study.add_trial(optuna.trial.create_trial(values=[acc, ms], user_attrs={"val_curve": [acc],
                                                                                "latency_estimate_ms": ms}))

    def epoch(val, est_ms):
        cb = _pruning_callback(study.ask(), keras, est_ms, startup=3)
        cb.on_epoch_end(0, {"val_accuracy": val})

    with pytest.raises(optuna.TrialPruned):
        epoch(0.70, 20.0)  # slower than all three and below their median 0.82
    epoch(0.83, 20.0)  # above the median: goes on
    epoch(0.70, 5.0)  # faster than every completed trial: nothing to compare with, goes on
    epoch(0.70, 12.5)  # only two trials are as fast: fewer than the pruner's 3 start-up trials, goes on
    with pytest.raises(optuna.TrialPruned):
        epoch(0.81, 14.5)  # just below the median of the three faster ones: stopped
