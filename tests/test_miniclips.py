"""Tests for mmrec_lib.datasets.miniclips (the embedded micro-video dataset, chapter 01)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmrec_lib.datasets import miniclips
from mmrec_lib.errors import DataError, ParameterError

TABLES = ["items.csv", "users.csv", "interactions.csv"]


# --- determinism and atomic builds -------------------------------------------------------------
@pytest.fixture(scope="module")
def rebuilt_over_partial(miniclips_tiny, tmp_path_factory):
    """A second tiny build, made by load_miniclips over a half-written folder without marker."""
    cache = tmp_path_factory.mktemp("second-cache")
    partial = cache / "miniclips" / "tiny-seed0"
    (partial / "clips").mkdir(parents=True)
    (partial / "items.csv").write_text("item_id\nbroken\n")
    assert not miniclips.is_complete(partial)
    return miniclips.load_miniclips(size="tiny", data_dir=cache, seed=0)


@pytest.mark.parametrize("table", TABLES + ["ground_truth.npz"])
def test_same_seed_gives_identical_files(miniclips_tiny, rebuilt_over_partial, table):
    assert (miniclips_tiny.root / table).read_bytes() == (rebuilt_over_partial.root / table).read_bytes()


def test_same_seed_gives_identical_decoded_media(miniclips_tiny, rebuilt_over_partial):
    for item_id in ["i0000", "i0017", "i0059"]:
        np.testing.assert_array_equal(miniclips_tiny.read_frames(item_id),
                                      rebuilt_over_partial.read_frames(item_id))
        np.testing.assert_array_equal(miniclips_tiny.read_audio(item_id),
                                      rebuilt_over_partial.read_audio(item_id))


def test_load_replaced_the_partial_folder(rebuilt_over_partial):
    items = pd.read_csv(rebuilt_over_partial.root / "items.csv")
    assert len(items) == 60
    assert miniclips.is_complete(rebuilt_over_partial.root)


def test_interrupted_build_leaves_nothing_that_loads(tmp_path, monkeypatch):
    # make_miniclips looks the encoder up on the renderer module at call time: patch it there.
    from mmrec_lib.datasets.miniclips import _render

    calls = {"n": 0}
    real_encode = _render._encode_mp4

    def encode_then_die(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt("simulated Ctrl-C during the build")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(_render, "_encode_mp4", encode_then_die)
    target = tmp_path / "miniclips" / "tiny-seed0"
    with pytest.raises(KeyboardInterrupt):
        miniclips.make_miniclips(target, size="tiny", seed=0, workers=1)
    assert not target.exists()
    assert not miniclips.is_complete(target)
    assert list((tmp_path / "miniclips").iterdir()) == []
    with pytest.raises(DataError, match="not a complete MiniClips build"):
        miniclips.MiniClips(target)


def test_folder_without_marker_is_not_complete(tmp_path):
    (tmp_path / "items.csv").write_text("item_id\ni0000\n")
    assert not miniclips.is_complete(tmp_path)
    with pytest.raises(DataError):
        miniclips.MiniClips(tmp_path)


def test_marker_of_another_generator_version_is_not_complete(tmp_path):
    (tmp_path / miniclips.COMPLETE_MARKER).write_text(json.dumps({"generator_version": -1}))
    assert not miniclips.is_complete(tmp_path)


def test_marker_records_the_build(miniclips_tiny):
    meta = json.loads((miniclips_tiny.root / miniclips.COMPLETE_MARKER).read_text())
    assert meta["size"] == "tiny" and meta["seed"] == 0
    assert meta["n_items"] == 60 and meta["n_users"] == 40
    assert meta["generator_version"] == miniclips.GENERATOR_VERSION


def test_cache_layout(miniclips_tiny):
    assert miniclips_tiny.root.name == "tiny-seed0"
    assert miniclips_tiny.root.parent.name == "miniclips"
    assert len(list((miniclips_tiny.root / "clips").glob("*.mp4"))) == 60
    assert len(list((miniclips_tiny.root / "covers").glob("*.jpg"))) == 60
    assert not list((miniclips_tiny.root / "clips").glob("*.wav"))


# --- schema and value ranges ---------------------------------------------------------------------
def test_items_schema(miniclips_tiny):
    items = miniclips_tiny.items
    assert list(items.columns) == miniclips.ITEM_COLUMNS
    assert len(items) == 60
    assert items.item_id.iloc[0] == "i0000" and items.item_id.is_unique
    assert pd.api.types.is_datetime64_any_dtype(items.release_time)
    # Speech-free clips last 3-5 s; talked-over clips are extended to hold the narration.
    assert items.duration_s[~items.has_speech].between(3.0, 5.0).all()
    assert items.duration_s.between(3.0, 6.0).all()
    assert (items.title_en.str.len() > 0).all() and (items.title_zh.str.len() > 0).all()
    assert items.release_time.is_monotonic_increasing


def test_items_table_does_not_leak_hidden_attributes(miniclips_tiny):
    hidden = {"category", "arousal", "valence", "visual_style", "timbre", "appeal"}
    assert hidden.isdisjoint(miniclips_tiny.items.columns)


def test_users_schema(miniclips_tiny):
    users = miniclips_tiny.users
    assert list(users.columns) == miniclips.USER_COLUMNS
    assert len(users) == 40 and users.user_id.is_unique
    assert users.user_id.iloc[0] == "u0000"
    assert pd.api.types.is_datetime64_any_dtype(users.signup_time)


def test_interactions_schema_and_ranges(miniclips_tiny):
    inter = miniclips_tiny.interactions
    assert list(inter.columns) == miniclips.INTERACTION_COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(inter.timestamp)
    assert inter.liked.dtype == bool
    assert inter.watch_ratio.between(0.0, 1.0).all()
    assert set(inter.user_id) <= set(miniclips_tiny.users.user_id)
    assert set(inter.item_id) <= set(miniclips_tiny.items.item_id)
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert inter.timestamp.is_monotonic_increasing


def test_interactions_happen_after_release_and_signup(miniclips_tiny):
    inter = miniclips_tiny.interactions
    release = inter.item_id.map(miniclips_tiny.items.set_index("item_id").release_time)
    signup = inter.user_id.map(miniclips_tiny.users.set_index("user_id").signup_time)
    assert (inter.timestamp >= release).all()
    assert (inter.timestamp >= signup).all()


def test_every_user_has_at_least_five_interactions(miniclips_tiny):
    counts = miniclips_tiny.interactions.user_id.value_counts()
    assert counts.min() >= 5
    assert counts.max() >= 2 * counts.median()  # a long-tailed activity distribution


def test_truth_arrays_are_aligned(miniclips_tiny):
    truth = miniclips_tiny.truth
    for name in ["category", "valence", "arousal", "visual_style", "timbre", "appeal"]:
        assert getattr(truth, name).shape == (60,), name
    assert truth.category_names == miniclips.CATEGORY_NAMES
    assert truth.category.min() >= 0 and truth.category.max() < len(truth.category_names)
    for name in ["valence", "arousal", "visual_style", "timbre"]:
        values = getattr(truth, name)
        assert values.min() >= -1 and values.max() <= 1, name
    assert truth.user_category_affinity.shape == (40, len(miniclips.CATEGORY_NAMES))
    np.testing.assert_array_equal(truth.energy, truth.arousal)
    assert list(truth.item_ids) == list(miniclips_tiny.items.item_id)


def test_generated_world_is_a_typed_object(miniclips_tiny):
    import dataclasses

    from mmrec_lib.datasets.miniclips import _world

    world = _world._generate_world("tiny", 0)
    assert isinstance(world, miniclips.World) and isinstance(world.truth, miniclips.GroundTruth)
    assert world.seed == 0
    assert list(world.items.columns) == miniclips.ITEM_COLUMNS
    assert list(world.items.item_id) == list(miniclips_tiny.items.item_id)
    assert list(world.items.title_zh) == list(miniclips_tiny.items.title_zh)
    assert len(world.interactions) == len(miniclips_tiny.interactions)
    np.testing.assert_array_equal(world.truth.arousal, miniclips_tiny.truth.arousal)
    with pytest.raises(dataclasses.FrozenInstanceError):
        world.seed = 1


def test_package_keeps_the_old_module_names():
    # The single-file module became a package; every name it exported is still here.
    for name in miniclips.__all__:
        assert hasattr(miniclips, name), name
    from mmrec_lib.datasets import load_miniclips
    from mmrec_lib.datasets.miniclips import _ffmpeg_exe, _remove_stale_parts  # noqa: F401

    assert load_miniclips is miniclips.load_miniclips


def test_module_constants():
    assert miniclips.FPS == 10
    assert miniclips.FRAME_SIZE == 96
    assert miniclips.AUDIO_SR == 16_000


# --- media ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("item_id", ["i0000", "i0031"])
def test_clip_decodes_with_expected_duration_size_and_audio(miniclips_tiny, item_id):
    duration = float(miniclips_tiny.items.set_index("item_id").duration_s[item_id])
    frames = miniclips_tiny.read_frames(item_id)
    assert frames.dtype == np.uint8
    assert frames.shape == (round(duration * miniclips.FPS), miniclips.FRAME_SIZE,
                            miniclips.FRAME_SIZE, 3)
    audio = miniclips_tiny.read_audio(item_id)
    assert audio.dtype == np.float32
    assert abs(len(audio) / miniclips.AUDIO_SR - duration) < 0.1
    assert 0.01 < np.abs(audio).max() <= 1.0


def test_mp4_holds_h264_and_aac(miniclips_tiny):
    import subprocess

    probe = subprocess.run([miniclips._ffmpeg_exe(), "-hide_banner", "-i",
                            str(miniclips_tiny.clip_path("i0003"))], capture_output=True)
    log = probe.stderr.decode()
    assert "Video: h264" in log
    assert "Audio: aac" in log and "16000 Hz" in log


def test_cover_is_a_frame_sized_jpeg(miniclips_tiny):
    from PIL import Image

    with Image.open(miniclips_tiny.cover_path("i0005")) as image:
        assert image.format == "JPEG"
        assert image.size == (miniclips.FRAME_SIZE, miniclips.FRAME_SIZE)


def test_read_frames_can_rescale(miniclips_tiny):
    frames = miniclips.read_frames(miniclips_tiny.clip_path("i0002"), size=32)
    assert frames.shape[1:] == (32, 32, 3)


def test_shot_cuts_are_where_frames_jump(miniclips_tiny):
    cut_items = {k: v for k, v in miniclips_tiny.truth.shot_cuts.items() if v}
    assert 5 <= len(cut_items) < 60
    for item_id, cuts in list(cut_items.items())[:6]:
        frames = miniclips_tiny.read_frames(item_id).astype(np.float64)
        jumps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
        biggest = sorted(int(k) + 1 for k in np.argsort(jumps)[-len(cuts):])
        assert biggest == [round(t * miniclips.FPS) for t in cuts], item_id


def test_shot_cut_times_are_inside_the_clip(miniclips_tiny):
    durations = miniclips_tiny.items.set_index("item_id").duration_s
    for item_id, cuts in miniclips_tiny.truth.shot_cuts.items():
        assert all(0.9 <= t <= durations[item_id] - 0.9 for t in cuts)


def test_boxes_are_inside_frames_and_cover_every_frame(miniclips_tiny):
    boxes = miniclips_tiny.truth.boxes
    assert list(boxes.columns) == ["item_id", "frame", "object_class", "x0", "y0", "x1", "y1"]
    assert set(boxes.object_class) <= set(miniclips_tiny.truth.object_classes)
    assert (boxes.x0 >= 0).all() and (boxes.y0 >= 0).all()
    assert (boxes.x1 <= miniclips.FRAME_SIZE).all() and (boxes.y1 <= miniclips.FRAME_SIZE).all()
    assert ((boxes.x1 - boxes.x0) >= 10).all() and ((boxes.y1 - boxes.y0) >= 10).all()
    frames_with_boxes = boxes[boxes.item_id == "i0001"].frame.nunique()
    duration = miniclips_tiny.items.set_index("item_id").duration_s["i0001"]
    assert frames_with_boxes == round(duration * miniclips.FPS)


def test_a_box_outlines_an_object(miniclips_tiny):
    # The pixels inside a box differ from the background just outside it.
    box = miniclips_tiny.truth.boxes.query("item_id == 'i0002' and frame == 0").iloc[0]
    frame = miniclips_tiny.read_frames("i0002")[0].astype(np.float64)
    inside = frame[box.y0:box.y1, box.x0:box.x1]
    assert inside.size > 0
    assert np.abs(inside - frame.mean(axis=(0, 1))).mean() > 5


# --- cold start and the oracle -------------------------------------------------------------------
def test_cold_items_are_released_last(miniclips_tiny):
    items = miniclips_tiny.items.set_index("item_id")
    cold = miniclips_tiny.truth.cold_items
    assert len(cold) == 6  # 10% of 60
    warm = items.index.difference(cold)
    assert items.release_time[cold].min() > items.release_time[warm].max()


def test_cold_items_have_few_interactions(miniclips_tiny):
    counts = miniclips_tiny.interactions.item_id.value_counts()
    cold = miniclips_tiny.truth.cold_items
    cold_counts = counts.reindex(cold, fill_value=0)
    warm_counts = counts.drop(cold, errors="ignore")
    assert cold_counts.mean() < 0.5 * warm_counts.mean()


def test_oracle_scores_shape_and_formula(miniclips_tiny):
    users = ["u0000", "u0003"]
    items = ["i0000", "i0010", "i0020"]
    scores = miniclips_tiny.oracle_scores(users, items)
    assert scores.shape == (2, 3)
    truth = miniclips_tiny.truth
    u, i = 3, 20
    expected = (2.0 * truth.user_category_affinity[u, truth.category[i]]
                - 2.0 * (truth.user_energy[u] - truth.arousal[i]) ** 2
                + 1.4 * truth.user_style_weight[u] * truth.visual_style[i]
                + 2.0 * truth.user_timbre_weight[u] * truth.timbre[i]
                + 1.0 * truth.appeal[i])
    if truth.has_speech[i]:
        expected += 5.0 * truth.user_format_affinity[u, truth.format[i]]
    np.testing.assert_allclose(scores[1, 2], expected)
    # The terms add up to the whole score; one group of terms is a partial ceiling.
    parts = [miniclips_tiny.oracle_scores(users, items, terms=[term])
             for term in miniclips.ORACLE_TERMS]
    np.testing.assert_allclose(np.sum(parts, axis=0), scores)
    np.testing.assert_allclose(
        miniclips_tiny.oracle_scores(users, items, terms=("appeal",))[1, 2], truth.appeal[i])


@pytest.mark.parametrize("terms", [(), ("taste",), "genre"])
def test_oracle_scores_bad_terms(miniclips_tiny, terms):
    with pytest.raises(ParameterError, match="terms"):
        miniclips_tiny.oracle_scores(["u0000"], ["i0000"], terms=terms)


def test_watched_items_score_higher_than_the_rest(miniclips_tiny):
    ds = miniclips_tiny
    scores = ds.oracle_scores(ds.users.user_id, ds.items.item_id)
    watched = np.zeros_like(scores, dtype=bool)
    watched[ds.user_index(ds.interactions.user_id), ds.item_index(ds.interactions.item_id)] = True
    assert scores[watched].mean() > scores[~watched].mean() + 0.5


def test_chinese_titles_segment_into_words(miniclips_tiny):
    import jieba

    jieba.setLogLevel(60)
    words = [w for title in miniclips_tiny.items.title_zh for w in jieba.lcut(title)]
    assert len(words) > 2 * len(miniclips_tiny.items)
    assert any(len(w) >= 2 for w in words)


# --- bad inputs ----------------------------------------------------------------------------------
def test_unknown_size_is_rejected(tmp_path):
    with pytest.raises(ParameterError, match="size='huge'"):
        miniclips.load_miniclips(size="huge", data_dir=tmp_path)


def test_unhashable_size_is_rejected(tmp_path):
    with pytest.raises(ParameterError, match="size="):
        miniclips.load_miniclips(size=["tiny"], data_dir=tmp_path)


def test_negative_seed_is_rejected(tmp_path):
    with pytest.raises(ParameterError, match="seed=-1"):
        miniclips.load_miniclips(size="tiny", data_dir=tmp_path, seed=-1)


def test_string_seed_is_rejected(tmp_path):
    with pytest.raises(ParameterError):
        miniclips.make_miniclips(tmp_path / "x", size="tiny", seed="0")


def test_zero_workers_is_rejected(tmp_path):
    with pytest.raises(ParameterError, match="workers=0"):
        miniclips.make_miniclips(tmp_path / "x", size="tiny", workers=0)


def test_unknown_item_is_rejected(miniclips_tiny):
    with pytest.raises(ParameterError, match="i9999"):
        miniclips_tiny.clip_path("i9999")


def test_unknown_user_in_oracle_is_rejected(miniclips_tiny):
    with pytest.raises(ParameterError, match="u9999"):
        miniclips_tiny.oracle_scores(["u9999"], ["i0000"])


def test_single_string_instead_of_list_is_rejected(miniclips_tiny):
    with pytest.raises(ParameterError, match="list or array"):
        miniclips_tiny.oracle_scores("u0000", ["i0000"])


def test_missing_video_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        miniclips.read_frames(tmp_path / "nope.mp4")


def test_undecodable_file_is_a_data_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    # One decoder for MiniClips, vision and audio: the same wording for a file that is no video.
    with pytest.raises(DataError, match="not a readable|cannot decode"):
        miniclips.read_frames(bad)
    with pytest.raises(DataError, match="not a readable|cannot decode"):
        miniclips.read_audio(bad)


def test_miniclips_decoders_are_the_shared_ones():
    from mmrec_lib import audio, vision

    assert miniclips.read_frames is vision.read_frames
    assert miniclips.read_audio is audio.load_audio


def test_bad_sample_rate_is_rejected(miniclips_tiny):
    with pytest.raises(ParameterError, match="sr=0"):
        miniclips.read_audio(miniclips_tiny.clip_path("i0000"), sr=0)


def test_stale_temporary_folders_are_removed_before_a_build(tmp_path):
    import os

    root = tmp_path / "miniclips" / "tiny-seed0"
    root.parent.mkdir(parents=True)
    stale = root.parent / ".tiny-seed0.abc123.part"
    fresh = root.parent / ".tiny-seed0.def456.part"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (0, 0))
    miniclips._remove_stale_parts(root)
    assert not stale.exists()
    assert fresh.exists()


def test_exposure_share(miniclips_tiny):
    ds = miniclips_tiny
    users, items = list(ds.users.user_id), list(ds.items.item_id)
    share = ds.exposure_share(users, items)
    assert share.shape == (len(users), len(items))
    assert share.min() >= 0 and share.max() <= 1
    # Nobody watches a clip before its release: every view has a positive share.
    rows, cols = ds.user_index(ds.interactions.user_id), ds.item_index(ds.interactions.item_id)
    assert (share[rows, cols] > 0).all()
    # By hand for one pair: the part of the user's active period after the release.
    day = np.timedelta64(86400, "s")
    origin = np.datetime64("2025-01-01T00:00:00", "s")
    u, i = 5, len(items) - 1  # the last clip is released late in the timeline
    start = max((ds.users.signup_time.iloc[u].to_datetime64() - origin) / day / 180, 0.0)
    release = (ds.items.release_time.iloc[i].to_datetime64() - origin) / day / 180
    expected = (1 - max(release, start)) / (1 - start)
    np.testing.assert_allclose(share[u, i], expected)
    assert share[u, i] < 0.2
    # A clip released before the user's signup was there all along.
    early = int(np.argmin(ds.items.release_time.to_numpy()))
    assert share[:, early].min() == 1.0


def test_oracle_with_exposure(miniclips_tiny):
    users, items = ["u0001", "u0004"], ["i0000", "i0030", "i0059"]
    plain = miniclips_tiny.oracle_scores(users, items)
    exposed = miniclips_tiny.oracle_scores(users, items, exposure=True)
    share = miniclips_tiny.exposure_share(users, items)
    np.testing.assert_allclose(exposed, plain + np.log(share))
    assert (exposed <= plain).all()
