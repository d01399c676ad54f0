"""What both graph writers (tfjs_onnx's converter, opencv_cpu's rewriter) use
to add ONNX nodes and constants."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphBuilder:
    """Collects nodes (``onnx_nodes``) and constants (``initializers``) in the
    order they are added."""

    def __init__(self) -> None:
        self.onnx_nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def init(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def emit(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.onnx_nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output
