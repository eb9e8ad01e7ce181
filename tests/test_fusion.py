"""Tests of mmrec_lib.fusion: fusion layers (shapes, masking, serialisation) and graph helpers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import mmrec_lib  # noqa: F401  (Keras 2 set-up before TensorFlow)
from mmrec_lib import fusion
from mmrec_lib.errors import DataError, ParameterError

tf = fusion.tf
keras = tf.keras

DIMS = (4, 3, 6)
LAYERS = [fusion.ConcatFusion, fusion.AttentionFusion, fusion.GatedFusion]
MASK = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def modalities() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(5, d)).astype(np.float32) for d in DIMS]


def _built(cls, modalities, **kwargs):
    layer = cls(8, **kwargs)
    layer(modalities)
    return layer


# --------------------------------------------------------------------------- layer shapes

@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("normalization", ["l2", "layer", "none"])
def test_fusion_output_shape(cls, normalization, modalities):
    out = cls(8, normalization=normalization)(modalities, modality_mask=MASK)
    assert out.shape == (5, 8)
    assert np.isfinite(out.numpy()).all()


def test_concat_projection_dim_sets_mixing_input(modalities):
    layer = fusion.ConcatFusion(8, projection_dim=5)
    assert layer(modalities).shape == (5, 8)
    # three projections of 5 plus three presence flags
    assert layer.mix.kernel.shape == (3 * 5 + 3, 8)


def test_single_modality_works(modalities):
    out = fusion.AttentionFusion(8)([modalities[0]])
    assert out.shape == (5, 8)


@pytest.mark.parametrize("cls", LAYERS)
def test_no_mask_equals_all_present_mask(cls, modalities):
    layer = _built(cls, modalities)
    np.testing.assert_allclose(layer(modalities).numpy(),
                               layer(modalities, modality_mask=np.ones((5, 3), bool)).numpy())


@pytest.mark.parametrize("cls", LAYERS)
def test_float_mask_equals_bool_mask(cls, modalities):
    layer = _built(cls, modalities)
    np.testing.assert_allclose(layer(modalities, modality_mask=MASK.astype(np.float32)).numpy(),
                               layer(modalities, modality_mask=MASK).numpy())


# --------------------------------------------------------------------------- masking

@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("garbage", [0.0, 1e6, np.nan])
def test_output_does_not_depend_on_masked_values(cls, garbage, modalities):
    layer = _built(cls, modalities)
    reference = layer(modalities, modality_mask=MASK).numpy()
    changed = [x.copy() for x in modalities]
    for m in range(3):
        changed[m][~MASK[:, m]] = garbage
    out = layer(changed, modality_mask=MASK).numpy()
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", LAYERS)
def test_masked_modality_changes_output(cls, modalities):
    """The mask matters: dropping a present modality changes the vector."""
    layer = _built(cls, modalities)
    full = layer(modalities).numpy()
    masked = layer(modalities, modality_mask=MASK).numpy()
    assert not np.allclose(full[1], masked[1])
    np.testing.assert_allclose(full[0], masked[0], rtol=1e-6)


def test_attention_weights_sum_to_one_over_present(modalities):
    layer = fusion.AttentionFusion(8)
    fused, weights = layer(modalities, modality_mask=MASK, return_weights=True)
    weights = weights.numpy()
    assert weights.shape == (5, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert (weights[~MASK] == 0).all()
    assert (weights[MASK] > 0).all()
    np.testing.assert_allclose(weights[4], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(fused.numpy(), layer(modalities, modality_mask=MASK).numpy())


def test_attention_output_is_weighted_mean_of_projections(modalities):
    layer = fusion.AttentionFusion(8, normalization="none")
    fused, weights = layer(modalities, return_weights=True)
    projections = np.stack([layer.projections[m](modalities[m]).numpy() for m in range(3)], 1)
    expected = (weights.numpy()[:, :, None] * projections).sum(axis=1)
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_attention_item_without_modalities_gets_zeros(modalities):
    mask = MASK.copy()
    mask[0] = False
    fused, weights = fusion.AttentionFusion(8)(modalities, modality_mask=mask,
                                               return_weights=True)
    assert (weights.numpy()[0] == 0).all()
    assert (fused.numpy()[0] == 0).all()
    assert np.isfinite(fused.numpy()).all()


def test_gated_gates_are_zero_for_missing_modalities(modalities):
    _, gates = fusion.GatedFusion(8)(modalities, modality_mask=MASK, return_gates=True)
    gates = gates.numpy()
    assert gates.shape == (5, 3, 8)
    assert (gates[~MASK] == 0).all()
    assert ((gates[MASK] > 0) & (gates[MASK] < 1)).all()


@pytest.mark.parametrize("cls", LAYERS)
def test_l2_normalisation_makes_fusion_scale_invariant(cls, modalities):
    """One modality's scale cannot dominate: scaling it leaves the output unchanged."""
    layer = _built(cls, modalities)
    scaled = [modalities[0] * 1000.0, *modalities[1:]]
    np.testing.assert_allclose(layer(scaled).numpy(), layer(modalities).numpy(),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- serialisation

@pytest.mark.parametrize("cls,kwargs", [
    (fusion.ConcatFusion, {"projection_dim": 5, "activation": "relu", "normalization": "layer"}),
    (fusion.AttentionFusion, {"hidden_dim": 7}),
    (fusion.GatedFusion, {"normalization": "none"}),
])
def test_get_config_round_trip(cls, kwargs, modalities):
    layer = cls(8, **kwargs)
    reference = layer(modalities, modality_mask=MASK).numpy()
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    clone(modalities)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(modalities, modality_mask=MASK).numpy(), reference)


def test_keras_file_round_trip(tmp_path, modalities):
    inputs = [keras.Input((d,), name=f"modality_{m}") for m, d in enumerate(DIMS)]
    mask_input = keras.Input((3,), dtype="bool", name="mask")
    fused, weights = fusion.AttentionFusion(8, name="attention")(
        inputs, modality_mask=mask_input, return_weights=True)
    gated = fusion.GatedFusion(8, name="gated")(inputs, modality_mask=mask_input)
    concat = fusion.ConcatFusion(8, normalization="layer", name="concat")(
        inputs, modality_mask=mask_input)
    adjacency = fusion.item_item_graph(modalities, k=2)
    graph = fusion.GraphConvolution(adjacency, num_layers=2, combine="mean", name="graph")(concat)
    model = keras.Model([*inputs, mask_input], [fused, weights, gated, concat, graph])
    data = [*modalities, MASK]
    reference = model.predict(data, batch_size=5, verbose=0)
    path = tmp_path / "fusion.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for expected, actual in zip(reference, loaded.predict(data, batch_size=5, verbose=0)):
        np.testing.assert_array_equal(actual, expected)


def test_graph_convolution_config_round_trip():
    adjacency = sparse.csr_matrix(np.array([[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]]))
    layer = fusion.GraphConvolution(adjacency, num_layers=3, combine="last")
    clone = fusion.GraphConvolution.from_config(layer.get_config())
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    assert (clone.num_layers, clone.combine) == (3, "last")


# --------------------------------------------------------------------------- bad inputs (layers)

@pytest.mark.parametrize("cls", LAYERS)
def test_bad_output_dim_raises(cls):
    with pytest.raises(ParameterError, match="output_dim"):
        cls(0)


@pytest.mark.parametrize("cls", LAYERS)
def test_bad_normalization_raises(cls):
    with pytest.raises(ParameterError, match="normalization"):
        cls(8, normalization="max")


def test_bad_hidden_dim_raises():
    with pytest.raises(ParameterError, match="hidden_dim"):
        fusion.AttentionFusion(8, hidden_dim=-1)


def test_bad_projection_dim_raises():
    with pytest.raises(ParameterError, match="projection_dim"):
        fusion.ConcatFusion(8, projection_dim=1.5)


@pytest.mark.parametrize("cls", LAYERS)
def test_wrong_number_of_modalities_raises(cls, modalities):
    layer = _built(cls, modalities)
    with pytest.raises(ParameterError, match="built for 3 modalities"):
        layer(modalities[:2])


@pytest.mark.parametrize("cls", LAYERS)
def test_mask_of_wrong_width_raises(cls, modalities):
    with pytest.raises(ParameterError, match="modality_mask"):
        cls(8)(modalities, modality_mask=np.ones((5, 2), bool))


def test_non_list_input_raises(modalities):
    with pytest.raises(ParameterError, match="list of modality tensors"):
        fusion.GatedFusion(8)(modalities[0])


def test_rank_three_modality_raises(modalities):
    with pytest.raises(ParameterError, match="modality 1"):
        fusion.ConcatFusion(8)([modalities[0], np.zeros((5, 2, 3), np.float32)])


def test_rank_three_modality_raises_in_functional_model():
    with pytest.raises(ParameterError, match="modality 0"):
        fusion.AttentionFusion(8)([keras.Input((2, 3)), keras.Input((4,))])


def test_graph_convolution_wrong_row_count_raises():
    layer = fusion.GraphConvolution(np.eye(3), num_layers=1)
    with pytest.raises(ParameterError, match=r"expected \(3, dim\)"):
        layer(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize("kwargs,match", [
    ({"num_layers": 0}, "num_layers"), ({"combine": "sum"}, "combine")])
def test_graph_convolution_bad_options_raise(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        fusion.GraphConvolution(np.eye(3), **kwargs)


def test_graph_convolution_non_square_raises():
    with pytest.raises(ParameterError, match="square"):
        fusion.GraphConvolution(np.ones((2, 3)))


# --------------------------------------------------------------------------- modality_mask

def test_modality_mask_from_nan_rows():
    text = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]])
    audio = np.array([[np.nan], [5.0], [6.0]])
    (text_filled, audio_filled), mask = fusion.modality_mask(text, audio)
    np.testing.assert_array_equal(mask, [[True, False], [False, True], [True, True]])
    np.testing.assert_array_equal(text_filled, [[1, 2], [0, 0], [3, 4]])
    np.testing.assert_array_equal(audio_filled, [[0], [5], [6]])
    assert text_filled.dtype == np.float32


def test_modality_mask_partly_nan_row_raises():
    with pytest.raises(DataError, match=r"rows \[0\] are partly NaN"):
        fusion.modality_mask(np.array([[1.0, np.nan], [1.0, 2.0]]))


def test_modality_mask_infinite_raises():
    with pytest.raises(DataError, match="infinite"):
        fusion.modality_mask(np.array([[1.0, np.inf]]))


def test_modality_mask_row_count_mismatch_raises():
    with pytest.raises(ParameterError, match="modality 1"):
        fusion.modality_mask(np.zeros((3, 2)), np.zeros((4, 2)))


def test_modality_mask_needs_a_modality():
    with pytest.raises(ParameterError, match="at least one"):
        fusion.modality_mask()


# --------------------------------------------------------------------------- knn graph

VECTORS = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])


def test_knn_graph_hand_checked_directed():
    # cos(0,1)=0.994, cos(0,2)=0, cos(1,2)=0.110: everyone's nearest is 0 or 1.
    graph = fusion.knn_graph(VECTORS, k=1, symmetric=False)
    np.testing.assert_array_equal(graph.toarray(), [[0, 1, 0], [1, 0, 0], [0, 1, 0]])


def test_knn_graph_symmetric_keeps_either_direction():
    graph = fusion.knn_graph(VECTORS, k=1)
    np.testing.assert_array_equal(graph.toarray(), [[0, 1, 0], [1, 0, 1], [0, 1, 0]])


def test_knn_graph_weighted_uses_clipped_cosine():
    graph = fusion.knn_graph(VECTORS, k=2, weighted=True, symmetric=False).toarray()
    cos01 = 0.9 / np.hypot(0.9, 0.1)
    cos12 = 0.1 / np.hypot(0.9, 0.1)
    # item 0's similarity to item 2 is 0: the edge is kept in the k-NN but weighs 0.
    np.testing.assert_allclose(graph, [[0, cos01, 0], [cos01, 0, cos12], [0, cos12, 0]])


def test_knn_graph_ties_go_to_lower_index():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    graph = fusion.knn_graph(vectors, k=1, symmetric=False).toarray()
    np.testing.assert_array_equal(graph[:3], [[0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])


def test_knn_graph_missing_item_has_no_edges():
    vectors = np.array([[1.0, 0.0], [np.nan, np.nan], [0.9, 0.1], [0.0, 1.0]])
    mask = np.array([True, False, True, True])
    graph = fusion.knn_graph(vectors, k=1, mask=mask).toarray()
    assert graph[1].sum() == 0 and graph[:, 1].sum() == 0
    np.testing.assert_array_equal(graph[0], [0, 0, 1, 0])


def test_knn_graph_is_scale_invariant():
    a = fusion.knn_graph(VECTORS, k=1).toarray()
    b = fusion.knn_graph(VECTORS * np.array([[3.0], [0.5], [7.0]]), k=1).toarray()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [0, 3, 2.0])
def test_knn_graph_bad_k_raises(k):
    with pytest.raises(ParameterError, match="k="):
        fusion.knn_graph(VECTORS, k=k)


def test_knn_graph_nan_in_present_row_raises():
    with pytest.raises(DataError, match="NaN"):
        fusion.knn_graph(np.array([[1.0, np.nan], [1.0, 0.0], [0.0, 1.0]]), k=1)


def test_knn_graph_zero_row_raises():
    with pytest.raises(DataError, match="all-zero"):
        fusion.knn_graph(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), k=1)


def test_knn_graph_bad_mask_raises():
    with pytest.raises(ParameterError, match="mask"):
        fusion.knn_graph(VECTORS, k=1, mask=np.array([1, 0, 1]))


def test_knn_graph_bad_shape_raises():
    with pytest.raises(ParameterError, match="shape"):
        fusion.knn_graph(np.ones(3), k=1)


# --------------------------------------------------------------------------- combine, normalise

def test_combine_graphs_weights_are_normalised():
    a = sparse.csr_matrix(np.array([[0, 1], [1, 0]], dtype=float))
    b = sparse.csr_matrix(np.array([[0, 0], [1, 0]], dtype=float))
    combined = fusion.combine_graphs([a, b], weights=[3, 1]).toarray()
    np.testing.assert_allclose(combined, [[0, 0.75], [1.0, 0]])
    np.testing.assert_allclose(fusion.combine_graphs([a, b]).toarray(), [[0, 0.5], [1, 0]])


@pytest.mark.parametrize("graphs,weights,match", [
    ([], None, "non-empty"),
    ([np.eye(2), np.eye(3)], None, "different shapes"),
    ([np.eye(2), np.eye(2)], [1.0], "weights"),
    ([np.eye(2), np.eye(2)], [1.0, -1.0], "weights"),
    ([np.eye(2), np.eye(2)], [0.0, 0.0], "weights"),
])
def test_combine_graphs_bad_inputs_raise(graphs, weights, match):
    with pytest.raises(ParameterError, match=match):
        fusion.combine_graphs(graphs, weights=weights)


def test_combine_graphs_negative_edge_raises():
    with pytest.raises(DataError, match="negative"):
        fusion.combine_graphs([np.array([[0.0, -1.0], [0.0, 0.0]])])


def test_normalize_adjacency_symmetric_path_graph():
    path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    normalised = fusion.normalize_adjacency(path).toarray()
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(normalised, [[0, s, 0], [s, 0, s], [0, s, 0]])


def test_normalize_adjacency_row_sums_to_one_and_isolated_row_is_empty():
    graph = np.array([[0, 2, 1], [1, 0, 0], [0, 0, 0]], dtype=float)
    normalised = fusion.normalize_adjacency(graph, kind="row").toarray()
    np.testing.assert_allclose(normalised, [[0, 2 / 3, 1 / 3], [1, 0, 0], [0, 0, 0]])


def test_normalize_adjacency_self_loops():
    normalised = fusion.normalize_adjacency(np.zeros((2, 2)), kind="row", self_loops=True)
    np.testing.assert_allclose(normalised.toarray(), np.eye(2))


def test_normalize_adjacency_bad_kind_raises():
    with pytest.raises(ParameterError, match="kind"):
        fusion.normalize_adjacency(np.eye(2), kind="column")


def test_normalize_adjacency_nan_raises():
    with pytest.raises(DataError, match="NaN"):
        fusion.normalize_adjacency(np.array([[0.0, np.nan], [1.0, 0.0]]))


def test_item_item_graph_equals_manual_pipeline():
    rng = np.random.default_rng(1)
    text, audio = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    mask = np.ones((6, 2), bool)
    mask[2, 1] = False
    graph = fusion.item_item_graph([text, audio], k=2, mask=mask, weights=[2, 1])
    manual = fusion.normalize_adjacency(fusion.combine_graphs(
        [fusion.knn_graph(text, k=2), fusion.knn_graph(audio, k=2, mask=mask[:, 1])],
        weights=[2, 1]))
    np.testing.assert_allclose(graph.toarray(), manual.toarray())
    # item 2 lacks audio but keeps its text neighbours
    assert graph[2].nnz > 0


def test_item_item_graph_bad_mask_raises():
    with pytest.raises(ParameterError, match="mask"):
        fusion.item_item_graph([VECTORS], k=1, mask=np.ones((3, 2), bool))


def test_item_item_graph_needs_a_list():
    with pytest.raises(ParameterError, match="non-empty list"):
        fusion.item_item_graph(VECTORS, k=1)


# --------------------------------------------------------------------------- graph convolution

@pytest.mark.parametrize("combine", ["last", "mean", "residual"])
def test_graph_convolution_matches_dense_numpy(combine):
    adjacency = fusion.normalize_adjacency(
        np.array([[0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0]], dtype=float))
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    dense = adjacency.toarray()
    layers = [x, dense @ x, dense @ dense @ x]
    expected = {"last": layers[2], "mean": sum(layers) / 3, "residual": x + layers[2]}[combine]
    out = fusion.GraphConvolution(adjacency, num_layers=2, combine=combine)(x).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_graph_convolution_smooths_towards_neighbours():
    """On a two-node graph one row-normalised step swaps the vectors."""
    x = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    layer = fusion.GraphConvolution(np.array([[0, 1], [1, 0]]), combine="last")
    np.testing.assert_array_equal(layer(x).numpy(), x[::-1])
