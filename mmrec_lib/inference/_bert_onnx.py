"""The MiniLM BERT as an ONNX graph, written op by op from the safetensors weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mmrec_lib.errors import ModelError
from mmrec_lib.inference._onnx import OPSET, finish_model

__all__ = ["bert_onnx_model", "OPSET"]



def bert_onnx_model(source: str | Path):
    """Build the ONNX model of a Hugging Face BERT folder (MiniLM-L6 by default).

    Introduced in chapter 10. The graph maps ``input_ids`` (int64, shape
    (batch, length), 0 = padding) to ``embeddings`` (float32, shape (batch, hidden)):
    the BERT encoder (post-LayerNorm, erf GELU, as in Google's BERT), mean pooling
    over the real tokens and L2 normalisation -- the same function as
    :class:`mmrec_lib.text.BertTextEncoder` with its defaults. It is written with
    ``onnx.helper`` from the weights, so no TensorFlow, torch or converter is needed;
    ONNX Runtime fuses the attention and GELU patterns when it loads the model.

    Parameters
    ----------
    source : path
        A folder with ``config.json`` and ``model.safetensors`` (Hugging Face layout).

    Returns
    -------
    onnx.ModelProto
    """
    import json

    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    source = Path(source)
    try:
        config = json.loads((source / "config.json").read_text(encoding="utf-8"))
        tensors = load_file(str(source / "model.safetensors"))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read the BERT weights in {source}: {error}") from error
    tensors = {name.removeprefix("bert."): value for name, value in tensors.items()}
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    epsilon = float(config.get("layer_norm_eps", 1e-12))

    nodes, initializers = [], []

    def weight(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32)
                                                    if value.dtype.kind == "f" else value, name))
        return name

    def tensor(name: str) -> np.ndarray:
        if name not in tensors:
            raise ModelError(f"BERT weights in {source} lack {name!r}")
        return tensors[name]

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def dense(x: str, prefix: str, out: str) -> str:
        # torch Linear stores (out, in): the ONNX MatMul needs (in, out).
        kernel = weight(f"{prefix}.weight", tensor(f"{prefix}.weight").T)
        bias = weight(f"{prefix}.bias", tensor(f"{prefix}.bias"))
        return node("Add", [node("MatMul", [x, kernel], out + "_mm"), bias], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        gamma = weight(f"{prefix}.weight", tensor(f"{prefix}.weight"))
        beta = weight(f"{prefix}.bias", tensor(f"{prefix}.bias"))
        return node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=epsilon)

    # Constants shared by the graph.
    weight("zero_i64", np.array(0, np.int64))
    weight("one_i64", np.array(1, np.int64))
    weight("axis_1", np.array([1], np.int64))
    weight("axis_last", np.array([-1], np.int64))
    weight("heads_shape", np.array([0, 0, heads, head_dim], np.int64))
    weight("hidden_shape", np.array([0, 0, hidden], np.int64))
    weight("mask_shape", np.array([0, 1, 1, -1], np.int64))
    weight("scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    weight("one_f", np.array(1.0, np.float32))
    weight("half_f", np.array(0.5, np.float32))
    weight("sqrt2_f", np.array(math.sqrt(2.0), np.float32))
    weight("neg_big", np.array(-1e4, np.float32))
    weight("tiny_count", np.array(1e-9, np.float32))
    weight("tiny_norm", np.array(1e-24, np.float32))

    # Embeddings: word + position + token type 0, then LayerNorm.
    word = node("Gather", [weight("word_embeddings", tensor("embeddings.word_embeddings.weight")),
                           "input_ids"], "word")
    shape = node("Shape", ["input_ids"], "ids_shape")
    length = node("Gather", [shape, "one_i64"], "length")
    positions = node("Range", ["zero_i64", length, "one_i64"], "positions")
    position = node("Gather", [weight("position_embeddings",
                                      tensor("embeddings.position_embeddings.weight")),
                               positions], "position")
    token_type = weight("token_type_0", tensor("embeddings.token_type_embeddings.weight")[0])
    x = node("Add", [node("Add", [word, position], "word_position"), token_type], "embedded")
    x = layer_norm(x, "embeddings.LayerNorm", "embeddings_ln")

    # Padding mask: 1 for real tokens, 0 for id 0; an additive -1e4 on padded keys.
    mask = node("Cast", [node("Greater", ["input_ids", "zero_i64"], "is_token")], "mask",
                to=TensorProto.FLOAT)
    key_bias = node("Mul", [node("Sub", ["one_f", mask], "is_pad"), "neg_big"], "pad_bias")
    key_bias = node("Reshape", [key_bias, "mask_shape"], "attention_bias")

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        q, k, v = (node("Transpose", [node("Reshape", [dense(x, f"{p}.attention.self.{n}",
                                                              f"l{i}_{n}"), "heads_shape"],
                                           f"l{i}_{n}_heads")],
                        f"l{i}_{n}_t", perm=perm)
                   for n, perm in (("query", [0, 2, 1, 3]), ("key", [0, 2, 3, 1]),
                                   ("value", [0, 2, 1, 3])))
        scores = node("Mul", [node("MatMul", [q, k], f"l{i}_qk"), "scale"], f"l{i}_scaled")
        scores = node("Add", [scores, key_bias], f"l{i}_masked")
        probabilities = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        context = node("MatMul", [probabilities, v], f"l{i}_context")
        context = node("Reshape", [node("Transpose", [context], f"l{i}_context_t",
                                        perm=[0, 2, 1, 3]), "hidden_shape"], f"l{i}_merged")
        attention = dense(context, f"{p}.attention.output.dense", f"l{i}_attention")
        x = layer_norm(node("Add", [attention, x], f"l{i}_residual1"),
                       f"{p}.attention.output.LayerNorm", f"l{i}_ln1")
        inner = dense(x, f"{p}.intermediate.dense", f"l{i}_inner")
        # GELU with erf, written out (ONNX Runtime fuses it into one Gelu kernel).
        erf = node("Erf", [node("Div", [inner, "sqrt2_f"], f"l{i}_scaled_inner")], f"l{i}_erf")
        gelu = node("Mul", [node("Mul", [inner, node("Add", [erf, "one_f"], f"l{i}_erf1")],
                                 f"l{i}_gelu_a"), "half_f"], f"l{i}_gelu")
        output = dense(gelu, f"{p}.output.dense", f"l{i}_output")
        x = layer_norm(node("Add", [output, x], f"l{i}_residual2"), f"{p}.output.LayerNorm",
                       f"l{i}_ln2")

    # Mean over real tokens, then L2 normalisation (as tf.math.l2_normalize does).
    mask3 = node("Unsqueeze", [mask, "axis_last"], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked_hidden"), "axis_1"], "summed",
                  keepdims=0)
    counts = node("Max", [node("ReduceSum", [mask3, "axis_1"], "counts_raw", keepdims=0),
                          "tiny_count"], "counts")
    mean = node("Div", [summed, counts], "mean")
    squares = node("ReduceSum", [node("Mul", [mean, mean], "squares_raw"), "axis_last"],
                   "squares", keepdims=1)
    inverse = node("Reciprocal", [node("Sqrt", [node("Max", [squares, "tiny_norm"], "sq_safe")],
                                       "norm")], "inverse_norm")
    node("Mul", [mean, inverse], "embeddings")

    graph = helper.make_graph(
        nodes, "minilm_sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", hidden])],
        initializer=initializers)
    return finish_model(graph)
