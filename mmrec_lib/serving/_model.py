"""Loading, training and encoder settings of the served model (``make serve``, tests, benchmark)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from mmrec_lib.errors import ModelError

__all__ = ["load_model", "encoder_for", "train_or_load", "SERVING_FILE"]

logger = logging.getLogger(__name__)

#: Written next to a saved model: the ``item_features`` options it was trained on.
SERVING_FILE = "serving.json"


def load_model(model_dir: str | os.PathLike):
    """A saved :class:`~mmrec_lib.models.MultimodalRecommender` (ModelError if not one)."""
    from mmrec_lib.models import MultimodalRecommender

    return MultimodalRecommender.load(model_dir)


def encoder_for(model, dataset, *, model_dir: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None):
    """The fitted :class:`ClipEncoder` that encodes new clips like ``model``'s features.

    Settings come from ``<model_dir>/serving.json`` if it exists; otherwise they are
    inferred from the model's modalities and the width of its audio table (200 = musicnn).
    """
    from mmrec_lib.serving._encode import ClipEncoder

    settings = None
    if model_dir is not None and (Path(model_dir) / SERVING_FILE).is_file():
        settings = json.loads((Path(model_dir) / SERVING_FILE).read_text())
    if settings is None:
        dims = dict(zip(model.modalities_, model.network_.export_item_tower()["feature_dims"]))
        settings = {"modalities": list(model.modalities_),
                    "audio": "musicnn" if dims.get("audio") == 200 else "handcrafted",
                    "visual": "handcrafted"}
    if list(settings["modalities"]) != list(model.modalities_):
        raise ModelError(f"the encoder settings list modalities {settings['modalities']}; the "
                         f"model was trained on {model.modalities_}")
    return ClipEncoder(modalities=settings["modalities"], audio=settings["audio"],
                       visual=settings["visual"], data_dir=data_dir).fit(dataset)


def train_or_load(model_dir: str | os.PathLike, dataset, *, modalities=("text", "audio", "visual"),
                  audio: str = "musicnn", fusion: str = "concat", epochs: int = 10,
                  seed: int = 0, data_dir: str | os.PathLike | None = None):
    """Load the model saved in ``model_dir``, or train a small one on ``dataset`` and save it.

    The model is the chapter-08 two-tower recommender on the modality features that
    :class:`ClipEncoder` can reproduce for a new clip (hand-made visual features), with
    ``fusion="concat"`` and dot-product scores by default, so that every score splits
    exactly into per-modality parts. ``serving.json`` records the feature options.
    """
    from mmrec_lib.features import item_features
    from mmrec_lib.models import MultimodalRecommender

    model_dir = Path(model_dir)
    if (model_dir / "config.json").is_file():
        logger.info("loading the model saved in %s", model_dir)
        return load_model(model_dir)
    settings = {"modalities": list(modalities), "audio": audio, "visual": "handcrafted"}
    features = item_features(dataset, data_dir=data_dir, **settings)
    interactions = dataset.interactions[["user_id", "item_id", "timestamp"]]
    model = MultimodalRecommender(fusion=fusion, embedding_dim=32, use_item_id=True,
                                  epochs=epochs, batch_size=128, seed=seed)
    logger.info("training a %s model on %d interactions (%d epochs)", fusion,
                len(interactions), epochs)
    model.fit(interactions, features)
    model.save(model_dir)
    (model_dir / SERVING_FILE).write_text(json.dumps(settings, indent=1))
    return model
