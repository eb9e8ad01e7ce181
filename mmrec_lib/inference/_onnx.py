"""What the served encoders share: the opset and checks of the written graphs, one session per file."""

from __future__ import annotations

import threading
from pathlib import Path

from mmrec_lib.errors import ModelError

__all__ = ["OPSET", "finish_model", "cached_session"]

#: ONNX opset of the exported graphs (17 brings LayerNormalization).
OPSET = 17
_SESSIONS: dict[tuple, object] = {}
_LOCK = threading.RLock()


def finish_model(graph):
    """The checked ``onnx.ModelProto`` of a graph written op by op (opset :data:`OPSET`, IR 8)."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mmrec_lib")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def cached_session(path: Path, num_threads: int, *, what: str):
    """One ONNX Runtime session per (file, threads), shared by every encoder in the process.

    ``num_threads`` intra-op threads, one inter-op thread, all graph optimisations, and no
    spinning: idle threads would burn the CPU that other processes (a laptop's, a Ray
    worker's) need between batches. A file that cannot be loaded is removed, so that the
    next call exports it again, and :class:`ModelError` names ``what`` it was.
    """
    import onnxruntime

    key = (str(path), num_threads)
    with _LOCK:
        if key not in _SESSIONS:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                _SESSIONS[key] = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"])
            except Exception as error:  # a damaged file: export again next time
                Path(path).unlink(missing_ok=True)
                raise ModelError(f"cannot load the exported {what} {path} ({error}); it was "
                                 "removed, call again") from error
        return _SESSIONS[key]
