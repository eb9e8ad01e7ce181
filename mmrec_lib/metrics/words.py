"""Word error rate (WER) of a transcript against its reference: the speech metric.

Introduced in chapter 03b (speech).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from mmrec_lib.errors import DataError, ParameterError

__all__ = ["normalize_words", "word_error_counts", "word_error_rate", "corpus_word_error_rate"]

_PUNCTUATION = re.compile(r"[^\w\s']|_")


def normalize_words(text: str) -> list[str]:
    """The words of a transcript, normalised for word error rate.

    Introduced in chapter 03b (speech). The rules, in order: Unicode NFKC; lowercase;
    every character that is not a letter, digit, apostrophe or whitespace becomes a
    space (so "lazy-dog." is two words, ``lazy dog``); apostrophes at the edges of a
    word are dropped ("'twas" -> ``twas``, "don't" stays); split on whitespace.
    Numbers are not spelled out: "5" and "five" differ.

    >>> normalize_words("Hello, World! It's a well-known test.")
    ['hello', 'world', "it's", 'a', 'well', 'known', 'test']
    """
    if not isinstance(text, str):
        raise ParameterError(f"text={text!r} must be a str")
    text = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return [word for word in (token.strip("'") for token in text.split()) if word]


def word_error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Substitutions, deletions and insertions of the best word alignment (Levenshtein).

    Introduced in chapter 03b (speech). Both texts go through
    :func:`normalize_words`. Among alignments with the fewest edits, substitutions
    are preferred, as in NIST sclite.

    Returns
    -------
    dict with int values ``substitutions``, ``deletions``, ``insertions``,
    ``reference_words`` (N) and ``errors`` (S + D + I)
    """
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    rows, cols = len(ref) + 1, len(hyp) + 1
    # cost[i, j]: edits turning ref[:i] into hyp[:j].
    cost = np.zeros((rows, cols), dtype=np.int64)
    cost[:, 0] = np.arange(rows)
    cost[0, :] = np.arange(cols)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i, j] = min(cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]),
                             cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    substitutions = deletions = insertions = 0
    i, j = rows - 1, cols - 1
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            substitutions += int(ref[i - 1] != hyp[j - 1])
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            deletions += 1
            i -= 1
        else:
            insertions += 1
            j -= 1
    return {"substitutions": substitutions, "deletions": deletions, "insertions": insertions,
            "reference_words": len(ref), "errors": substitutions + deletions + insertions}


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate ``(S + D + I) / N`` of one hypothesis against its reference.

    Introduced in chapter 03b (speech). ``S``, ``D`` and ``I`` are the
    substitutions, deletions and insertions of the best word alignment, ``N`` the
    number of reference words, after :func:`normalize_words` (lowercase, no
    punctuation). It can exceed 1 (many insertions). Empty reference: 0.0 if the
    hypothesis is empty too, ``inf`` otherwise (every word is an insertion into
    nothing); use :func:`corpus_word_error_rate` to include speech-free clips.

    >>> word_error_rate("the cat sat", "the cat sat down")
    0.3333333333333333
    """
    counts = word_error_counts(reference, hypothesis)
    if counts["reference_words"] == 0:
        return 0.0 if counts["errors"] == 0 else float("inf")
    return counts["errors"] / counts["reference_words"]


def corpus_word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate: all errors over all reference words, ``sum(S+D+I) / sum(N)``.

    Introduced in chapter 03b (speech). This is not the mean of the per-utterance
    rates: long utterances weigh more, and an utterance with an empty reference adds
    its insertions to the errors and nothing to ``N``.

    Raises
    ------
    ParameterError
        Lengths differ, no pair, or strings given instead of sequences.
    DataError
        Every reference is empty (``N`` = 0).
    """
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise ParameterError("references and hypotheses must be sequences of strings; for "
                             "one pair use word_error_rate(reference, hypothesis)")
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ParameterError(f"references has {len(references)} texts but hypotheses has "
                             f"{len(hypotheses)}; they must be aligned")
    if not references:
        raise ParameterError("references is empty: there is nothing to score")
    totals = [word_error_counts(ref, hyp) for ref, hyp in zip(references, hypotheses)]
    words = sum(t["reference_words"] for t in totals)
    if words == 0:
        raise DataError("every reference is empty, so the word error rate is undefined")
    return sum(t["errors"] for t in totals) / words
