"""Tests for mmrec_lib.similarity: cosine, dot, top-k and the blocked top-k."""

import numpy as np
import pytest
from scipy import sparse

from mmrec_lib import similarity
from mmrec_lib.errors import DataError, ParameterError


def test_cosine_hand_computed():
    users = np.array([[1.0, 0.0], [1.0, 1.0]])
    items = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]])
    expected = np.array([[1.0, 0.0, -1 / np.sqrt(2)], [1 / np.sqrt(2), 1 / np.sqrt(2), -1.0]])
    np.testing.assert_allclose(similarity.cosine_similarity(users, items), expected, atol=1e-6)


def test_cosine_blocks_agree_and_scale_invariant():
    rng = np.random.RandomState(0)
    users, items = rng.randn(7, 4), rng.randn(9, 4)
    full = similarity.cosine_similarity(users, items)
    blocked = similarity.cosine_similarity(users, items, block_size=2)
    np.testing.assert_allclose(full, blocked)
    np.testing.assert_allclose(similarity.cosine_similarity(3 * users, items), full, atol=1e-6)


def test_cosine_float32_by_default():
    out = similarity.cosine_similarity(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32))
    assert out.dtype == np.float32


def test_cosine_zero_vector_gives_zero():
    out = similarity.cosine_similarity(np.zeros((1, 2)), np.array([[1.0, 2.0]]))
    assert out[0, 0] == 0.0


def test_dot_scores():
    np.testing.assert_allclose(similarity.dot_scores([[1, 2]], [[3, 4], [1, 0]]), [[11, 1]])


def test_dim_mismatch():
    with pytest.raises(ParameterError, match="dim"):
        similarity.cosine_similarity(np.ones((1, 2)), np.ones((1, 3)))


def test_nan_vectors():
    with pytest.raises(DataError, match="NaN"):
        similarity.cosine_similarity(np.array([[np.nan, 1.0]]), np.ones((1, 2)))


def test_vectors_must_be_2d():
    with pytest.raises(ParameterError, match="2-D"):
        similarity.cosine_similarity(np.ones(3), np.ones((1, 3)))


def test_top_k_order_and_scores():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 2.0, 1.0, 0.0]])
    indices, values = similarity.top_k(scores, 2, return_scores=True)
    np.testing.assert_array_equal(indices, [[1, 3], [0, 1]])
    np.testing.assert_allclose(values, [[0.9, 0.7], [3.0, 2.0]])


def test_top_k_ties_lower_index_first():
    scores = np.array([[1.0, 5.0, 5.0, 5.0, 5.0, 0.0]])
    np.testing.assert_array_equal(similarity.top_k(scores, 2), [[1, 2]])
    np.testing.assert_array_equal(similarity.top_k(scores, 3), [[1, 2, 3]])


def test_top_k_matches_stable_argsort_on_many_ties():
    rng = np.random.RandomState(1)
    scores = rng.randint(0, 4, size=(50, 30)).astype(float)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(similarity.top_k(scores, 7), expected)


def test_top_k_excludes_seen():
    scores = np.array([[0.9, 0.8, 0.7], [0.1, 0.2, 0.3]])
    seen = sparse.csr_matrix(np.array([[1, 0, 0], [0, 0, 1]]))
    np.testing.assert_array_equal(similarity.top_k(scores, 1, exclude=seen), [[1], [1]])
    np.testing.assert_array_equal(similarity.top_k(scores, 1, exclude=[[0], [2]]), [[1], [1]])
    mask = np.array([[True, False, False], [False, False, True]])
    np.testing.assert_array_equal(similarity.top_k(scores, 1, exclude=mask), [[1], [1]])


def test_top_k_fewer_allowed_than_k_fills_with_minus_inf():
    indices, values = similarity.top_k(np.array([[1.0, 2.0]]), 2, exclude=[[1]],
                                       return_scores=True)
    np.testing.assert_array_equal(indices, [[0, 1]])
    assert values[0, 1] == -np.inf


def test_top_k_one_dimensional():
    np.testing.assert_array_equal(similarity.top_k(np.array([0.2, 0.8, 0.5]), 2), [1, 2])
    np.testing.assert_array_equal(similarity.top_k(np.array([0.2, 0.8, 0.5]), 1, exclude={1}), [2])


def test_top_k_equal_to_catalogue():
    np.testing.assert_array_equal(similarity.top_k(np.array([[1, 3, 2]]), 3), [[1, 2, 0]])


def test_top_k_k_too_large():
    with pytest.raises(ParameterError, match=r"k=4 must be an int in \[1, 3\]"):
        similarity.top_k(np.zeros((1, 3)), 4)


def test_top_k_k_zero():
    with pytest.raises(ParameterError, match="k=0"):
        similarity.top_k(np.zeros((1, 3)), 0)


def test_top_k_nan_scores():
    with pytest.raises(DataError, match="NaN"):
        similarity.top_k(np.array([[np.nan, 1.0]]), 1)


def test_top_k_exclude_wrong_shape():
    with pytest.raises(ParameterError, match="shape"):
        similarity.top_k(np.zeros((2, 3)), 1, exclude=sparse.csr_matrix((2, 4)))


def test_top_k_exclude_bad_index():
    with pytest.raises(ParameterError, match="outside"):
        similarity.top_k(np.zeros((1, 3)), 1, exclude=[[5]])


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_blocked_top_k_equals_full(metric):
    rng = np.random.RandomState(2)
    users = rng.randn(23, 5).astype(np.float32)
    items = rng.randn(101, 5).astype(np.float32)
    items[50] = items[10]  # an exact tie across two item blocks
    seen = sparse.random(23, 101, density=0.1, random_state=3, format="csr")
    full = (similarity.cosine_similarity(users, items) if metric == "cosine"
            else similarity.dot_scores(users, items))
    expected_indices, expected_scores = similarity.top_k(full, 6, exclude=seen,
                                                         return_scores=True)
    indices, scores = similarity.blocked_top_k(users, items, 6, metric=metric, exclude=seen,
                                               user_block=4, item_block=16)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)


def test_blocked_top_k_bad_metric():
    with pytest.raises(ParameterError, match="metric"):
        similarity.blocked_top_k(np.ones((1, 2)), np.ones((3, 2)), 1, metric="l2")


def test_blocked_top_k_bad_block():
    with pytest.raises(ParameterError, match="item_block"):
        similarity.blocked_top_k(np.ones((1, 2)), np.ones((3, 2)), 1, item_block=0)


def test_blocked_top_k_dense_exclude_rejected():
    with pytest.raises(ParameterError, match="sparse"):
        similarity.blocked_top_k(np.ones((1, 2)), np.ones((3, 2)), 1,
                                 exclude=np.zeros((1, 3), bool))


def test_normalize_rows():
    out = similarity.normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_blocked_top_k_fills_missing_places_with_minus_one():
    seen = sparse.csr_matrix(np.array([[1, 1, 0]]))
    indices, scores = similarity.blocked_top_k(np.ones((1, 2)), np.ones((3, 2)), 2,
                                               exclude=seen, item_block=1)
    np.testing.assert_array_equal(indices, [[2, -1]])
    assert scores[0, 1] == -np.inf
