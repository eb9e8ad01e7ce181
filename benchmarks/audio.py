"""Benchmark mmrec_lib.audio on MiniClips: clips/s for hand-made features and musicnn, peak RSS.

Usage: python benchmarks/audio.py [--size small] [--clips 100]

Each clip is decoded from its mp4 (ffmpeg) and then either summarised by
handcrafted_features or embedded by MusicnnEncoder (MTT_musicnn, 32 clips per
call of embed_many, as dataset_musicnn_features does); decoding is included in
both rates, building the encoder is not (reported separately).

The served path (``mmrec_lib.inference.ServedMusicnnEncoder``: the same network
exported to ONNX Runtime, no TensorFlow) is timed on the same clips:

- ``served_musicnn_clips_per_s``: as ``musicnn_clips_per_s``;
- ``served_first_embedding_s`` / ``musicnn_first_embedding_s``: a NEW Python process,
  from its start to the first clip's embedding (decoding included; the one-off ONNX
  export into the cache is done before and not counted), served and Keras;
- ``*_first_embedding_cpu_s``: the CPU-seconds of that new process (all threads);
- ``served_max_abs_diff``: the largest difference between served and Keras clip
  embeddings (values of order 1).

Prints one JSON object as the last line of stdout.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import _common as common
import numpy as np

_FIRST = """
import time
start = time.perf_counter()
from mmrec_lib import audio
from {module} import {cls}
vector = {cls}().embed(audio.load_audio({path!r}), sr=audio.DEFAULT_SR)
assert vector.shape == (200,)
"""


def first_embedding_s(module: str, cls: str, path) -> tuple[float, float]:
    """Seconds (wall, CPU) from a new interpreter's start to its first clip embedding."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _FIRST.format(module=module, cls=cls, path=str(path))],
                   check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = common.make_parser(__doc__, clips=(100, "clips per measurement"))
    parser.add_argument("--size", default="small", choices=["tiny", "small", "default"])
    args = parser.parse_args()

    from mmrec_lib import audio
    from mmrec_lib.datasets import miniclips

    dataset = miniclips.load_miniclips(size=args.size)
    item_ids = list(dataset.items["item_id"][: args.clips])
    paths = [dataset.clip_path(item_id) for item_id in item_ids]
    durations = dataset.items["duration_s"].astype(float)[: args.clips]

    # Warm up librosa (numba compiles some functions on first use).
    audio.handcrafted_features(audio.load_audio(paths[0]), sr=audio.DEFAULT_SR)
    with common.Stopwatch() as features_clock:
        for path in paths:
            audio.handcrafted_features(audio.load_audio(path), sr=audio.DEFAULT_SR)

    with common.Stopwatch() as load_clock:
        encoder = audio.MusicnnEncoder("MTT_musicnn")
        encoder.embed(audio.load_audio(paths[0]), sr=audio.DEFAULT_SR)
    from mmrec_lib.inference import ServedMusicnnEncoder, export_musicnn

    export_musicnn("MTT_musicnn")  # one-off, cached; not part of the timings
    served = ServedMusicnnEncoder("MTT_musicnn")
    served.embed(audio.load_audio(paths[0]), sr=audio.DEFAULT_SR)
    embeddings = {}
    clocks = {}
    for name, model in (("keras", encoder), ("served", served)):
        chunks = []
        with common.Stopwatch() as clocks[name]:
            for chunk in range(0, len(paths), 32):  # as dataset_musicnn_features does
                clips = [audio.load_audio(path) for path in paths[chunk: chunk + 32]]
                chunks.append(model.embed_many(clips, sr=audio.DEFAULT_SR)[0])
        embeddings[name] = np.concatenate(chunks)
    musicnn_clock = clocks["keras"]
    served_first = first_embedding_s("mmrec_lib.inference", "ServedMusicnnEncoder", paths[0])
    keras_first = first_embedding_s("mmrec_lib.audio", "MusicnnEncoder", paths[0])

    result = {
        "dataset": f"miniclips-{args.size}",
        "clips": len(paths),
        "mean_clip_duration_s": round(float(durations.mean()), 3),
        "feature_clips_per_s": round(len(paths) / features_clock.seconds, 2),
        "musicnn_clips_per_s": round(len(paths) / musicnn_clock.seconds, 2),
        "musicnn_model_load_s": round(load_clock.seconds, 2),
        "musicnn_first_embedding_s": round(keras_first[0], 2),
        # CPU-seconds of that new process: robust to other processes on a shared machine.
        "musicnn_first_embedding_cpu_s": round(keras_first[1], 2),
        "served_runtime": "onnxruntime " + __import__("onnxruntime").__version__,
        "served_musicnn_clips_per_s": round(len(paths) / clocks["served"].seconds, 2),
        "served_first_embedding_s": round(served_first[0], 2),
        "served_first_embedding_cpu_s": round(served_first[1], 2),
        "served_max_abs_diff": float(np.abs(embeddings["served"] - embeddings["keras"]).max()),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(common.peak_rss_mb(), 1),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    common.emit(result)


if __name__ == "__main__":
    main()
