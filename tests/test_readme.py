import re

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
