"""Batch feature extraction on Ray Data: encoders loaded once per worker, the index built after."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int, check_subset
from mmrec_lib.errors import EnvironmentError, ParameterError

__all__ = ["RAY_MODALITIES", "start_ray", "feature_rows", "FeatureWorker", "ray_item_features"]

#: What :func:`ray_item_features` extracts: item text (MiniLM) and audio (musicnn).
RAY_MODALITIES = ("text", "audio")


def start_ray(*, num_cpus: int = 2, address: str | None = None):
    """Start (or join) Ray with nothing reaching the network; return the ``ray`` module.

    Introduced in chapter 10. On a laptop Ray runs as a local cluster of
    ``num_cpus`` worker slots, without dashboard and usage statistics; on a real
    cluster pass ``address`` (e.g. ``"ray://head:10001"`` or ``"auto"``) and the
    same pipeline runs on its nodes. Calling it again reuses the running instance.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as error:
        raise EnvironmentError("Ray is not installed: pip install 'ray[data]==2.58.0'") \
            from error
    if not ray.is_initialized():
        if address is None:
            options = {"num_cpus": check_int("num_cpus", num_cpus), "include_dashboard": False}
        else:
            options = {"address": address}
        # On an overloaded machine the raylet gives up waiting for its metrics agent
        # after a fixed 15 s (ray-project/ray#65983); another start usually works.
        for attempt in range(3):
            try:
                ray.init(log_to_driver=False, configure_logging=False, **options)
                break
            except Exception:
                ray.shutdown()
                if attempt == 2:
                    raise
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.verbose_progress = False
    return ray


def feature_rows(dataset, *, item_ids: Sequence | None = None) -> list[dict]:
    """One row per item: ``row`` (position), ``item_id``, ``text`` and ``clip_path``.

    Introduced in chapter 10. ``text`` is the item text that
    :func:`mmrec_lib.text.encode_items` encodes (title, description, tags), so
    the workers compute exactly the single-process features. ``item_ids`` keeps
    a subset, in the given order.
    """
    from mmrec_lib.text.features import item_texts

    items = getattr(dataset, "items", None)
    if items is None or "item_id" not in items.columns:
        raise ParameterError(f"dataset has type {type(dataset).__name__}; expected a data set "
                             "with an items table (e.g. a loaded MiniClips set)")
    if item_ids is not None:
        wanted = [str(i) for i in item_ids]
        index = {str(i): n for n, i in enumerate(items["item_id"])}
        unknown = [i for i in wanted if i not in index]
        if unknown or not wanted:
            raise ParameterError(f"item_ids {unknown[:3] or '[]'} are not items of the data set")
        items = items.iloc[[index[i] for i in wanted]]
    texts = item_texts(items)
    has_clips = hasattr(dataset, "clip_path")
    return [{"row": row, "item_id": str(item_id), "text": text,
             "clip_path": str(dataset.clip_path(item_id)) if has_clips else ""}
            for row, (item_id, text) in enumerate(zip(items["item_id"], texts))]


class FeatureWorker:
    """A Ray Data actor: loads the encoders once, then maps batches of rows to vectors.

    Introduced in chapter 10. Also usable in one process (it is a plain class):
    ``FeatureWorker(("text",))(batch)`` with ``batch`` a dict of NumPy columns
    (``text``, ``clip_path``) returns the batch with ``text_vector`` /
    ``audio_vector`` columns added.

    Parameters
    ----------
    modalities : sequence of {"text", "audio"}
    text_encoder : {"served", "bert4keras"}
        The ONNX Runtime path (:class:`mmrec_lib.inference.ServedTextEncoder`, starts in
        about a second) or the TensorFlow one (:class:`mmrec_lib.text.BertTextEncoder`).
    num_threads : int
        Threads of each worker's model runtime: one per CPU slot of the actor.
    data_dir : path, optional
        Cache folder of the exported text model (and of the converted MiniLM).
    """

    def __init__(self, modalities: Sequence[str] = RAY_MODALITIES, *,
                 text_encoder: Literal["served", "bert4keras"] = "served",
                 num_threads: int = 1, data_dir: str | os.PathLike | None = None):
        self.modalities = check_subset("modalities", modalities, RAY_MODALITIES)
        check_choice("text_encoder", text_encoder, ("served", "bert4keras"))
        self.text = self.audio = None
        if "text" in self.modalities:
            self.text = _text_encoder(text_encoder, num_threads, data_dir)
        if "audio" in self.modalities:
            from mmrec_lib._env import import_tensorflow

            tf = import_tensorflow()
            try:
                tf.config.threading.set_intra_op_parallelism_threads(num_threads)
            except RuntimeError:
                # TensorFlow already ran in this process (a worker built in a notebook or
                # a test, not in a Ray actor): it keeps the threads it started with.
                pass
            from mmrec_lib.audio import MusicnnEncoder

            self.audio = MusicnnEncoder("MTT_musicnn")

    def __call__(self, batch: dict) -> dict:
        if self.text is not None:
            batch["text_vector"] = self.text.encode([str(t) for t in batch["text"]])
        if self.audio is not None:
            from mmrec_lib.audio import load_audio
            from mmrec_lib.audio.musicnn import MUSICNN_SR

            clips = [load_audio(str(path), sr=MUSICNN_SR) for path in batch["clip_path"]]
            batch["audio_vector"] = self.audio.embed_many(clips, sr=MUSICNN_SR)[0]
        return batch


def _text_encoder(kind: str, num_threads: int, data_dir):
    # The item texts' maximum length (mmrec_lib.text.features.ITEM_MAX_LENGTH), written
    # out so that a served worker does not import the text package (and TensorFlow).
    max_length = 64
    if kind == "served":
        from mmrec_lib.inference import ServedTextEncoder

        return ServedTextEncoder(max_length=max_length, num_threads=num_threads,
                                 data_dir=data_dir).load()
    from mmrec_lib._env import import_tensorflow

    import_tensorflow().config.threading.set_intra_op_parallelism_threads(num_threads)
    from mmrec_lib.text import BertTextEncoder

    return BertTextEncoder(max_length=max_length, data_dir=data_dir).fit()


def ray_item_features(dataset, *, modalities: Sequence[str] = RAY_MODALITIES,
                      item_ids: Sequence | None = None, num_workers: int = 2,
                      batch_size: int = 32,
                      text_encoder: Literal["served", "bert4keras"] = "served",
                      address: str | None = None,
                      data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Item vectors of a data set computed by a pool of Ray actors (Ray Data ``map_batches``).

    Introduced in chapter 10. The rows (:func:`feature_rows`) become a Ray Dataset;
    ``map_batches`` sends batches of ``batch_size`` rows to ``num_workers``
    :class:`FeatureWorker` actors, each of which loaded its encoders once; the
    vectors come back in the data set's order. On a laptop Ray is started locally
    (:func:`start_ray`); with ``address`` the same code uses a cluster's nodes.
    Item texts are encoded with ``max_length=64`` as :func:`mmrec_lib.text.encode_items`
    does, audio with MTT musicnn as :func:`mmrec_lib.audio.dataset_musicnn_features`.

    Returns
    -------
    dict
        ``"item_ids"`` (ndarray of str) and, per modality, ``"<modality>"``: ndarray of
        shape (n_items, dim), float32, rows in the order of ``item_ids``.
    """
    modalities = check_subset("modalities", modalities, RAY_MODALITIES)
    num_workers = check_int("num_workers", num_workers)
    batch_size = check_int("batch_size", batch_size)
    check_choice("text_encoder", text_encoder, ("served", "bert4keras"))
    rows = feature_rows(dataset, item_ids=item_ids)
    if "text" in modalities and text_encoder == "served":
        from mmrec_lib.inference import export_text_encoder

        export_text_encoder(data_dir=data_dir)  # once, before the workers need it
    ray = start_ray(num_cpus=max(num_workers, 1), address=address)
    from ray.data import ActorPoolStrategy

    blocks = max(1, min(len(rows), num_workers * 4))
    stream = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        FeatureWorker, fn_constructor_kwargs={"modalities": modalities,
                                              "text_encoder": text_encoder,
                                              "data_dir": data_dir},
        batch_size=batch_size, batch_format="numpy", num_cpus=1,
        compute=ActorPoolStrategy(size=num_workers))
    result = {"row": [], "item_id": [], **{m: [] for m in modalities}}
    for batch in stream.iter_batches(batch_size=None, batch_format="numpy"):
        result["row"].append(batch["row"])
        result["item_id"].append(batch["item_id"])
        for modality in modalities:
            result[modality].append(np.asarray(batch[f"{modality}_vector"], np.float32))
    # Blocks may finish in any order: put the rows back in the data set's order.
    order = np.argsort(np.concatenate(result["row"]), kind="stable")
    output = {"item_ids": np.concatenate(result["item_id"]).astype(str)[order]}
    for modality in modalities:
        output[modality] = np.concatenate(result[modality])[order]
    return output
