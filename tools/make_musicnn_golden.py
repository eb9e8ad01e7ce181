"""Make the musicnn golden fixture: the ORIGINAL TF1 graph's outputs on short synthetic signals.

Run from the repository root (it takes about a minute):

    python tools/make_musicnn_golden.py

It writes tests/fixtures/musicnn_golden.npz, which tests/test_audio.py compares
with the Keras rebuild in mmrec_lib.audio.musicnn.

Why a separate script: musicnn's graph needs TensorFlow's graph mode, and
switching it on (tf.compat.v1.disable_eager_execution) is global and permanent
for a process. So it happens only here, in a throw-away process; the library
and the tests never touch eager mode. The script imports musicnn.models (the
network definition), never musicnn.extractor (which disables eager mode on
import and hides restore failures behind a bare except).

Why the graph is fed a float32 log-mel: musicnn's own batch_data() casts the
mel power to float16 before log10(10000 x + 1). float16 keeps about 3
significant digits (and overflows above 65504, giving inf/NaN for loud audio),
and 10000 * mel is evaluated in float16 too: any mel value above 6.55 overflows
to inf, and the network returns NaN tags. On this script's signals (peaks well
inside [-1, 1]) that already happens: the original front end cannot produce
usable golden values at all. The rebuild computes the log-mel in float32 on purpose,
so the golden values are the original graph's outputs for the float32 log-mel
(same librosa call and parameters as batch_data, minus the cast). The script
prints how far the float16 front end moves the original's own tags.

The signals are synthesised deterministically by golden_signals(), which the
test imports from this file (this module imports only numpy at top level).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SR = 16000
MODELS = ("MTT_musicnn", "MSD_musicnn")
PATCH_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "musicnn_golden.npz"


def golden_signals() -> dict[str, np.ndarray]:
    """Four short deterministic test signals at 16 kHz, float32, in [-1, 1]."""
    rng = np.random.default_rng(20240611)

    def time_axis(seconds):
        return np.arange(int(seconds * SR)) / SR

    # A minor chord with a few harmonics and a slow tremolo, plus soft clicks every 0.5 s.
    t = time_axis(4.0)
    chord = sum(np.sin(2 * np.pi * f * k * t) / k for f in (220.0, 261.63, 329.63)
                for k in (1, 2, 3))
    chord = 0.12 * chord * (0.8 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
    clicks = np.zeros_like(t)
    burst = rng.standard_normal(400) * np.exp(-np.arange(400) / 60.0)
    for start in range(0, t.size - 400, SR // 2):
        clicks[start: start + 400] += 0.3 * burst

    # White noise under a linear chirp, 7 s (two 3 s patches and a remainder).
    t2 = time_axis(7.0)
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 * t2 + (3900.0 / 14.0) * t2 ** 2))
    noisy_chirp = chirp + 0.05 * rng.standard_normal(t2.size)

    # A drum loop at 120 bpm: kick (decaying 55 Hz sine) and hi-hats (noise bursts).
    t3 = time_axis(3.5)
    drums = np.zeros_like(t3)
    kick = np.sin(2 * np.pi * 55.0 * t3[:4000]) * np.exp(-t3[:4000] * 18.0)
    hat = rng.standard_normal(800) * np.exp(-np.arange(800) / 120.0)
    for beat in range(0, t3.size - 4000, SR // 2):
        drums[beat: beat + 4000] += 0.8 * kick
        offbeat = beat + SR // 4
        drums[offbeat: offbeat + 800] += 0.25 * hat

    # A plucked-string melody (Karplus-Strong style decays) over 3.2 s.
    t4 = time_axis(3.2)
    melody = np.zeros_like(t4)
    for index, freq in enumerate((196.0, 246.94, 293.66, 392.0, 293.66, 246.94, 196.0, 146.83)):
        start = index * SR * 2 // 5
        n = min(t4.size - start, SR)
        local = np.arange(n) / SR
        melody[start: start + n] += 0.4 * np.exp(-local * 4.0) * sum(
            np.sin(2 * np.pi * freq * h * local) * 0.6 ** h for h in range(1, 6))

    signals = {"chord_clicks": chord + clicks, "noisy_chirp": noisy_chirp, "drums": drums,
               "plucked_melody": melody}
    return {name: np.clip(s, -1.0, 1.0).astype(np.float32) for name, s in signals.items()}


def log_mel(waveform: np.ndarray, *, float16: bool = False) -> np.ndarray:
    """musicnn's batch_data() front end (frames, 96); float16=True reproduces its cast."""
    import librosa

    mel = librosa.feature.melspectrogram(y=waveform, sr=SR, hop_length=256, n_fft=512,
                                         n_mels=96).T
    mel = mel.astype(np.float16) if float16 else mel.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.log10(10000 * mel + 1).astype(np.float32)


def patches(spec: np.ndarray) -> np.ndarray:
    """musicnn's batch_data() batching: non-overlapping 187-frame patches, remainder dropped."""
    starts = range(0, spec.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)
    return np.stack([spec[s: s + PATCH_FRAMES] for s in starts])


def run_original(model: str, batches: dict[str, np.ndarray]) -> dict[str, tuple]:
    """Build musicnn's own TF1 graph, restore the wheel's checkpoint, run the batches."""
    import importlib.util
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()  # this throw-away process only
    from musicnn import models

    folder = Path(importlib.util.find_spec("musicnn").submodule_search_locations[0]) / model
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, 96])
            is_training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(x, is_training, model, 50)
            logits, penultimate = outputs[0], outputs[-1]
            probabilities = tf.nn.sigmoid(logits)
        saver = tf.compat.v1.train.Saver()
        results = {}
        with tf.compat.v1.Session(graph=graph) as session:
            # No bare except here: a failed restore must stop the script.
            saver.restore(session, str(folder) + "/")
            for name, batch in batches.items():
                # One patch per run, as musicnn's extractor does (BATCH_SIZE = 1).
                probs, emb = [], []
                for patch in batch:
                    p, e = session.run([probabilities, penultimate],
                                       feed_dict={x: patch[None], is_training: False})
                    probs.append(p[0])
                    emb.append(e[0])
                results[name] = (np.stack(probs), np.stack(emb))
    return results


def main() -> int:
    signals = golden_signals()
    batches32 = {name: patches(log_mel(s)) for name, s in signals.items()}
    batches16 = {name: patches(log_mel(s, float16=True)) for name, s in signals.items()}
    arrays: dict[str, np.ndarray] = {}
    for name, signal in signals.items():
        # Checksums let the test notice if golden_signals() ever changes.
        arrays[f"signal/{name}/sum"] = np.float64(signal.astype(np.float64).sum())
        arrays[f"signal/{name}/head"] = signal[:64].copy()
    for model in MODELS:
        exact = run_original(model, batches32)
        rounded = run_original(model, batches16)
        for name, (probs, emb) in exact.items():
            arrays[f"{model}/{name}/probabilities"] = probs.astype(np.float32)
            arrays[f"{model}/{name}/penultimate"] = emb.astype(np.float32)
            top = np.argsort(-probs.mean(axis=0))[:3]
            if np.isfinite(rounded[name][0]).all():
                float16_note = f"moves tags by up to {np.abs(rounded[name][0] - probs).max():.2e}"
            else:
                # 10000 * mel is computed in float16 and overflows (> 65504) to inf.
                float16_note = "gives NaN tags"
            print(f"{model:12s} {name:15s} patches={len(probs)} top tags={top.tolist()}; "
                  f"musicnn's float16 front end {float16_note}")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, **arrays)
    print(f"wrote {FIXTURE.relative_to(FIXTURE.parents[2])} ({FIXTURE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
