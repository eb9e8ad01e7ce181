"""Tests for MiniClips generator 4: narration (speech), creators, series, sessions and the sequential oracle."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from mmrec_lib.datasets import miniclips
from mmrec_lib.datasets.miniclips import _sessions, _speech, _world
from mmrec_lib.errors import ChecksumError, DataError, ParameterError


@pytest.fixture(scope="module")
def small_world():
    """The simulated ``small`` world (tables and truth, no media: about 3 s)."""
    return _world._generate_world("small", 0)


def voice_activity(audio: np.ndarray, sr: int = miniclips.AUDIO_SR) -> float:
    """A spectral-flux voice detector: speech changes its spectrum all the time, music does not.

    The 75th percentile over 64 ms frames of the mean absolute change of the log spectrum
    (300-3400 Hz, level removed) between consecutive frames.
    """
    n, hop = 1024, 512
    frames = np.lib.stride_tricks.sliding_window_view(audio, n)[::hop] * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / sr)
    log_band = np.log(power[:, (freqs >= 300) & (freqs <= 3400)] + 1e-8)
    shape = log_band - log_band.mean(axis=1, keepdims=True)
    return float(np.quantile(np.abs(np.diff(shape, axis=0)).mean(axis=1), 0.75))


# --- items: the new columns ----------------------------------------------------------------------
def test_new_item_columns_and_dtypes(miniclips_tiny):
    items = miniclips_tiny.items
    for column in ["creator_id", "series_id", "episode", "has_speech"]:
        assert column in items.columns
    assert items.has_speech.dtype == bool
    assert str(items.episode.dtype) == "Int64"
    assert items.creator_id.str.fullmatch(r"c\d{3}").all()
    in_series = items.series_id != ""
    assert items.series_id[in_series].str.fullmatch(r"s\d{3}").all()
    assert items.episode[in_series].notna().all() and items.episode[~in_series].isna().all()


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_speech_share(miniclips_tiny, small_world, which):
    items = miniclips_tiny.items if which == "tiny" else small_world.items
    assert 0.4 <= items.has_speech.mean() <= 0.6


def test_creator_sizes_are_heavy_tailed(small_world):
    sizes = small_world.items.creator_id.value_counts()
    assert sizes.max() >= 5 * sizes.median()
    assert (sizes <= 3).mean() >= 0.25  # many small creators
    assert sizes.iloc[:5].sum() >= 0.4 * len(small_world.items)  # a few big ones


def test_creators_focus_on_one_or_two_categories(small_world):
    items = small_world.items.assign(category=small_world.truth.category)
    shares = []
    for _, clips in items.groupby("creator_id"):
        if len(clips) >= 5:
            shares.append(clips.category.value_counts().iloc[:2].sum() / len(clips))
    assert np.mean(shares) >= 0.8


@pytest.mark.parametrize("which", ["tiny", "small"])
def test_series_episodes_are_ordered_and_share_creator_and_category(miniclips_tiny, small_world,
                                                                    which):
    world = miniclips_tiny if which == "tiny" else small_world
    items = world.items.assign(category=world.truth.category)
    series = items[items.series_id != ""]
    assert series.series_id.nunique() >= 2
    assert 0.08 <= len(series) / len(items) <= 0.2
    for _, episodes in series.groupby("series_id"):
        episodes = episodes.sort_values("episode")
        assert list(episodes.episode) == list(range(1, len(episodes) + 1))
        assert 3 <= len(episodes) <= 6
        assert episodes.release_time.is_monotonic_increasing
        assert episodes.release_time.diff().dropna().min() >= pd.Timedelta(days=3)
        assert episodes.creator_id.nunique() == 1 and episodes.category.nunique() == 1


# --- speech --------------------------------------------------------------------------------------
def test_truth_holds_the_script_of_each_talked_over_clip(miniclips_tiny):
    truth, items = miniclips_tiny.truth, miniclips_tiny.items
    assert truth.narration.shape == (len(items),)
    np.testing.assert_array_equal(truth.has_speech, items.has_speech.to_numpy())
    assert all(len(text) > 20 for text in truth.narration[truth.has_speech])
    assert all(text == "" for text in truth.narration[~truth.has_speech])
    assert (truth.format[~truth.has_speech] == -1).all()
    for k in np.nonzero(truth.has_speech)[0]:
        names = truth.narration_snippets[k].split("|")
        assert truth.narration[k] == _speech._script_text(names)
        assert _speech.SNIPPETS[f"format_{truth.format_names[truth.format[k]]}"] in truth.narration[k]
        assert truth.speech_end_s[k] + 0.3 <= items.duration_s[k] + 1e-9


def test_voice_detector_fires_on_talked_over_clips_only(miniclips_tiny):
    items = miniclips_tiny.items
    talked = items.item_id[items.has_speech].iloc[:4]
    silent = items.item_id[~items.has_speech].iloc[:4]
    speech_scores = [voice_activity(miniclips_tiny.read_audio(i)) for i in talked]
    music_scores = [voice_activity(miniclips_tiny.read_audio(i)) for i in silent]
    assert min(speech_scores) > 1.6 > max(music_scores)


def test_voice_is_where_the_truth_says(miniclips_tiny):
    # The music is ducked under the voice: the clip is no louder there, but it changes more.
    truth, items = miniclips_tiny.truth, miniclips_tiny.items
    k = int(np.nonzero(truth.has_speech)[0][0])
    audio = miniclips_tiny.read_audio(items.item_id[k])
    start, end = (int(t * miniclips.AUDIO_SR) for t in (truth.speech_start_s[k],
                                                         truth.speech_end_s[k]))
    assert voice_activity(audio[start:end]) > voice_activity(audio[:start]) + 0.3


def test_snippet_checksum_mismatch_is_an_error(tmp_path, monkeypatch):
    folder = tmp_path / "speech"
    shutil.copytree(_speech.SNIPPET_DIR, folder)
    target = folder / "format_review.flac"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setattr(_speech, "SNIPPET_DIR", folder)
    _speech._load_snippets.cache_clear()
    try:
        with pytest.raises(ChecksumError, match="format_review.flac"):
            _world._generate_world("tiny", 0)
    finally:
        _speech._load_snippets.cache_clear()


def test_missing_snippet_is_a_data_error(tmp_path):
    folder = tmp_path / "speech"
    shutil.copytree(_speech.SNIPPET_DIR, folder)
    (folder / "open_hey.flac").unlink()
    with pytest.raises(DataError, match="open_hey.flac"):
        _speech._verify_snippets(folder)


def test_shipped_snippets_pass_their_checksums():
    _speech._verify_snippets(_speech.SNIPPET_DIR)
    total = sum(p.stat().st_size for p in _speech.SNIPPET_DIR.iterdir())
    assert total < 2 * 2**20


def test_oracle_speech_term(miniclips_tiny):
    ds = miniclips_tiny
    speech = ds.oracle_scores(ds.users.user_id, ds.items.item_id, terms=("speech",))
    truth = ds.truth
    assert (speech[:, ~truth.has_speech] == 0).all()
    k = int(np.nonzero(truth.has_speech)[0][0])
    np.testing.assert_allclose(speech[:, k], 5.0 * truth.user_format_affinity[:, truth.format[k]])


# --- sessions and the sequential oracle ---------------------------------------------------------
def test_sessions_are_bursts_of_one_user(miniclips_tiny):
    inter = miniclips_tiny.interactions
    assert (inter.session_id.str.split("-").str[0] == inter.user_id).all()
    spans = inter.groupby("session_id").timestamp.agg(["min", "max", "size"])
    assert (spans["max"] - spans["min"]).max() <= pd.Timedelta(hours=1.5)
    assert spans["size"].max() <= 15 and spans["size"].median() >= 2
    for _, views in inter.groupby("user_id"):
        bounds = views.groupby("session_id").timestamp.agg(["min", "max"]).sort_values("min")
        assert (bounds["min"].iloc[1:].to_numpy() > bounds["max"].iloc[:-1].to_numpy()).all()


def test_sessions_concentrate_on_one_category(small_world):
    inter = small_world.interactions
    category = small_world.truth.category[inter.item_id.str[1:].astype(int)]
    top_share = (inter.assign(category=category).groupby("session_id").category
                 .agg(lambda c: c.value_counts().iloc[0] / len(c)))
    sizes = inter.groupby("session_id").size()
    assert top_share[sizes >= 4].mean() >= 0.6


def test_viewers_follow_the_next_episode(small_world):
    items, inter = small_world.items, small_world.interactions
    watched = set(zip(inter.user_id, inter.item_id, strict=True))
    episode_of = {(s, int(e)): i for i, s, e in zip(items.item_id, items.series_id,
                                                   items.episode, strict=True) if s}
    followers = [(u, episode_of[(s, e + 1)]) in watched for (u, i) in watched
                 for s, e in [_series_of(items, i)] if (s, e + 1) in episode_of]
    base_rate = len(inter) / (len(small_world.users) * len(items))
    assert np.mean(followers) > 0.5 > 5 * base_rate


def _series_of(items, item_id):
    row = items.loc[int(item_id[1:])]
    return (row.series_id, int(row.episode)) if row.series_id else ("", -10)


def test_next_item_scores_are_log_probabilities(miniclips_tiny):
    ds = miniclips_tiny
    views = ds.interactions[ds.interactions.user_id == "u0003"]
    history, last = views.iloc[:-1], views.iloc[-1]
    scores = ds.next_item_scores("u0003", history, timestamp=last.timestamp,
                                 session_id=last.session_id)
    assert scores.shape == (len(ds.items),)
    finite = np.isfinite(scores)
    np.testing.assert_allclose(np.exp(scores[finite]).sum(), 1.0)
    assert not finite[ds.item_index(history.item_id)].any()
    assert not finite[(ds.items.release_time > last.timestamp).to_numpy()].any()
    assert finite[ds.item_index([last.item_id])[0]]


def test_next_item_scores_boost_the_next_episode(miniclips_tiny):
    ds = miniclips_tiny
    items = ds.items
    first = items[(items.episode == 1)].iloc[0]
    second = items[(items.series_id == first.series_id) & (items.episode == 2)].iloc[0]
    views = ds.interactions[ds.interactions.user_id == "u0000"]
    last = views.iloc[-1]
    empty = views.iloc[:0]
    after_first = pd.DataFrame({"item_id": [first.item_id], "session_id": ["elsewhere"]})
    when = max(last.timestamp, second.release_time)
    before = ds.next_item_scores("u0000", empty, timestamp=when, session_id=last.session_id)
    after = ds.next_item_scores("u0000", after_first, timestamp=when,
                                session_id=last.session_id)
    k = ds.item_index([second.item_id])[0]
    assert after[k] - before[k] > _sessions.W_NEXT_EPISODE - 1.0


def test_next_item_scores_bad_input(miniclips_tiny):
    ds = miniclips_tiny
    history = ds.interactions.iloc[:0]
    with pytest.raises(ParameterError, match="session_id"):
        ds.next_item_scores("u0000", history, timestamp="2025-03-01", session_id="nope")
    with pytest.raises(ParameterError, match="history"):
        ds.next_item_scores("u0000", ["i0001"], timestamp="2025-03-01",
                            session_id=ds.interactions.session_id.iloc[0])
    with pytest.raises(ParameterError, match="k="):
        ds.oracle_leave_last_out(k=0)


def test_sequential_oracle_beats_the_bag_of_views_oracle(miniclips_tiny):
    result = miniclips_tiny.oracle_leave_last_out(k=10)
    assert result["n_users"] == len(miniclips_tiny.users)
    assert result["sequential"] > result["bag_of_views"] + 0.05


def test_world_is_deterministic(small_world):
    # Sessions, narration scripts and focus come from seeded streams only.
    again = _world._generate_world("small", 0)
    pd.testing.assert_frame_equal(small_world.interactions, again.interactions)
    np.testing.assert_array_equal(small_world.truth.narration, again.truth.narration)
    np.testing.assert_array_equal(small_world.truth.session_focus, again.truth.session_focus)
