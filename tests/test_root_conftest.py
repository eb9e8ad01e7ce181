"""The root conftest.py: one numba cache per xdist worker, the Makefile's settings for nbval."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _root_conftest():
    spec = importlib.util.spec_from_file_location("mmrec_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Config:
    def __init__(self, **options):
        self.options = options

    def getoption(self, name, default=None):
        return self.options.get(name, default)


@pytest.fixture
def clean_environment(monkeypatch):
    for name in ("MMREC_PROGRESS", "TF_CPP_MIN_LOG_LEVEL", "PYTHONHASHSEED",
                 "PYTEST_XDIST_WORKER", "NUMBA_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("option", ["nbval", "nbval_lax"])
def test_nbval_session_gets_the_makefile_output_settings(clean_environment, option):
    import os

    module = _root_conftest()
    module.pytest_configure(_Config(**{option: True}))
    assert {name: os.environ.get(name) for name in module.NBVAL_ENVIRONMENT} == \
        module.NBVAL_ENVIRONMENT


def test_settings_already_given_are_kept_and_unit_sessions_untouched(clean_environment):
    import os

    module = _root_conftest()
    clean_environment.setenv("MMREC_PROGRESS", "1")
    module.pytest_configure(_Config(nbval=True))
    assert os.environ["MMREC_PROGRESS"] == "1"
    clean_environment.delenv("MMREC_PROGRESS")
    clean_environment.delenv("TF_CPP_MIN_LOG_LEVEL")
    module.pytest_configure(_Config())
    assert "MMREC_PROGRESS" not in os.environ and "TF_CPP_MIN_LOG_LEVEL" not in os.environ


def test_each_xdist_worker_gets_its_own_numba_cache(clean_environment, tmp_path):
    import os

    module = _root_conftest()
    clean_environment.setattr(module.tempfile, "gettempdir", lambda: str(tmp_path))
    clean_environment.setenv("PYTEST_XDIST_WORKER", "gw1")
    module.pytest_configure(_Config())
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mmrec-numba-cache-gw1")
    assert (tmp_path / "mmrec-numba-cache-gw1").is_dir()
