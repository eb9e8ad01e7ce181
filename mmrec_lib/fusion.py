"""Multimodal fusion: concatenation, attention, gated and graph fusion of item vectors (chapter 07).

Every fusion layer takes a list of modality tensors ``[x_text, x_audio, x_visual]``
(each of shape ``(batch, dim_m)``, dims may differ) and an optional
``modality_mask`` of shape ``(batch, n_modalities)`` saying which modalities an
item has. A masked modality is replaced by nothing, not by zeros posing as data:
its values are never read (they may even be NaN), it gets zero weight, and the
layer's output does not depend on them.

The graph helpers build item-item k-nearest-neighbour graphs from each
modality's vectors, combine and normalise them (as LATTICE and FREEDOM do), and
:class:`GraphConvolution` propagates item vectors over the combined graph with
sparse matrix products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import sparse

from mmrec_lib._env import import_tensorflow
from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.errors import DataError, ParameterError

__all__ = [
    "ConcatFusion",
    "AttentionFusion",
    "GatedFusion",
    "GraphConvolution",
    "modality_mask",
    "knn_graph",
    "combine_graphs",
    "normalize_adjacency",
    "item_item_graph",
]

tf = import_tensorflow()
keras = tf.keras

Normalization = Literal["l2", "layer", "none"]
_NORMALIZATIONS = ("l2", "layer", "none")


# --------------------------------------------------------------------------- checks

# --------------------------------------------------------------------------- layers

class _FusionLayer(keras.layers.Layer):
    """Shared parts: input checks, per-modality masking, normalisation and projection."""

    def __init__(self, output_dim: int, *, normalization: Normalization = "l2", **kwargs):
        super().__init__(**kwargs)
        self.output_dim = check_int("output_dim", output_dim)
        self.normalization = check_choice("normalization", normalization, _NORMALIZATIONS)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape \
                or not all(isinstance(s, (list, tuple, tf.TensorShape)) for s in input_shape):
            raise ParameterError(f"{type(self).__name__} expects a list of modality tensors of "
                                 f"shape (batch, dim), got input shape {input_shape!r}")
        dims = []
        for index, shape in enumerate(input_shape):
            shape = tf.TensorShape(shape)
            if shape.rank != 2 or shape[-1] is None:
                raise ParameterError(f"modality {index} has shape {shape}; expected "
                                     "(batch, dim) with a known dim")
            dims.append(int(shape[-1]))
        self.input_dims = dims
        self.num_modalities = len(dims)
        self.norms = [keras.layers.LayerNormalization(name=f"norm_{m}")
                      if self.normalization == "layer" else None
                      for m in range(self.num_modalities)]
        self.projections = [keras.layers.Dense(self._projection_dim(), name=f"projection_{m}")
                            for m in range(self.num_modalities)]
        for m, dim in enumerate(dims):
            if self.norms[m] is not None:
                self.norms[m].build((None, dim))
            self.projections[m].build((None, dim))
        super().build(input_shape)

    def _projection_dim(self) -> int:
        return self.output_dim

    def _mask(self, inputs, modality_mask):
        """Return the mask as a bool tensor of shape (batch, n_modalities)."""
        batch = tf.shape(inputs[0])[0]
        if modality_mask is None:
            return tf.ones((batch, self.num_modalities), dtype=tf.bool)
        mask = tf.convert_to_tensor(modality_mask)
        if mask.shape.rank is not None and (mask.shape.rank != 2 or (
                mask.shape[-1] is not None and mask.shape[-1] != self.num_modalities)):
            raise ParameterError(f"modality_mask has shape {mask.shape}; expected "
                                 f"(batch, {self.num_modalities})")
        return mask if mask.dtype == tf.bool else tf.not_equal(mask, 0)

    def _check_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != self.num_modalities:
            count = len(inputs) if isinstance(inputs, (list, tuple)) else "not a list"
            raise ParameterError(f"{type(self).__name__} was built for {self.num_modalities} "
                                 f"modalities, called with {count}")

    def _project(self, inputs, mask):
        """Masked, normalised and projected modalities: a tensor (batch, n_modalities, output_dim).

        Missing rows are replaced before any arithmetic (``tf.where``, not a
        product), so NaN or garbage in a missing modality cannot leak through.
        """
        projected = []
        for m, x in enumerate(inputs):
            present = mask[:, m:m + 1]
            x = tf.where(present, tf.cast(x, self.compute_dtype), tf.zeros_like(x, self.compute_dtype))
            if self.normalization == "l2":
                x = tf.math.l2_normalize(x, axis=-1)
            elif self.normalization == "layer":
                x = self.norms[m](x)
            h = self.projections[m](x)
            projected.append(tf.where(present, h, tf.zeros_like(h)))
        return tf.stack(projected, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "output_dim": self.output_dim,
                "normalization": self.normalization}


@keras.utils.register_keras_serializable(package="mmrec")
class ConcatFusion(_FusionLayer):
    """Concatenation fusion: normalise and project each modality, concatenate, mix.

    Introduced in chapter 07. Each modality is normalised on its own (L2 or
    layer normalisation, so a modality with large values cannot dominate) and
    projected to ``projection_dim``; the projections and the presence mask (so
    the mixing layer knows which slots are empty) are concatenated and mapped
    by a dense layer to ``output_dim``. A missing modality's slot is exactly zero
    and its presence flag is 0.

    Parameters
    ----------
    output_dim : int
    projection_dim : int, optional
        Size of each modality's projection (default: ``output_dim``).
    normalization : {"l2", "layer", "none"}
    activation : str, optional
        Activation of the mixing layer (default: none, a linear map).

    Call
    ----
    inputs : list of float tensors of shape (batch, dim_m)
    modality_mask : bool or 0/1 tensor of shape (batch, n_modalities), optional
        returns float tensor of shape (batch, output_dim).
    """

    def __init__(self, output_dim: int, *, projection_dim: int | None = None,
                 normalization: Normalization = "l2", activation: str | None = None, **kwargs):
        super().__init__(output_dim, normalization=normalization, **kwargs)
        self.projection_dim = self.output_dim if projection_dim is None \
            else check_int("projection_dim", projection_dim)
        self.activation = activation

    def _projection_dim(self) -> int:
        return self.projection_dim

    def build(self, input_shape):
        super().build(input_shape)
        self.mix = keras.layers.Dense(self.output_dim, activation=self.activation, name="mix")
        self.mix.build((None, self.num_modalities * (self.projection_dim + 1)))

    def call(self, inputs, modality_mask=None):
        self._check_inputs(inputs)
        mask = self._mask(inputs, modality_mask)
        projected = self._project(inputs, mask)
        flat = tf.reshape(projected, (-1, self.num_modalities * self.projection_dim))
        return self.mix(tf.concat([flat, tf.cast(mask, flat.dtype)], axis=-1))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape((input_shape[0][0], self.output_dim))

    def get_config(self) -> dict:
        return {**super().get_config(), "projection_dim": self.projection_dim,
                "activation": self.activation}


@keras.utils.register_keras_serializable(package="mmrec")
class AttentionFusion(_FusionLayer):
    """Modality-level attention: a weighted mean of projected modalities, weights per item.

    Introduced in chapter 07. Each modality is normalised and projected to
    ``output_dim`` (``h_m``); its score is ``v . tanh(W h_m + b)`` (additive
    attention); the weights are a softmax of the scores over the modalities the
    item has (missing ones get weight exactly 0) and the output is
    ``sum_m weight_m h_m``. An item with no modality at all gets zero weights and
    a zero vector.

    Parameters
    ----------
    output_dim : int
    hidden_dim : int
        Size of the attention scorer's hidden layer.
    normalization : {"l2", "layer", "none"}

    Call
    ----
    inputs : list of float tensors of shape (batch, dim_m)
    modality_mask : bool or 0/1 tensor of shape (batch, n_modalities), optional
    return_weights : bool
        Also return the weights, a tensor of shape (batch, n_modalities) whose
        rows sum to 1 over the present modalities.
    """

    def __init__(self, output_dim: int, *, hidden_dim: int = 32,
                 normalization: Normalization = "l2", **kwargs):
        super().__init__(output_dim, normalization=normalization, **kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)

    def build(self, input_shape):
        super().build(input_shape)
        self.scorer_hidden = keras.layers.Dense(self.hidden_dim, activation="tanh",
                                                name="scorer_hidden")
        self.scorer_hidden.build((None, self.output_dim))
        self.scorer = keras.layers.Dense(1, use_bias=False, name="scorer")
        self.scorer.build((None, self.hidden_dim))

    def call(self, inputs, modality_mask=None, return_weights=False):
        self._check_inputs(inputs)
        mask = self._mask(inputs, modality_mask)
        projected = self._project(inputs, mask)                       # (batch, M, D)
        scores = tf.squeeze(self.scorer(self.scorer_hidden(projected)), axis=-1)
        weights = _masked_softmax(scores, mask)
        fused = tf.reduce_sum(weights[:, :, None] * projected, axis=1)
        return (fused, weights) if return_weights else fused

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_dim": self.hidden_dim}


def _masked_softmax(scores, mask):
    """Softmax over the present entries of each row; rows with none present are all zero."""
    masked = tf.where(mask, scores, tf.fill(tf.shape(scores), tf.constant(-1e9, scores.dtype)))
    shifted = masked - tf.reduce_max(masked, axis=-1, keepdims=True)
    exp = tf.where(mask, tf.exp(shifted), tf.zeros_like(shifted))
    return tf.math.divide_no_nan(exp, tf.reduce_sum(exp, axis=-1, keepdims=True))


@keras.utils.register_keras_serializable(package="mmrec")
class GatedFusion(_FusionLayer):
    """Gated fusion (a gated multimodal unit): per-dimension sigmoid gates decide each modality's share.

    Introduced in chapter 07. Each modality is normalised and projected to
    ``h_m = tanh(W_m x_m)``; the gates ``z_m = sigmoid(G_m [x_1, ..., x_M, mask])``
    see all present modalities (so the visual gate can close when the text is
    informative) and the output is ``sum_m z_m * h_m``. Missing modalities have
    gate 0 and are not seen by the other gates.

    Parameters
    ----------
    output_dim : int
    normalization : {"l2", "layer", "none"}

    Call
    ----
    inputs : list of float tensors of shape (batch, dim_m)
    modality_mask : bool or 0/1 tensor of shape (batch, n_modalities), optional
    return_gates : bool
        Also return the gates, a tensor of shape (batch, n_modalities, output_dim).
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.gate = keras.layers.Dense(self.num_modalities * self.output_dim,
                                       activation="sigmoid", name="gate")
        self.gate.build((None, self.num_modalities * (self.output_dim + 1)))

    def call(self, inputs, modality_mask=None, return_gates=False):
        self._check_inputs(inputs)
        mask = self._mask(inputs, modality_mask)
        projected = self._project(inputs, mask)                       # (batch, M, D), 0 if missing
        flat = tf.reshape(projected, (-1, self.num_modalities * self.output_dim))
        gates = self.gate(tf.concat([flat, tf.cast(mask, flat.dtype)], axis=-1))
        gates = tf.reshape(gates, (-1, self.num_modalities, self.output_dim))
        gates = tf.where(mask[:, :, None], gates, tf.zeros_like(gates))
        fused = tf.reduce_sum(gates * tf.tanh(projected), axis=1)
        return (fused, gates) if return_gates else fused


@keras.utils.register_keras_serializable(package="mmrec")
class GraphConvolution(keras.layers.Layer):
    """Light graph convolution of item vectors over a fixed item-item graph (LATTICE/FREEDOM style).

    Introduced in chapter 07. With ``A`` the normalised adjacency (from
    :func:`item_item_graph`) and ``E`` the item vectors, computes
    ``E_0 = E, E_l = A E_{l-1}`` with sparse products and returns the last
    layer, the mean of layers ``0..L`` (``combine="mean"``), or ``E + E_L``
    (``combine="residual"``, LATTICE's choice). No weights: the graph only
    smooths, the layers before it learn.

    Parameters
    ----------
    adjacency : scipy sparse matrix or ndarray of shape (n_items, n_items)
    num_layers : int
    combine : {"last", "mean", "residual"}

    Call
    ----
    item_vectors : float tensor of shape (n_items, dim)
        The vectors of all items, in the graph's order; returns the same shape.
    """

    def __init__(self, adjacency, *, num_layers: int = 1,
                 combine: Literal["last", "mean", "residual"] = "residual", **kwargs):
        super().__init__(**kwargs)
        if isinstance(adjacency, dict):  # from get_config
            matrix = sparse.coo_matrix(
                (np.asarray(adjacency["values"], dtype=np.float32),
                 (np.asarray(adjacency["rows"], dtype=np.int64),
                  np.asarray(adjacency["cols"], dtype=np.int64))),
                shape=tuple(adjacency["shape"]))
        else:
            matrix = _check_square_matrix("adjacency", adjacency)
        self.adjacency = matrix.tocoo().astype(np.float32)
        self.adjacency.sum_duplicates()
        self.num_items = int(self.adjacency.shape[0])
        self.num_layers = check_int("num_layers", num_layers)
        self.combine = check_choice("combine", combine, ("last", "mean", "residual"))
        order = np.lexsort((self.adjacency.col, self.adjacency.row))
        self._sparse = tf.SparseTensor(
            indices=np.stack([self.adjacency.row[order], self.adjacency.col[order]], axis=1)
            .astype(np.int64),
            values=self.adjacency.data[order], dense_shape=self.adjacency.shape)

    def call(self, item_vectors):
        item_vectors = tf.convert_to_tensor(item_vectors)
        if item_vectors.shape.rank != 2 or (item_vectors.shape[0] is not None
                                            and item_vectors.shape[0] != self.num_items):
            raise ParameterError(f"item_vectors has shape {item_vectors.shape}; expected "
                                 f"({self.num_items}, dim), one row per graph node")
        adjacency = tf.cast(self._sparse, item_vectors.dtype)
        layers = [item_vectors]
        for _ in range(self.num_layers):
            layers.append(tf.sparse.sparse_dense_matmul(adjacency, layers[-1]))
        if self.combine == "last":
            return layers[-1]
        if self.combine == "mean":
            return tf.add_n(layers) / float(len(layers))
        return item_vectors + layers[-1]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self) -> dict:
        coo = self.adjacency
        return {**super().get_config(), "num_layers": self.num_layers, "combine": self.combine,
                "adjacency": {"rows": coo.row.tolist(), "cols": coo.col.tolist(),
                              "values": coo.data.tolist(), "shape": list(coo.shape)}}


# --------------------------------------------------------------------------- masks

def modality_mask(*modalities: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Turn modality arrays with NaN rows for missing items into (filled arrays, mask).

    Introduced in chapter 07. A row that is all NaN means "this item has no such
    modality"; it is filled with zeros (the fusion layers never read it) and its
    mask entry is False. A row with some NaN but not all is corrupt data.

    Parameters
    ----------
    *modalities : ndarray of shape (n_items, dim_m), one per modality

    Returns
    -------
    filled : list of float32 ndarrays of shape (n_items, dim_m)
    mask : bool ndarray of shape (n_items, n_modalities)
    """
    if not modalities:
        raise ParameterError("modality_mask needs at least one modality array")
    arrays = [np.asarray(x, dtype=np.float32) for x in modalities]
    n_items = arrays[0].shape[0] if arrays[0].ndim == 2 else None
    filled, columns = [], []
    for index, x in enumerate(arrays):
        if x.ndim != 2 or x.shape[0] != n_items:
            raise ParameterError(f"modality {index} has shape {x.shape}; expected "
                                 f"({n_items}, dim) like modality 0")
        nan = np.isnan(x)
        missing = nan.all(axis=1)
        if (nan.any(axis=1) & ~missing).any():
            rows = np.flatnonzero(nan.any(axis=1) & ~missing)[:5].tolist()
            raise DataError(f"modality {index} rows {rows} are partly NaN; a missing "
                            "modality must be a row of NaN only")
        if np.isinf(x).any():
            raise DataError(f"modality {index} contains infinite values")
        filled.append(np.where(missing[:, None], np.float32(0), x))
        columns.append(~missing)
    return filled, np.stack(columns, axis=1)


# --------------------------------------------------------------------------- graphs

def _check_vectors(name: str, vectors) -> np.ndarray:
    x = np.asarray(vectors)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ParameterError(f"{name} has shape {x.shape}; expected (n_items >= 2, dim >= 1)")
    if x.dtype.kind not in "fiu":
        raise DataError(f"{name} must hold numbers, got dtype {x.dtype}")
    return x.astype(np.float64)


def _check_square_matrix(name: str, matrix) -> sparse.csr_matrix:
    if not (sparse.issparse(matrix) or isinstance(matrix, np.ndarray)):
        raise ParameterError(f"{name} must be a scipy sparse matrix or an ndarray, "
                             f"got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ParameterError(f"{name} has shape {matrix.shape}; expected a square (n, n)")
    matrix = sparse.csr_matrix(matrix, dtype=np.float64)
    if not np.isfinite(matrix.data).all():
        raise DataError(f"{name} contains NaN or infinite values")
    if (matrix.data < 0).any():
        raise DataError(f"{name} has negative edge weights; a graph here has weights >= 0")
    return matrix


def knn_graph(vectors, *, k: int = 10, mask=None, weighted: bool = False,
              symmetric: bool = True) -> sparse.csr_matrix:
    """Item-item k-nearest-neighbour graph of one modality, by cosine similarity.

    Introduced in chapter 07. Row ``i`` links item ``i`` to the ``k`` items
    most similar to it (itself excluded; ties go to the lower index). Items
    without the modality (``mask`` False) have no edges and are nobody's
    neighbour. Edges weigh 1, or the similarity clipped at 0 when
    ``weighted``; ``symmetric`` keeps an edge when either end chose the other.

    Parameters
    ----------
    vectors : ndarray of shape (n_items, dim)
    k : int
        At most ``n_present - 1``.
    mask : bool ndarray of shape (n_items,), optional
    weighted, symmetric : bool

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items)

    Examples
    --------
    >>> vectors = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0]])
    >>> knn_graph(vectors, k=1, symmetric=False).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 1., 0.]])

    With ``symmetric=True`` (the default) item 1 also links to item 2.
    """
    x = _check_vectors("vectors", vectors)
    n_items = x.shape[0]
    present = np.ones(n_items, dtype=bool) if mask is None else np.asarray(mask)
    if present.shape != (n_items,) or present.dtype != bool:
        raise ParameterError(f"mask must be a bool array of shape ({n_items},), "
                             f"got {present.dtype} {present.shape}")
    n_present = int(present.sum())
    k = check_int("k", k)
    if k > n_present - 1:
        raise ParameterError(f"k={k} must be <= {n_present - 1} (the present items minus one)")
    if not np.isfinite(x[present]).all():
        raise DataError("vectors contains NaN or infinite values in present rows")
    norms = np.linalg.norm(x, axis=1)
    if (norms[present] == 0).any():
        raise DataError("vectors has all-zero rows marked present; cosine is undefined for "
                        "them (mark them missing in mask)")
    index = np.flatnonzero(present)
    unit = x[index] / norms[index, None]
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    # A stable sort on the negated similarity breaks ties by the lower index.
    neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    rows = np.repeat(index, k)
    cols = index[neighbours.ravel()]
    if weighted:
        values = np.clip(np.take_along_axis(similarity, neighbours, axis=1).ravel(), 0, None)
    else:
        values = np.ones(rows.size)
    graph = sparse.csr_matrix((values, (rows, cols)), shape=(n_items, n_items))
    if symmetric:
        graph = graph.maximum(graph.T).tocsr()
    graph.eliminate_zeros()
    return graph


def combine_graphs(graphs: Sequence, *, weights: Sequence[float] | None = None
                   ) -> sparse.csr_matrix:
    """Weighted sum of per-modality graphs (weights normalised to sum to 1).

    Introduced in chapter 07. LATTICE learns these weights; FREEDOM fixes them.

    Parameters
    ----------
    graphs : sequence of sparse matrices of shape (n_items, n_items)
    weights : sequence of float >= 0, optional
        One per graph, default equal.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items)
    """
    if isinstance(graphs, (np.ndarray, str)) or not isinstance(graphs, Sequence) or not graphs:
        raise ParameterError("graphs must be a non-empty list of (n_items, n_items) matrices")
    matrices = [_check_square_matrix(f"graphs[{i}]", g) for i, g in enumerate(graphs)]
    shapes = {m.shape for m in matrices}
    if len(shapes) != 1:
        raise ParameterError(f"graphs have different shapes {sorted(shapes)}")
    if weights is None:
        weights = [1.0] * len(matrices)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(matrices),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ParameterError(f"weights={list(weights)!r} must be {len(matrices)} numbers >= 0 "
                             "with a positive sum")
    w = w / w.sum()
    combined = sum(weight * m for weight, m in zip(w, matrices))
    return sparse.csr_matrix(combined)


def normalize_adjacency(adjacency, *, kind: Literal["symmetric", "row"] = "symmetric",
                        self_loops: bool = False) -> sparse.csr_matrix:
    """Normalise a graph for propagation: ``D^-1/2 A D^-1/2`` or ``D^-1 A``.

    Introduced in chapter 07. ``D`` holds the row sums; isolated nodes keep
    an empty row (rather than a division by zero). ``self_loops`` adds ``I``
    before normalising, so an item keeps part of its own vector.

    Parameters
    ----------
    adjacency : sparse matrix or ndarray of shape (n_items, n_items)
    kind : {"symmetric", "row"}
    self_loops : bool

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items)
    """
    matrix = _check_square_matrix("adjacency", adjacency)
    check_choice("kind", kind, ("symmetric", "row"))
    if self_loops:
        matrix = matrix + sparse.identity(matrix.shape[0], format="csr")
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inverse = np.where(degree > 0, 1.0 / degree, 0.0)
    if kind == "row":
        return sparse.csr_matrix(sparse.diags(inverse) @ matrix)
    root = np.sqrt(inverse)
    return sparse.csr_matrix(sparse.diags(root) @ matrix @ sparse.diags(root))


def item_item_graph(modalities: Sequence, *, k: int = 10, mask=None,
                    weights: Sequence[float] | None = None, weighted: bool = False,
                    kind: Literal["symmetric", "row"] = "symmetric",
                    self_loops: bool = False) -> sparse.csr_matrix:
    """One k-NN graph per modality, combined and normalised: the graph of graph fusion.

    Introduced in chapter 07.

    Parameters
    ----------
    modalities : sequence of ndarrays of shape (n_items, dim_m)
    k : int
    mask : bool ndarray of shape (n_items, n_modalities), optional
        As returned by :func:`modality_mask`.
    weights : sequence of float, optional
        Weight of each modality's graph (default equal).
    weighted, kind, self_loops
        See :func:`knn_graph` and :func:`normalize_adjacency`.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items), ready for
    :class:`GraphConvolution`.
    """
    if isinstance(modalities, np.ndarray) or not isinstance(modalities, Sequence) \
            or not modalities:
        raise ParameterError("modalities must be a non-empty list of (n_items, dim) arrays")
    n_items = np.asarray(modalities[0]).shape[0]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (n_items, len(modalities)) or mask.dtype != bool:
            raise ParameterError(f"mask must be a bool array of shape ({n_items}, "
                                 f"{len(modalities)}), got {mask.dtype} {mask.shape}")
    graphs = [knn_graph(x, k=k, weighted=weighted,
                        mask=None if mask is None else mask[:, m])
              for m, x in enumerate(modalities)]
    return normalize_adjacency(combine_graphs(graphs, weights=weights), kind=kind,
                               self_loops=self_loops)
