"""Tests of MultimodalRecommender.load on tampered folders: every failure is a ModelError."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras set-up before TensorFlow)
from mmrec_lib import models
from mmrec_lib.errors import ModelError
from mmrec_lib.models import persistence

NUM_ITEMS, NUM_USERS = 40, 20


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fitted model saved once; each test tampers with its own copy."""
    rng = np.random.default_rng(0)
    item_ids = [f"i{i:03d}" for i in range(NUM_ITEMS)]
    features = {"text": pd.DataFrame(rng.normal(size=(NUM_ITEMS, 5)), index=item_ids),
                "audio": pd.DataFrame(rng.normal(size=(NUM_ITEMS, 3)), index=item_ids)}
    rows = [(f"u{u:03d}", item_ids[i]) for u in range(NUM_USERS)
            for i in rng.choice(30, size=5, replace=False)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"])
    model = models.MultimodalRecommender(fusion="concat", embedding_dim=4, epochs=1,
                                         batch_size=64, seed=0).fit(train, features)
    folder = model.save(tmp_path_factory.mktemp("saved") / "model")
    return model, folder


@pytest.fixture
def folder(saved, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved[1], copy)
    return copy


def _edit_config(folder, edit):
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_arrays(folder, edit):
    with np.load(folder / "arrays.npz") as data:
        arrays = {key: data[key] for key in data.files}
    edit(arrays)
    np.savez(folder / "arrays.npz", **arrays)


def _load(folder):
    return models.MultimodalRecommender.load(folder)


# --------------------------------------------------------------------------- round trip

def test_round_trip_scores_identically(saved, folder):
    model, _ = saved
    loaded = _load(folder)
    users = list(model.user_ids_)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.get_params() == model.get_params()


# --------------------------------------------------------------------------- config.json

def test_missing_folder_raises(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        _load(tmp_path / "nowhere")


def test_garbage_config_raises(folder):
    (folder / "config.json").write_bytes(b"\x00\xffnot json at all")
    with pytest.raises(ModelError, match="config.json is not readable JSON"):
        _load(folder)


def test_truncated_config_raises(folder):
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelError, match="config.json is not readable JSON"):
        _load(folder)


def test_config_not_an_object_raises(folder):
    (folder / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(ModelError, match="JSON object"):
        _load(folder)


def test_config_without_params_raises(folder):
    _edit_config(folder, lambda config: config.pop("params"))
    with pytest.raises(ModelError, match=r"lacks the key\(s\) \['params'\]"):
        _load(folder)


def test_config_without_modalities_raises(folder):
    _edit_config(folder, lambda config: config.pop("modalities"))
    with pytest.raises(ModelError, match="modalities"):
        _load(folder)


def test_config_with_bad_history_raises(folder):
    _edit_config(folder, lambda config: config.update(history={"loss": "low"}))
    with pytest.raises(ModelError, match="history"):
        _load(folder)


def test_config_with_bad_best_epoch_raises(folder):
    _edit_config(folder, lambda config: config.update(best_epoch="first"))
    with pytest.raises(ModelError, match="best_epoch"):
        _load(folder)


def test_unknown_fusion_raises(folder):
    _edit_config(folder, lambda config: config["params"].update(fusion="sum"))
    with pytest.raises(ModelError, match="fusion='sum'"):
        _load(folder)


def test_unknown_parameter_raises(folder):
    _edit_config(folder, lambda config: config["params"].update(colour="red"))
    with pytest.raises(ModelError, match="params are not valid"):
        _load(folder)


def test_nan_learning_rate_raises(folder):
    (folder / "config.json").write_text(
        (folder / "config.json").read_text().replace('"learning_rate": 0.005',
                                                     '"learning_rate": NaN'))
    with pytest.raises(ModelError, match="learning_rate"):
        _load(folder)


def test_edited_embedding_dim_raises(folder):
    _edit_config(folder, lambda config: config["params"].update(embedding_dim=7))
    with pytest.raises(ModelError, match="model.weights.h5 cannot be loaded"):
        _load(folder)


def test_one_modality_less_raises(folder):
    _edit_config(folder, lambda config: config.update(modalities=["text"]))
    with pytest.raises(ModelError, match="unexpected \\['feature_1'\\]"):
        _load(folder)


def test_edited_max_history_raises(folder):
    _edit_config(folder, lambda config: config["params"].update(max_history=3))
    with pytest.raises(ModelError, match="user_histories has shape"):
        _load(folder)


# --------------------------------------------------------------------------- arrays.npz

def test_random_arrays_file_raises(folder):
    (folder / "arrays.npz").write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ModelError, match="arrays.npz is not a readable .npz archive"):
        _load(folder)


def test_truncated_arrays_file_raises(folder):
    data = (folder / "arrays.npz").read_bytes()
    (folder / "arrays.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="arrays.npz"):
        _load(folder)


def test_deleted_arrays_file_raises(folder):
    (folder / "arrays.npz").unlink()
    with pytest.raises(ModelError, match="arrays.npz is missing"):
        _load(folder)


def test_five_item_ids_removed_raise(folder):
    _edit_arrays(folder, lambda arrays: arrays.update(item_ids=arrays["item_ids"][5:]))
    with pytest.raises(ModelError, match="for 35 item ids"):
        _load(folder)


def test_unsorted_user_ids_raise(folder):
    _edit_arrays(folder, lambda arrays: arrays.update(user_ids=arrays["user_ids"][::-1]))
    with pytest.raises(ModelError, match="user_ids must be sorted and distinct"):
        _load(folder)


def test_missing_array_raises(folder):
    _edit_arrays(folder, lambda arrays: arrays.pop("mask"))
    with pytest.raises(ModelError, match="missing \\['mask'\\]"):
        _load(folder)


def test_training_pair_out_of_range_raises(folder):
    def edit(arrays):
        arrays["train_cols"] = arrays["train_cols"].copy()
        arrays["train_cols"][0] = NUM_ITEMS + 3

    _edit_arrays(folder, edit)
    with pytest.raises(ModelError, match="train_cols must hold int indices"):
        _load(folder)


def test_history_index_out_of_range_raises(folder):
    def edit(arrays):
        arrays["user_histories"] = arrays["user_histories"].copy()
        arrays["user_histories"][0, 0] = NUM_ITEMS

    _edit_arrays(folder, edit)
    with pytest.raises(ModelError, match="user_histories must hold int indices"):
        _load(folder)


def test_feature_table_with_wrong_rows_raises(folder):
    _edit_arrays(folder, lambda arrays: arrays.update(feature_0=arrays["feature_0"][:-1]))
    with pytest.raises(ModelError, match="feature_0 \\(text\\) has shape"):
        _load(folder)


# --------------------------------------------------------------------------- weights

def test_truncated_weights_raise(folder):
    data = (folder / "model.weights.h5").read_bytes()
    (folder / "model.weights.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="model.weights.h5 cannot be loaded"):
        _load(folder)


def test_empty_weights_raise(folder):
    (folder / "model.weights.h5").write_bytes(b"")
    with pytest.raises(ModelError, match="model.weights.h5 cannot be loaded"):
        _load(folder)


def test_deleted_weights_raise(folder):
    (folder / "model.weights.h5").unlink()
    with pytest.raises(ModelError, match="model.weights.h5 is missing"):
        _load(folder)


# --------------------------------------------------------------------------- encoders allow-list

@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module that writes a marker file when imported, importable from sys.path."""
    marker = tmp_path / "imported.marker"
    package = tmp_path / "modules"
    package.mkdir()
    (package / "mmrec_marker_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Evil:\n    pass\n")
    monkeypatch.syspath_prepend(str(package))
    yield marker
    sys.modules.pop("mmrec_marker_module", None)


def test_encoder_from_another_module_is_not_imported(folder, marker_module):
    evil = {"module": "mmrec_marker_module", "class_name": "Evil", "config": {},
            "registered_name": None}
    _edit_config(folder, lambda config: config["params"].update(encoders={"text": evil}))
    with pytest.raises(ModelError, match="mmrec_marker_module"):
        _load(folder)
    assert not marker_module.exists()
    assert "mmrec_marker_module" not in sys.modules


def test_nested_object_from_another_module_is_not_imported(folder, marker_module):
    from mmrec_lib.models.two_tower import keras

    dense = keras.utils.serialize_keras_object(keras.layers.Dense(3))
    dense["config"]["kernel_initializer"] = {"module": "mmrec_marker_module",
                                             "class_name": "Evil", "config": {},
                                             "registered_name": None}
    _edit_config(folder, lambda config: config["params"].update(encoders={"text": dense}))
    with pytest.raises(ModelError, match="not one of the library's layers"):
        _load(folder)
    assert not marker_module.exists()


def test_registered_name_of_another_module_is_refused(folder, marker_module):
    evil = {"module": "mmrec_marker_module", "class_name": "LstmTextEncoder", "config": {},
            "registered_name": "mmrec>LstmTextEncoder"}
    _edit_config(folder, lambda config: config["params"].update(encoders={"text": evil}))
    with pytest.raises(ModelError, match="mmrec_marker_module"):
        _load(folder)
    assert not marker_module.exists()


def test_lambda_layer_is_refused(folder):
    lambda_layer = {"module": "keras.layers", "class_name": "Lambda",
                    "config": {"function": "print"}, "registered_name": None}
    _edit_config(folder, lambda config: config["params"].update(encoders={"text": lambda_layer}))
    with pytest.raises(ModelError, match="'Lambda'"):
        _load(folder)


def test_allow_list_accepts_plain_keras_and_library_layers(tmp_path):
    from mmrec_lib import text
    from mmrec_lib.models.two_tower import keras

    for layer in (keras.layers.Dense(3, kernel_regularizer="l2"),
                  text.LstmTextEncoder(10, units=4)):
        serialized = json.loads(json.dumps(keras.utils.serialize_keras_object(layer)))
        persistence._check_serialized(serialized, "encoder", tmp_path / "config.json")
