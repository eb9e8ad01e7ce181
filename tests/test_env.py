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


# --- TensorFlow start-up noise ------------------------------------------------------

NOISE_MARKERS = ("E0000", "I0000", "W0000", "cuInit", "absl", "cuda drivers", "oneDNN")


def run_python_clean_log_env(code: str) -> subprocess.CompletedProcess:
    """Like a fresh terminal: no TF_CPP_MIN_LOG_LEVEL, no Keras variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_USE_LEGACY_KERAS", "TF_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)


def noise_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if any(marker in line for marker in NOISE_MARKERS)]


def test_import_tensorflow_prints_no_start_up_noise():
    result = run_python_clean_log_env(
        "import mmrec_lib\n"
        "from mmrec_lib._env import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "print(int(tf.constant(1)))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert noise_lines(result.stderr) == []


def test_plain_import_tensorflow_after_mmrec_lib_prints_no_start_up_noise():
    # The notebooks' way: `import mmrec_lib` first, then `import tensorflow as tf`.
    result = run_python_clean_log_env(
        "import sys\n"
        "import mmrec_lib\n"
        "import tensorflow as tf\n"
        "print(int(tf.constant(2)))\n"
        "print(type(tf.__spec__.loader).__name__ != '_QuietLoader')\n"
        "print(any(type(f).__name__ == '_QuietTensorFlowFinder' for f in sys.meta_path))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "True", "False"]
    assert noise_lines(result.stderr) == []


def test_filtered_stderr_writes_back_real_errors_and_drops_noise():
    # The file-descriptor mechanics, without TensorFlow: C-level writes to fd 2.
    result = run_python_clean_log_env(
        "import os, sys\n"
        "import mmrec_lib\n"
        "from mmrec_lib import _env\n"
        "with _env._filtered_native_stderr():\n"
        "    os.write(2, b'I0000 00:00:1796168175.339148   17294 port.cc:153] oneDNN on\\n')\n"
        "    os.write(2, b'E0101 12:00:01.000001    42 kernel.cc:7] a real error\\n')\n"
        "    print('python warning', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "E0101 12:00:01.000001    42 kernel.cc:7] a real error", "python warning", "after"]


ABSL_BANNER = ("WARNING: All log messages before absl::InitializeLog() is called are "
               "written to STDERR\n")
ONEDNN = ("I0000 00:00:1796168175.339148   17294 port.cc:153] oneDNN custom operations "
          "are on.\n")
NO_DRIVER = ("I0000 00:00:1796168175.339423   17294 cudart_stub.cc:31] Could not find cuda "
             "drivers on your machine, GPU will not be used.\n")
CUINIT = ("E0000 00:00:1796168182.702868   17294 cuda_platform.cc:52] failed call to cuInit: "
          "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
WARNING_LINE = "W0000 00:00:1796168182.702868   17294 x.cc:1] some warning\n"
CPU_GUARD = ("I0000 00:00:1796168196.143175   19830 cpu_feature_guard.cc:227] This TensorFlow "
             "binary is optimized to use available CPU instructions.\n"
             "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
             "TensorFlow with the appropriate compiler flags.\n")


def test_filter_drops_tensorflow_start_up_lines_of_a_cpu_only_machine():
    text = ABSL_BANNER + ONEDNN + NO_DRIVER + ABSL_BANNER + ONEDNN + NO_DRIVER + CUINIT
    assert mmrec_lib._env.filter_native_log(text) == ""


def test_filter_drops_info_and_warning_lines():
    assert mmrec_lib._env.filter_native_log(WARNING_LINE + CPU_GUARD) == ""


def test_filter_keeps_cuinit_error_when_a_driver_is_installed():
    # No "Could not find cuda drivers": a driver exists and cuInit failing is a real error.
    assert mmrec_lib._env.filter_native_log(ONEDNN + CUINIT) == CUINIT


def test_filter_keeps_other_errors_and_python_output():
    other = ("E0000 00:00:1796168182.702868   17294 op_kernel.cc:1] OP_REQUIRES failed\n"
             "Traceback (most recent call last):\n"
             "UserWarning: something\n")
    assert mmrec_lib._env.filter_native_log(NO_DRIVER + other) == other


@pytest.mark.parametrize("level", [0, 1])
def test_filter_keeps_everything_when_the_user_asks_for_logs(level):
    text = ABSL_BANNER + ONEDNN + NO_DRIVER + CUINIT
    assert mmrec_lib._env.filter_native_log(text, min_log_level=level) == text
