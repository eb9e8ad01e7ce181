"""Tests for mmrec_lib.vision: decoding, Pillow conversions, preprocessing, shots, features,
detection, encoders and the feature cache."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import mmrec_lib  # noqa: F401  (Keras 2 environment first)
from mmrec_lib import cache, vision
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError

FPS = 10
CUTS = (12, 25)  # first frames of shots 2 and 3
NUM_FRAMES = 36


# ----------------------------------------------------------------------------- helpers


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode_video(path: Path, frames: np.ndarray, *, fps: int = FPS, faststart: bool = False,
                 audio: bool = False) -> Path:
    """Write uint8 frames (n, h, w, 3) to an H.264 mp4 (near-lossless)."""
    n, height, width, _ = frames.shape
    command = [_ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=duration=2", "-shortest", "-c:a", "aac"]
    command += ["-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", "-g", "8"]
    if faststart:
        command += ["-movflags", "+faststart"]
    subprocess.run([*command, str(path)], input=frames.tobytes(), check=True)
    return path


def synthetic_frames(num_frames: int = NUM_FRAMES, cuts=CUTS, height: int = 48,
                     width: int = 64) -> np.ndarray:
    """Flat colour per shot with a white square moving right by 2 px per frame."""
    colours = np.array([[200, 30, 30], [30, 160, 60], [40, 60, 200], [220, 200, 40]])
    shot = np.searchsorted(np.asarray(cuts), np.arange(num_frames), side="right")
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t] = colours[shot[t]]
        x = (2 * t) % (width - 12)
        frames[t, 16:28, x:x + 12] = 255
    return frames


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def source_frames() -> np.ndarray:
    return synthetic_frames()


@pytest.fixture(scope="module")
def clip(video_dir, source_frames) -> Path:
    return encode_video(video_dir / "clip.mp4", source_frames)


@pytest.fixture(scope="module")
def decoded(clip) -> np.ndarray:
    return vision.read_frames(clip)


# ----------------------------------------------------------------------------- decoding


def test_probe_video_reads_header(clip):
    info = vision.probe_video(clip)
    assert (info.width, info.height, info.fps) == (64, 48, 10.0)
    assert info.num_frames == NUM_FRAMES
    assert info.duration_s == pytest.approx(3.6)


def test_read_frames_all_frames_match_source(decoded, source_frames):
    assert decoded.shape == (NUM_FRAMES, 48, 64, 3)
    assert decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - source_frames).mean() < 3.0


@pytest.mark.parametrize("method", ["seek", "select"])
def test_read_frames_num_frames_takes_evenly_spaced_frames(clip, decoded, method):
    frames = vision.read_frames(clip, num_frames=4, method=method)
    expected = vision.sample_indices(4, NUM_FRAMES)
    np.testing.assert_array_equal(expected, [4, 13, 22, 31])
    np.testing.assert_array_equal(frames, decoded[expected])


def test_read_frames_frame_indices_keep_order_and_duplicates(clip, decoded):
    frames = vision.read_frames(clip, frame_indices=[7, 2, 7, 35])
    np.testing.assert_array_equal(frames, decoded[[7, 2, 7, 35]])


def test_read_frames_fps_resamples(clip):
    assert vision.read_frames(clip, fps=5).shape[0] == NUM_FRAMES // 2


def test_read_frames_size_resizes(clip):
    assert vision.read_frames(clip, num_frames=2, size=(32, 16)).shape == (2, 16, 32, 3)


def test_sample_indices_explicit():
    np.testing.assert_array_equal(vision.sample_indices(3, 9), [1, 4, 7])
    np.testing.assert_array_equal(vision.sample_indices(4, 2), [0, 0, 1, 1])


def test_read_frames_rejects_two_selections(clip):
    with pytest.raises(ParameterError, match="at most one"):
        vision.read_frames(clip, fps=5, num_frames=3)


@pytest.mark.parametrize("options", [{"fps": 0}, {"num_frames": 0}, {"num_frames": 2.5},
                                     {"frame_indices": [-1]}, {"frame_indices": []},
                                     {"size": (0, 10)}, {"method": "fast", "num_frames": 2}])
def test_read_frames_rejects_bad_options(clip, options):
    with pytest.raises(ParameterError):
        vision.read_frames(clip, **options)


def test_read_frames_index_past_the_end(clip):
    with pytest.raises(ParameterError, match="frame 99"):
        vision.read_frames(clip, frame_indices=[1, 99])


def test_truncated_mp4_moov_at_end_raises_data_error(video_dir, clip):
    broken = video_dir / "truncated.mp4"
    broken.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(DataError, match="truncated.mp4"):
        vision.read_frames(broken)


def test_truncated_mp4_faststart_raises_data_error(video_dir, source_frames):
    whole = encode_video(video_dir / "faststart.mp4", source_frames, faststart=True)
    broken = video_dir / "truncated_faststart.mp4"
    data = whole.read_bytes()
    broken.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match="truncated_faststart.mp4"):
        vision.read_frames(broken)


def test_non_video_file_raises_data_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(DataError, match="notes.mp4"):
        vision.read_frames(path)


def test_empty_file_raises_data_error(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        vision.probe_video(path)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        vision.read_frames(tmp_path / "missing.mp4")


def test_zero_video_frames_audio_only_file(tmp_path):
    path = tmp_path / "audio_only.mp4"
    subprocess.run([_ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=duration=1", "-c:a", "aac", str(path)], check=True)
    with pytest.raises(DataError, match="no video stream"):
        vision.read_frames(path)


def test_zero_frames_array_raises_data_error():
    with pytest.raises(DataError, match="at least one"):
        vision.detect_shots(np.zeros((0, 8, 8, 3), np.uint8))


# ----------------------------------------------------------------------------- images


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def test_load_image_grayscale(tmp_path):
    path = _save(Image.new("L", (4, 3), 77), tmp_path / "gray.png")
    image = vision.load_image(path)
    assert image.mode == "RGB" and image.size == (4, 3)
    assert np.asarray(image)[0, 0].tolist() == [77, 77, 77]


def test_load_image_bilevel(tmp_path):
    path = _save(Image.new("1", (2, 2), 1), tmp_path / "bw.png")
    assert np.asarray(vision.load_image(path))[0, 0].tolist() == [255, 255, 255]


def test_load_image_rgba_composited_over_background(tmp_path):
    rgba = Image.new("RGBA", (2, 1), (200, 0, 0, 0))
    rgba.putpixel((1, 0), (200, 0, 0, 255))
    path = _save(rgba, tmp_path / "alpha.png")
    pixels = np.asarray(vision.load_image(path))
    assert pixels[0, 0].tolist() == [255, 255, 255]  # fully transparent -> background
    assert pixels[0, 1].tolist() == [200, 0, 0]
    black = np.asarray(vision.load_image(path, background=(0, 0, 0)))
    assert black[0, 0].tolist() == [0, 0, 0]


def test_load_image_half_transparent_la(tmp_path):
    path = _save(Image.new("LA", (1, 1), (0, 128)), tmp_path / "la.png")
    value = np.asarray(vision.load_image(path))[0, 0, 0]
    assert 125 <= value <= 129  # half of white shows through black


def test_load_image_palette(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    palette.putpixel((1, 0), 1)
    path = _save(palette, tmp_path / "palette.png")
    assert np.asarray(vision.load_image(path)).tolist() == [[[10, 20, 30], [40, 50, 60]]]


def test_load_image_palette_with_transparency(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    palette.putpixel((1, 0), 1)
    path = _save(palette, tmp_path / "palette_t.png", transparency=0)
    assert np.asarray(vision.load_image(path)).tolist() == [[[255, 255, 255], [40, 50, 60]]]


def test_load_image_cmyk(tmp_path):
    path = _save(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), tmp_path / "cmyk.tif")
    assert np.asarray(vision.load_image(path))[0, 0].tolist() == [255, 0, 0]


def test_load_image_16bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    pixels = np.asarray(vision.load_image(path))[0, :, 0]
    assert pixels.tolist() == [0, 128, 255]


def test_to_rgb_float_image_in_unit_range():
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    assert np.asarray(vision.to_rgb(image))[0, :, 1].tolist() == [0, 128, 255]


def test_load_image_ycbcr_jpeg(tmp_path):
    path = _save(Image.new("RGB", (8, 8), (0, 0, 255)), tmp_path / "blue.jpg", quality=95)
    pixel = np.asarray(vision.load_image(path))[4, 4].astype(int)
    assert pixel[2] > 240 and pixel[0] < 15


def test_load_image_one_pixel_through_preprocessing(tmp_path):
    path = _save(Image.new("RGB", (1, 1), (10, 200, 30)), tmp_path / "dot.png")
    image = vision.image_to_array(vision.load_image(path))
    assert image.shape == (1, 1, 3)
    batch = vision.ResizeCrop(size=8).fit([image]).transform([image])
    assert batch.shape == (1, 8, 8, 3)
    assert batch[0, 4, 4].tolist() == [10, 200, 30]
    features = vision.frame_features(image[None])
    assert features.loc[0, "edge_density"] == 0.0
    assert features.loc[0, "contrast"] == 0.0


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height (a decompression bomb in spirit)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.write_bytes(data + chunk(b"IEND", b""))
    return path


def test_huge_image_refused_before_decoding(tmp_path):
    path = _png_header_only(tmp_path / "bomb.png", 60_000, 60_000)
    assert path.stat().st_size < 200
    with pytest.raises(DataError, match="bomb.png.*max_pixels"):
        vision.load_image(path)


def test_max_pixels_limit_is_a_parameter(tmp_path):
    path = _save(Image.new("RGB", (20, 10)), tmp_path / "small.png")
    assert vision.load_image(path, max_pixels=200).size == (20, 10)
    with pytest.raises(DataError, match="200 pixels"):
        vision.load_image(path, max_pixels=199)


def test_load_image_rejects_bad_max_pixels(tmp_path):
    path = _save(Image.new("RGB", (2, 2)), tmp_path / "x.png")
    with pytest.raises(ParameterError, match="max_pixels"):
        vision.load_image(path, max_pixels=0)


def test_truncated_image_raises_data_error(tmp_path):
    whole = _save(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                                                     dtype=np.uint8)),
                  tmp_path / "whole.jpg", quality=90)
    broken = tmp_path / "cut.jpg"
    broken.write_bytes(whole.read_bytes()[:600])
    with pytest.raises(DataError, match="cut.jpg"):
        vision.load_image(broken)


def test_non_image_file_raises_data_error(tmp_path):
    path = tmp_path / "cover.jpg"
    path.write_text("not an image")
    with pytest.raises(DataError, match="cover.jpg.*not an image"):
        vision.load_image(path)


# ----------------------------------------------------------------------------- preprocessing


def test_denoiser_median_removes_salt_noise():
    image = np.full((1, 9, 9, 3), 100, np.uint8)
    image[0, 4, 4] = 255
    out = vision.Denoiser(method="median").fit(image).transform(image)
    assert out.shape == image.shape
    assert out[0, 4, 4].tolist() == [100, 100, 100]


def test_denoiser_bilateral_keeps_edges_and_smooths_noise():
    rng = np.random.default_rng(0)
    image = np.zeros((1, 16, 16, 3), np.float64)
    image[0, :, 8:] = 200
    noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    out = vision.Denoiser(method="bilateral", size=5).fit(noisy).transform(noisy).astype(float)
    assert out[0, :, :7].std() < noisy[0, :, :7].std()
    assert out[0, :, 9:].mean() - out[0, :, :7].mean() > 190  # the edge survives


def test_denoiser_gaussian_blurs():
    image = np.zeros((1, 9, 9, 3), np.uint8)
    image[0, 4, 4] = 255
    out = vision.Denoiser(method="gaussian").fit(image).transform(image)
    assert 0 < out[0, 4, 4, 0] < 255


@pytest.mark.parametrize("options", [{"method": "wiener"}, {"size": 4}, {"size": 1},
                                     {"method": "bilateral", "sigma_color": 0}])
def test_denoiser_rejects_bad_parameters(options):
    with pytest.raises(ParameterError):
        vision.Denoiser(**options).fit(np.zeros((1, 4, 4, 3), np.uint8))


def test_transformers_need_fit():
    images = np.zeros((1, 4, 4, 3), np.uint8)
    for transformer in (vision.Denoiser(), vision.Enhancer(), vision.ResizeCrop(),
                        vision.Normalizer()):
        with pytest.raises(NotFittedError):
            transformer.transform(images)


def test_enhancer_autocontrast_stretches_range():
    image = np.zeros((1, 2, 2, 3), np.uint8)
    image[0, 0, 0], image[0, 1, 1] = 100, 150
    image[0, 0, 1] = image[0, 1, 0] = 125
    out = vision.Enhancer(cutoff=0).fit(image).transform(image)
    assert out.min() == 0 and out.max() == 255


def test_enhancer_equalize_flattens_histogram():
    gray = np.repeat(np.arange(100, 132, dtype=np.uint8), 64).reshape(32, 64)
    image = np.repeat(gray[None, ..., None], 3, axis=-1)
    out = vision.Enhancer(autocontrast=False, equalize=True).fit(image).transform(image)
    assert out.max() - out.min() > 200


def test_enhancer_sharpen_increases_edge_contrast():
    image = np.zeros((1, 12, 12, 3), np.uint8)
    image[0, :, 6:] = 200
    blurred = vision.Denoiser(method="gaussian", size=3).fit(image).transform(image)
    out = vision.Enhancer(autocontrast=False, sharpen=2.0).fit(blurred).transform(blurred)
    assert np.abs(np.diff(out[0, 6, :, 0].astype(int))).max() > \
        np.abs(np.diff(blurred[0, 6, :, 0].astype(int))).max()


def test_enhancer_rejects_bad_cutoff():
    with pytest.raises(ParameterError, match="cutoff"):
        vision.Enhancer(cutoff=60).fit(np.zeros((1, 2, 2, 3), np.uint8))


def test_resize_crop_keeps_aspect_and_centre():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :15] = 255  # a white band on the left: cropped away
    image[:, 15:65] = (0, 0, 200)
    out = vision.ResizeCrop(size=20).fit([image]).transform([image])
    assert out.shape == (1, 20, 20, 3)
    assert out[0, :, :, 2].min() > 190 and out[0, :, :, 0].max() < 10


def test_resize_crop_pad_mode():
    image = np.full((10, 20, 3), 50, np.uint8)
    out = vision.ResizeCrop(size=20, mode="pad", fill=(9, 9, 9)).fit([image]).transform([image])
    assert out[0, 0, 0].tolist() == [9, 9, 9] and out[0, 10, 10].tolist() == [50, 50, 50]


def test_resize_crop_accepts_mixed_sizes_and_pil():
    images = [np.zeros((5, 7, 3), np.uint8), Image.new("L", (30, 12), 40)]
    out = vision.ResizeCrop(size=(6, 4)).fit(images).transform(images)
    assert out.shape == (2, 4, 6, 3)
    assert out[1, 2, 3].tolist() == [40, 40, 40]


def test_preprocessing_rejects_wrong_shape():
    with pytest.raises(DataError, match="expected"):
        vision.ResizeCrop().fit(np.zeros((2, 4, 4), np.uint8))


def test_normalizer_standard_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    normalizer = vision.Normalizer().fit(images)
    out = normalizer.transform(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.reshape(-1, 3).std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(normalizer.inverse_transform(out), images)


def test_normalizer_fixed_scalings():
    image = np.array([[[[0, 255, 51]]]], np.uint8)
    np.testing.assert_allclose(vision.Normalizer(method="unit").fit(image).transform(image),
                               [[[[0, 1, 0.2]]]], atol=1e-6)
    np.testing.assert_allclose(vision.Normalizer(method="symmetric").fit(image).transform(image),
                               [[[[-1, 1, -0.6]]]], atol=1e-6)


def test_normalizer_accepts_clips():
    clips = np.zeros((2, 3, 4, 4, 3), np.uint8)
    assert vision.Normalizer(method="unit").fit(clips).transform(clips).shape == clips.shape


def test_preprocessing_pipeline_and_clone():
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(vision.Denoiser(), vision.Enhancer(sharpen=0.5),
                             vision.ResizeCrop(size=16), vision.Normalizer(method="unit"))
    images = [np.full((20, 30, 3), 90, np.uint8), np.full((30, 20, 3), 160, np.uint8)]
    out = pipeline.fit_transform(images)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.float32
    assert clone(pipeline).get_params()["resizecrop__size"] == 16


# ----------------------------------------------------------------------------- shots


def test_colour_histograms_rows_sum_to_one(source_frames):
    histograms = vision.colour_histograms(source_frames, bins=8)
    assert histograms.shape == (NUM_FRAMES, 24)
    np.testing.assert_allclose(histograms.sum(axis=1), 1.0)


def test_histogram_distances_identical_and_disjoint():
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((1, 2, 2, 3), np.uint8)
    blue[..., 2] = 255
    histograms = vision.colour_histograms(np.concatenate([red, red, blue]), space="rgb")
    np.testing.assert_allclose(vision.histogram_distances(histograms), [0.0, 2 / 3])
    np.testing.assert_allclose(vision.histogram_distances(histograms, metric="chi2"), [0.0, 2 / 3])


def test_rgb_to_hsv_primaries():
    pixels = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], np.uint8)
    np.testing.assert_allclose(vision.rgb_to_hsv(pixels),
                               [[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 128 / 255]],
                               atol=1e-6)


def test_adaptive_threshold_uses_floor_and_local_level():
    distances = np.array([0.01] * 10 + [0.9] + [0.01] * 10)
    thresholds = vision.adaptive_threshold(distances, window=5, k=3.0, floor=0.2)
    np.testing.assert_allclose(thresholds, 0.2)


def test_detect_shots_finds_synthetic_cuts(decoded):
    shots = vision.detect_shots(decoded)
    np.testing.assert_array_equal(shots.cut_frames, CUTS)
    assert shots.boundaries == [(0, 12), (12, 25), (25, NUM_FRAMES)]
    np.testing.assert_allclose(shots.cut_times(FPS), [1.2, 2.5])


def test_detect_shots_static_video_has_no_cut():
    frames = np.repeat(synthetic_frames(cuts=())[:1], 20, axis=0)
    assert vision.detect_shots(frames).cut_frames.size == 0


def test_detect_shots_min_shot_frames_merges_close_cuts():
    frames = synthetic_frames(num_frames=30, cuts=(10, 12))
    assert vision.detect_shots(frames, min_shot_frames=1).cut_frames.tolist() == [10, 12]
    assert len(vision.detect_shots(frames, min_shot_frames=5).cut_frames) == 1


def test_detect_shots_rejects_float_frames():
    with pytest.raises(DataError, match="uint8"):
        vision.detect_shots(np.zeros((3, 4, 4, 3), np.float32))


def test_keyframes_one_per_shot_inside_it(decoded):
    shots = vision.detect_shots(decoded)
    for method in ("medoid", "middle"):
        keys = vision.keyframes(decoded, shots, method=method)
        assert len(keys) == 3
        assert all(start <= k < stop for k, (start, stop) in zip(keys, shots.boundaries,
                                                                 strict=True))
    np.testing.assert_array_equal(vision.keyframes(decoded, shots, method="middle"), [5, 18, 30])


def test_match_cuts_one_to_one_with_tolerance():
    assert vision.match_cuts([10, 11, 30], [10, 20], tolerance=1) == (1, 2, 1)
    assert vision.match_cuts([9, 21], [10, 20], tolerance=1) == (2, 0, 0)
    assert vision.match_cuts([9, 21], [10, 20], tolerance=0) == (0, 2, 2)


def test_shot_detection_scores_hand_example():
    scores = vision.shot_detection_scores([[10, 40], [], [5]], [[10], [7], []], tolerance=1)
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == \
        (1, 2, 1)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 2)
    assert scores["f1"] == pytest.approx(0.4)


def test_shot_detection_scores_nothing_to_find():
    assert vision.shot_detection_scores([[]], [[]])["f1"] == 1.0


def test_match_cuts_rejects_negative_tolerance():
    with pytest.raises(ParameterError, match="tolerance"):
        vision.match_cuts([1], [1], tolerance=-1)


def _fake_dataset(video_dir: Path, clip: Path):
    """A stand-in with the MiniClips attributes evaluate_shot_detection uses."""
    static = encode_video(video_dir / "static.mp4", synthetic_frames(num_frames=20, cuts=()))
    paths = {"i0000": clip, "i0001": static}
    truth = SimpleNamespace(shot_cuts={"i0000": [c / FPS for c in CUTS], "i0001": []})
    return SimpleNamespace(items=pd.DataFrame({"item_id": list(paths)}), truth=truth,
                           clip_path=paths.__getitem__, root=video_dir / "fake-set")


def test_evaluate_shot_detection_on_a_fake_dataset(data_dir, video_dir, clip):
    dataset = _fake_dataset(video_dir, clip)
    scores = vision.evaluate_shot_detection(dataset, tolerance_frames=1)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (1.0, 1.0, 1.0)
    assert scores["true_positives"] == 2 and scores["num_clips"] == 2
    folder = data_dir / "features" / "vision" / cache.dataset_key(dataset)
    assert len(list(folder.glob("histograms-*.npz"))) == 1
    assert vision.evaluate_shot_detection(dataset, cache=False) == scores


def test_clip_histograms_split_per_clip(data_dir, video_dir, clip):
    per_clip = vision.clip_histograms(_fake_dataset(video_dir, clip), bins=8)
    assert [(h.shape, fps) for h, fps in per_clip] == [((NUM_FRAMES, 24), 10.0), ((20, 24), 10.0)]


def test_shots_from_histograms_matches_detect_shots(decoded):
    from_frames = vision.detect_shots(decoded)
    from_histograms = vision.shots_from_histograms(vision.colour_histograms(decoded))
    np.testing.assert_array_equal(from_frames.cut_frames, from_histograms.cut_frames)


def test_evaluate_shot_detection_rejects_non_dataset():
    with pytest.raises(ParameterError, match="MiniClips"):
        vision.evaluate_shot_detection(object())


# ----------------------------------------------------------------------------- features


def test_frame_features_gray_frame_values():
    frames = np.full((2, 6, 6, 3), 51, np.uint8)
    features = vision.frame_features(frames)
    assert list(features.columns) == vision.FRAME_FEATURE_COLUMNS
    row = features.iloc[0]
    assert row["brightness"] == pytest.approx(0.2)
    assert row["saturation"] == 0 and row["colourfulness"] == 0 and row["edge_density"] == 0
    assert row[[f"hue_{i}" for i in range(vision.HUE_BINS)]].sum() == 0


def test_colourfulness_pure_red_vs_gray():
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5 everywhere: 0.3 * sqrt(255^2 + 127.5^2).
    assert vision.colourfulness(red)[0] == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_edge_density_of_a_vertical_edge():
    frame = np.zeros((1, 10, 10, 3), np.uint8)
    frame[0, :, 5:] = 255
    assert vision.edge_density(frame)[0] == pytest.approx(0.2)  # columns 4 and 5


def test_motion_energy_static_and_moving(source_frames):
    static = np.repeat(source_frames[:1], 3, axis=0)
    np.testing.assert_array_equal(vision.motion_energy(static), [0, 0])
    assert vision.motion_energy(source_frames[:5]).min() > 0


def test_clip_features_named_and_single_frame():
    features = vision.clip_features(synthetic_frames()[:1])
    assert list(features.index) == vision.CLIP_FEATURE_COLUMNS
    assert features["motion_energy"] == 0 and features["brightness_change"] == 0


def test_clip_feature_table_index(source_frames):
    table = vision.clip_feature_table(np.stack([source_frames[:4], source_frames[20:24]]),
                                      index=["a", "b"])
    assert table.shape == (2, len(vision.CLIP_FEATURE_COLUMNS))
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "blue"] < table.loc["b", "blue"]


def test_visual_energy_regressor_recovers_linear_signal():
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(80, 3)), columns=["motion", "brightness", "noise"])
    energy = 0.8 * features["motion"] - 0.3 * features["brightness"]
    model = vision.VisualEnergyRegressor(alpha=0.01).fit(features, energy)
    assert model.score(features, energy) > 0.999
    assert list(model.feature_names_in_) == ["motion", "brightness", "noise"]


def test_visual_energy_regressor_errors():
    with pytest.raises(NotFittedError):
        vision.VisualEnergyRegressor().predict(np.zeros((1, 2)))
    with pytest.raises(DataError, match="NaN"):
        vision.VisualEnergyRegressor().fit(np.array([[np.nan, 1.0]]), [1.0])
    with pytest.raises(DataError, match="y has shape"):
        vision.VisualEnergyRegressor().fit(np.zeros((3, 2)), [1.0, 2.0])


# ----------------------------------------------------------------------------- detection


def test_box_iou_explicit():
    iou = vision.box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])


def test_non_max_suppression_drops_overlaps():
    keep = vision.non_max_suppression([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]],
                                      [0.5, 0.9, 0.4])
    assert keep.tolist() == [1, 2]


def _truth(rows):
    return pd.DataFrame(rows, columns=vision.BOX_COLUMNS)


def _detections(rows):
    return pd.DataFrame(rows, columns=vision.DETECTION_COLUMNS)


def test_mean_average_precision_perfect_and_hand_example():
    truth = _truth([(0, "ball", 0, 0, 10, 10), (1, "ball", 0, 0, 10, 10),
                    (0, "block", 20, 20, 30, 30)])
    perfect = _detections([(*row, 1.0) for row in truth.itertuples(index=False)])
    assert vision.mean_average_precision(perfect, truth)["map"] == 1.0
    # ball: ranked hit, miss, hit -> AP = 0.5 * 1 + 0.5 * 2/3; block: never found -> 0.
    found = _detections([(0, "ball", 0, 0, 10, 10, 0.9), (0, "ball", 40, 40, 50, 50, 0.8),
                         (1, "ball", 1, 1, 10, 10, 0.7)])
    result = vision.mean_average_precision(found, truth)
    assert result["per_class"]["ball"] == pytest.approx(0.5 + 1 / 3)
    assert result["per_class"]["block"] == 0.0
    assert result["map"] == pytest.approx((0.5 + 1 / 3) / 2)


def test_mean_average_precision_duplicate_is_false_positive():
    truth = _truth([(0, "ring", 0, 0, 10, 10)])
    found = _detections([(0, "ring", 0, 0, 10, 10, 0.9), (0, "ring", 0, 0, 10, 10, 0.8)])
    assert vision.mean_average_precision(found, truth)["map"] == 1.0
    late = _detections([(0, "ring", 30, 30, 40, 40, 0.9), (0, "ring", 0, 0, 10, 10, 0.8)])
    assert vision.mean_average_precision(late, truth)["map"] == pytest.approx(0.5)


def test_mean_average_precision_rejects_missing_columns():
    with pytest.raises(DataError, match="lacks columns"):
        vision.mean_average_precision(pd.DataFrame({"image": []}), _truth([]))


def test_mean_average_precision_rejects_inverted_boxes():
    with pytest.raises(DataError, match="x1 < x0"):
        vision.mean_average_precision(_detections([]), _truth([(0, "ball", 5, 0, 1, 4)]))


def _shapes_scene(rng, num_images: int, size: int = 32):
    """Frames with a gray noisy background and one red square or blue disc each."""
    frames = np.clip(rng.normal(120, 8, (num_images, size, size, 3)), 0, 255).astype(np.uint8)
    rows = []
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(num_images):
        side = int(rng.integers(8, 13))
        x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
        if i % 2 == 0:
            frames[i, y0:y0 + side, x0:x0 + side] = (220, 30, 30)
            rows.append((i, "square", x0, y0, x0 + side, y0 + side))
        else:
            centre = (x0 + side / 2 - 0.5, y0 + side / 2 - 0.5)
            disc = np.hypot(xx - centre[0], yy - centre[1]) <= side / 2
            frames[i][disc] = (30, 30, 220)
            rows.append((i, "disc", x0, y0, x0 + side, y0 + side))
    return frames, _truth(rows)


def test_colour_blob_detector_segments_and_classifies_shapes():
    frames, truth = _shapes_scene(np.random.default_rng(0), 60)
    detector = vision.ColourBlobDetector().fit(frames[:40], truth[truth["image"] < 40])
    assert detector.classes_ == ["disc", "square"]
    found = detector.detect(frames[40:], images=range(40, 60))
    assert vision.mean_average_precision(found, truth[truth["image"] >= 40])["map"] > 0.9


def test_colour_blob_detector_regions_on_a_gradient():
    ramp = np.linspace(0, 150, 32)
    frame = np.stack([np.tile(ramp, (32, 1))] * 3, axis=-1).astype(np.uint8)
    assert vision.ColourBlobDetector().regions(frame) == []  # a gradient is background
    frame[4:14, 20:30] = (250, 0, 0)
    [(box, descriptor)] = vision.ColourBlobDetector().regions(frame)
    assert box == (20, 4, 30, 14)
    assert descriptor[-2] == 1.0  # a full square fills its box


def test_colour_blob_detector_needs_fit_and_boxes():
    with pytest.raises(NotFittedError):
        vision.ColourBlobDetector().detect(np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="nothing to learn"):
        vision.ColourBlobDetector().fit(np.zeros((1, 8, 8, 3), np.uint8), _truth([]))


def test_grid_detector_target_encoding():
    detector = vision.GridDetector(["a", "b"], input_size=32, grid=4)
    target = detector.encode_targets(_truth([(0, "b", 8, 8, 16, 24)]), [0], [(32, 32)])
    assert target.shape == (1, 4, 4, 7)
    cell = target[0, 2, 1]  # centre (12, 16) -> column 1, row 2
    np.testing.assert_allclose(cell, [1, 0.5, 0.0, 0.5, np.sqrt(0.5), 0, 1])
    assert target[..., 0].sum() == 1


@pytest.mark.slow
def test_grid_detector_learns_two_shapes():
    rng = np.random.default_rng(1)
    frames, truth = _shapes_scene(rng, 160)
    detector = vision.GridDetector(["disc", "square"], input_size=32, grid=4, filters=(16, 16),
                                   epochs=30, learning_rate=5e-3, seed=0)
    detector.fit(frames[:128], truth[truth["image"] < 128])
    test_truth = truth[truth["image"] >= 128]
    found = detector.detect(frames[128:], images=range(128, 160))
    assert set(found.columns) == set(vision.DETECTION_COLUMNS)
    assert vision.mean_average_precision(found, test_truth)["map"] > 0.6
    assert "loss" in detector.history_


def test_grid_detector_rejects_bad_grid():
    detector = vision.GridDetector(["a"], input_size=48, grid=4)
    with pytest.raises(ParameterError, match="power of two"):
        detector.build_model()


def test_objects_to_tags():
    found = _detections([(("i1", 0), "ball", 0, 0, 1, 1, 0.9), (("i1", 5), "ball", 0, 0, 1, 1, 0.8),
                         (("i1", 5), "ring", 0, 0, 1, 1, 0.9), (("i2", 0), "ring", 0, 0, 1, 1, 0.2),
                         (("i2", 1), "tent", 0, 0, 1, 1, 0.7), (("i2", 2), "tent", 0, 0, 1, 1, 0.7)])
    tags = vision.objects_to_tags(found, min_score=0.5, min_images=2)
    assert tags.to_dict() == {"i1": "ball", "i2": "tent"}
    assert vision.objects_to_tags(found, min_images=1).to_dict() == {"i1": "ball|ring",
                                                                      "i2": "tent"}


# ----------------------------------------------------------------------------- encoders


def test_image_and_video_encoder_shapes():
    image_encoder = vision.build_image_encoder(input_shape=(16, 16, 3), filters=(4, 8),
                                               embedding_dim=5)
    assert image_encoder.output_shape == (None, 5)
    for pooling in ("mean", "max", "conv"):
        video_encoder = vision.build_video_encoder(image_encoder, num_frames=3, pooling=pooling)
        assert video_encoder.output_shape == (None, 5)
    clips = np.random.default_rng(0).normal(size=(2, 3, 16, 16, 3)).astype(np.float32)
    embeddings = vision.encode_clips(video_encoder, clips)
    assert embeddings.shape == (2, 5) and embeddings.dtype == np.float32


def test_video_encoder_mean_pooling_is_mean_of_frames():
    image_encoder = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(4,),
                                               embedding_dim=3)
    video_encoder = vision.build_video_encoder(image_encoder, num_frames=2)
    clips = np.random.default_rng(1).normal(size=(1, 2, 8, 8, 3)).astype(np.float32)
    per_frame = vision.encode_clips(image_encoder, clips[0])
    np.testing.assert_allclose(vision.encode_clips(video_encoder, clips)[0],
                               per_frame.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_encode_clips_rejects_wrong_shape():
    encoder = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(4,), embedding_dim=2)
    with pytest.raises(DataError, match="expects"):
        vision.encode_clips(encoder, np.zeros((1, 9, 9, 3)))


def test_build_image_encoder_rejects_small_input():
    with pytest.raises(ParameterError, match="input_shape"):
        vision.build_image_encoder(input_shape=(4, 4, 3), filters=(4, 4, 4))


@pytest.mark.slow
def test_pretrain_video_encoder_learns_and_freezes():
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 2
    clips = rng.normal(0, 0.1, (40, 2, 8, 8, 3)).astype(np.float32)
    clips[labels == 1, ..., 0] += 2.0
    encoder, classifier, history = vision.pretrain_video_encoder(
        clips, labels, num_classes=2, epochs=15, filters=(4,), embedding_dim=4,
        learning_rate=1e-2)
    assert history["loss"][-1] < history["loss"][0]
    assert not encoder.trainable and encoder.trainable_weights == []
    predicted = classifier.predict(clips, verbose=0).argmax(axis=1)
    assert (predicted == labels).mean() >= 0.95


def test_train_or_load_caches_weights_and_history(tmp_path):
    path = tmp_path / "model.h5"
    calls = []

    def make_model(seed):
        mmrec_lib.set_seed(seed)
        return vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)

    def train():
        calls.append(1)
        return {"loss": [np.float32(2.0), np.float32(1.0)]}

    first = make_model(0)
    assert vision.train_or_load(first, path, train) == {"loss": [2.0, 1.0]}
    second = make_model(1)  # different initial weights, replaced by the cached ones
    assert vision.train_or_load(second, path, train) == {"loss": [2.0, 1.0]}
    assert len(calls) == 1 and path.is_file() and path.with_suffix(".json").is_file()
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_or_load_retrains_for_another_architecture(tmp_path):
    path = tmp_path / "model.h5"
    calls = []

    def train():
        calls.append(1)
        return {"loss": [1.0]}

    small = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)
    vision.train_or_load(small, path, train)
    other = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(4, 4), embedding_dim=3)
    vision.train_or_load(other, path, train)
    assert len(calls) == 2


def test_train_or_load_corrupt_weights_warn_and_retrain(tmp_path):
    path = tmp_path / "model.h5"
    model = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)
    vision.train_or_load(model, path, lambda: {"loss": [1.0]})
    path.write_bytes(b"not hdf5")
    with pytest.warns(RuntimeWarning, match="model.h5"):
        assert vision.train_or_load(model, path, lambda: {"loss": [0.5]}) == {"loss": [0.5]}
    assert vision.train_or_load(model, path, lambda: {"loss": [9.0]}) == {"loss": [0.5]}


def test_train_or_load_rejects_other_suffix(tmp_path):
    model = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)
    with pytest.raises(ParameterError, match=".h5"):
        vision.train_or_load(model, tmp_path / "model.keras", lambda: {})


def test_pretrain_video_encoder_rejects_bad_labels():
    with pytest.raises(DataError, match="labels must be in"):
        vision.pretrain_video_encoder(np.zeros((2, 1, 8, 8, 3)), np.array([0, 5]), num_classes=2)


def test_mobilenet_without_cached_weights_raises_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = tmp_path / "models" / \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    assert vision.mobilenet_v2_weights_path(rows=96) == expected
    with pytest.raises(ModelError, match="allow_download=True"):
        vision.mobilenet_v2_backbone(rows=96)


def test_mobilenet_rejects_unsupported_size():
    with pytest.raises(ParameterError, match="rows"):
        vision.mobilenet_v2_weights_path(rows=100)


# ----------------------------------------------------------------------------- caching


def test_cached_array_computes_once(data_dir):
    dataset = SimpleNamespace(root=Path("/somewhere/small-seed0"))
    path = vision.features_cache_path(dataset, "frames", {"num_frames": 4})
    assert path.parent == data_dir / "features" / "vision" / "somewhere-small-seed0"
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6).reshape(2, 3)

    first = vision.cached_array(path, compute)
    second = vision.cached_array(path, compute)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1 and path.is_file()
    # No temporary left over; the empty lock file of utils.file_lock stays (by design).
    assert sorted(p.name for p in path.parent.iterdir()) == [f".{path.name}.lock", path.name]


def test_cached_array_recomputes_corrupt_file(data_dir):
    path = data_dir / "features" / "broken.npy"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="broken.npy"):
        np.testing.assert_array_equal(vision.cached_array(path, lambda: np.ones(2)), [1, 1])


def test_cached_array_failed_compute_leaves_nothing(data_dir):
    path = data_dir / "features" / "x.npy"

    def compute():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        vision.cached_array(path, compute)
    assert not path.exists()


def test_features_cache_path_depends_on_settings(data_dir):
    dataset = SimpleNamespace(root=Path("/x/tiny-seed0"))
    a = vision.features_cache_path(dataset, "cnn-enc", {"frames": 4, "size": 64})
    b = vision.features_cache_path(dataset, "cnn-enc", {"size": 64, "frames": 4})
    c = vision.features_cache_path(dataset, "cnn-enc", {"frames": 8, "size": 64})
    assert a == b != c


def test_load_clip_frames_and_embeddings_are_cached(data_dir, video_dir, clip, decoded):
    dataset = _fake_dataset(video_dir, clip)
    clips = vision.load_clip_frames(dataset, num_frames=3, size=16)
    assert clips.shape == (2, 3, 16, 16, 3) and clips.dtype == np.uint8
    expected = vision.ResizeCrop(size=16).fit(decoded).transform(decoded[[6, 18, 30]])
    np.testing.assert_array_equal(clips[0], expected)
    folder = data_dir / "features" / "vision" / cache.dataset_key(dataset)
    cached = list(folder.glob("frames-*.npz"))
    assert len(cached) == 1
    # The shot histograms came from the same decoding pass.
    assert len(list(folder.glob("histograms-*.npz"))) == 1
    per_clip = vision.clip_histograms(dataset)
    np.testing.assert_allclose(per_clip[0][0], vision.colour_histograms(decoded))
    np.testing.assert_array_equal(vision.load_clip_frames(dataset, num_frames=3, size=16), clips)
    encoder = vision.build_video_encoder(
        vision.build_image_encoder(input_shape=(16, 16, 3), filters=(4,), embedding_dim=3),
        num_frames=3)
    inputs = clips.astype(np.float32) / 255
    first = vision.clip_embeddings(dataset, encoder, inputs, settings={"norm": "unit"})
    assert first.shape == (2, 3)
    assert len(list(cached[0].parent.glob("cnn-video_encoder-*.npz"))) == 1
    np.testing.assert_array_equal(
        vision.clip_embeddings(dataset, encoder, inputs, settings={"norm": "unit"}), first)
