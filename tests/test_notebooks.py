"""Every notebook under notebooks/ runs top to bottom at a small size; its cells assert its claims."""

import importlib.util
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = sorted(f for f in os.listdir(NOTEBOOK_DIR) if f.endswith(".ipynb"))
NEEDS_OPTAX_MODULE = {"06_sparse_neural_network.ipynb"}


def has_jaxreg_optax() -> bool:
    return importlib.util.find_spec("jaxreg.optax") is not None


def test_the_six_notebooks_are_there():
    assert [re.match(r"\d\d_", f) is not None for f in NOTEBOOKS] == [True] * 6
    assert [f[:2] for f in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_starts_with_a_colab_install_cell_and_asserts(name):
    nb = nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)
    nbformat.validate(nb)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert 'IN_COLAB = "google.colab" in sys.modules' in code[0] and "%pip install" in code[0]
    assert "if IN_COLAB" in code[0]
    assert sum(src.count("assert ") for src in code) >= 3
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored without outputs


def execute(name, tmp_path):
    nb = nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)
    resources = {"metadata": {"path": str(tmp_path)}}  # the kernel's working directory
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources=resources)
    client.execute()
    return nb


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_at_small_size(name, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXREG_NB_SMALL", "1")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if name in NEEDS_OPTAX_MODULE and not has_jaxreg_optax():
        # jaxreg.optax is not part of this checkout: the notebook must stop exactly at that import
        with pytest.raises(CellExecutionError, match=r"No module named 'jaxreg\.optax'"):
            execute(name, tmp_path)
        return
    nb = execute(name, tmp_path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
