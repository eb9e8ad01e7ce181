"""tools/run_with_seed.py rewrites the SEED of the parameters cell and nothing else."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

SPEC = importlib.util.spec_from_file_location(
    "run_with_seed", Path(__file__).resolve().parents[1] / "tools" / "run_with_seed.py")
run_with_seed = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(run_with_seed)


def notebook(parameters_source, tagged=True):
    cells = [nbformat.v4.new_code_cell("SEED = 0  # not the parameters cell"),
             nbformat.v4.new_code_cell(parameters_source)]
    if tagged:
        cells[1].metadata["tags"] = ["parameters"]
    return nbformat.v4.new_notebook(cells=cells)


def test_rewrites_only_the_parameters_cell():
    nb = run_with_seed.with_seed(notebook("TOP_K = 10\nSEED = 0   # split seed\nSEEDS = (0, 1)"), 7)
    assert nb.cells[1].source == "TOP_K = 10\nSEED = 7   # split seed\nSEEDS = (0, 1)"
    assert nb.cells[0].source == "SEED = 0  # not the parameters cell"


@pytest.mark.parametrize("source, tagged", [("TOP_K = 10", True), ("SEED = 0", False),
                                            ("SEED = 0\nSEED = 1", True)])
def test_refuses_a_notebook_it_cannot_reseed(source, tagged):
    with pytest.raises(ValueError):
        run_with_seed.with_seed(notebook(source, tagged), 1)
