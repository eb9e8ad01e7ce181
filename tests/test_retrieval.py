"""Tests for mmrec_lib.retrieval: exact FAISS agrees with similarity.top_k, ANN indexes reach high recall."""

import sys

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import retrieval, similarity
from mmrec_lib.errors import DataError, EnvironmentError, ModelError, ParameterError

pytest.importorskip("faiss")

NUM_ITEMS, DIM, NUM_QUERIES, K = 5_000, 32, 200, 10
# Small enough to build in well under a second on one thread (pq_nbits=6: 64 codewords).
ANN_OPTIONS = {
    "hnsw": {"M": 16, "ef_construction": 40, "ef_search": 64},
    "ivf": {"nlist": 64, "nprobe": 8},
    "ivfpq": {"nlist": 64, "nprobe": 8, "pq_nbits": 6, "k_factor": 8},
}


def _clustered(num_rows, seed, *, num_clusters=50, dim=DIM):
    # Items and queries share the cluster centres (the seed 0 draw) but not the points.
    centres = np.random.default_rng(0).normal(size=(num_clusters, dim))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, num_clusters, num_rows)] + 0.3 * rng.normal(size=(num_rows, dim))
    return points.astype(np.float32)


@pytest.fixture(scope="module")
def items():
    return _clustered(NUM_ITEMS, 1)


@pytest.fixture(scope="module")
def queries():
    return _clustered(NUM_QUERIES, 2)


@pytest.fixture(scope="module")
def exact_top(items, queries):
    return similarity.top_k(queries @ items.T, K)


def _recall(found, expected):
    return np.mean([len(set(row_found) & set(row_expected)) / K
                    for row_found, row_expected in zip(found, expected)])


def _same_sets(found, expected):
    return all(set(row_found) == set(row_expected) for row_found, row_expected in zip(found, expected))


# ---------------------------------------------------------------- exact = top_k
def test_exact_matches_top_k_on_random_data():
    rng = np.random.default_rng(3)
    items, queries = rng.normal(size=(2_000, 16)), rng.normal(size=(50, 16))
    index = retrieval.build_index(items, kind="exact", num_threads=1)
    scores, indices = index.search(queries, K)
    expected, expected_scores = similarity.top_k(
        queries.astype(np.float32) @ items.astype(np.float32).T, K, return_scores=True)
    assert _same_sets(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4)


def test_exact_matches_top_k_on_clustered_data(items, queries, exact_top):
    _, indices = retrieval.build_index(items, kind="exact", num_threads=1).search(queries, K)
    assert indices.shape == (NUM_QUERIES, K) and indices.dtype == np.int64
    assert _same_sets(indices, exact_top)


def test_exact_scores_are_sorted_best_first(items, queries):
    scores, _ = retrieval.build_index(items, num_threads=1).search(queries, K)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_cosine_equals_top_k_on_normalised_vectors(items, queries):
    index = retrieval.build_index(items * np.linspace(0.1, 10, NUM_ITEMS, dtype=np.float32)[:, None],
                                  metric="cosine", num_threads=1)
    _, indices = index.search(queries * 3.0, K)
    unit_items = items / np.linalg.norm(items, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    assert _same_sets(indices, similarity.top_k(unit_queries @ unit_items.T, K))


def test_one_query_vector_gives_one_row(items, queries):
    index = retrieval.build_index(items, num_threads=1)
    scores, indices = index.search(queries[0], K)
    assert scores.shape == indices.shape == (K,)
    np.testing.assert_array_equal(indices, index.search(queries[:1], K)[1][0])


def test_k_equal_to_the_size_returns_every_item():
    items = np.eye(4, dtype=np.float32)
    _, indices = retrieval.build_index(items).search(items[:1], 4)
    assert sorted(indices[0]) == [0, 1, 2, 3] and indices[0][0] == 0


# ---------------------------------------------------------------- approximate indexes
@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_approximate_index_reaches_high_recall(kind, items, queries, exact_top):
    index = retrieval.build_index(items, kind=kind, num_threads=1, **ANN_OPTIONS[kind])
    _, indices = index.search(queries, K)
    assert _recall(indices, exact_top) >= 0.9


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_approximate_index_is_deterministic(kind, items, queries):
    first = retrieval.build_index(items, kind=kind, num_threads=1, **ANN_OPTIONS[kind])
    second = retrieval.build_index(items, kind=kind, num_threads=1, **ANN_OPTIONS[kind])
    for result_first, result_second in zip(first.search(queries, K), second.search(queries, K)):
        np.testing.assert_array_equal(result_first, result_second)


def test_more_probes_do_not_lower_ivf_recall(items, queries, exact_top):
    index = retrieval.build_index(items, kind="ivf", nlist=64, nprobe=1, num_threads=1)
    low = _recall(index.search(queries, K)[1], exact_top)
    high = _recall(index.set_search_options(nprobe=64).search(queries, K)[1], exact_top)
    assert high >= low and high == 1.0  # nprobe = nlist scans every cell: exact


def test_options_are_filled_in(items):
    index = retrieval.build_index(items[:1_000], kind="ivfpq", pq_nbits=6, num_threads=1)
    assert index.options["pq_m"] == DIM // 4 and index.options["nlist"] >= 1
    assert index.options["k_factor"] == 32


def test_memory_estimate_grows_with_the_structure(items):
    exact = retrieval.build_index(items, num_threads=1)
    hnsw = retrieval.build_index(items, kind="hnsw", num_threads=1, **ANN_OPTIONS["hnsw"])
    assert exact.memory_bytes >= NUM_ITEMS * DIM * 4
    assert hnsw.memory_bytes > exact.memory_bytes


# ---------------------------------------------------------------- item ids, add, remove
def test_dataframe_index_returns_item_ids(items, queries, exact_top):
    frame = pd.DataFrame(items, index=[f"item{i}" for i in range(NUM_ITEMS)])
    index = retrieval.build_index(frame, num_threads=1)
    _, ids = index.search(queries, K, return_ids=True)
    assert ids[0][0] == f"item{exact_top[0][0]}"
    assert index.item_ids[7] == "item7"


def test_add_then_find_the_new_item():
    index = retrieval.build_index(np.eye(3, dtype=np.float32))
    labels = index.add(np.array([[0.0, 0.0, 5.0]], dtype=np.float32))
    assert labels.tolist() == [3] and len(index) == 4
    assert index.search(np.array([0.0, 0.0, 1.0]), 1)[1][0] == 3


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_remove_drops_the_item(kind):
    items = np.eye(8, dtype=np.float32)
    index = retrieval.build_index(items, kind=kind, nlist=2, nprobe=2) if kind == "ivf" \
        else retrieval.build_index(items)
    assert index.remove([0]) == 1 and len(index) == 7
    assert 0 not in index.search(items[:1], 7)[1][0]


def test_remove_by_item_id_and_add_again():
    frame = pd.DataFrame(np.eye(3, dtype=np.float32), index=["a", "b", "c"])
    index = retrieval.build_index(frame)
    index.remove(["a"])
    index.add(pd.DataFrame([[2.0, 0.0, 0.0]], index=["d"], dtype=np.float32))
    assert index.search([1.0, 0.0, 0.0], 1, return_ids=True)[1][0] == "d"


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_labels_stay_right_after_removals_and_additions(kind):
    # Found by the serving tests: an IVF index inside an IndexIDMap returned the same label
    # twice, and the wrong label for the best score, after a removal and further additions.
    frame = pd.DataFrame([[10.0, 0, 0, 0], [1.0, 0, 0, 0], [5.0, 0, 0, 0]],
                         index=["a", "b", "c"], dtype=np.float32)
    options = {"nlist": 1, "nprobe": 1} if kind == "ivf" else {}
    index = retrieval.build_index(frame, kind=kind, **options)
    index.remove(["c"])
    index.add(pd.DataFrame([[-2.0, 0, 0, 0]], index=["d"], dtype=np.float32))
    index.remove(["a"])
    index.add(pd.DataFrame([[10.0, 0, 0, 0]], index=["a2"], dtype=np.float32))
    scores, ids = index.search([1.0, 0.0, 0.0, 0.0], 3, return_ids=True)
    assert ids.tolist() == ["a2", "b", "d"]
    np.testing.assert_allclose(scores, [10.0, 1.0, -2.0])


def test_remove_is_refused_by_hnsw(items):
    index = retrieval.build_index(items[:500], kind="hnsw", num_threads=1)
    with pytest.raises(ModelError, match="rebuild"):
        index.remove([0])


def test_remove_unknown_id_is_refused():
    with pytest.raises(ParameterError, match="not in the index"):
        retrieval.build_index(np.eye(3)).remove([5])


def test_add_existing_item_id_is_refused():
    index = retrieval.build_index(pd.DataFrame(np.eye(2), index=["a", "b"]))
    with pytest.raises(DataError, match="already in the index"):
        index.add(pd.DataFrame([[1.0, 1.0]], index=["a"]))


def test_add_array_to_a_dataframe_index_is_refused():
    index = retrieval.build_index(pd.DataFrame(np.eye(2), index=["a", "b"]))
    with pytest.raises(ParameterError, match="DataFrame"):
        index.add(np.eye(2))


# ---------------------------------------------------------------- save / load
@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf", "ivfpq"])
def test_save_load_round_trip(kind, items, queries, tmp_path):
    options = ANN_OPTIONS.get(kind, {})
    index = retrieval.build_index(items, kind=kind, metric="cosine", num_threads=1, **options)
    path = index.save(tmp_path / "index.npz")
    loaded = retrieval.load_index(path)
    assert (loaded.kind, loaded.metric, loaded.options, len(loaded)) == \
        (kind, "cosine", index.options, NUM_ITEMS)
    for before, after in zip(index.search(queries, K), loaded.search(queries, K)):
        np.testing.assert_array_equal(before, after)


def test_save_load_keeps_item_ids_and_removals(tmp_path):
    frame = pd.DataFrame(np.eye(3, dtype=np.float32), index=[10, 20, 30])
    index = retrieval.build_index(frame)
    index.remove([10])
    loaded = retrieval.VectorIndex.load(index.save(tmp_path / "ids.npz"))
    assert len(loaded) == 2
    assert loaded.search([1.0, 0.5, 0.0], 1, return_ids=True)[1][0] == 20


def test_save_leaves_no_temporary_file(tmp_path):
    retrieval.build_index(np.eye(3)).save(tmp_path / "index.npz")
    assert [path.name for path in tmp_path.iterdir()] == ["index.npz"]


def test_load_missing_file_names_it(tmp_path):
    with pytest.raises(ModelError, match="missing.npz"):
        retrieval.load_index(tmp_path / "missing.npz")


def test_load_truncated_file_names_it(items, tmp_path):
    path = retrieval.build_index(items[:100]).save(tmp_path / "truncated.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated.npz"):
        retrieval.load_index(path)


def test_load_corrupt_file_names_it(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"not an index at all" * 10)
    with pytest.raises(ModelError, match="corrupt.npz"):
        retrieval.load_index(path)


def test_load_corrupt_faiss_payload_names_it(tmp_path):
    path = tmp_path / "payload.npz"
    np.savez(path, faiss_index=np.frombuffer(b"IxMpgarbage" * 4, dtype=np.uint8),
             alive=np.ones(3, dtype=bool),
             meta=np.array('{"format_version": 1, "kind": "exact", "metric": "ip", '
                           '"options": {}, "num_threads": null, "item_ids": null}'))
    with pytest.raises(ModelError, match="payload.npz"):
        retrieval.load_index(path)


# ---------------------------------------------------------------- bad inputs
def test_unknown_kind_is_refused():
    with pytest.raises(ParameterError, match="kind='lsh'"):
        retrieval.build_index(np.eye(3), kind="lsh")


def test_unknown_metric_is_refused():
    with pytest.raises(ParameterError, match="metric='l2'"):
        retrieval.build_index(np.eye(3), metric="l2")


def test_option_of_another_kind_is_refused():
    with pytest.raises(ParameterError, match="nprobe"):
        retrieval.build_index(np.eye(3), kind="hnsw", nprobe=4)


def test_bad_option_value_is_refused():
    with pytest.raises(ParameterError, match="M=0"):
        retrieval.build_index(np.eye(3), kind="hnsw", M=0)


def test_nlist_larger_than_the_items_is_refused():
    with pytest.raises(ParameterError, match=r"nlist=10 must be an int in \[1, 3\]"):
        retrieval.build_index(np.eye(3), kind="ivf", nlist=10)


def test_pq_m_not_dividing_the_dimension_is_refused(items):
    with pytest.raises(ParameterError, match="pq_m=5 must divide the dimension 32"):
        retrieval.build_index(items, kind="ivfpq", pq_m=5)


def test_too_few_items_for_pq_codebooks_is_refused():
    with pytest.raises(DataError, match="at least 256 items"):
        retrieval.build_index(np.eye(8), kind="ivfpq", nlist=1)


def test_one_dimensional_items_are_refused():
    with pytest.raises(ParameterError, match="2-D"):
        retrieval.build_index(np.ones(5))


def test_empty_items_are_refused():
    with pytest.raises(DataError, match="empty"):
        retrieval.build_index(np.empty((0, 4)))


def test_nan_items_are_refused():
    items = np.eye(3)
    items[1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        retrieval.build_index(items)


def test_nan_queries_are_refused():
    with pytest.raises(DataError, match="NaN"):
        retrieval.build_index(np.eye(3)).search([[np.nan, 0.0, 0.0]], 1)


def test_string_vectors_are_refused():
    with pytest.raises(ParameterError, match="numeric"):
        retrieval.build_index(np.array([["a", "b"]]))


def test_query_dimension_mismatch_is_refused():
    with pytest.raises(ParameterError, match="query_vectors has 2 dimensions, the index has 3"):
        retrieval.build_index(np.eye(3)).search(np.ones((1, 2)), 1)


def test_k_larger_than_the_index_names_the_size():
    with pytest.raises(ParameterError, match=r"k=4 must be an int in \[1, 3\] \(the index holds 3"):
        retrieval.build_index(np.eye(3)).search(np.ones((1, 3)), 4)


@pytest.mark.parametrize("k", [0, -1, 2.0, True, "3"])
def test_bad_k_is_refused(k):
    with pytest.raises(ParameterError, match="k="):
        retrieval.build_index(np.eye(3)).search(np.ones((1, 3)), k)


def test_search_of_an_emptied_index_is_refused():
    index = retrieval.build_index(np.eye(2))
    index.remove([0, 1])
    with pytest.raises(DataError, match="empty"):
        index.search(np.ones((1, 2)), 1)


def test_return_ids_without_item_ids_is_refused():
    with pytest.raises(ParameterError, match="return_ids"):
        retrieval.build_index(np.eye(3)).search(np.ones((1, 3)), 1, return_ids=True)


def test_repeated_item_ids_are_refused():
    with pytest.raises(DataError, match="repeated item ids"):
        retrieval.build_index(pd.DataFrame(np.eye(2), index=["a", "a"]))


def test_bad_num_threads_is_refused():
    with pytest.raises(ParameterError, match="num_threads=0"):
        retrieval.build_index(np.eye(3), num_threads=0)


def test_bad_search_option_is_refused():
    index = retrieval.build_index(np.eye(3))
    with pytest.raises(ParameterError, match="ef_search"):
        index.set_search_options(ef_search=10)


def test_missing_faiss_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(EnvironmentError, match=r"pip install faiss-cpu==1\.15\.1"):
        retrieval.build_index(np.eye(3))


def test_unfilled_places_get_minus_one_and_minus_inf():
    # nprobe=1 of 2 cells scans only part of the items, so k = all items cannot be filled.
    items = np.vstack([np.tile([1.0, 0.0], (6, 1)), np.tile([0.0, 1.0], (6, 1))])
    items += np.random.default_rng(0).normal(scale=0.01, size=items.shape)
    frame = pd.DataFrame(items, index=[f"i{n}" for n in range(12)])
    index = retrieval.build_index(frame, kind="ivf", nlist=2, nprobe=1)
    scores, ids = index.search([1.0, 0.0], 12, return_ids=True)
    missing = ids == None  # noqa: E711 - elementwise comparison on an object array
    assert missing.any() and np.isneginf(scores[missing]).all()
    assert not np.isneginf(scores[~missing]).any()
