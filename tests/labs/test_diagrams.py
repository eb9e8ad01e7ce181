"""The architecture diagrams are drawn by tools/make_diagrams.py, stored, and shown in a chapter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import make_diagrams  # noqa: E402


def test_stored_diagrams_match_the_script():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_diagrams.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_diagram_is_an_svg_shown_by_a_chapter():
    chapters = "".join(path.read_text() for path in (REPO / "notebooks").glob("*.ipynb"))
    for name in make_diagrams.DIAGRAMS:
        data = (make_diagrams.TARGET / name).read_text()
        assert data.lstrip().startswith("<?xml") and "<svg" in data, name
        assert f"../book/_static/diagrams/{name}" in chapters, f"no chapter shows {name}"


def test_check_reports_a_changed_diagram(tmp_path, monkeypatch):
    monkeypatch.setattr(make_diagrams, "TARGET", tmp_path)
    monkeypatch.setattr(sys, "argv", ["make_diagrams.py"])
    assert make_diagrams.main() == 0
    (tmp_path / "two_tower.svg").write_text("<svg/>")
    monkeypatch.setattr(sys, "argv", ["make_diagrams.py", "--check"])
    assert make_diagrams.main() == 1
