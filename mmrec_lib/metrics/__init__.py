"""Metrics: ranking and beyond-accuracy (:mod:`~mmrec_lib.metrics.ranking`, chapter 06) and word
error rate for speech recognition (:mod:`~mmrec_lib.metrics.words`, chapter 03b).

Every public name is available as ``mmrec_lib.metrics.<name>``.
"""

from mmrec_lib.metrics.ranking import (
    auc,
    average_recommended_popularity,
    catalog_coverage,
    distributional_coverage,
    exposure_gini,
    gini_index,
    hit_rate_at_k,
    intra_list_diversity,
    lists_from_frames,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    user_auc,
)
from mmrec_lib.metrics.words import (
    corpus_word_error_rate,
    normalize_words,
    word_error_counts,
    word_error_rate,
)

__all__ = [
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "mrr_at_k",
    "auc",
    "user_auc",
    "catalog_coverage",
    "distributional_coverage",
    "novelty",
    "intra_list_diversity",
    "average_recommended_popularity",
    "gini_index",
    "exposure_gini",
    "lists_from_frames",
    "normalize_words",
    "word_error_counts",
    "word_error_rate",
    "corpus_word_error_rate",
]
