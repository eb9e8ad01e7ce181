"""Tests of the candidate rules (released items, new releases), the cold split and fusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ParameterError


def timed_events() -> pd.DataFrame:
    """Three users; items 5 and 6 are the new releases (first seen late)."""
    rows = [("a", 1, 1), ("a", 2, 2), ("a", 3, 3), ("a", 5, 10), ("a", 4, 11),
            ("b", 2, 1), ("b", 6, 2), ("b", 1, 3),
            ("c", 1, 1), ("c", 3, 2), ("c", 4, 3), ("c", 2, 4)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


RELEASE = pd.Series({1: 0, 2: 0, 3: 0, 4: 0, 5: 9, 6: 1})


def test_new_item_split_hand_example():
    split = sq.new_item_split(timed_events(), [5, 6], min_history=2)
    # a: first new item at position 3 -> target; b: at position 1 < 2 -> no target.
    assert split.test[["user_id", "item_id"]].values.tolist() == [["a", 5]]
    assert split.validation.empty
    train = split.train.groupby("user_id")["item_id"].apply(list).to_dict()
    assert train == {"a": [1, 2, 3], "b": [2], "c": [1, 3, 4, 2]}
    assert not split.train.item_id.isin([5, 6]).any()


def test_new_item_split_bad_input():
    with pytest.raises(ParameterError, match="new_items"):
        sq.new_item_split(timed_events(), [])
    with pytest.raises(DataError, match="no user"):
        sq.new_item_split(timed_events(), [6], min_history=5)
    with pytest.raises(ParameterError, match="min_history"):
        sq.new_item_split(timed_events(), [5], min_history=0)


def test_released_candidates_mask():
    rule = sq.released_candidates(RELEASE)
    targets = pd.DataFrame({"user_id": ["x", "y"], "item_id": [1, 5], "timestamp": [5, 10]})
    mask = rule(np.array([1, 2, 5, 6]), targets)
    assert mask.tolist() == [[True, True, False, True], [True, True, True, True]]
    only = sq.released_candidates(RELEASE, only=[5, 6])(np.array([1, 5, 6]), targets)
    assert only.tolist() == [[False, False, True], [False, True, True]]
    with pytest.raises(DataError, match="no value"):
        rule(np.array([1, 99]), targets)
    with pytest.raises(DataError, match="timestamp"):
        rule(np.array([1]), targets.drop(columns="timestamp"))
    with pytest.raises(ParameterError):
        sq.released_candidates({1: 0})


def test_evaluation_ranks_only_candidates():
    events = timed_events()
    split = sq.new_item_split(events, [5, 6], min_history=2)
    model = sq.SequentialPopularityModel().fit(events)  # knows 5 and 6 (for the test only)
    rule = sq.released_candidates(RELEASE, only=[5, 6])
    result = sq.evaluate_next_item(model, split, k=1, candidates=rule, per_user=True)
    # Among the new releases 5 and 6 (both released by t=10), popularity ties at 1 view
    # each; the lower index (item 5) ranks first: a hit.
    assert result["hr@1"].tolist() == [1.0]
    scores = model.score_histories([[1, 2]], candidates=np.array([[False] * 4 + [True] * 2]))
    assert np.isinf(scores[0, :4]).all() and np.isfinite(scores[0, 4:]).all()
    with pytest.raises(ParameterError, match="boolean"):
        model.score_histories([[1, 2]], candidates=np.ones((1, 3), bool))
    with pytest.raises(ParameterError, match="full protocol"):
        sq.evaluate_next_item(model, split, k=1, candidates=rule, protocol="sampled")


def test_fuse_modalities_shapes_and_balance():
    rng = np.random.default_rng(0)
    index = pd.Index([f"i{j}" for j in range(30)], name="item_id")
    text = pd.DataFrame(rng.normal(size=(30, 50)) * 100.0, index=index)
    audio = pd.DataFrame(rng.normal(size=(30, 3)), index=index)
    fused = sq.fuse_modalities({"text": text, "audio": audio}, dim_per_modality=8)
    assert fused.shape == (30, 11) and fused.index.equals(index)
    # Each modality block has unit mean row norm, whatever its original scale.
    for prefix in ("text_", "audio_"):
        block = fused.filter(like=prefix).to_numpy()
        assert np.linalg.norm(block, axis=1).mean() == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(DataError, match="different item index"):
        sq.fuse_modalities({"text": text, "audio": audio.iloc[::-1]})
    with pytest.raises(ParameterError):
        sq.fuse_modalities({})
    with pytest.raises(ParameterError, match="dim_per_modality"):
        sq.fuse_modalities({"text": text}, dim_per_modality=0)


def test_save_load_with_string_ids(tmp_path):
    # MiniClips ids are strings (object arrays): saved without pickling, loaded identically.
    frame = timed_events().assign(user_id=lambda d: "u" + d.user_id,
                                  item_id=lambda d: "i" + d.item_id.astype(str))
    model = sq.SASRecModel(max_len=4, embedding_dim=8, num_blocks=1, epochs=1, batch_size=4,
                           patience=None, seed=0).fit(frame)
    reloaded = sq.SASRecModel.load(model.save(tmp_path / "sasrec"))
    assert reloaded.item_ids_.tolist() == model.item_ids_.tolist()
    histories = [["i1", "i2"], ["i3"]]
    np.testing.assert_array_equal(reloaded.score_histories(histories),
                                  model.score_histories(histories))
