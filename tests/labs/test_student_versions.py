"""A student version runs like the chapter until the first exercise stub, and stops there.

Run by `make test` after nbval (`make labs-check`), when the cache already holds what
the chapters computed, so the student notebook does not redo the expensive work.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["05_interest_similarity_topk"])
def test_student_version_stops_with_not_implemented_at_first_stub(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MMREC_PROGRESS", "0")
    notebook = nbformat.read(REPO / "labs" / f"{name}.ipynb", as_version=4)
    stubs = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and "# YOUR CODE HERE" in cell.source]
    assert stubs, f"labs/{name}.ipynb has no exercise stub"
    client = NotebookClient(notebook, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "notebooks")}},
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert "NotImplementedError" in str(info.value)
    executed = [index for index, cell in enumerate(notebook.cells)
                if cell.cell_type == "code" and cell.get("execution_count")]
    # Every code cell before the first stub ran; nothing after it did.
    assert max(executed) == stubs[0]
    before = [index for index, cell in enumerate(notebook.cells[:stubs[0]])
              if cell.cell_type == "code"]
    assert set(before) <= set(executed)
    errors = [output for cell in notebook.cells[:stubs[0]] if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors
