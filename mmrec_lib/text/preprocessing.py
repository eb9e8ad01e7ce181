"""Text preprocessing as scikit-learn transformers: normalisation, words, jieba, keywords."""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Literal

from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.errors import ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = [
    "ENGLISH_STOP_WORDS",
    "CHINESE_STOP_WORDS",
    "CHINESE_DROP_POS",
    "check_texts",
    "normalize_text",
    "contains_cjk",
    "tokenize_words",
    "segment_chinese",
    "TextNormalizer",
    "WordTokenizer",
    "ChineseSegmenter",
    "KeywordExtractor",
]

Language = Literal["auto", "en", "zh"]


def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SKLEARN_STOP_WORDS

    return frozenset(SKLEARN_STOP_WORDS)


#: English stop words: scikit-learn's list (318 words).
ENGLISH_STOP_WORDS: frozenset[str] = _english_stop_words()

#: A short list of Chinese function words. jieba ships no stop-word list; real
#: systems use a longer one (e.g. the HIT or Baidu lists), passed as ``stop_words``.
CHINESE_STOP_WORDS: frozenset[str] = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 又 还 但 却 被 把 给 让 对 从 向 往 于 以 为 "
    "着 过 地 得 之 其 此 这 那 这个 那个 这些 那些 这样 那样 我 你 他 她 它 我们 你们 "
    "他们 她们 它们 自己 什么 怎么 怎样 为什么 哪 哪里 谁 吗 呢 吧 啊 呀 哦 嗯 哈 啦 "
    "一个 一些 一下 有 没有 不 很 太 最 更 非常 已经 正在 可以 能 会 要 想 去 来 上 下 "
    "中 里 后 前 个 等 啥".split()
)

#: jieba POS flags dropped by :class:`ChineseSegmenter`: punctuation/non-words (x),
#: particles (u, uj, ul, uz, ug, uv, ud), prepositions (p), conjunctions (c),
#: modal particles (y), interjections (e) and onomatopoeia (o).
CHINESE_DROP_POS: frozenset[str] = frozenset(
    {"x", "u", "uj", "ul", "uz", "ug", "uv", "ud", "p", "c", "y", "e", "o"}
)

_CJK_RANGES = (
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF), (0x2A700, 0x2CEAF), (0x2F800, 0x2FA1F),
)
_CJK_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES)
_CJK_RUN = re.compile(f"([{_CJK_CLASS}]+)")
# Words outside CJK runs: letters and digits, with inner apostrophes ("don't").
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_SPACES = re.compile(r"\s+")


def check_texts(texts, *, name: str = "texts") -> list[str]:
    """Return ``texts`` as a list of str, or raise :class:`ParameterError`.

    Introduced in chapter 02. Accepts a list, tuple, NumPy array or pandas Series
    of str. A single str is refused (iterating over it would give characters).
    """
    if texts is None:
        raise ParameterError(f"{name}=None; expected a non-empty list of str")
    if isinstance(texts, (str, bytes)):
        raise ParameterError(
            f"{name} is a single {type(texts).__name__} ({texts[:30]!r}); expected a list of "
            "str: wrap one text in a list"
        )
    if hasattr(texts, "tolist") and not isinstance(texts, list):
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise ParameterError(
            f"{name} has type {type(texts).__name__}; expected a list of str"
        )
    if len(texts) == 0:
        raise ParameterError(f"{name} is empty; expected at least one str")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ParameterError(
                f"{name}[{index}]={text!r} has type {type(text).__name__}; expected str "
                "(replace missing values by '' first)"
            )
    return list(texts)


def _check_str(text, name: str = "text") -> str:
    if not isinstance(text, str):
        raise ParameterError(f"{name}={text!r} has type {type(text).__name__}; expected str")
    return text


def _check_language(language) -> None:
    check_choice("language", language, ("auto", "en", "zh"))


def _check_form(form) -> None:
    check_choice("form", form, ("NFKC", "NFC", "none"))


def _is_dropped_char(ch: str) -> bool:
    """Control, format, surrogate, private or unassigned: never part of a word."""
    # The zero-width joiner (U+200D) is kept: it glues multi-part emoji.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch != "\u200d"


def normalize_text(text: str, *, form: Literal["NFKC", "NFC", "none"] = "NFKC",
                   lowercase: bool = True) -> str:
    """Normalise one text: Unicode form, control characters, whitespace, case.

    Introduced in chapter 02. Steps: Unicode normalisation (NFKC folds full-width
    letters and circled digits into plain ones), control and format characters
    removed (tabs and newlines become spaces, zero-width spaces become spaces),
    runs of whitespace collapsed, ends stripped, then lower-casing. Emoji are kept.

    Parameters
    ----------
    text : str
    form : {"NFKC", "NFC", "none"}
    lowercase : bool

    Returns
    -------
    str
        ``""`` for empty or whitespace-only text.

    Examples
    --------
    >>> normalize_text("  ＨＥＬＬＯ\\tWorld ①  ")
    'hello world 1'
    """
    _check_str(text)
    _check_form(form)
    if form != "none":
        text = unicodedata.normalize(form, text)
    chars = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\t\n\r\x0b\x0c" or ch == "\u200b" or category in ("Zs", "Zl", "Zp"):
            chars.append(" ")
        elif _is_dropped_char(ch):
            continue
        else:
            chars.append(ch)
    text = _SPACES.sub(" ", "".join(chars)).strip()
    return text.lower() if lowercase else text


def contains_cjk(text: str) -> bool:
    """True if ``text`` contains a CJK ideograph. Introduced in chapter 02."""
    return _CJK_RUN.search(_check_str(text)) is not None


def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def segment_chinese(text: str, *, pos_tags: bool = False) -> list:
    """Segment Chinese text into words with jieba (HMM on, precise mode).

    Introduced in chapter 02. With ``pos_tags=True`` returns ``(word, flag)``
    pairs from ``jieba.posseg`` (``n`` noun, ``v`` verb, ``x`` punctuation, ...).
    Control and format characters are removed from the words, and tokens left
    empty or made of whitespace only are dropped.
    """
    _check_str(text)
    jieba = _jieba()
    if pos_tags:
        import jieba.posseg as posseg

        pairs = [(_clean_token(pair.word), pair.flag) for pair in posseg.lcut(text)]
        return [(word, flag) for word, flag in pairs if word]
    return [word for word in map(_clean_token, jieba.lcut(text)) if word]


def _clean_token(word: str) -> str:
    return "".join(ch for ch in word if not _is_dropped_char(ch)).strip()


def tokenize_words(text: str, *, language: Language = "auto", lowercase: bool = True,
                   stop_words: Iterable[str] | None = None) -> list[str]:
    """Split one text into words: regex words for Latin script, jieba for Chinese.

    Introduced in chapter 02. ``language="auto"`` segments CJK runs with jieba and
    the rest with a word regex, so mixed-language titles keep both parts.
    Punctuation and emoji are dropped. ``stop_words`` (if given) are removed.

    Returns
    -------
    list of str
        ``[]`` for empty, whitespace-only or emoji-only text.

    Examples
    --------
    >>> tokenize_words("Don't stop: 1 more time!")
    ["don't", 'stop', '1', 'more', 'time']
    """
    _check_str(text)
    _check_language(language)
    text = normalize_text(text, lowercase=lowercase)
    words: list[str] = []
    if language == "en":
        words = _WORD.findall(text)
    else:
        for index, part in enumerate(_CJK_RUN.split(text)):
            if index % 2 == 1:  # a CJK run
                words.extend(w for w in segment_chinese(part) if _WORD.fullmatch(w))
            else:
                words.extend(_WORD.findall(part))
    if stop_words is not None:
        stop = set(stop_words)
        words = [w for w in words if w not in stop]
    return words


def _default_stop_words(language: Language) -> frozenset[str]:
    if language == "en":
        return ENGLISH_STOP_WORDS
    if language == "zh":
        return CHINESE_STOP_WORDS
    return ENGLISH_STOP_WORDS | CHINESE_STOP_WORDS


class TextNormalizer(TransformerMixin, BaseEstimator):
    """Normalise texts (see :func:`normalize_text`); a stateless transformer.

    Introduced in chapter 02.

    Parameters
    ----------
    form : {"NFKC", "NFC", "none"}
    lowercase : bool
        Lower-case; right for uncased models (MiniLM, Google's Chinese BERT).
    """

    def __init__(self, *, form: Literal["NFKC", "NFC", "none"] = "NFKC",
                 lowercase: bool = True):
        self.form = form
        self.lowercase = lowercase

    def fit(self, texts=None, y=None):
        _check_form(self.form)
        self.n_features_in_ = 1
        return self

    def transform(self, texts) -> list[str]:
        """Return a list of normalised str, one per input text."""
        check_is_fitted(self)
        return [normalize_text(t, form=self.form, lowercase=self.lowercase)
                for t in check_texts(texts)]


class WordTokenizer(TransformerMixin, BaseEstimator):
    """Texts -> lists of words, optionally without stop words.

    Introduced in chapter 02. Uses :func:`tokenize_words` (jieba for Chinese runs).

    Parameters
    ----------
    language : {"auto", "en", "zh"}
    remove_stop_words : bool
    stop_words : iterable of str, optional
        Replaces the default list (English, Chinese or both, by ``language``).
    lowercase : bool
    """

    def __init__(self, *, language: Language = "auto", remove_stop_words: bool = True,
                 stop_words: Iterable[str] | None = None, lowercase: bool = True):
        self.language = language
        self.remove_stop_words = remove_stop_words
        self.stop_words = stop_words
        self.lowercase = lowercase

    def fit(self, texts=None, y=None):
        _check_language(self.language)
        if self.stop_words is not None and isinstance(self.stop_words, str):
            raise ParameterError("stop_words is a str; expected an iterable of words")
        if not self.remove_stop_words:
            self.stop_words_ = frozenset()
        elif self.stop_words is None:
            self.stop_words_ = _default_stop_words(self.language)
        else:
            self.stop_words_ = frozenset(self.stop_words)
        return self

    def transform(self, texts) -> list[list[str]]:
        """Return one list of words per text."""
        check_is_fitted(self)
        return [tokenize_words(t, language=self.language, lowercase=self.lowercase,
                               stop_words=self.stop_words_ or None)
                for t in check_texts(texts)]


class ChineseSegmenter(TransformerMixin, BaseEstimator):
    """Chinese word segmentation and POS tagging with ``jieba.posseg``.

    Introduced in chapter 02. Drops stop words and words whose POS flag is in
    ``drop_pos`` (punctuation, particles, prepositions, ... by default).

    Parameters
    ----------
    pos_tags : bool
        Return ``(word, flag)`` pairs instead of words.
    remove_stop_words : bool
    stop_words : iterable of str, optional
        Defaults to :data:`CHINESE_STOP_WORDS`.
    drop_pos : iterable of str, optional
        Defaults to :data:`CHINESE_DROP_POS`; ``()`` keeps every flag.
    """

    def __init__(self, *, pos_tags: bool = False, remove_stop_words: bool = True,
                 stop_words: Iterable[str] | None = None,
                 drop_pos: Iterable[str] | None = None):
        self.pos_tags = pos_tags
        self.remove_stop_words = remove_stop_words
        self.stop_words = stop_words
        self.drop_pos = drop_pos

    def fit(self, texts=None, y=None):
        for name in ("stop_words", "drop_pos"):
            if isinstance(getattr(self, name), str):
                raise ParameterError(f"{name} is a str; expected an iterable of str")
        if not self.remove_stop_words:
            self.stop_words_ = frozenset()
            self.drop_pos_ = frozenset()
        else:
            self.stop_words_ = frozenset(
                CHINESE_STOP_WORDS if self.stop_words is None else self.stop_words)
            self.drop_pos_ = frozenset(
                CHINESE_DROP_POS if self.drop_pos is None else self.drop_pos)
        return self

    def transform(self, texts) -> list[list]:
        """Return one list of words (or ``(word, flag)`` pairs) per text."""
        check_is_fitted(self)
        result = []
        for text in check_texts(texts):
            pairs = segment_chinese(normalize_text(text), pos_tags=True)
            kept = [(w, f) for w, f in pairs
                    if w not in self.stop_words_ and f not in self.drop_pos_]
            result.append(kept if self.pos_tags else [w for w, _ in kept])
        return result


class KeywordExtractor(TransformerMixin, BaseEstimator):
    """Top-k keywords of each text by TF-IDF against the fitted corpus.

    Introduced in chapter 02. ``fit`` learns the inverse document frequency
    ``idf_`` of every word (smoothed: ``log((1 + n) / (1 + df)) + 1``);
    ``transform`` scores a text's words by ``count * idf`` (unseen words get the
    largest idf) and returns the ``top_k`` best, ties broken alphabetically.

    Parameters
    ----------
    top_k : int
    language : {"auto", "en", "zh"}
    min_length : int
        Words shorter than this (in characters) are never keywords.
    """

    def __init__(self, *, top_k: int = 5, language: Language = "auto", min_length: int = 2):
        self.top_k = top_k
        self.language = language
        self.min_length = min_length

    def _tokenizer(self) -> WordTokenizer:
        return WordTokenizer(language=self.language).fit()

    def fit(self, texts, y=None):
        check_int("top_k", self.top_k)
        check_int("min_length", self.min_length)
        documents = self._tokenizer().transform(texts)
        frequency = Counter(w for words in documents for w in set(words))
        n = len(documents)
        self.idf_ = {w: math.log((1 + n) / (1 + df)) + 1 for w, df in frequency.items()}
        self.default_idf_ = math.log(1 + n) + 1
        return self

    def transform(self, texts) -> list[list[str]]:
        """Return the ``top_k`` keywords of each text (fewer for short texts)."""
        check_is_fitted(self)
        result = []
        for words in self._tokenizer().transform(texts):
            counts = Counter(w for w in words if len(w) >= self.min_length)
            scored = sorted(counts.items(),
                            key=lambda item: (-item[1] * self.idf_.get(item[0], self.default_idf_),
                                              item[0]))
            result.append([w for w, _ in scored[: self.top_k]])
        return result
