"""Real time: the recommender as a local web service, with live ingest of new clips (chapter 10).

:func:`create_app` wraps a fitted :class:`~mmrec_lib.models.MultimodalRecommender` and a
MiniClips catalogue in a FastAPI app:

- ``GET /recommend?user=&k=``: top-k with the per-modality parts of each score (an unknown
  user gets the cold-start ranking by item bias, flagged ``cold_start``);
- ``GET /similar?item=&k=``: nearest items by cosine of the item vectors;
- ``POST /ingest`` (multipart: ``file`` = mp4, ``title`` [, ``description``, ``tags``]):
  encodes the clip like :func:`mmrec_lib.features.item_features`, runs the item tower and
  adds it to the live index; answers its new id and timings;
- ``POST /view`` (JSON ``{"user", "item"}``): updates the user's history and vector;
- ``DELETE /items/{id}``, ``GET /items/{id}/cover``, ``GET /items/{id}/clip``,
  ``GET /health``, ``GET /`` (the demo page).

``python -m mmrec_lib.serving`` (or ``make serve``) starts it on 127.0.0.1 only.
The item index is NumPy exact by default, or FAISS (``index="faiss-exact"`` /
``"faiss-hnsw"``, :mod:`mmrec_lib.retrieval`) behind the same interface (:func:`make_index`).
"""

from mmrec_lib.serving._app import ServingError, create_app
from mmrec_lib.serving._encode import ClipEncoder
from mmrec_lib.serving._index import INDEX_KINDS, ExactIndex, FaissIndex, make_index
from mmrec_lib.serving._model import SERVING_FILE, encoder_for, load_model, train_or_load
from mmrec_lib.serving._state import LiveRecommender

__all__ = ["create_app", "ServingError", "ClipEncoder", "LiveRecommender", "encoder_for",
           "load_model", "train_or_load", "SERVING_FILE", "HOST", "ExactIndex", "FaissIndex", "make_index",
           "INDEX_KINDS"]

#: The only address the server binds: the service is a local teaching demo.
HOST = "127.0.0.1"
