"""Tests of mmrec_lib.explain: Shapley and IG attributions, history, counterfactuals, texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import explain
from mmrec_lib.errors import DataError, ParameterError

MODALITIES = ["text", "audio", "visual", "speech"]


def _interacting_game(num_items: int = 5, seed: int = 0):
    """Per-item score with linear terms, pairwise interactions and a constant."""
    rng = np.random.default_rng(seed)
    linear = rng.normal(size=(num_items, 4))
    pairs = rng.normal(size=(num_items, 4, 4))
    constant = rng.normal(size=num_items)

    def score_fn(mask):
        present = mask.astype(float)
        return constant + linear @ present + np.einsum("imn,m,n->i", pairs, present, present)

    return score_fn


# --------------------------------------------------------------------------- Shapley

def test_shapley_efficiency():
    score_fn = _interacting_game()
    values = explain.shapley_values(score_fn, MODALITIES)
    full, empty = score_fn(np.ones(4, bool)), score_fn(np.zeros(4, bool))
    np.testing.assert_allclose(values.sum(axis=1), full - empty, atol=1e-5)
    np.testing.assert_allclose(values.attrs["full"], full)
    assert list(values.columns) == MODALITIES and values.shape == (5, 4)


def test_shapley_symmetry_and_dummy():
    # text and audio are interchangeable; visual never matters; speech adds 1.
    values = explain.shapley_values(
        lambda mask: float((int(mask[0]) + int(mask[1])) ** 2 + mask[3]), MODALITIES)
    assert isinstance(values, pd.Series)
    assert values["text"] == pytest.approx(values["audio"]) == pytest.approx(2.0)
    assert values["visual"] == 0.0
    assert values["speech"] == pytest.approx(1.0)


def test_shapley_of_an_additive_score_is_its_parts():
    parts = np.array([[1.0, -2.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]])
    values = explain.shapley_values(lambda mask: parts @ mask + 3.0, MODALITIES)
    np.testing.assert_allclose(values.to_numpy(), parts, atol=1e-12)


def test_shapley_too_many_modalities():
    with pytest.raises(ParameterError, match="limited to 6"):
        explain.shapley_values(lambda mask: 0.0, [f"m{i}" for i in range(7)])


def test_shapley_empty_modalities():
    with pytest.raises(ParameterError, match="empty"):
        explain.shapley_values(lambda mask: 0.0, [])


def test_shapley_nan_scores():
    with pytest.raises(DataError, match="NaN"):
        explain.shapley_values(lambda mask: np.nan if mask.all() else 0.0, MODALITIES)


def test_shapley_changing_shapes():
    with pytest.raises(DataError, match="same shape"):
        explain.shapley_values(lambda mask: np.zeros(int(mask.sum()) + 1), MODALITIES)


# --------------------------------------------------------------------------- integrated gradients

@pytest.fixture(scope="module")
def keras_model():
    import mmrec_lib  # noqa: F401  (Keras 2 set-up before TensorFlow)
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Dense(6, activation="tanh"),
                                 tf.keras.layers.Dense(1)])
    model.build((None, 5))
    return model


def test_integrated_gradients_completeness(keras_model):
    inputs = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    attributions = explain.integrated_gradients(keras_model, inputs, steps=64)
    gain = keras_model(inputs).numpy()[:, 0] - keras_model(np.zeros_like(inputs)).numpy()[:, 0]
    assert attributions.shape == inputs.shape
    np.testing.assert_allclose(attributions.sum(axis=1), gain, atol=2e-3)


def test_integrated_gradients_per_modality_inputs(keras_model):
    rng = np.random.default_rng(1)
    text, audio = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    baseline = [np.full((2, 3), 0.1), np.zeros((2, 2))]

    def two_modalities(tensors):
        import tensorflow as tf

        return keras_model(tf.concat(tensors, axis=1))

    parts = explain.integrated_gradients(two_modalities, [text, audio], baseline, steps=64)
    per_modality = parts[0].sum(axis=1) + parts[1].sum(axis=1)
    gain = (keras_model(np.hstack([text, audio]).astype(np.float32)).numpy()[:, 0]
            - keras_model(np.hstack(baseline).astype(np.float32)).numpy()[:, 0])
    np.testing.assert_allclose(per_modality, gain, atol=2e-3)


def test_integrated_gradients_mismatched_baseline(keras_model):
    with pytest.raises(ParameterError, match="baseline"):
        explain.integrated_gradients(keras_model, np.zeros((2, 5)), np.zeros((2, 4)))


def test_integrated_gradients_bad_steps(keras_model):
    with pytest.raises(ParameterError, match="steps"):
        explain.integrated_gradients(keras_model, np.zeros((2, 5)), steps=0)


# --------------------------------------------------------------------------- history

WATCHED = {"a": 1.0, "b": 2.0, "c": -0.5}


def _sum_score(history, item):
    return sum(WATCHED[h] for h in history) * (2.0 if item == "x" else 1.0)


@pytest.mark.parametrize("method", ["leave_one_out", "shapley"])
def test_history_attribution_of_an_additive_score(method):
    result = explain.history_attribution(["a", "b", "c"], "x", _sum_score, method=method)
    assert result.index.tolist() == ["b", "a", "c"]  # sorted, largest first
    np.testing.assert_allclose(result.to_numpy(), [4.0, 2.0, -1.0])


def test_history_shapley_efficiency_with_a_mean_user_vector():
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "c": np.array([1.0, 1.0])}

    def mean_score(history, item):
        return float(np.mean([vectors[h] for h in history], axis=0) @ [2.0, 1.0]) \
            if history else 0.0

    result = explain.history_attribution(list(vectors), "x", mean_score, method="shapley")
    assert result.sum() == pytest.approx(mean_score(list(vectors), "x"))


def test_history_attribution_empty_history():
    with pytest.raises(ParameterError, match="empty"):
        explain.history_attribution([], "x", _sum_score)


def test_history_attribution_repeated_item():
    with pytest.raises(DataError, match="repeats"):
        explain.history_attribution(["a", "a"], "x", _sum_score)


def test_history_attribution_unknown_method():
    with pytest.raises(ParameterError, match="method"):
        explain.history_attribution(["a"], "x", _sum_score, method="lime")


def test_history_attribution_too_long_for_exact_shapley():
    with pytest.raises(ParameterError, match="leave_one_out"):
        explain.history_attribution(list(range(11)), "x", lambda h, i: 0.0, method="shapley")


# --------------------------------------------------------------------------- counterfactual

def test_counterfactual_rank_falls():
    with_audio = np.linspace(1.0, 0.0, 20)
    with_audio[[0, 1]] = with_audio[[1, 0]]  # item 0 is second
    without_audio = with_audio.copy()
    without_audio[0] = 0.3  # 13 items score higher
    result = explain.counterfactual_rank(without_audio, with_audio, 0)
    assert result == {"rank_with": 2, "rank_without": 14, "change": 12}


def test_counterfactual_rank_ties_and_ids():
    scores = pd.Series([0.5, 0.5, 0.9], index=["p", "q", "r"])
    result = explain.counterfactual_rank(scores, scores, "q")
    assert result["rank_with"] == 3 and result["change"] == 0


def test_counterfactual_rank_unknown_item():
    with pytest.raises(DataError, match="not in the index"):
        explain.counterfactual_rank(pd.Series([1.0]), pd.Series([1.0]), "zz")


def test_counterfactual_rank_item_out_of_range():
    with pytest.raises(ParameterError, match="item"):
        explain.counterfactual_rank(np.zeros(3), np.zeros(3), 3)


def test_counterfactual_rank_mismatched_shapes():
    with pytest.raises(ParameterError, match="shape"):
        explain.counterfactual_rank(np.zeros(3), np.zeros(4), 0)


def test_counterfactual_rank_nan():
    with pytest.raises(DataError, match="NaN"):
        explain.counterfactual_rank(np.array([np.nan, 1.0]), np.zeros(2), 0)


# --------------------------------------------------------------------------- deletion test

def test_deletion_win_rate_on_an_additive_score():
    parts = np.random.default_rng(3).permutation(np.arange(24.0)).reshape(6, 4)
    score_fn = lambda mask: parts @ mask  # noqa: E731
    attributions = explain.shapley_values(score_fn, MODALITIES)
    assert explain.deletion_test(score_fn, attributions) == 1.0
    assert explain.deletion_test(score_fn, -attributions) == 0.0  # names the weakest
    np.testing.assert_array_equal(explain.deletion_test(score_fn, attributions, per_item=True),
                                  np.ones(6))


def test_deletion_test_needs_a_dataframe():
    with pytest.raises(ParameterError, match="DataFrame"):
        explain.deletion_test(lambda mask: mask.sum(), np.zeros((2, 4)))


def test_deletion_test_needs_two_modalities():
    with pytest.raises(ParameterError, match="two modalities"):
        explain.deletion_test(lambda mask: np.zeros(2), pd.DataFrame({"text": [1.0, 2.0]}))


def test_deletion_test_row_mismatch():
    attributions = pd.DataFrame(np.ones((3, 4)), columns=MODALITIES)
    with pytest.raises(ParameterError, match="rows"):
        explain.deletion_test(lambda mask: np.zeros(2), attributions)


# --------------------------------------------------------------------------- text

def test_explain_text_names_only_supported_modalities():
    text = explain.explain_text({"text": 0.01, "audio": 2.0, "visual": -3.0, "speech": 0.0})
    assert text == "This clip is recommended mainly for its audio."
    for unsupported in ("text", "visual", "speech"):
        assert unsupported not in text


def test_explain_text_hedges_when_close():
    text = explain.explain_text(pd.Series({"audio": 1.0, "visual": 0.9}), item_name="Rain")
    assert text == "“Rain” is recommended for its audio and visuals, which mattered about equally."


def test_explain_text_second_reason():
    text = explain.explain_text({"audio": 1.0, "speech": 0.4})
    assert "mainly for its audio" in text and "lesser extent its speech" in text


def test_explain_text_no_claim():
    assert explain.explain_text({"audio": -1.0, "text": 0.0}).startswith("No single modality")
    assert explain.explain_text({"audio": 0.0}, language="zh").startswith("没有")


def test_explain_text_chinese():
    assert explain.explain_text({"visual": 2.0, "text": 0.1}, language="zh") == \
        "推荐这个视频主要是因为它的画面。"
    assert "两者作用相近" in explain.explain_text({"text": 1.0, "audio": 0.95}, language="zh")


def test_explain_text_bad_language():
    with pytest.raises(ParameterError, match="language"):
        explain.explain_text({"audio": 1.0}, language="fr")


def test_explain_text_empty():
    with pytest.raises(ParameterError, match="empty"):
        explain.explain_text({})


def test_explain_text_nan():
    with pytest.raises(DataError, match="NaN"):
        explain.explain_text({"audio": np.nan})


# --------------------------------------------------------------------------- the Keras model

@pytest.fixture(scope="module")
def tiny_data(tiny_multimodal):
    return tiny_multimodal


def _fit(tiny_data, fusion):
    from mmrec_lib import models

    train, features, _ = tiny_data
    return models.MultimodalRecommender(fusion=fusion, embedding_dim=4, epochs=1,
                                        batch_size=32, seed=0).fit(train, features)


@pytest.fixture(scope="module")
def concat_model(tiny_data):
    return _fit(tiny_data, "concat")


@pytest.mark.parametrize("fusion", ["concat", "attention", "gated"])
def test_modality_score_fn_on_a_multimodal_recommender(tiny_data, concat_model, fusion):
    model = concat_model if fusion == "concat" else _fit(tiny_data, fusion)
    items = ["i01", "i03", "i07"]
    score_fn = explain.modality_score_fn(model, "u1", items)
    original = model.network_.mask_table
    np.testing.assert_allclose(score_fn(np.ones(2, bool)), model.score(["u1"], items)[0],
                               atol=1e-5)
    values = explain.shapley_values(score_fn, model.modalities_)
    assert model.network_.mask_table is original  # the model is left as it was
    assert values.loc[1, "audio"] == 0.0  # i03 has no audio to attribute
    np.testing.assert_allclose(values.sum(axis=1), values.attrs["full"] - values.attrs["empty"],
                               atol=1e-5)
    if fusion == "concat":  # additive: Shapley values are score_parts' modality parts
        parts = model.score_parts("u1").loc[items, model.modalities_]
        np.testing.assert_allclose(values.to_numpy(), parts.to_numpy(), atol=1e-4)


def test_modality_score_fn_bad_mask(concat_model):
    score_fn = explain.modality_score_fn(concat_model, "u1", ["i01"])
    with pytest.raises(ParameterError, match="mask"):
        score_fn(np.ones(3, bool))


def test_modality_score_fn_unknown_item(concat_model):
    with pytest.raises(DataError):
        explain.modality_score_fn(concat_model, "u1", ["nope"])


def test_modality_score_fn_unfitted_model():
    from mmrec_lib import models
    from mmrec_lib.errors import NotFittedError

    with pytest.raises(NotFittedError):
        explain.modality_score_fn(models.MultimodalRecommender(), "u1", ["i01"])


def test_history_score_fn_on_a_multimodal_recommender(concat_model):
    score_fn = explain.history_score_fn(concat_model)
    history = ["i00", "i05", "i09"]
    expected = concat_model.score_history([history])[0, 2]  # item i02
    assert score_fn(history, "i02") == pytest.approx(float(expected), abs=1e-6)
    result = explain.history_attribution(history, "i02", score_fn, method="shapley")
    assert result.sum() == pytest.approx(expected - score_fn([], "i02"), abs=1e-5)


@pytest.mark.parametrize("fusion", ["attention", "gated"])
def test_shapley_over_three_modalities_of_a_nonlinear_fusion(tiny_data, fusion):
    """Generic over the model's modality list: 2^3 maskings, efficiency to 1e-5."""
    from mmrec_lib import models

    train, features, item_ids = tiny_data
    rng = np.random.default_rng(1)
    third = pd.DataFrame(rng.normal(size=(len(item_ids), 5)), index=item_ids)
    model = models.MultimodalRecommender(fusion=fusion, embedding_dim=4, epochs=1,
                                         batch_size=32, seed=0).fit(
        train, {**features, "visual": third})
    items = ["i00", "i03", "i05", "i09"]
    score_fn = explain.modality_score_fn(model, "u2", items)
    calls = []

    def counted(mask):
        calls.append(mask.copy())
        return score_fn(mask)

    values = explain.shapley_values(counted, model.modalities_)
    assert len(calls) == 8 and len({tuple(m) for m in calls}) == 8
    assert list(values.columns) == ["text", "audio", "visual"]
    np.testing.assert_allclose(values.sum(axis=1), values.attrs["full"] - values.attrs["empty"],
                               atol=1e-5)
    np.testing.assert_allclose(values.attrs["full"], model.score(["u2"], items)[0], atol=1e-5)
    rate = explain.deletion_test(score_fn, values)
    assert 0.0 <= rate <= 1.0
