"""What a study may touch and what it refuses: names that are names, other applications' files,
commands that only read, half-made studies, a changed model, passwords, budgets, and worker
processes that must not outlive their command."""
import hashlib
import importlib.util
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest

from ador.cli import main
from ador.explore.record import settings
from tests.conftest import REPO, ador_env, record

HELPER = REPO / "tests" / "helpers" / "ador_logged.py"


def one_line(capsys, *argv, needle=""):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("ador: error:") and err.count("\n") == 1, err
    assert needle in err, err
    return out + err


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- study names -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escaped", "../../x", "ABSOLUTE", "a/b/c", "..", ".hidden", "", "a b",
                                  "x" * 200, "nul\x00l"])
def test_study_names_are_names_not_paths(workdir, capsys, name):
    name = name.replace("ABSOLUTE", str(workdir.parent / "absolute"))
    before = _tree(workdir.parent)
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--name", name, "--trials", "1", "--quiet",
             needle="--name=")
    for cmd in (["status", name], ["best", name], ["resume", name, "--trials", "1"]):
        one_line(capsys, "study", *cmd, needle="study=")
    # nothing new anywhere around the working folder (earlier tests' SQLite -shm files may vanish
    # meanwhile, when their connections are collected: only additions count)
    assert set(_tree(workdir.parent)) - set(before) == set()


def test_a_study_file_named_like_a_path_is_refused(workdir, capsys):
    text = (REPO / "studies" / "smoke.yaml").read_text() + "name: ../outside\n"
    (workdir / "studies" / "named.yaml").write_text(text)
    one_line(capsys, "study", "launch", "studies/named.yaml", "--quiet", needle="study='../outside'")
    assert not (workdir / "outside.db").exists()


# --- other applications' databases -------------------------------------------------------------------

def test_another_applications_sqlite_file_is_left_alone(workdir, capsys):
    path = workdir / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for argv in (["launch", "studies/smoke.yaml", "--trials", "1", "--quiet"], ["status", "smoke"],
                 ["resume", "smoke", "--trials", "1"]):
        one_line(capsys, "study", *argv, "--storage", f"sqlite:///{path}", needle="another application")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} == {"customers"}
    conn.close()
    (workdir / "junk.db").write_bytes(os.urandom(4096))
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--storage", "sqlite:///junk.db", "--quiet",
             needle="not a SQLite database")


@pytest.mark.parametrize("text", [b"date,value\n2024-01-01,3\npartial last line", b"\xff\xfe binary",
                                  b'{"other":1}\n{"op'])
def test_another_applications_file_given_as_a_journal_is_left_alone(workdir, capsys, text):
    """A file that is not an Optuna journal: refused before any repair (the journal's cut of a
    partial last line) and before its lock file is made, by every command."""
    path = workdir / "notes.log"
    path.write_bytes(text)
    before = _tree(workdir)
    for argv in (["launch", "studies/smoke.yaml", "--trials", "1", "--quiet"], ["status", "smoke"],
                 ["best", "smoke"], ["resume", "smoke", "--trials", "1"]):
        for url in (f"journal:{path}", "notes.log"):
            one_line(capsys, "study", *argv, "--storage", url, needle="not an Optuna journal")
    assert path.read_bytes() == text
    assert _tree(workdir) == before


@pytest.mark.parametrize("text", [b'{"op_code":0,"worker_id":"x"}\n{"op_code":4,broken\n',
                                  b'{"op_code":0,"worker_id":"x"}\n'])
def test_a_journal_record_optuna_did_not_write_is_one_line(workdir, capsys, text):
    path = workdir / "studies" / "odd.journal"
    path.write_bytes(text)
    for argv in (["status", "smoke"], ["launch", "studies/smoke.yaml", "--trials", "1", "--quiet"]):
        one_line(capsys, "study", *argv, "--storage", f"journal:{path}", needle="record")
    assert path.read_bytes() == text


def test_reading_a_journal_changes_nothing(workdir, capsys):
    """status and best read a journal with a torn last record as it is (no cut, no lock file)."""
    url = "journal:studies/r.journal"
    assert main(["study", "launch", "studies/smoke.yaml", "--name", "r", "--storage", url, "--trials", "3",
                 "--quiet"]) == 0
    path = workdir / "studies" / "r.journal"
    (workdir / "studies" / "r.journal.flock").unlink()
    path.write_bytes(path.read_bytes() + b'{"op_code":4,"worker_id":"x","stu')
    before, tree = path.read_bytes(), _tree(workdir)
    for argv in (["status", "r"], ["best", "r"]):
        assert main(["study", *argv, "--storage", url]) == 0
    assert path.read_bytes() == before and _tree(workdir) == tree


# --- reading creates nothing -------------------------------------------------------------------------

READERS = [["status", "nosuch"], ["best", "nosuch"], ["plot", "nosuch", "--out", "plots"],
           ["report", "nosuch", "--out", "rep"], ["export", "nosuch", "0"]]


@pytest.mark.parametrize("storage", [None, "sqlite:///nonexistent/dir/x.db", "journal:nonexistent/dir/x.journal",
                                     "nonexistent/x.db", "journal:x.journal"])
def test_reading_a_missing_study_creates_nothing(workdir, capsys, storage):
    shutil.rmtree(workdir / "studies")
    before = _tree(workdir)
    for argv in READERS:
        one_line(capsys, "study", *argv, *(["--storage", storage] if storage else []), needle="no such")
    one_line(capsys, "study", "resume", "nosuch", "--trials", "1", *(["--storage", storage] if storage else []),
             needle="no such")
    assert _tree(workdir) == before


def test_launch_creates_no_directories_but_the_default_one(workdir, capsys):
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--storage", "sqlite:///nonexistent/dir/x.db",
             "--quiet", needle="does not exist")
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--storage", "journal:nonexistent/x.journal",
             "--quiet", needle="does not exist")
    assert not (workdir / "nonexistent").exists()
    shutil.copytree(workdir / "studies", workdir / "files")
    shutil.rmtree(workdir / "studies")
    before = _tree(workdir)
    assert main(["study", "launch", "files/smoke.yaml", "--trials", "2", "--quiet"]) == 0
    new = {p for p in set(_tree(workdir)) - set(before) if not p.endswith(("-wal", "-shm"))}
    assert new == {"files/smoke.db"}                                    # beside the study file
    assert main(["study", "launch", "smoke", "--name", "shipped", "--trials", "2", "--quiet"]) == 0
    assert (workdir / "studies" / "shipped.db").is_file()               # a shipped study: the default place is made


@pytest.mark.postgres
def test_reading_a_postgresql_database_without_studies_creates_no_tables(workdir, pg_db, capsys):
    one_line(capsys, "study", "status", "nosuch", "--storage", pg_db.url, needle="no such study")
    assert pg_db.tables() == set()


# --- half-made studies -------------------------------------------------------------------------------

class Crash(BaseException):
    """What a SIGKILL does to the writes after it: none of them happen."""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_creation_cut_at_every_write_is_finished_by_the_next_launch(workdir, capsys, monkeypatch, kind):
    """Stop the creation before its k-th write, for every k until it completes: reading commands
    refuse the study, and the next launch finishes it (settings, baselines, metric names)."""
    from ador.explore import runner
    # every write of a creation: settings (system attributes), baseline summaries (user attributes)
    # and the objectives' names
    real = {(optuna.Study, m): getattr(optuna.Study, m) for m in ("set_user_attr", "set_metric_names")}
    real[(runner, "write_setting")] = runner.write_setting
    k = 0
    while True:
        name = f"c{k}"
        url = f"sqlite:///studies/{name}.db" if kind == "sqlite" else f"journal:studies/{name}.journal"
        writes = {"n": 0}

        def counting(fn, k=k, writes=writes):
            def wrapped(*args, **kwargs):
                if writes["n"] == k:
                    raise Crash()
                writes["n"] += 1
                return fn(*args, **kwargs)
            return wrapped
        for (owner, method), fn in real.items():
            monkeypatch.setattr(owner, method, counting(fn))
        try:
            main(["study", "launch", "studies/smoke.yaml", "--name", name, "--storage", url, "--trials", "3",
                  "--quiet"])
            break                                   # k is past the last write: nothing left to cut
        except Crash:
            pass
        finally:
            for (owner, method), fn in real.items():
                monkeypatch.setattr(owner, method, fn)
        capsys.readouterr()
        one_line(capsys, "study", "status", name, "--storage", url, needle="creation was interrupted")
        assert main(["study", "launch", "studies/smoke.yaml", "--name", name, "--storage", url, "--trials", "3",
                     "--quiet"]) == 0
        _check_complete(name, url)
        k += 1
    assert k >= 7, f"only {k} writes in a study creation?"
    record("creation cut", storage=kind, writes=k)


def _check_complete(name, url):
    from ador.explore.storage import open_storage
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    attrs = settings(study)
    assert set(attrs["ador_baselines"]) == {"a100-sxm-80gb", "h100-sxm-80gb"}
    assert all("metrics" in b for b in attrs["ador_baselines"].values())
    assert set(study.user_attrs) == {"baseline:a100-sxm-80gb", "baseline:h100-sxm-80gb"}
    assert attrs["ador_complete"] is True and study.metric_names == ["tbt_p99_ms", "cost_usd"]
    assert len(study.get_trials()) == 3


@pytest.mark.slow
def test_creation_killed_at_random_moments_is_finished_by_the_next_launch(workdir, capsys):
    """Real SIGKILLs at random moments of a slowed-down creation (each setting write waits up to
    0.3 s), eight times: the study is never used half made."""
    seed = random.SystemRandom().randrange(2 ** 32)
    rng = random.Random(seed)
    interrupted = 0
    for i in range(8):
        name = f"r{i}"
        started = workdir / f"started-{i}"
        env = ador_env(ADOR_TEST_SLOW_CREATE="0.3", ADOR_TEST_CREATE_STARTED=str(started))
        proc = subprocess.Popen([sys.executable, str(HELPER), "study", "launch", "studies/smoke.yaml", "--name", name,
                                 "--trials", "3", "--quiet"], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # aim at the creation, however long the process took to start: from its first setting write,
        # a random moment within the next second (eight slowed writes take 1.2 s on average)
        deadline = time.monotonic() + 120
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0) if started.exists() else 0.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        code = main(["study", "status", name])
        err = capsys.readouterr().err
        if code == 2:
            interrupted += "creation was interrupted" in err
            assert "creation was interrupted" in err or "no such study" in err, f"seed {seed}: {err}"
        assert main(["study", "launch", "studies/smoke.yaml", "--name", name, "--trials", "3", "--quiet"]) == 0
        capsys.readouterr()
        from ador.explore.storage import open_storage
        study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///studies/{name}.db"))
        assert settings(study)["ador_complete"] is True and len(settings(study)["ador_baselines"]) == 2
        assert study.metric_names == ["tbt_p99_ms", "cost_usd"]
    assert interrupted >= 1, f"no kill landed inside a creation (seed {seed})"
    record("creation kills", storage="sqlite", kills=8, interrupted=interrupted)


def test_a_half_made_study_from_another_definition_is_made_again(workdir, capsys, monkeypatch):
    real = optuna.Study.set_user_attr
    monkeypatch.setattr(optuna.Study, "set_user_attr", lambda self, k, v: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        main(["study", "launch", "studies/smoke.yaml", "--name", "h", "--quiet"])
    monkeypatch.setattr(optuna.Study, "set_user_attr", real)
    text = (REPO / "studies" / "smoke.yaml").read_text().replace(
        "  - {metric: cost_usd, direction: minimize}\n",
        "  - {metric: cost_usd, direction: minimize}\n  - {metric: output_tok_s, direction: maximize}\n")
    (workdir / "studies" / "three.yaml").write_text(text)
    assert main(["study", "launch", "studies/three.yaml", "--name", "h", "--trials", "2", "--quiet"]) == 0
    study = optuna.load_study(study_name="h", storage="sqlite:///studies/h.db")
    assert len(study.directions) == 3 and study.metric_names[-1] == "output_tok_s"


# --- a changed model -----------------------------------------------------------------------------------

def test_editing_a_model_constant_refuses_resume(workdir, tmp_path_factory, capsys):
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "3", "--quiet"]) == 0
    copy = tmp_path_factory.mktemp("src")
    shutil.copytree(REPO / "ador", copy / "ador", ignore=shutil.ignore_patterns("__pycache__"))
    constants = copy / "ador" / "perf" / "constants.py"
    env = {**os.environ, "PYTHONPATH": str(copy)}

    def resume():
        return subprocess.run([sys.executable, "-m", "ador.cli", "study", "resume", "smoke", "--trials", "2",
                               "--quiet"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    # a comment or blank line is not a change of the model
    constants.write_text(constants.read_text() + "\n# a note\n")
    r = resume()
    assert r.returncode == 0, r.stderr
    # a changed number is
    text = constants.read_text()
    import re
    match = re.search(r"= (\d+\.\d+)", text)
    assert match, "no float constant to change"
    constants.write_text(text[:match.start(1)] + str(float(match.group(1)) * 1.01) + text[match.end(1):])
    r = resume()
    assert r.returncode == 2 and "scored by model" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert len(optuna.load_study(study_name="smoke", storage="sqlite:///studies/smoke.db").get_trials()) == 5


# --- passwords, in-memory databases, budgets -----------------------------------------------------------

def test_redact_hides_passwords():
    from ador.explore.storage import redact
    assert redact("postgresql://u:s3cret@h:5/db") == "postgresql://u:***@h:5/db"
    assert "s3cret" not in redact("postgresql://u@h/db?sslmode=require&password=s3cret")
    assert redact("sqlite:///studies/x.db") == "sqlite:///studies/x.db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.postgres
def test_passwords_never_printed(workdir, pg_db, capsys, monkeypatch):
    from ador.explore import storage
    monkeypatch.setattr(storage, "RETRY_DELAYS_S", (0.01, 0.01, 0.01, 0.01))
    url = pg_db.url.replace("postgres@", "postgres:s3cr3t@")          # the server trusts; the password is unused
    assert main(["study", "launch", "studies/smoke.yaml", "--storage", url, "--trials", "3", "--quiet"]) == 0
    assert main(["study", "status", "smoke", "--storage", url]) == 0
    assert main(["study", "status", "nosuch", "--storage", url]) == 2
    out, err = capsys.readouterr()
    assert "s3cr3t" not in out + err and ":***@" in out
    for bad in ("postgresql://u:s3cr3t@127.0.0.1:9/none", "postgresql://u@127.0.0.1:9/none?password=s3cr3t"):
        text = one_line(capsys, "study", "launch", "studies/smoke.yaml", "--storage", bad, "--quiet",
                        needle="cannot open")
        assert "s3cr3t" not in text


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&cache=shared"])
def test_in_memory_sqlite_is_refused(workdir, capsys, url):
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--storage", url, "--quiet", needle="in-memory")


@pytest.mark.parametrize("url,needle", [("postgresql://:::@/", "user before @"),
                                        ("postgresql://@127.0.0.1:5432/test", "user before @"),
                                        ("postgresql://postgres@127.0.0.1:5432/", "names no database"),
                                        ("postgres://postgres@127.0.0.1:5432", "names no database"),
                                        ("postgresql://postgres@127.0.0.1:port/test", "port"),
                                        ("foo://bar", "unknown database 'foo'"),
                                        ("http://127.0.0.1:1/", "unknown database 'http'")])
def test_a_database_url_missing_its_parts_is_refused(workdir, capsys, url, needle):
    """libpq fills a missing user or database from the process's user name: such a URL wrote a
    study into another database of the local server. Refused before any connection, as is a
    scheme that is no database (it took 16 s of retries to fail)."""
    for argv in (["launch", "studies/smoke.yaml", "--trials", "1", "--quiet"], ["status", "smoke"]):
        one_line(capsys, "study", *argv, "--storage", url, needle=needle)


@pytest.mark.parametrize("trials", ["0", "-5"])
def test_zero_or_negative_trials_are_errors(workdir, capsys, trials):
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--trials", trials, "--quiet", needle="--trials=")
    assert not (workdir / "studies" / "smoke.db").exists()
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "2", "--quiet"]) == 0
    for cmd in (["resume", "smoke"], ["worker", "smoke", "--storage", "sqlite:///studies/smoke.db"]):
        one_line(capsys, "study", *cmd, "--trials", trials, needle="--trials=")
    one_line(capsys, "study", "launch", "studies/smoke.yaml", "--workers", "0", "--quiet", needle="--workers=")


# --- a refused sampler stores nothing ------------------------------------------------------------------

BAD_SAMPLERS = [("nsga2", "population_size: 0"), ("nsga2", "population_size: -1"),
                ("nsga2", "population_size: 0.5"), ("nsga2", "population_size: true"),
                ("nsga2", "population_size: null"), ("nsga2", "population_size: abc"),
                ("nsga2", "population_size: .nan"), ("nsga2", "population_size: .inf"),
                ("nsga2", "population_size: 1000000000"), ("nsga2", "mutation_prob: 1.5"),
                ("nsga2", "elite_population_selection_strategy: x"), ("pymoo-nsga2", "population_size: 0"),
                ("pymoo-nsga2", "population_size: 1000000000"), ("tpe", "n_startup_trials: -3"),
                ("tpe", "gamma: abc"), ("random", "seed: 3")]
if importlib.util.find_spec("torch") is None:
    BAD_SAMPLERS.append(("gp", ""))           # refused for want of PyTorch


@pytest.mark.parametrize("name,option", BAD_SAMPLERS)
def test_a_refused_sampler_option_stores_nothing(workdir, capsys, name, option):
    """An option the sampler cannot take is a one-line error naming it, before the study is
    created: the corrected file then launches (it used to be refused as "a different definition")."""
    smoke = (workdir / "studies" / "smoke.yaml").read_text()
    good = re.sub(r"sampler: \{.*\}", "sampler: {name: nsga2, options: {population_size: 4}}", smoke)
    bad = re.sub(r"sampler: \{.*\}", f"sampler: {{name: {name}, options: {{{option}}}}}", smoke)
    (workdir / "studies" / "s.yaml").write_text(bad)
    field = f"sampler.options.{option.split(':')[0]}" if option else "sampler.name"
    one_line(capsys, "study", "launch", "studies/s.yaml", "--trials", "1", "--quiet", needle=field)
    assert not (workdir / "studies" / "s.db").exists()
    (workdir / "studies" / "s.yaml").write_text(good)
    assert main(["study", "launch", "studies/s.yaml", "--trials", "2", "--quiet"]) == 0
    assert (workdir / "studies" / "s.db").exists()


# --- outputs never replace inputs ------------------------------------------------------------------

def test_outputs_never_replace_a_database_an_input_or_a_file_of_another_kind(workdir, capsys):
    """Each of these exited 0 having replaced what it was asked to read: the study's database
    (every trial lost), the data file, the design file, the study file."""
    assert main(["study", "launch", "studies/smoke.yaml", "--trials", "3", "--quiet"]) == 0
    db = workdir / "studies" / "smoke.db"
    shutil.copy(db, workdir / "copy-of-db.yaml")
    measured = (REPO / "ador" / "data" / "measured.csv").read_text().splitlines()
    (workdir / "m.csv").write_text("\n".join(measured[:4]) + "\n")
    shutil.copy(workdir / "m.csv", workdir / "data.png")
    (workdir / "design.yaml").write_text((REPO / "ador" / "data" / "accelerators" / "hyperaccel-lpu.yaml").read_text())
    protected = {p: p.read_bytes() for p in (db, workdir / "copy-of-db.yaml", workdir / "m.csv", workdir / "data.png",
                                              workdir / "design.yaml", workdir / "studies" / "smoke.yaml")}
    capsys.readouterr()
    for argv, needle in (
            (["study", "export", "smoke", "--out", str(db)], "write a .csv file"),
            (["study", "export", "smoke", "--format", "json", "--out", "studies/smoke.db"], "write a .json file"),
            (["study", "export", "smoke", "1", "--out", "copy-of-db.yaml"], "is a study database"),
            (["study", "export", "smoke", "1", "--out", "studies/smoke.db"], "write a .yaml or .yml file"),
            (["validate", "--data", "m.csv", "--update-doc", "m.csv"], "write a .md file"),
            (["validate", "--data", "data.png", "--plot", "data.png"], "is a file this command reads"),
            (["validate", "--data", "m.csv", "--plot", "m"], "write a .png or .svg or .pdf file"),
            (["calibrate", "--data", "m.csv", "--out", "m.csv", "--max-evaluations", "3"], "write a .yaml"),
            (["calibrate", "--data", "m.csv", "--out", "studies/smoke.yaml", "--max-evaluations", "3"],
             "exists and is not a calibration"),
            (["fairness", "--design", "design.yaml", "--update-doc", "design.yaml"], "write a .md file")):
        one_line(capsys, *argv, needle=needle)
    assert {p: p.read_bytes() for p in protected} == protected
    # what it should write, it writes: a table in the format its suffix names
    assert main(["study", "export", "smoke", "--out", "t.json"]) == 0
    assert (workdir / "t.json").read_text().lstrip().startswith("[")
