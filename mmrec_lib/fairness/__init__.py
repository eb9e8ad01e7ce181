"""Responsible re-ranking: diversity, calibration and provider-fair exposure, with their metrics.

Every re-ranker is post-processing on a score matrix: it never retrains the
model, and its weight ``lambda_`` in ``[0, 1]`` trades relevance for the other
goal. ``lambda_=0`` returns exactly the original ranking (the top ``k`` of
:func:`mmrec_lib.similarity.top_k`, same tie-breaking); ``lambda_=1`` cares
only about the other goal. Inputs are plain arrays: items are the columns
``0 .. n_items - 1`` of ``scores``, and item vectors, categories and groups
are given per column. All three re-rankers are greedy (one position at a
time) and share two conventions:

- relevance is each user's score min-max scaled to ``[0, 1]`` over the
  candidates, so that ``lambda_`` means the same for every user and model;
- among equal objectives the more relevant item wins, then the lower index.

Beyond-accuracy metrics already in :mod:`mmrec_lib.metrics` (coverage,
novelty, intra-list diversity, ARP, Gini) are not repeated here.
"""

from mmrec_lib.fairness.measures import (
    creator_exposure,
    exposure_relevance_gap,
    miscalibration_kl,
    serendipity,
    tradeoff_curve,
    user_group_gap,
)
from mmrec_lib.fairness.rerank import (
    calibrated_rerank,
    exposure_fair_rerank,
    group_shares,
    mmr_rerank,
)

__all__ = [
    "mmr_rerank",
    "calibrated_rerank",
    "exposure_fair_rerank",
    "group_shares",
    "miscalibration_kl",
    "serendipity",
    "creator_exposure",
    "exposure_relevance_gap",
    "user_group_gap",
    "tradeoff_curve",
]
