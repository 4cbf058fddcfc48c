"""The worked-example notebooks run top to bottom (stored without outputs)."""
import json

import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_evaluate_a_design.ipynb", "02_run_a_study.ipynb",
                                           "03_compare_samplers.ipynb"]
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            assert not cell.get("outputs"), f"{path.name} is stored with outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    # run from notebooks/, as a person opening them would; outputs go to the git-ignored notebook-output/
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
