"""The served audio path: musicnn exported to ONNX Runtime (mmrec_lib.inference.audio)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmrec_lib import inference
from mmrec_lib.errors import ModelError, ParameterError

SR = 16000
REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "fixtures" / "musicnn_golden.npz"


def _golden_signals() -> dict:
    spec = importlib.util.spec_from_file_location("make_musicnn_golden",
                                                  REPO / "tools" / "make_musicnn_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.golden_signals()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A cache folder holding the MTT_musicnn export (built once for the module)."""
    folder = tmp_path_factory.mktemp("onnx-musicnn")
    inference.export_musicnn(data_dir=folder)
    return folder


@pytest.fixture(scope="module")
def served(model_dir):
    return inference.ServedMusicnnEncoder(data_dir=model_dir)


def test_served_musicnn_matches_the_original_tf1_graph(served):
    # The golden outputs were computed by musicnn's own TF1 graph (tools/make_musicnn_golden.py);
    # the Keras rebuild meets them to 1e-4 (probabilities) and 1e-3 (penultimate).
    golden = np.load(GOLDEN)
    for name, signal in _golden_signals().items():
        probabilities, penultimate = served.taggram(signal, sr=SR)
        expected = golden[f"MTT_musicnn/{name}/probabilities"]
        assert probabilities.shape == expected.shape
        np.testing.assert_allclose(probabilities, expected, atol=1e-4, rtol=0)
        np.testing.assert_allclose(penultimate, golden[f"MTT_musicnn/{name}/penultimate"],
                                   atol=1e-3, rtol=0)


@pytest.mark.slow
def test_served_musicnn_equals_the_keras_rebuild_on_miniclips(served, miniclips_tiny):
    from mmrec_lib import audio

    keras = audio.MusicnnEncoder()
    paths = [miniclips_tiny.clip_path(item) for item in list(miniclips_tiny.items["item_id"])[:6]]
    waveforms = [audio.load_audio(p, sr=SR) for p in paths]
    expected_emb, expected_probs = keras.embed_many(waveforms, sr=SR)
    emb, probs = served.embed_many(waveforms, sr=SR)
    np.testing.assert_allclose(emb, expected_emb, atol=1e-4, rtol=0)
    np.testing.assert_allclose(probs, expected_probs, atol=1e-5, rtol=0)
    # Variable-length patches (a clip shorter than 3 s) too.
    short = keras.log_mel(waveforms[0][: SR], sr=SR)[None]
    np.testing.assert_allclose(served.predict_patches(short)[1],
                               keras.predict_patches(short)[1], atol=1e-4, rtol=0)


def test_export_is_cached_keyed_and_atomic(model_dir):
    path = inference.export_musicnn(data_dir=model_dir)
    mtime = path.stat().st_mtime_ns
    assert inference.export_musicnn(data_dir=model_dir) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert path.parent == model_dir / "models" / "onnx" and path.name.startswith("MTT_musicnn-")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file


def test_a_damaged_export_is_removed_with_a_clear_error(tmp_path, model_dir):
    path = inference.export_musicnn(data_dir=model_dir)
    folder = tmp_path / "damaged"
    target = folder / path.relative_to(model_dir)
    target.parent.mkdir(parents=True)
    target.write_bytes(path.read_bytes()[:1000])  # a truncated file, as after a crash
    with pytest.raises(ModelError, match="removed, call again"):
        inference.ServedMusicnnEncoder(data_dir=folder)
    assert not target.exists()
    # The next call exports again and works.
    encoder = inference.ServedMusicnnEncoder(data_dir=folder)
    assert encoder.predict_patches(np.zeros((1, 50, 96), np.float32))[1].shape == (1, 200)


def test_bad_input_raises_clear_errors(served):
    with pytest.raises(ParameterError, match="patches has shape"):
        served.predict_patches(np.zeros((2, 50, 40), np.float32))
    with pytest.raises(ParameterError, match="NaN or inf"):
        served.predict_patches(np.full((1, 50, 96), np.nan, np.float32))
    with pytest.raises(ParameterError, match="model"):
        inference.ServedMusicnnEncoder("MTT_vgg")
    with pytest.raises(ParameterError, match="batch_size"):
        inference.ServedMusicnnEncoder(batch_size=0)


def test_incomplete_checkpoint_is_refused():
    from mmrec_lib.inference._musicnn_onnx import musicnn_onnx_model

    with pytest.raises(ModelError, match="lacks the variable"):
        musicnn_onnx_model({"conv2d/kernel": np.zeros((7, 38, 1, 204), np.float32)})


def test_loading_the_served_musicnn_does_not_import_tensorflow(model_dir):
    code = ("import sys\nfrom mmrec_lib.inference import ServedMusicnnEncoder\n"
            f"e = ServedMusicnnEncoder(data_dir={str(model_dir)!r})\n"
            "import numpy as np\n"
            "assert e.embed(np.sin(np.arange(16000) / 7.0).astype('float32'), sr=16000)"
            ".shape == (200,)\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.slow
def test_the_service_encoder_on_onnx_equals_the_keras_one(miniclips_tiny, model_dir):
    from mmrec_lib.serving._encode import ClipEncoder

    path = miniclips_tiny.clip_path(miniclips_tiny.items["item_id"].iloc[0])
    vectors = {}
    for runtime in ("keras", "onnx"):
        encoder = ClipEncoder(modalities=("text", "audio"), runtime=runtime).fit(miniclips_tiny)
        vectors[runtime], _ = encoder.encode(path, title="A cat plays the piano")
    np.testing.assert_allclose(vectors["onnx"]["audio"], vectors["keras"]["audio"], atol=1e-4)
    np.testing.assert_allclose(vectors["onnx"]["text"], vectors["keras"]["text"], atol=1e-5)


def test_the_service_encoder_refuses_an_unknown_runtime():
    from mmrec_lib.serving._encode import ClipEncoder

    with pytest.raises(ParameterError, match="runtime"):
        ClipEncoder(runtime="tflite")
