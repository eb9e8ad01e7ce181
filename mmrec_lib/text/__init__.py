"""Text understanding (chapter 02): cleaning, jieba, pretrained BERT via bert4keras, LSTM."""

from __future__ import annotations

import importlib

from mmrec_lib.text.bert import (
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    MINILM_NAME,
    VOCAB_FILE,
    Bert,
    BertCheckpoint,
    BertTextEncoder,
    convert_minilm,
    find_checkpoint,
    hf_to_google_name,
    load_bert,
    write_bert_checkpoint,
)
from mmrec_lib.text.features import ITEM_MAX_LENGTH, ITEM_TEXT_FIELDS, encode_items, item_texts
from mmrec_lib.text.preprocessing import (
    CHINESE_DROP_POS,
    CHINESE_STOP_WORDS,
    ENGLISH_STOP_WORDS,
    ChineseSegmenter,
    KeywordExtractor,
    TextNormalizer,
    WordTokenizer,
    check_texts,
    contains_cjk,
    normalize_text,
    segment_chinese,
    tokenize_words,
)

__all__ = [
    "CHECKPOINT_PREFIX", "CONFIG_FILE", "MINILM_NAME", "VOCAB_FILE",
    "Bert", "BertCheckpoint", "BertTextEncoder", "convert_minilm", "find_checkpoint",
    "hf_to_google_name", "load_bert", "write_bert_checkpoint",
    "ITEM_MAX_LENGTH", "ITEM_TEXT_FIELDS", "encode_items", "item_texts",
    "CHINESE_DROP_POS", "CHINESE_STOP_WORDS", "ENGLISH_STOP_WORDS",
    "ChineseSegmenter", "KeywordExtractor", "TextNormalizer", "WordTokenizer",
    "check_texts", "contains_cjk", "normalize_text", "segment_chinese", "tokenize_words",
    "WordVocabulary", "LstmTextEncoder",
]

# The LSTM pieces subclass tf.keras classes, so they load (with TensorFlow) on first use.
_LAZY = {"WordVocabulary": "mmrec_lib.text.lstm", "LstmTextEncoder": "mmrec_lib.text.lstm"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmrec_lib.text' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
