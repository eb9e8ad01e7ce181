"""Saving and loading :class:`~mmrec_lib.models.MultimodalRecommender`: checked at every step.

A saved model is a folder of three files: ``config.json`` (parameters,
modalities, loss curves), ``arrays.npz`` (ids, training pairs, feature tables,
user histories, graph) and ``model.weights.h5`` (the network's weights).
:func:`load_recommender` trusts none of them: each failure (a missing,
truncated or edited file, shapes that disagree with the ids or the weights)
is a :class:`~mmrec_lib.errors.ModelError` naming the file and the problem.
Trainable encoders are rebuilt only from an allow-list (the library's own
layers and plain Keras layers); a config naming any other class or module is
refused before Keras sees it, so loading never imports a module of the
config's choosing.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
from scipy import sparse

from mmrec_lib.errors import ModelError, ParameterError
from mmrec_lib.interactions import IdEncoder
from mmrec_lib.models.two_tower import PAD, keras

__all__ = ["save_recommender", "load_recommender", "ALLOWED_KERAS_MODULES"]

CONFIG_FILE, ARRAYS_FILE, WEIGHTS_FILE = "config.json", "arrays.npz", "model.weights.h5"

#: Modules of the plain Keras objects an encoder config may name (Keras has them loaded).
ALLOWED_KERAS_MODULES = ("keras", "keras.layers", "keras.initializers", "keras.regularizers",
                         "keras.constraints", "keras.activations", "keras.mixed_precision")
# Keras objects that run code stored in the config, whatever the safe mode.
_REFUSED_CLASSES = {"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__", "function"}
# Inline values Keras decodes without looking anything up.
_INLINE_CLASSES = {"__tensor__", "__numpy__", "__bytes__", "__typespec__"}


def _library_layers() -> dict[str, type]:
    """The library's own serialisable layers, by registered name (``mmrec>Name``)."""
    from mmrec_lib import fusion
    from mmrec_lib.text.lstm import LstmTextEncoder

    classes = (fusion.ConcatFusion, fusion.AttentionFusion, fusion.GatedFusion,
               fusion.GraphConvolution, LstmTextEncoder)
    return {f"mmrec>{cls.__name__}": cls for cls in classes}


def save_recommender(model, path) -> Path:
    """Write ``model`` (fitted) to the folder ``path``; see :meth:`MultimodalRecommender.save`."""
    from mmrec_lib.utils import atomic_dir

    path = Path(path)
    with atomic_dir(path) as folder:
        folder = Path(folder)
        coo = model.train_matrix_.tocoo()
        params = model.get_params()
        params["item_features"] = None  # the features themselves are in arrays.npz
        params["encoders"] = None if model.encoders is None else {
            name: keras.utils.serialize_keras_object(layer)
            for name, layer in model.encoders.items()}
        config = {"params": params, "modalities": model.modalities_,
                  "history": model.history_, "best_epoch": model.best_epoch_}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1))
        np.savez(folder / ARRAYS_FILE, user_ids=model.user_ids_, item_ids=model.item_ids_,
                 train_rows=coo.row, train_cols=coo.col, **model._arrays)
        model.network_.save_weights(str(folder / WEIGHTS_FILE))
    return path


def load_recommender(cls, path):
    """Read a folder written by :func:`save_recommender` into a fitted ``cls``, checking everything."""
    path = Path(path)
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise ModelError(f"{path} is not a saved MultimodalRecommender (no {CONFIG_FILE})")
    config = _read_config(config_file)
    params = dict(config["params"])
    if params.get("encoders") is not None:
        params["encoders"] = _load_encoders(config_file, params["encoders"])
    try:
        model = cls(**params)
        model._check_params()
    except (TypeError, ParameterError) as error:
        raise ModelError(f"{config_file}: its params are not valid: {error}") from error
    if model.item_features is not None:
        raise ModelError(f"{config_file}: params['item_features'] must be null")
    model.modalities_ = config["modalities"]
    model.history_ = config["history"]
    model.best_epoch_ = config.get("best_epoch", len(model.history_.get("loss", [])))
    arrays = _read_arrays(path / ARRAYS_FILE, model)
    model.user_encoder_ = IdEncoder().fit(arrays.pop("user_ids"))
    model.item_encoder_ = IdEncoder().fit(arrays.pop("item_ids"))
    model.user_ids_ = model.user_encoder_.classes_
    model.item_ids_ = model.item_encoder_.classes_
    rows, cols = arrays.pop("train_rows"), arrays.pop("train_cols")
    model.train_matrix_ = sparse.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)),
        shape=(len(model.user_ids_), len(model.item_ids_)))
    model._arrays = arrays
    model.network_ = model._build_network()
    weights_file = path / WEIGHTS_FILE
    if not weights_file.is_file():
        raise ModelError(f"{weights_file} is missing")
    try:
        model.network_.load_weights(str(weights_file))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise ModelError(f"{weights_file} cannot be loaded into the network that "
                         f"{CONFIG_FILE} and {ARRAYS_FILE} describe: {error}") from error
    return model


def _read_config(config_file: Path) -> dict:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{config_file} is not readable JSON: {error}") from error
    if not isinstance(config, dict):
        raise ModelError(f"{config_file} must hold a JSON object, got {type(config).__name__}")
    missing = sorted({"params", "modalities", "history"} - set(config))
    if missing:
        raise ModelError(f"{config_file} lacks the key(s) {missing}")
    if not isinstance(config["params"], dict):
        raise ModelError(f"{config_file}: 'params' must be an object")
    modalities = config["modalities"]
    if (not isinstance(modalities, list) or not modalities
            or not all(isinstance(m, str) for m in modalities)
            or len(set(modalities)) != len(modalities)):
        raise ModelError(f"{config_file}: 'modalities' must be a non-empty list of distinct "
                         f"names, got {modalities!r}")
    history = config["history"]
    if not isinstance(history, dict) or not all(
            isinstance(values, list) and all(isinstance(v, (int, float)) for v in values)
            for values in history.values()):
        raise ModelError(f"{config_file}: 'history' must map each loss name to a list of numbers")
    best_epoch = config.get("best_epoch", 0)
    if isinstance(best_epoch, bool) or not isinstance(best_epoch, int) or best_epoch < 0:
        raise ModelError(f"{config_file}: 'best_epoch' must be an int >= 0, got {best_epoch!r}")
    return config


def _check_serialized(node, where: str, config_file: Path) -> None:
    """Refuse any class outside the allow-list anywhere in a serialised Keras object."""
    if isinstance(node, list):
        for item in node:
            _check_serialized(item, where, config_file)
        return
    if not isinstance(node, dict):
        return
    if "class_name" in node:
        class_name, module = node.get("class_name"), node.get("module")
        registered = node.get("registered_name")
        if registered in _library_layers():
            allowed = (class_name == registered.split(">", 1)[1]
                       and module == _library_layers()[registered].__module__)
        elif class_name in _INLINE_CLASSES:
            allowed = module is None
        else:
            allowed = (isinstance(class_name, str) and class_name not in _REFUSED_CLASSES
                       and module in (*ALLOWED_KERAS_MODULES, None)
                       and registered in (None, class_name)
                       and _is_plain_keras(class_name))
        if not allowed:
            raise ModelError(f"{config_file}: {where} names class {class_name!r} of module "
                             f"{module!r}, which is not one of the library's layers or a plain "
                             "Keras object; refusing to load it")
    for value in node.values():
        _check_serialized(value, where, config_file)


def _is_plain_keras(class_name: str) -> bool:
    """Whether Keras itself defines ``class_name`` (a layer, initializer, regularizer, ...)."""
    return any(isinstance(getattr(namespace, class_name, None), type)
               for namespace in (keras.layers, keras.initializers, keras.regularizers,
                                 keras.constraints, keras.mixed_precision))


def _load_encoders(config_file: Path, encoders) -> dict:
    if not isinstance(encoders, dict) or not all(isinstance(layer, dict)
                                                 for layer in encoders.values()):
        raise ModelError(f"{config_file}: params['encoders'] must map each modality to a "
                         "serialised Keras layer")
    for name, layer in encoders.items():
        _check_serialized(layer, f"encoder {name!r}", config_file)
    import mmrec_lib.text.lstm  # noqa: F401  (registers the library's encoder)

    custom_objects = _library_layers()
    loaded = {}
    for name, layer in encoders.items():
        try:
            loaded[name] = keras.utils.deserialize_keras_object(
                layer, custom_objects=custom_objects, safe_mode=True)
        except (ValueError, TypeError, KeyError, AttributeError, ParameterError) as error:
            raise ModelError(f"{config_file}: encoder {name!r} cannot be rebuilt: "
                             f"{error}") from error
    return loaded


def _read_arrays(arrays_file: Path, model) -> dict[str, np.ndarray]:
    if not arrays_file.is_file():
        raise ModelError(f"{arrays_file} is missing")
    try:
        with np.load(arrays_file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise ModelError(f"{arrays_file} is not a readable .npz archive: {error}") from error
    if "history" in arrays and "user_histories" not in arrays:  # saved before the rename
        arrays["user_histories"] = arrays.pop("history")
    num_modalities = len(model.modalities_)
    expected = {"user_ids", "item_ids", "train_rows", "train_cols", "mask", "user_histories",
                *(f"feature_{m}" for m in range(num_modalities))}
    if model.graph_k is not None:
        expected |= {"graph_rows", "graph_cols", "graph_values"}
    missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing or extra:
        raise ModelError(f"{arrays_file} does not match {CONFIG_FILE}: missing {missing}, "
                         f"unexpected {extra}")
    _check_shapes(arrays_file, arrays, model)
    return arrays


def _check_shapes(arrays_file: Path, arrays: dict[str, np.ndarray], model) -> None:
    def fail(problem: str):
        raise ModelError(f"{arrays_file}: {problem}")

    for name in ("user_ids", "item_ids"):
        ids = arrays[name]
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iuU":
            fail(f"{name} must be a non-empty 1-D array of ids, got shape {ids.shape} "
                 f"dtype {ids.dtype}")
        if not np.array_equal(np.unique(ids), ids):
            fail(f"{name} must be sorted and distinct")
    num_users, num_items = len(arrays["user_ids"]), len(arrays["item_ids"])

    def check_indices(name: str, values: np.ndarray, low: int, high: int) -> None:
        if values.ndim != 1 and name != "user_histories":
            fail(f"{name} must be 1-D, got shape {values.shape}")
        if values.dtype.kind not in "iu" or (values.size and (values.min() < low
                                                              or values.max() >= high)):
            fail(f"{name} must hold int indices in [{low}, {high}), got dtype {values.dtype}"
                 + (f", range [{values.min()}, {values.max()}]" if values.size else ""))

    rows, cols = arrays["train_rows"], arrays["train_cols"]
    if rows.shape != cols.shape:
        fail(f"train_rows {rows.shape} and train_cols {cols.shape} differ in length")
    check_indices("train_rows", rows, 0, num_users)
    check_indices("train_cols", cols, 0, num_items)
    mask = arrays["mask"]
    if mask.dtype != bool or mask.shape != (num_items, len(model.modalities_)):
        fail(f"mask has shape {mask.shape} dtype {mask.dtype}; expected bool "
             f"({num_items}, {len(model.modalities_)}) for {num_items} item ids and "
             f"{len(model.modalities_)} modalities")
    for m, modality in enumerate(model.modalities_):
        table = arrays[f"feature_{m}"]
        if table.ndim != 2 or table.shape[0] != num_items or table.dtype.kind not in "fiu":
            fail(f"feature_{m} ({modality}) has shape {table.shape} dtype {table.dtype}; "
                 f"expected a numeric ({num_items}, dim) table")
    histories = arrays["user_histories"]
    if histories.shape != (num_users, model.max_history):
        fail(f"user_histories has shape {histories.shape}; expected ({num_users}, "
             f"{model.max_history}) for {num_users} user ids and max_history="
             f"{model.max_history}")
    check_indices("user_histories", histories, PAD, num_items)
    if model.graph_k is not None:
        graph_rows, graph_cols = arrays["graph_rows"], arrays["graph_cols"]
        values = arrays["graph_values"]
        if not graph_rows.shape == graph_cols.shape == values.shape:
            fail("graph_rows, graph_cols and graph_values differ in length")
        check_indices("graph_rows", graph_rows, 0, num_items)
        check_indices("graph_cols", graph_cols, 0, num_items)
        if values.dtype.kind != "f" or not np.isfinite(values).all():
            fail("graph_values must be finite floats")
