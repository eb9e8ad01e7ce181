"""Benchmark mmrec_lib.audio on MiniClips: clips/s for hand-made features and musicnn, peak RSS.

Usage: python benchmarks/audio.py [--size small] [--clips 100]

Each clip is decoded from its mp4 (ffmpeg) and then either summarised by
handcrafted_features or embedded by MusicnnEncoder (MTT_musicnn, 32 clips per
call of embed_many, as dataset_musicnn_features does); decoding is included in
both rates, building the encoder is not (reported separately).
Prints one JSON object as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import mmrec_lib  # noqa: F401  (Keras 2 environment before TensorFlow)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "default"])
    parser.add_argument("--clips", type=int, default=100, help="clips per measurement")
    args = parser.parse_args()
    os.environ.setdefault("MMREC_PROGRESS", "0")

    from mmrec_lib import audio
    from mmrec_lib.datasets import miniclips

    dataset = miniclips.load_miniclips(size=args.size)
    item_ids = list(dataset.items["item_id"][: args.clips])
    paths = [dataset.clip_path(item_id) for item_id in item_ids]
    durations = dataset.items["duration_s"].astype(float)[: args.clips]

    # Warm up librosa (numba compiles some functions on first use).
    audio.handcrafted_features(audio.load_audio(paths[0]), sr=audio.DEFAULT_SR)
    start = time.perf_counter()
    for path in paths:
        audio.handcrafted_features(audio.load_audio(path), sr=audio.DEFAULT_SR)
    feature_seconds = time.perf_counter() - start

    start = time.perf_counter()
    encoder = audio.MusicnnEncoder("MTT_musicnn")
    encoder.embed(audio.load_audio(paths[0]), sr=audio.DEFAULT_SR)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for chunk in range(0, len(paths), 32):  # as dataset_musicnn_features does
        clips = [audio.load_audio(path) for path in paths[chunk: chunk + 32]]
        encoder.embed_many(clips, sr=audio.DEFAULT_SR)
    musicnn_seconds = time.perf_counter() - start

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "dataset": f"miniclips-{args.size}",
        "clips": len(paths),
        "mean_clip_duration_s": round(float(durations.mean()), 3),
        "feature_clips_per_s": round(len(paths) / feature_seconds, 2),
        "musicnn_clips_per_s": round(len(paths) / musicnn_seconds, 2),
        "musicnn_model_load_s": round(load_seconds, 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
