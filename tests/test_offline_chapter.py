"""`make book` never fails for lack of network: chapter 00 runs with downloads impossible."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

CHAPTER_00 = REPO / "notebooks" / "00_setup_and_overview.ipynb"


@pytest.mark.slow
def test_chapter_00_runs_offline_and_says_what_is_missing(tmp_path, monkeypatch):
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    monkeypatch.setenv("MMREC_DATA_DIR", str(empty_cache))
    # Every HTTP(S) request goes to a closed port on loopback: no download can succeed.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MMREC_PROGRESS", "0")
    notebook = nbformat.read(CHAPTER_00, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}},
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    client.execute()  # raises CellExecutionError if any cell fails
    printed = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.get("output_type") == "stream")
    assert "MovieLens-100k is not available" in printed
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in printed
    assert str(empty_cache / "ml-100k.zip") in printed
    assert not (empty_cache / "ml-100k").exists()
