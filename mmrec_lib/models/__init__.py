"""The Keras models of chapter 08: the multimodal two-tower recommender and the category classifier.

- :mod:`.two_tower`: the BPR / in-batch softmax training shared with
  :class:`mmrec_lib.interest.BPRMFModel` (``tf.data`` triples, losses, networks)
  and :func:`two_tower_settings`, the settings chapter 08 and the MiniClips
  ablation share;
- :mod:`.recommender`: :class:`MultimodalRecommender`;
- :mod:`.masking`: its ``score_items`` with modalities masked (used by :mod:`mmrec_lib.explain`);
- :mod:`.persistence`: its checked ``save`` / ``load``;
- :mod:`.classifier`: :class:`ModalityClassifier`, the seed article's model.

Importing this package imports TensorFlow (``import mmrec_lib`` does not).
"""

from mmrec_lib.models.classifier import ModalityClassifier
from mmrec_lib.models.recommender import MultimodalRecommender
from mmrec_lib.models.two_tower import TWO_TOWER_SETTINGS, bpr_dataset, two_tower_settings

__all__ = ["MultimodalRecommender", "ModalityClassifier", "bpr_dataset", "TWO_TOWER_SETTINGS",
           "two_tower_settings"]
