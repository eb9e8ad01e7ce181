"""Every exercise has one labelled solution in its chapter and one labelled stub in its lab."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import make_labs  # noqa: E402

CHAPTERS = sorted((REPO / "notebooks").glob("*.ipynb"))


def notebook(*cells):
    """A notebook from (kind, source) pairs."""
    made = nbformat.v4.new_notebook()
    made.cells = [nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
                  for kind, source in cells]
    return made


SOLVED = ("# Exercise {n}: x.\n### BEGIN SOLUTION\nx = {n}\n### END SOLUTION")
ANSWER = "**Exercise {n}** (discussion), model answer.\n<!-- ### BEGIN SOLUTION -->\nBecause.\n<!-- ### END SOLUTION -->"


@pytest.mark.parametrize("path", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_every_exercise_of_a_chapter_has_one_labelled_solution(path):
    assert make_labs.exercise_problems(nbformat.read(path, as_version=4), path.name) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_every_exercise_of_a_lab_has_a_labelled_stub_and_no_solution(path):
    chapter = nbformat.read(path, as_version=4)
    lab = nbformat.read(REPO / "labs" / path.name, as_version=4)
    numbers = sorted(int(m.group(1)) for cell in chapter.cells if cell.cell_type == "code"
                     for m in [make_labs.CODE_LABEL.match(cell.source)] if m and make_labs.has_solution(cell))
    numbers += sorted(int(m.group(1)) for cell in chapter.cells if cell.cell_type == "markdown"
                      for m in [make_labs.MD_LABEL.match(cell.source)] if m and make_labs.has_solution(cell))
    stubs = []
    for cell in lab.cells:
        code = make_labs.CODE_LABEL.match(cell.source) if cell.cell_type == "code" else None
        answer = make_labs.MD_LABEL.match(cell.source) if cell.cell_type == "markdown" else None
        if code and "# YOUR CODE HERE" in cell.source:
            stubs.append(int(code.group(1)))
        if answer and make_labs.MD_STUB in cell.source:
            stubs.append(int(answer.group(1)))
        assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
    assert sorted(stubs) == sorted(numbers) and numbers, (stubs, numbers)


def test_a_complete_chapter_has_no_problem():
    chapter = notebook(("md", "## Summary\n\n## Exercises\n1. **A.** Do x.\n2. **B.** Why?"),
                       ("code", SOLVED.format(n=1)), ("md", ANSWER.format(n=2)),
                       ("md", "## Further reading\n1. A book."))
    assert make_labs.exercise_problems(chapter, "ok") == []


@pytest.mark.parametrize("cells, message", [
    # an exercise without any solution (the 11 cases)
    ([("md", "## Exercises\n1. **A.**\n2. **B.**"), ("code", SOLVED.format(n=1))],
     "exercise 2 has 0 labelled solution cells"),
    # several exercises above one unlabelled stub (chapter 04's cell 53, chapter 08's cell 44)
    ([("md", "## Exercises\n1. **A.**\n2. **B.**"), ("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")],
     "a solution without an '# Exercise N' label"),
    # stubs out of order (chapter 03)
    ([("md", "## Exercises\n1. **A.**\n2. **B.**"), ("code", SOLVED.format(n=2)), ("code", SOLVED.format(n=1))],
     "solutions out of order"),
    # a model answer shown to students: a label but no hidden region (labs/00's "Exercise 3, answer")
    ([("md", "## Exercises\n1. **A.**"), ("md", "**Exercise 1**, answer. Because.")],
     "exercise 1 has 0 labelled solution cells"),
    ([("md", "## Exercises\n1. **A.**"), ("code", SOLVED.format(n=1)), ("code", SOLVED.format(n=1))],
     "exercise 1 has 2 labelled solution cells"),
    ([("md", "## Exercises\n1. **A.**"), ("code", SOLVED.format(n=1)), ("code", SOLVED.format(n=3))],
     "labelled exercise 3, which does not exist"),
    ([("md", "## Summary\nNo exercises.")], "no numbered exercise"),
])
def test_problems_are_reported(cells, message):
    problems = make_labs.exercise_problems(notebook(*cells), "chapter")
    assert any(message in problem for problem in problems), problems


def test_a_numbered_list_before_the_exercises_is_not_an_exercise():
    chapter = notebook(("md", "Three reasons:\n1. one\n2. two\n\n## Exercises\n1. **A.**"),
                       ("code", SOLVED.format(n=1)))
    assert make_labs.exercise_problems(chapter, "ok") == []


def test_markdown_answers_become_a_stub():
    source = "**Exercise 4** (discussion).\n<!-- ### BEGIN SOLUTION -->\nThe answer.\n<!-- ### END SOLUTION -->\nAfter."
    stripped, found = make_labs.strip_markdown_solutions(source, "cell 1")
    assert found and stripped == "**Exercise 4** (discussion).\n*Your answer here.*\nAfter."
    with pytest.raises(SystemExit, match="without END"):
        make_labs.strip_markdown_solutions("<!-- ### BEGIN SOLUTION -->\nx", "cell 1")
    with pytest.raises(SystemExit, match="without BEGIN"):
        make_labs.strip_markdown_solutions("x\n<!-- ### END SOLUTION -->", "cell 1")


def test_check_fails_on_a_chapter_with_an_unsolved_exercise(tmp_path, monkeypatch):
    source, target = tmp_path / "notebooks", tmp_path / "labs"
    source.mkdir()
    nbformat.write(notebook(("md", "## Exercises\n1. **A.**\n2. **B.**"), ("code", SOLVED.format(n=1))),
                   source / "99_x.ipynb")
    monkeypatch.setattr(make_labs, "SOURCE", source)
    monkeypatch.setattr(make_labs, "TARGET", target)
    monkeypatch.setattr(sys, "argv", ["make_labs.py"])
    assert make_labs.main() == 0                     # generating still works
    monkeypatch.setattr(sys, "argv", ["make_labs.py", "--check"])
    assert make_labs.main() == 1
    assert re.search(r"exercise 2 has 0", "\n".join(make_labs.exercise_problems(
        nbformat.read(source / "99_x.ipynb", as_version=4), "99_x.ipynb")))
