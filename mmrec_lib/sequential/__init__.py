"""Sequential and generative (GPT-style) next-item recommendation (chapter 09).

- :mod:`~mmrec_lib.sequential.data`: time-ordered sequences, tokens, padding, leave-one-out.
- :mod:`~mmrec_lib.sequential.evaluation`: full-ranking and sampled HR@k / NDCG@k.
- :mod:`~mmrec_lib.sequential.baselines`: popularity, EASE on the bag of items, Markov chain.
- :mod:`~mmrec_lib.sequential.neural`: GRU4Rec and SASRec in Keras 2 (TensorFlow loads lazily).
- :mod:`~mmrec_lib.sequential.content`: SASRec over content-embedded tokens (new items too).
- :mod:`~mmrec_lib.sequential.side`: SASRec whose tokens add creator / series / episode
  embeddings, trained over the items available at each event.
- :mod:`~mmrec_lib.sequential.session`: side SASRec plus time gaps, a user vector and
  explicit next-episode / same-creator terms; ``fit(..., teacher=model)`` distils another
  fitted model into it.
- :mod:`~mmrec_lib.sequential.intent`: a full-batch choice model with a latent session intent
  (standing taste, soft topics, explicit terms) and a geometric mix of two models.
- :mod:`~mmrec_lib.sequential.semantic_ids`: residual k-means semantic IDs of content vectors.
- :mod:`~mmrec_lib.sequential.generative`: a GPT over semantic-ID tokens with beam search
  constrained to codes that exist (new releases included).

Every model follows :class:`SequentialModel`: ``fit(train, item_vectors=None, *,
validation=None)``, ``score(user_ids)``, ``score_histories(histories)``, ``recommend``;
:func:`refit_with_validation` refits one on train + validation at the length it chose.
"""

from mmrec_lib.sequential.base import SequentialModel, refit_with_validation
from mmrec_lib.sequential.baselines import (
    MarkovModel,
    SequentialEASEModel,
    SequentialPopularityModel,
)
from mmrec_lib.sequential.content import ContentSASRecModel
from mmrec_lib.sequential.data import (
    PADDING_TOKEN,
    SequenceSplit,
    encode_sequences,
    last_session_split,
    leave_one_out,
    new_item_split,
    pad_sequences,
    sort_interactions,
    user_sequences,
)
from mmrec_lib.sequential.evaluation import (
    evaluate_next_item,
    evaluate_session,
    evaluation_histories,
    next_item_metrics,
    released_candidates,
    sample_candidates,
)
from mmrec_lib.sequential.generative import SemanticIDGenerator
from mmrec_lib.sequential.intent import SESSION_GAP_S, GeometricMix, SessionIntentModel
from mmrec_lib.sequential.neural import (
    GRU4RecModel,
    KerasSequentialModel,
    SASRecModel,
    training_pairs,
)
from mmrec_lib.sequential.semantic_ids import ResidualQuantizer, fuse_modalities
from mmrec_lib.sequential.session import (
    GAP_EDGES_S,
    GAP_LABELS,
    SessionSASRecModel,
    gap_buckets,
)
from mmrec_lib.sequential.side import SideSASRecModel, encode_side_features

__all__ = [
    "PADDING_TOKEN",
    "SequenceSplit",
    "sort_interactions",
    "user_sequences",
    "encode_sequences",
    "pad_sequences",
    "leave_one_out",
    "new_item_split",
    "last_session_split",
    "next_item_metrics",
    "sample_candidates",
    "released_candidates",
    "evaluation_histories",
    "evaluate_next_item",
    "evaluate_session",
    "SequentialModel",
    "refit_with_validation",
    "SequentialPopularityModel",
    "SequentialEASEModel",
    "MarkovModel",
    "KerasSequentialModel",
    "GRU4RecModel",
    "SASRecModel",
    "ContentSASRecModel",
    "SideSASRecModel",
    "encode_side_features",
    "SessionSASRecModel",
    "gap_buckets",
    "GAP_EDGES_S",
    "GAP_LABELS",
    "SessionIntentModel",
    "GeometricMix",
    "SESSION_GAP_S",
    "training_pairs",
    "ResidualQuantizer",
    "fuse_modalities",
    "SemanticIDGenerator",
]
