import re

import pytest

from tests.conftest import REPO


def _commands():
    text = (REPO / "README.md").read_text()
    head = text.split("## Using it")[0]
    return re.findall(r"```bash\n(.+?)\n```", head)


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    commands = _commands()
    assert len(commands) == 2
    install_and_run, test = commands
    assert "pip install" in install_and_run and ".venv/bin/ador" in install_and_run
    assert "pytest" in test
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci


# budgets shrunk so the whole README runs in a test (the commands themselves are the README's)
SMALLER = [
    (r"(ador study launch llama3-70b-8dev)(\s|$)", r"\1 --trials 60\2"),
    (r"--trials 1000", "--trials 10"),
    (r"(ador study launch my-study\.yaml)", r"\1 --trials 30"),
    (r"(ador study launch llama3-70b-20rps)", r"\1 --trials 12"),
    (r"(ador calibrate --cv)", r"\1 --max-evaluations 20"),
    (r"(ador headline --out headline)", r"\1 --trials 20 --seeds 1 2 --no-serving"),
    (r"--requests 10000", "--requests 300"),
    (r"--ci 5%", "--ci 5% --requests 200 --max-requests 1200 --max-replications 3"),
    (r"--find-capacity", "--find-capacity --requests 150"),
    (r"(ador validate --serving)", r"\1 --data serving-rows.csv"),        # 12 of its 671 rows
]


def _usage_blocks():
    text = (REPO / "README.md").read_text()
    body = text.split("## Using it")[1].split("## What the A100 example says")[0]
    return re.findall(r"```bash\n(.+?)\n```", body, flags=re.S)


@pytest.mark.slow
def test_the_readme_works_from_a_directory_outside_the_checkout(tmp_path):
    """Every command of the README after the install runs, from a folder that is not the checkout,
    with the installed `ador` on the PATH (budgets shrunk); the dashboard answers on its link."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "ador").is_file(), "the ador console script of this interpreter"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    env.pop("ADOR_STUDIES", None)
    rows = (REPO / "ador" / "data" / "serving.csv").read_text().splitlines()
    (tmp_path / "serving-rows.csv").write_text("\n".join(rows[:13]) + "\n")
    expected = sum(1 for block in _usage_blocks() for line in block.splitlines() if line.startswith("ador "))
    ran = 0
    for block in _usage_blocks():
        script = block.replace("\\\n", " ")
        for pattern, repl in SMALLER:
            script = re.sub(pattern, repl, script)
        lines = [line for line in script.splitlines() if "study dashboard" not in line]
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{script}\n--- stderr:\n{r.stderr[-3000:]}"
        ran += sum(1 for line in lines if line.startswith("ador "))
        for line in (line for line in script.splitlines() if "study dashboard" in line):
            cmd = line.split("#")[0].split() + ["--port", "0"]
            proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            try:
                first = proc.stdout.readline()
                assert "http://127.0.0.1:" in first, proc.stderr.read() if proc.poll() is not None else first
                import urllib.request
                url = first.split("http://")[1].split()[0]
                with urllib.request.urlopen(f"http://{url}api/studies", timeout=30) as answer:
                    assert b"my-study" in answer.read()
            finally:
                proc.terminate()
                proc.wait(10)
            ran += 1
    assert ran == expected
    assert not (REPO / "my-study.yaml").exists() and (tmp_path / "my-study.db").is_file()
    assert (tmp_path / "studies" / "llama3-70b-8dev.db").is_file() and (tmp_path / "plots" / "pareto.png").is_file()
