"""Benchmark of mmrec_lib.vision: frame decoding and CNN embedding speed, peak memory.

Run: python benchmarks/vision.py [--clips 40] [--frames 8]
Prints one JSON object as the last line of stdout, with keys
decode_frames_per_s, cnn_frames_per_s, peak_rss_mb (and the settings used).

Clips come from MiniClips "tiny" (built into the cache on first use); with
--synthetic (or when MiniClips is unavailable) they are generated with ffmpeg
in a temporary folder.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import _common as common
import numpy as np

import mmrec_lib as mm  # first: selects Keras 2 before TensorFlow loads
from mmrec_lib import vision


def synthetic_clips(folder: Path, count: int, num_frames: int = 40, size: int = 96) -> list[Path]:
    """Colour fields with a moving square, H.264 at 10 fps (MiniClips-like)."""
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        frames = np.empty((num_frames, size, size, 3), np.uint8)
        frames[:] = rng.integers(0, 256, 3)
        for t in range(num_frames):
            x = (3 * t) % (size - 20)
            frames[t, 30:50, x:x + 20] = 255
        path = folder / f"clip{k:03d}.mp4"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f",
                        "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", "10",
                        "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                       input=frames.tobytes(), check=True)
        paths.append(path)
    return paths


def miniclips_paths(count: int) -> list[Path]:
    from mmrec_lib.datasets import miniclips

    dataset = miniclips.load_miniclips(size="tiny")
    return [dataset.clip_path(item) for item in dataset.items["item_id"][:count]]


def main() -> None:
    # The chapter's settings (library constants, so the two cannot drift apart).
    parser = common.make_parser(__doc__, clips=(40, "clips to decode"),
                                frames=(vision.CLIP_FRAMES, "frames per clip for the CNN"),
                                size=(vision.CLIP_SIDE, "CNN input side in pixels"))
    parser.add_argument("--synthetic", action="store_true", help="do not use MiniClips")
    args = parser.parse_args()
    mm.set_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        source = "synthetic"
        paths = None
        if not args.synthetic:
            try:
                paths = miniclips_paths(args.clips)
                source = "miniclips-tiny"
            except Exception as error:  # no generator yet, no ffmpeg, ...: fall back
                print(f"MiniClips unavailable ({error}); using synthetic clips", file=sys.stderr)
        if paths is None:
            paths = synthetic_clips(Path(tmp), args.clips)

        # Decoding: every frame of every clip, one ffmpeg process per clip.
        with common.Stopwatch() as decode_clock:
            decoded = [vision.read_video(path)[0] for path in paths]
        decoded_frames = sum(len(frames) for frames in decoded)

        # Sampled decoding (what the chapters cache): num_frames per clip.
        with common.Stopwatch() as sample_clock:
            sampled = [vision.read_frames(path, num_frames=args.frames) for path in paths]

        # CNN embedding: preprocessing + the chapter's video encoder on all frames.
        resize = vision.ResizeCrop(size=args.size)
        clips = np.stack([resize.fit(c).transform(c) for c in sampled])
        inputs = vision.Normalizer(method="unit").fit(clips).transform(clips)
        encoder = vision.build_video_encoder(
            vision.build_image_encoder(input_shape=(args.size, args.size, 3), filters=(16, 32, 32),
                                       embedding_dim=32), num_frames=args.frames)
        vision.encode_clips(encoder, inputs[:2])  # build the graph outside the timing
        with common.Stopwatch() as cnn_clock:
            embeddings = vision.encode_clips(encoder, inputs)

    result = {
        "decode_frames_per_s": round(decoded_frames / decode_clock.seconds, 1),
        "sampled_frames_per_s": round(len(paths) * args.frames / sample_clock.seconds, 1),
        "cnn_frames_per_s": round(embeddings.shape[0] * args.frames / cnn_clock.seconds, 1),
        "peak_rss_mb": round(common.peak_rss_mb(), 1),
        "source": source,
        "clips": len(paths),
        "decoded_frames": decoded_frames,
        "cnn_input": [args.frames, args.size, args.size, 3],
    }
    common.emit(result)


if __name__ == "__main__":
    main()
