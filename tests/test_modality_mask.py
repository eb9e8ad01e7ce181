"""Tests of MultimodalRecommender.score_items and TwoTower.item_vectors(modality_mask=...)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mmrec_lib import explain
from mmrec_lib.errors import DataError, NotFittedError, ParameterError

ITEMS = ["i01", "i03", "i07"]


@pytest.fixture(scope="module")
def tiny_data(tiny_multimodal):
    train, features, _ = tiny_multimodal
    return train, features


def _fit(tiny_data, **options):
    from mmrec_lib import models

    train, features = tiny_data
    settings = {"fusion": "concat", "embedding_dim": 4, "epochs": 1, "batch_size": 32,
                "seed": 0, **options}
    return models.MultimodalRecommender(**settings).fit(train, features)


@pytest.fixture(scope="module")
def model(tiny_data):
    return _fit(tiny_data)


@pytest.fixture(scope="module")
def attention_model(tiny_data):
    return _fit(tiny_data, fusion="attention", use_item_id=True, item_bias=True)


def test_unmasked_equals_score_exactly(model):
    np.testing.assert_array_equal(model.score_items(["u1", "u2"], ITEMS),
                                  model.score(["u1", "u2"], ITEMS))
    np.testing.assert_array_equal(model.score_items("u1"), model.score(["u1"]))


def test_unmasked_history_equals_score_history_exactly(model):
    histories = [["i00", "i05"], ["i09"]]
    np.testing.assert_array_equal(model.score_items(item_ids=ITEMS, histories=histories),
                                  model.score_history(histories)[:, [1, 3, 7]])


@pytest.mark.parametrize("name", ["model", "attention_model"])
def test_all_true_mask_equals_score(name, request):
    model = request.getfixturevalue(name)
    np.testing.assert_allclose(model.score_items(["u1"], ITEMS, modality_mask=np.ones(2, bool)),
                               model.score(["u1"], ITEMS), atol=1e-6)


def test_all_masked_is_the_shapley_none_baseline(model):
    score_fn = explain.modality_score_fn(model, "u1", ITEMS)
    values = explain.shapley_values(score_fn, model.modalities_)
    empty = model.score_items(["u1"], ITEMS, modality_mask=np.zeros(2, bool))[0]
    np.testing.assert_array_equal(values.attrs["empty"], empty.astype(np.float64))


def test_masking_a_modality_an_item_lacks_changes_nothing(attention_model):
    audio_off = np.array([True, False])  # i03 has no audio
    np.testing.assert_array_equal(
        attention_model.score_items(["u1"], ["i03"], modality_mask=audio_off),
        attention_model.score_items(["u1"], ["i03"], modality_mask=np.ones(2, bool)))
    assert not np.allclose(attention_model.score_items(["u1"], ["i01"], modality_mask=audio_off),
                           attention_model.score_items(["u1"], ["i01"]))


def test_names_and_per_item_masks(model):
    by_name = model.score_items(["u1"], ITEMS, modality_mask=["text"])
    by_array = model.score_items(["u1"], ITEMS, modality_mask=np.array([True, False]))
    np.testing.assert_array_equal(by_name, by_array)
    per_item = np.array([[True, False], [True, True], [False, False]])
    scores = model.score_items(["u1"], ITEMS, modality_mask=per_item)
    for column, item in enumerate(ITEMS):
        alone = model.score_items(["u1"], [item], modality_mask=per_item[column])
        np.testing.assert_allclose(scores[:, column], alone[:, 0], atol=1e-6)


def test_the_model_is_not_changed(model):
    table = model.network_.mask_table
    before = table.numpy().copy()
    model.score_items(["u1"], ITEMS, modality_mask=np.zeros(2, bool))
    model.network_.item_vectors(training=False, modality_mask=np.zeros(2, bool))
    assert model.network_.mask_table is table
    np.testing.assert_array_equal(table.numpy(), before)


def test_concurrent_calls_from_two_threads(attention_model):
    masks = [np.array([True, False]), np.array([False, True])]
    expected = [attention_model.score_items(["u1"], ITEMS, modality_mask=m) for m in masks]
    results, errors = {}, []

    def work(index):
        try:
            results[index] = [attention_model.score_items(["u1"], ITEMS,
                                                          modality_mask=masks[index])
                              for _ in range(20)]
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for index in range(2):
        for scores in results[index]:
            np.testing.assert_array_equal(scores, expected[index])


def test_unknown_item(model):
    with pytest.raises(DataError):
        model.score_items(["u1"], ["nope"], modality_mask=np.ones(2, bool))


def test_unknown_user(model):
    with pytest.raises(DataError):
        model.score_items(["nobody"], ITEMS, modality_mask=np.ones(2, bool))


def test_unknown_modality_name(model):
    with pytest.raises(ParameterError, match="visual"):
        model.score_items(["u1"], ITEMS, modality_mask=["text", "visual"])


@pytest.mark.parametrize("mask", [np.ones(3, bool), np.ones((2, 2), bool), np.ones((3, 2, 1), bool)])
def test_wrong_mask_shape(model, mask):
    with pytest.raises(ParameterError, match="shape"):
        model.score_items(["u1"], ITEMS, modality_mask=mask)


@pytest.mark.parametrize("mask", [np.ones(2), np.array([1, 0]), "text"])
def test_wrong_mask_dtype(model, mask):
    with pytest.raises(ParameterError, match="modality_mask"):
        model.score_items(["u1"], ITEMS, modality_mask=mask)


def test_network_item_vectors_wrong_mask(model):
    with pytest.raises(ParameterError, match="shape"):
        model.network_.item_vectors(training=False, modality_mask=np.ones((3, 2), bool))


def test_both_or_neither_users(model):
    with pytest.raises(ParameterError, match="exactly one"):
        model.score_items(item_ids=ITEMS)
    with pytest.raises(ParameterError, match="exactly one"):
        model.score_items(["u1"], ITEMS, histories=[["i00"]])


def test_per_item_mask_with_repeated_items(model):
    with pytest.raises(ParameterError, match="repeated"):
        model.score_items(["u1"], ["i01", "i01"], modality_mask=np.ones((2, 2), bool))


def test_item_ids_as_one_string(model):
    with pytest.raises(ParameterError, match="item_ids"):
        model.score_items(["u1"], "i01")


def test_unfitted_model():
    from mmrec_lib import models

    with pytest.raises(NotFittedError):
        models.MultimodalRecommender().score_items(["u1"], ITEMS)
