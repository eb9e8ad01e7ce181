"""The student versions in labs/ are generated from notebooks/ and must be in sync."""

from __future__ import annotations

import subprocess
import sys

import nbformat

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import make_labs  # noqa: E402


def test_labs_are_in_sync_with_notebooks():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_labs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_chapter_has_a_code_exercise_with_a_solution():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        assert any("### BEGIN SOLUTION" in source for source in sources), path.name


def test_strip_solutions_keeps_indentation_and_code_around():
    source = "x = 1\nif x:\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION\nprint(x)"
    stripped, found = make_labs.strip_solutions(source, "test")
    assert found
    assert stripped == ("x = 1\nif x:\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
                        "print(x)")


def test_unbalanced_markers_are_reported():
    import pytest

    with pytest.raises(SystemExit, match="without END"):
        make_labs.strip_solutions("### BEGIN SOLUTION\nx = 1", "cell 3")
    with pytest.raises(SystemExit, match="without BEGIN"):
        make_labs.strip_solutions("x = 1\n### END SOLUTION", "cell 3")


def test_every_notebook_is_in_the_book_with_its_downloads():
    toc = (REPO / "book" / "_toc.yml").read_text()
    intro = (REPO / "book" / "intro.md").read_text()
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f"file: notebooks/{path.stem}\n" in toc, f"{path.name} is not in book/_toc.yml"
        assert f"<../notebooks/{path.name}>" in intro, f"book/intro.md has no download of {path.name}"
        assert f"<../labs/{path.name}>" in intro, f"book/intro.md has no student version of {path.name}"
