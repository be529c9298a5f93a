"""Every notebook in notebooks/ executes without error (kept small so this takes seconds), and the
committed copy shows the outputs of its current code (``notebooks/regenerate.py`` makes them)."""
import importlib.util
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel renders with the inline backend
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the notebook should draw its figures"
    # the last cell draws the completion figure that the cell before saved: nothing on the way may
    # switch the kernel's inline backend off (an example's figures() used to call matplotlib.use)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any("image/png" in o.get("data", {}) for o in last.get("outputs", [])), path.name


def test_there_are_notebooks():
    assert any(p.name == "01_hopfield_descent.ipynb" for p in NOTEBOOKS)


def _regenerate():
    spec = importlib.util.spec_from_file_location("regenerate", NOTEBOOKS[0].parent / "regenerate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_shows_the_outputs_of_its_code(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{path.name}: run notebooks/regenerate.py"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "no figure in the committed copy"
    recorded = nb.metadata.get("hopfieldkit", {}).get("source_sha256")
    assert recorded == _regenerate().source_hash(nb), f"{path.name}: code changed since its outputs were made"
