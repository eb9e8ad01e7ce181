"""musicnn as an ONNX graph, written op by op from the TF1 checkpoint's weights."""

from __future__ import annotations

import numpy as np

from mmrec_lib.audio.musicnn import musicnn_checkpoint_tensors
from mmrec_lib.errors import ModelError
from mmrec_lib.inference._onnx import OPSET, finish_model

__all__ = ["musicnn_checkpoint_tensors", "musicnn_onnx_model", "OPSET"]

_BN_EPSILON = 1e-3  # as mmrec_lib.audio.musicnn (tf.compat.v1.layers.batch_normalization)
_BN_FIELDS = ("gamma", "beta", "moving_mean", "moving_variance")


def musicnn_onnx_model(tensors: dict[str, np.ndarray], *, n_mels: int = 96,
                       num_filters_midend: int = 64):
    """Build the ONNX model of musicnn from its checkpoint variables.

    Introduced in chapter 10. The graph is the function of
    :func:`mmrec_lib.audio.build_musicnn` with the checkpoint loaded, at inference
    (batch norms use the moving statistics, dropout is off): input ``log_mel``
    (float32, (batch, n_frames, n_mels)); outputs ``probabilities`` (batch, 50) and
    ``penultimate`` (batch, 200). Layouts differ from Keras (ONNX convolutions are
    channels-first) but every weight is used as stored; tests compare the outputs to
    the Keras rebuild. Every checkpoint variable must be used: leftovers raise.

    Returns
    -------
    onnx.ModelProto
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers, used = [], [], set()

    def weight(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def variable(name: str) -> np.ndarray:
        if name not in tensors:
            raise ModelError(f"the musicnn checkpoint lacks the variable {name!r}")
        used.add(name)
        return np.asarray(tensors[name], dtype=np.float32)

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def batch_norm(x: str, name: str, shape: tuple[int, ...]) -> str:
        # Inference batch norm = one scale and one shift per channel.
        gamma, beta, mean, variance = (variable(f"{name}/{f}") for f in _BN_FIELDS)
        scale = gamma / np.sqrt(variance + _BN_EPSILON)
        shift = beta - mean * scale
        x = node("Mul", [x, weight(f"{name}_scale", scale.reshape(shape))], f"{name}_mul")
        return node("Add", [x, weight(f"{name}_shift", shift.reshape(shape))], name)

    # (batch, frames, mels) -> (batch, 1, frames, mels); the first batch norm has 1 channel.
    x = node("Unsqueeze", ["log_mel", weight("axis_1", np.array([1], np.int64))], "nchw")
    x = batch_norm(x, "batch_normalization", (1,))

    # Front end: Keras kernels (height, width, in, out) -> ONNX (out, in, height, width).
    specs = [((7, int(0.4 * n_mels)), [3, 0, 3, 0]), ((7, int(0.7 * n_mels)), [3, 0, 3, 0]),
             ((128, 1), [63, 0, 64, 0]), ((64, 1), [31, 0, 32, 0]), ((32, 1), [15, 0, 16, 0])]
    branches = []
    for index, (kernel_size, pads) in enumerate(specs):
        name = "conv2d" if index == 0 else f"conv2d_{index}"
        kernel = variable(f"{name}/kernel")
        if kernel.shape[:2] != kernel_size:
            raise ModelError(f"{name}/kernel has shape {kernel.shape}; expected "
                             f"{kernel_size} x in x out")
        # The timbral convolutions pad time by 3 ("valid" over frequency); the temporal
        # ones are TF "same" (the extra row of an even kernel goes at the end).
        y = node("Conv", [x, weight(f"{name}_w", kernel.transpose(3, 2, 0, 1)),
                          weight(f"{name}_b", variable(f"{name}/bias"))], f"{name}_conv",
                 kernel_shape=list(kernel_size), pads=pads)
        y = batch_norm(node("Relu", [y], f"{name}_relu"), f"batch_normalization_{index + 1}",
                       (-1, 1, 1))
        branches.append(node("ReduceMax", [y], f"{name}_freq_max", axes=[3], keepdims=0))
    frontend = node("Concat", branches, "frontend", axis=1)  # (batch, 561, frames)

    # Mid end: width-7 convolutions over time, the 2nd and 3rd residual.
    features, previous = [frontend], frontend
    for index in range(3):
        name = f"conv2d_{5 + index}"
        kernel = variable(f"{name}/kernel")
        if kernel.ndim == 4:  # the TF1 conv2d spanning every channel: (7, C, 1, out)
            kernel = kernel[:, :, 0, :]
        if kernel.shape[0] != 7 or kernel.shape[2] != num_filters_midend:
            raise ModelError(f"{name}/kernel has shape {kernel.shape}; expected "
                             f"7 x in x {num_filters_midend}")
        y = node("Conv", [previous, weight(f"{name}_w", kernel.transpose(2, 1, 0)),
                          weight(f"{name}_b", variable(f"{name}/bias"))], f"{name}_conv",
                 kernel_shape=[7], pads=[3, 3])
        y = batch_norm(node("Relu", [y], f"{name}_relu"), f"batch_normalization_{6 + index}",
                       (-1, 1))
        if index > 0:
            y = node("Add", [y, previous], f"residual_{index}")
        features.append(y)
        previous = y
    midend = node("Concat", features, "midend", axis=1)  # (batch, 753, frames)

    # Back end: max and mean over time, interleaved per channel (max_0, mean_0, ...).
    # (Opset 17: ReduceMax and ReduceMean take their axes as an attribute.)
    max_pool = node("ReduceMax", [midend], "max_pool", axes=[2], keepdims=1)
    mean_pool = node("ReduceMean", [midend], "mean_pool", axes=[2], keepdims=1)
    pooled = node("Reshape", [node("Concat", [max_pool, mean_pool], "max_mean", axis=2),
                              weight("flat_shape", np.array([0, -1], np.int64))], "pooled")
    pooled = batch_norm(pooled, "batch_normalization_9", (-1,))
    dense = node("Add", [node("MatMul", [pooled, weight("dense_w", variable("dense/kernel"))],
                              "dense_mm"), weight("dense_b", variable("dense/bias"))], "dense")
    penultimate = batch_norm(node("Relu", [dense], "dense_relu"), "batch_normalization_10",
                             (-1,))
    nodes.append(helper.make_node("Identity", [penultimate], ["penultimate"],
                                  name="penultimate"))
    logits = node("Add", [node("MatMul", [penultimate, weight("dense_1_w",
                                                                variable("dense_1/kernel"))],
                               "logits_mm"), weight("dense_1_b", variable("dense_1/bias"))],
                  "logits")
    node("Sigmoid", [logits], "probabilities")

    unused = sorted(set(tensors) - used)
    if unused:
        raise ModelError(f"checkpoint variables not used by the ONNX musicnn: {unused}")
    classes = int(tensors["dense_1/bias"].shape[0])
    units = int(tensors["dense/bias"].shape[0])
    graph = helper.make_graph(
        nodes, "musicnn",
        [helper.make_tensor_value_info("log_mel", TensorProto.FLOAT,
                                       ["batch", "frames", n_mels])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes]),
         helper.make_tensor_value_info("penultimate", TensorProto.FLOAT, ["batch", units])],
        initializer=initializers)
    return finish_model(graph)
