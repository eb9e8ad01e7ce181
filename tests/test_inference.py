"""The served text path (ONNX Runtime) and Ray feature extraction (mmrec_lib.inference, .distributed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mmrec_lib import distributed, inference
from mmrec_lib.errors import ParameterError

TEXTS = ["Cat plays piano", "", "   ", "[MASK] café 你好 world", "Ünïcödé ÀÉ naïve",
         "x" * 150 + " ok", "a much longer title " * 12, "Top 10 guitar covers (gone wrong!)"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A cache folder holding the float32 export (built once for the module)."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    inference.export_text_encoder(data_dir=folder)
    return folder


@pytest.fixture(scope="module")
def bert4keras_vectors():
    from mmrec_lib import text

    encoder = text.BertTextEncoder(max_length=32)
    return encoder, encoder.encode(TEXTS)


def test_tokenizer_gives_the_bert4keras_ids(model_dir, bert4keras_vectors):
    encoder, _ = bert4keras_vectors
    served = inference.ServedTextEncoder(max_length=32, data_dir=model_dir)
    assert served.token_ids(TEXTS) == encoder.token_ids(TEXTS)


def test_served_vectors_equal_bert4keras(model_dir, bert4keras_vectors):
    _, expected = bert4keras_vectors
    served = inference.ServedTextEncoder(max_length=32, batch_size=3, data_dir=model_dir)
    vectors = served.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.sum(vectors * expected, axis=1).min() > 0.9999
    # Batching does not change a text's vector (padding is masked).
    np.testing.assert_allclose(served.encode(TEXTS, batch_size=1), vectors, atol=2e-5)


def test_parallel_batches_give_the_sequential_vectors(model_dir, bert4keras_vectors):
    _, expected = bert4keras_vectors
    texts = TEXTS * 5  # 40 texts: 14 batches of 3, run on every core at once by default
    parallel = inference.ServedTextEncoder(max_length=32, batch_size=3, data_dir=model_dir)
    sequential = inference.ServedTextEncoder(max_length=32, batch_size=3, num_threads=1,
                                             data_dir=model_dir)
    assert sequential._workers() == 1
    vectors = parallel.encode(texts)
    np.testing.assert_array_equal(vectors, sequential.encode(texts))
    assert np.sum(vectors * np.tile(expected, (5, 1)), axis=1).min() >= 0.999


def test_export_is_cached_and_keyed(model_dir):
    path = inference.export_text_encoder(data_dir=model_dir)
    mtime = path.stat().st_mtime_ns
    assert inference.export_text_encoder(data_dir=model_dir) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert path.parent == model_dir / "models" / "onnx"
    assert not list(path.parent.glob(".*part*"))  # no temporary file left behind


def test_a_damaged_export_is_removed_with_a_clear_error(tmp_path):
    from mmrec_lib.errors import ModelError

    path = inference.export_text_encoder(data_dir=tmp_path)
    path.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="cannot load"):
        inference.ServedTextEncoder(data_dir=tmp_path, num_threads=1).load()
    assert not path.exists()


@pytest.mark.slow
def test_int8_variant_is_close_but_not_identical(model_dir):
    float_vectors = inference.ServedTextEncoder(data_dir=model_dir).encode(TEXTS)
    int8 = inference.ServedTextEncoder(quantize="int8", data_dir=model_dir)
    vectors = int8.encode(TEXTS)
    cosine = np.sum(vectors * float_vectors, axis=1)
    assert cosine.min() > 0.95
    assert not np.allclose(vectors, float_vectors, atol=1e-5)
    assert inference.export_text_encoder(quantize="int8", data_dir=model_dir).name.startswith(
        "all-MiniLM-L6-v2-int8-")


def test_new_process_does_not_import_tensorflow(model_dir):
    code = ("import sys\nfrom mmrec_lib.inference import ServedTextEncoder\n"
            f"v = ServedTextEncoder(data_dir={str(model_dir)!r}).encode(['a title'])\n"
            "assert v.shape == (1, 384)\nprint('tensorflow' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout
    assert output.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("kwargs", [{"quantize": "fp16"}, {"max_length": 1},
                                    {"batch_size": 0}, {"max_length": 513}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ParameterError):
        inference.ServedTextEncoder(**kwargs)


@pytest.mark.parametrize("texts", ["one title", [], [1, "x"], None])
def test_bad_texts_raise(model_dir, texts):
    with pytest.raises(ParameterError):
        inference.ServedTextEncoder(data_dir=model_dir).encode(texts)


def test_export_rejects_unknown_quantisation(tmp_path):
    with pytest.raises(ParameterError, match="quantize"):
        inference.export_text_encoder(quantize="int4", data_dir=tmp_path)


# ----------------------------------------------------------------------------- Ray

def test_worker_max_length_is_the_item_text_length(model_dir):
    from mmrec_lib.text.features import ITEM_MAX_LENGTH

    encoder = distributed._text_encoder("served", 1, model_dir)
    assert encoder.max_length == ITEM_MAX_LENGTH


def test_feature_worker_in_one_process(model_dir, miniclips_tiny):
    rows = distributed.feature_rows(miniclips_tiny)
    assert [r["row"] for r in rows] == list(range(len(miniclips_tiny.items)))
    batch = {"text": np.array([r["text"] for r in rows[:5]], dtype=object),
             "clip_path": np.array([r["clip_path"] for r in rows[:5]], dtype=object)}
    out = distributed.FeatureWorker(("text",), data_dir=model_dir)(batch)
    expected = inference.ServedTextEncoder(max_length=64, data_dir=model_dir).encode(
        [r["text"] for r in rows[:5]])
    np.testing.assert_allclose(out["text_vector"], expected, atol=1e-5)


def test_feature_rows_subset_and_bad_ids(miniclips_tiny):
    ids = list(miniclips_tiny.items["item_id"].astype(str))[:3][::-1]
    rows = distributed.feature_rows(miniclips_tiny, item_ids=ids)
    assert [r["item_id"] for r in rows] == ids
    with pytest.raises(ParameterError, match="not items"):
        distributed.feature_rows(miniclips_tiny, item_ids=["no-such-item"])


@pytest.mark.parametrize("kwargs", [{"modalities": ("video",)}, {"modalities": ()},
                                    {"num_workers": 0}, {"batch_size": 0},
                                    {"text_encoder": "torch"}])
def test_ray_bad_settings_raise_before_starting_ray(miniclips_tiny, kwargs):
    with pytest.raises(ParameterError):
        distributed.ray_item_features(miniclips_tiny, **kwargs)


@pytest.mark.slow
def test_ray_features_equal_single_process_and_index(model_dir, miniclips_tiny):
    from mmrec_lib import retrieval, similarity

    result = distributed.ray_item_features(miniclips_tiny, modalities=("text",),
                                           num_workers=2, batch_size=16, data_dir=model_dir)
    ids = miniclips_tiny.items["item_id"].astype(str).to_numpy()
    np.testing.assert_array_equal(result["item_ids"], ids)
    texts = [r["text"] for r in distributed.feature_rows(miniclips_tiny)]
    single = inference.ServedTextEncoder(max_length=64, data_dir=model_dir).encode(texts)
    np.testing.assert_allclose(result["text"], single, atol=1e-5)
    # The index built from the Ray features finds what the exact top-K finds.
    index = retrieval.build_index(result["text"], kind="exact")
    scores, _ = index.search(result["text"][:5], k=10)
    _, expected = similarity.top_k(result["text"][:5] @ result["text"].T, k=10,
                                   return_scores=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_feature_worker_with_audio_in_a_process_where_tensorflow_already_ran(monkeypatch):
    """A worker built outside a Ray actor (chapter 10's fallback) must not fail on TF threads."""
    import mmrec_lib._env as env
    import mmrec_lib.audio as audio

    class StartedTF:  # TensorFlow refuses new thread settings once it has run
        class config:  # noqa: N801 (mirrors tf.config)
            class threading:  # noqa: N801
                @staticmethod
                def set_intra_op_parallelism_threads(n):
                    raise RuntimeError("Intra op parallelism cannot be modified after "
                                       "initialization.")

    monkeypatch.setattr(env, "import_tensorflow", lambda: StartedTF)
    monkeypatch.setattr(audio, "MusicnnEncoder", lambda name: ("musicnn", name))
    worker = distributed.FeatureWorker(("audio",))
    assert worker.audio == ("musicnn", "MTT_musicnn") and worker.text is None
