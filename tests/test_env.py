"""The Keras 2 guard of `import mmrec_lib`, the error hierarchy and the utilities."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import mmrec_lib
from mmrec_lib import errors, utils


def run_python(code: str, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_USE_LEGACY_KERAS", "TF_KERAS")}
    env.update(env_overrides)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)


def test_import_selects_tf_keras_before_tensorflow():
    result = run_python(
        "import os, mmrec_lib, tensorflow as tf\n"
        "print(os.environ['TF_USE_LEGACY_KERAS'], os.environ['TF_KERAS'])\n"
        "print(tf.keras.__name__.split('.')[0])\n"
        "import bert4keras.backend as b; print(b.keras.__name__.split('.')[0])\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "tf_keras", "tf_keras"]


def test_tensorflow_imported_first_with_keras3_raises_clear_error():
    result = run_python(
        "import tensorflow as tf\n"
        "tf.keras.layers  # touching tf.keras resolves it to Keras 3\n"
        "import mmrec_lib\n")
    assert result.returncode != 0
    assert "mmrec_lib.errors.EnvironmentError" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr


def test_tensorflow_imported_first_but_keras_untouched_still_works():
    result = run_python("import tensorflow as tf\nimport mmrec_lib\n"
                        "print(tf.keras.__name__.split('.')[0])\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tf_keras"


def test_explicit_keras3_setting_is_refused():
    result = run_python("import mmrec_lib\n", TF_USE_LEGACY_KERAS="0")
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS='0'" in result.stderr


def test_error_hierarchy():
    for cls in (errors.ParameterError, errors.DataError, errors.DownloadError,
                errors.ChecksumError, errors.UnsafeArchiveError, errors.ModelError,
                errors.NotFittedError, errors.EnvironmentError):
        assert issubclass(cls, errors.MmrecError)
    assert issubclass(errors.ParameterError, ValueError)
    assert issubclass(errors.ChecksumError, errors.DownloadError)


def test_lazy_submodules_and_unknown_attribute():
    assert mmrec_lib.datasets.load_movielens_100k is not None
    with pytest.raises(AttributeError, match="no_such_thing"):
        mmrec_lib.no_such_thing  # noqa: B018


def test_set_seed_repeats_numpy_and_tensorflow():
    import tensorflow as tf

    utils.set_seed(7)
    first = (np.random.rand(3), tf.random.uniform((3,)).numpy())
    utils.set_seed(7)
    second = (np.random.rand(3), tf.random.uniform((3,)).numpy())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_set_seed_rejects_bad_values(seed):
    with pytest.raises(errors.ParameterError, match="seed="):
        utils.set_seed(seed)


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with utils.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with utils.atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_atomic_dir_leaves_nothing_on_failure_and_replaces_on_success(tmp_path):
    target = tmp_path / "set"
    with pytest.raises(KeyboardInterrupt):
        with utils.atomic_dir(target) as tmp:
            (tmp / "a").write_text("1")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with utils.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with utils.atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_data_dir_uses_env_and_creates_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREC_DATA_DIR", str(tmp_path / "cache"))
    assert utils.data_dir() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()


def test_check_is_fitted_raises_mmrec_error():
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(errors.NotFittedError, match="StandardScaler is not fitted"):
        utils.check_is_fitted(StandardScaler())


def test_check_subset_accepts_a_string_or_a_sequence():
    from mmrec_lib.utils import check_subset

    assert check_subset("terms", "a", ("a", "b")) == ("a",)
    assert check_subset("terms", ["b", "a"], ("a", "b")) == ("b", "a")
    for bad in ([], ["c"], ("a", "z")):
        with pytest.raises(mmrec_lib.errors.ParameterError, match="terms"):
            check_subset("terms", bad, ("a", "b"))
