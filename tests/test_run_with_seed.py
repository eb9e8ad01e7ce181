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


def test_runs_chapters_two_at_a_time_and_reports_them_in_order(tmp_path):
    # --jobs 2: each chapter in its own process and kernel; a failing assert is reported
    # under its own chapter, in the order given, and the exit status is 1.
    import subprocess
    import sys

    paths = []
    for name, check in (("a_fails.ipynb", "assert SEED == 0, 'seed 0 only'"),
                        ("b_holds.ipynb", "assert SEED == 3"),
                        ("c_holds.ipynb", "assert SEED > 0")):
        nb = notebook("SEED = 0")
        nb.cells.append(nbformat.v4.new_code_cell(check))
        nbformat.write(nb, tmp_path / name)
        paths.append(str(tmp_path / name))
    tool = Path(__file__).resolve().parents[1] / "tools" / "run_with_seed.py"
    done = subprocess.run([sys.executable, str(tool), "--seed", "3", "--jobs", "2", *paths],
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines()
             if line.startswith(("ok ", "FAIL ", "1 chapter"))]
    assert done.returncode == 1, done.stdout + done.stderr
    assert [line.split()[:2] for line in lines] == [["FAIL", "a_fails.ipynb"],
                                                    ["ok", "b_holds.ipynb"],
                                                    ["ok", "c_holds.ipynb"],
                                                    ["1", "chapter(s)"]]
    assert "seed 0 only" in done.stdout
