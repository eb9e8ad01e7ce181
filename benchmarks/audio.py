"""Benchmark mmrec_lib.audio on MiniClips: clips/s for hand-made features and musicnn, peak RSS.

Usage: python benchmarks/audio.py [--size small] [--clips 100]

Each clip is decoded from its mp4 (ffmpeg) and then either summarised by
handcrafted_features or embedded by MusicnnEncoder (MTT_musicnn, 32 clips per
call of embed_many, as dataset_musicnn_features does); decoding is included in
both rates, building the encoder is not (reported separately).
Prints one JSON object as the last line of stdout.
"""

from __future__ import annotations

import os
import platform

import _common as common


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
    with common.Stopwatch() as musicnn_clock:
        for chunk in range(0, len(paths), 32):  # as dataset_musicnn_features does
            clips = [audio.load_audio(path) for path in paths[chunk: chunk + 32]]
            encoder.embed_many(clips, sr=audio.DEFAULT_SR)

    result = {
        "dataset": f"miniclips-{args.size}",
        "clips": len(paths),
        "mean_clip_duration_s": round(float(durations.mean()), 3),
        "feature_clips_per_s": round(len(paths) / features_clock.seconds, 2),
        "musicnn_clips_per_s": round(len(paths) / musicnn_clock.seconds, 2),
        "musicnn_model_load_s": round(load_clock.seconds, 2),
        "peak_rss_mb": round(common.peak_rss_mb(), 1),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    common.emit(result)


if __name__ == "__main__":
    main()
