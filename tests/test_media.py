"""Tests for mmrec_lib.media, the one ffmpeg decoder, through its public layers.

Every bad file is tried on the video path (``vision.read_frames``/``read_video``) and the
audio path (``audio.load_audio``), and each expects a ``DataError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrec_lib import audio, media, vision
from mmrec_lib.errors import DataError, ParameterError

SR = 16000


def _ffmpeg(*args) -> None:
    subprocess.run([media.ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error",
                    *map(str, args)], check=True)


@pytest.fixture(scope="module")
def clip(miniclips_tiny) -> Path:
    """A real MiniClips clip of 4.0 s: H.264 video + AAC audio, moov first (faststart)."""
    items = miniclips_tiny.items
    return miniclips_tiny.clip_path(items.item_id[items.duration_s == 4.0].iloc[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory, clip) -> dict[str, Path]:
    """The whole clip and the broken variants of it, each in its own file."""
    folder = tmp_path_factory.mktemp("media")
    data = clip.read_bytes()
    paths = {"whole": folder / "whole.mp4"}
    paths["whole"].write_bytes(data)
    for percent in (30, 70):
        paths[f"cut{percent}"] = folder / f"cut{percent}.mp4"
        paths[f"cut{percent}"].write_bytes(data[:len(data) * percent // 100])
    paths["empty"] = folder / "empty.mp4"
    paths["empty"].write_bytes(b"")
    paths["random"] = folder / "random.mp4"
    paths["random"].write_bytes(np.random.default_rng(0).bytes(5000))
    paths["no_audio"] = folder / "no_audio.mp4"
    _ffmpeg("-i", clip, "-map", "0:v:0", "-c", "copy", paths["no_audio"])
    paths["no_video"] = folder / "no_video.m4a"
    _ffmpeg("-i", clip, "-map", "0:a:0", "-c", "copy", paths["no_video"])
    paths["folder"] = folder / "folder.mp4"
    paths["folder"].mkdir()
    paths["missing"] = folder / "missing.mp4"
    return paths


# ----------------------------------------------------------------------------- good files


def test_ffmpeg_exe_is_a_file():
    assert Path(media.ffmpeg_exe()).is_file()


def test_whole_clip_decodes_to_the_header_length(files):
    info = vision.probe_video(files["whole"])
    frames = vision.read_frames(files["whole"])
    waveform = audio.load_audio(files["whole"], sr=SR)
    assert frames.shape == (info.num_frames, info.height, info.width, 3)
    assert waveform.dtype == np.float32
    assert waveform.size == pytest.approx(info.duration_s * SR, abs=0.05 * SR)


def test_vision_and_audio_layers_return_the_decoder_output(files):
    frames, info = media.decode_video(files["whole"])
    np.testing.assert_array_equal(vision.read_frames(files["whole"]), frames)
    assert vision.probe_video(files["whole"]) == info
    np.testing.assert_array_equal(audio.load_audio(files["whole"], sr=SR),
                                  media.decode_audio(files["whole"], sr=SR))


def test_vision_reexports_the_media_header_type():
    assert vision.VideoInfo is media.VideoInfo
    assert vision.probe_video is media.probe_video


def test_scan_video_returns_the_header(files):
    assert media.scan_video(files["whole"]) == vision.probe_video(files["whole"])


def test_file_without_audio_still_has_frames(files):
    assert len(vision.read_frames(files["no_audio"])) == 40


def test_file_without_video_still_has_audio(files):
    assert audio.load_audio(files["no_video"], sr=SR).size == pytest.approx(4 * SR, abs=800)


# ----------------------------------------------------------------------------- truncated


@pytest.mark.parametrize("name", ["cut30", "cut70"])
def test_truncated_clip_video_raises(files, name):
    with pytest.raises(DataError, match=f"{name}.mp4.*truncated"):
        vision.read_frames(files[name])


@pytest.mark.parametrize("name", ["cut30", "cut70"])
def test_truncated_clip_read_video_raises(files, name):
    with pytest.raises(DataError, match=f"{name}.mp4.*truncated"):
        vision.read_video(files[name])


@pytest.mark.parametrize("name", ["cut30", "cut70"])
def test_truncated_clip_audio_raises(files, name):
    with pytest.raises(DataError, match=f"{name}.mp4.*truncated"):
        audio.load_audio(files[name], sr=SR)


@pytest.mark.parametrize("name", ["cut30", "cut70"])
def test_truncated_clip_scan_raises(files, name):
    with pytest.raises(DataError, match=f"{name}.mp4.*truncated"):
        media.scan_video(files[name])


def test_truncation_message_quotes_ffmpeg(files):
    # ffmpeg's own words, whichever it finds first where the file was cut.
    with pytest.raises(DataError, match="partial file|Packet corrupt"):
        audio.load_audio(files["cut30"], sr=SR)


def test_audio_shorter_than_the_header_raises(files, monkeypatch):
    monkeypatch.setattr(media, "_header_duration", lambda text: 10.0)
    with pytest.raises(DataError, match=r"whole.mp4: the audio is truncated: 4.00 s decoded, "
                                        r"but the header announces 10.00 s"):
        audio.load_audio(files["whole"], sr=SR)


def test_video_shorter_than_the_header_raises(files, monkeypatch):
    parse = media._parse_header

    def longer(path, text):
        info = parse(path, text)
        return dataclasses.replace(info, duration_s=3 * info.duration_s)

    monkeypatch.setattr(media, "_parse_header", longer)
    with pytest.raises(DataError, match="whole.mp4: the video is truncated: 4.00 s decoded"):
        vision.read_frames(files["whole"])


def test_selected_frames_are_not_checked_against_the_header(files, monkeypatch):
    parse = media._parse_header
    monkeypatch.setattr(media, "_parse_header", lambda path, text: dataclasses.replace(
        parse(path, text), duration_s=100.0))
    assert len(vision.read_frames(files["whole"], frame_indices=[0, 5])) == 2


def test_check_length_allows_a_small_shortfall():
    media.check_length("a.mp4", 3.6, 4.0, what="audio")  # 0.4 s < 0.5 s tolerance
    media.check_length("a.mp4", 90.5, 100.0, what="audio")  # 9.5 s < 10 % of 100 s


def test_check_length_refuses_a_large_shortfall():
    with pytest.raises(DataError, match="a.mp4: the audio is truncated"):
        media.check_length("a.mp4", 3.4, 4.0, what="audio")


def test_check_length_without_a_header_duration_checks_nothing():
    media.check_length("a.mp3", 1.0, None, what="audio")


# ----------------------------------------------------------------------------- other bad files


def test_empty_file_video_raises(files):
    with pytest.raises(DataError, match="empty.mp4: the file is empty"):
        vision.read_frames(files["empty"])


def test_empty_file_audio_raises(files):
    with pytest.raises(DataError, match="empty.mp4: the file is empty"):
        audio.load_audio(files["empty"])


def test_random_bytes_video_raises(files):
    with pytest.raises(DataError, match="random.mp4: not a readable video"):
        vision.read_frames(files["random"])


def test_random_bytes_audio_raises(files):
    with pytest.raises(DataError, match="cannot decode the audio of .*random.mp4"):
        audio.load_audio(files["random"])


def test_no_audio_stream_raises(files):
    with pytest.raises(DataError, match="no_audio.mp4 has no audio track"):
        audio.load_audio(files["no_audio"])


def test_no_video_stream_raises(files):
    with pytest.raises(DataError, match="no_video.m4a: the file has no video stream"):
        vision.read_frames(files["no_video"])


def test_folder_instead_of_a_file_video_raises(files):
    with pytest.raises(DataError, match="folder.mp4: is a folder"):
        vision.read_frames(files["folder"])


def test_folder_instead_of_a_file_audio_raises(files):
    with pytest.raises(DataError, match="folder.mp4: is a folder"):
        audio.load_audio(files["folder"])


def test_missing_file_video_raises(files):
    with pytest.raises(DataError, match="missing.mp4: no such file"):
        vision.probe_video(files["missing"])


def test_missing_file_audio_raises(files):
    with pytest.raises(DataError, match="missing.mp4: no such file"):
        audio.load_audio(files["missing"])


@pytest.mark.parametrize("path", [None, 3, b"clip.mp4"])
def test_path_of_a_wrong_type_video_raises(path):
    with pytest.raises(ParameterError, match="path="):
        vision.read_frames(path)


@pytest.mark.parametrize("path", [None, 3])
def test_path_of_a_wrong_type_audio_raises(path):
    with pytest.raises(ParameterError, match="path="):
        audio.load_audio(path)


def test_path_none_scan_raises():
    with pytest.raises(ParameterError, match="path=None"):
        media.scan_video(None)


# ----------------------------------------------------------------------------- load_image options


@pytest.fixture
def transparent_png(tmp_path) -> Path:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (2, 1), (255, 0, 0, 0)).save(path)
    return path


def test_load_image_background_is_used(transparent_png):
    image = vision.load_image(transparent_png, background=(0, 10, 20))
    assert np.asarray(image)[0, 0].tolist() == [0, 10, 20]


@pytest.mark.parametrize("background", [(300, -1, "x"), (300, 0, 0), (0, -1, 0)])
def test_load_image_background_out_of_range(transparent_png, background):
    with pytest.raises(ParameterError, match=r"background\[\d\]="):
        vision.load_image(transparent_png, background=background)


def test_load_image_background_wrong_length(transparent_png):
    with pytest.raises(ParameterError, match="background=.*three ints"):
        vision.load_image(transparent_png, background=(255, 255))


def test_load_image_background_floats(transparent_png):
    with pytest.raises(ParameterError, match=r"background\[0\]=0.5"):
        vision.load_image(transparent_png, background=(0.5, 0.5, 0.5))


def test_load_image_background_none(transparent_png):
    with pytest.raises(ParameterError, match="background=None"):
        vision.load_image(transparent_png, background=None)


def test_load_image_background_string(transparent_png):
    with pytest.raises(ParameterError, match="background='red'"):
        vision.load_image(transparent_png, background="red")


def test_to_rgb_checks_background_too():
    with pytest.raises(ParameterError, match="background"):
        vision.to_rgb(Image.new("RGBA", (1, 1)), background=(1, 2))


# ----------------------------------------------------------------------------- wav (soundfile path)


@pytest.fixture
def wav(tmp_path) -> Path:
    import soundfile

    path = tmp_path / "tone.wav"
    soundfile.write(path, np.sin(np.arange(SR) / 10).astype(np.float32), SR, subtype="PCM_16")
    return path


def test_whole_wav_loads(wav):
    assert audio.load_audio(wav, sr=SR).shape == (SR,)


@pytest.mark.parametrize("percent", [30, 70, 99])
def test_truncated_wav_raises(wav, percent):
    data = wav.read_bytes()
    cut = wav.with_name(f"cut{percent}.wav")
    cut.write_bytes(data[:len(data) * percent // 100])
    with pytest.raises(DataError, match=f"cut{percent}.wav: the audio is truncated: the WAV "
                                        "header announces 32000 bytes"):
        audio.load_audio(cut, sr=SR)


def test_wav_with_open_data_size_is_not_refused(wav):
    data = bytearray(wav.read_bytes())
    position = data.find(b"data")
    data[position + 4:position + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    streamed = wav.with_name("streamed.wav")
    streamed.write_bytes(bytes(data))
    media.check_wav_complete(streamed)


def test_check_wav_complete_ignores_other_files(files):
    media.check_wav_complete(files["whole"])


@pytest.mark.parametrize("method", ["seek", "select"])
def test_truncated_clip_sampled_frames_raise(files, method):
    with pytest.raises(DataError, match="cut30.mp4: the video is truncated or corrupt"):
        vision.read_frames(files["cut30"], num_frames=4, method=method)
