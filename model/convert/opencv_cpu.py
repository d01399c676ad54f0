"""Rewrites of an ONNX graph that give the same results under OpenCV 4.6's CPU
DNN backend, but through its fast kernels.

A pure function, ``tune(model) -> model``; the converter applies it last.
Each rewrite is exact up to float summation order, and was kept only where it
measured faster in the whole FaceMesh forward pass (one thread; figures in
docs/performance.md):

* **Narrow depthwise convolutions.** OpenCV's depthwise kernel takes a
  vectorised path only on wide rows: a 3x3 depthwise conv over 128 channels
  of 12x12 costs ~0.23 ms, over 128 channels of 6x24 ~0.05 ms. A depthwise
  conv whose output is under ``MIN_DEPTHWISE_WIDTH`` columns gets its input
  zero-padded on the right until its output is that wide, then the surplus
  columns are sliced off. The zeros are what the conv's own padding would
  have read, so every kept output is unchanged. The conv's own pads move
  into that Pad too: OpenCV adds a padding layer of its own for asymmetric
  pads (TF's SAME on a stride-2 conv), so one Pad replaces two copies.
* **Convolutions that cover their whole input** (the networks' heads: a 3x3
  conv with stride 3 over a 3x3 map, 1x1 out) become Flatten + Gemm, which
  OpenCV runs as a vectorised fully-connected layer instead of im2col over a
  single output pixel (0.33 ms -> 0.15 ms for FaceMesh's 1404-value head).

Tried and not kept: a stride-2 3x3 conv as a 4x4 conv with symmetric pads
(no padding layer, but 3x slower), and grouped convs with a block-diagonal
kernel in place of the depthwise ones (25 % faster, against 60 % for the
padding).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from .graph import GraphBuilder

# Output columns from which OpenCV 4.6's depthwise kernel is vectorised
# (measured: 128 channels, 12 rows, 17 columns 0.45 ms, 18 columns 0.07 ms).
MIN_DEPTHWISE_WIDTH = 18


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    out = {}
    for v in [*g.value_info, *g.input, *g.output]:
        dims = v.type.tensor_type.shape.dim
        out[v.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    return out


class _Rewriter(GraphBuilder):
    """Copies the graph's nodes, emitting rewritten ones in place of some."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        self.model = model
        self.shapes = _shapes(model)
        self.inits = {i.name: i for i in model.graph.initializer}

    def conv(self, node: onnx.NodeProto) -> bool:
        """Emit ``node`` rewritten and return True, or return False to keep it."""
        a = _attrs(node)
        x = self.shapes.get(node.input[0])
        y = self.shapes.get(node.output[0])
        w = self.inits.get(node.input[1])
        if not x or not y or len(x) != 4 or len(y) != 4 or w is None or min(x[1:] + y[1:]) <= 0:
            return False
        if any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return False
        group = a.get("group", 1)
        kh, kw = list(w.dims[2:4])
        pads = list(a.get("pads", [0, 0, 0, 0]))
        strides = list(a.get("strides", [1, 1]))
        if group > 1 and group == x[1] == y[1] and y[3] < MIN_DEPTHWISE_WIDTH:
            self.widen_depthwise(node, a, x, y, kw, pads, strides)
            return True
        if group == 1 and not any(pads) and [kh, kw] == x[2:4] and y[2:4] == [1, 1]:
            self.as_gemm(node, w)
            return True
        return False

    def widen_depthwise(self, node, a, x, y, kw, pads, strides) -> None:
        t, l, b, r = pads
        sx = strides[1]
        # Extra zero columns so that the output reaches MIN_DEPTHWISE_WIDTH.
        extra = max(0, (MIN_DEPTHWISE_WIDTH - 1) * sx + kw - (x[3] + l + r))
        out = node.output[0]
        padded = self.emit("Pad", [node.input[0], self.init(out + "/wide/pads",
                           np.array([0, 0, t, l, 0, 0, b, r + extra], np.int64))],
                           out + "/wide/in", mode="constant")
        attrs = {k: v for k, v in a.items() if k != "pads"}
        wide = self.emit("Conv", [padded, *node.input[1:]], out + "/wide", pads=[0, 0, 0, 0], **attrs)
        self.emit("Slice", [wide, self.init(out + "/wide/starts", np.array([0], np.int64)),
                            self.init(out + "/wide/ends", np.array([y[3]], np.int64)),
                            self.init(out + "/wide/axes", np.array([3], np.int64))], out)

    def as_gemm(self, node, w) -> None:
        weight = numpy_helper.to_array(w)
        cout = weight.shape[0]
        out = node.output[0]
        flat = self.emit("Flatten", [node.input[0]], out + "/flat", axis=1)
        gemm_in = [flat, self.init(out + "/gemm/W", weight.reshape(cout, -1))]
        if len(node.input) > 2 and node.input[2]:
            gemm_in.append(node.input[2])
        gemm = self.emit("Gemm", gemm_in, out + "/gemm", transB=1)
        self.emit("Reshape", [gemm, self.init(out + "/gemm/shape", np.array([-1, cout, 1, 1], np.int64))], out)

    def run(self) -> onnx.ModelProto:
        g = self.model.graph
        for node in g.node:
            if node.op_type == "Conv" and self.conv(node):
                continue
            self.onnx_nodes.append(node)
        used = {i for n in self.onnx_nodes for i in n.input}
        inits = [i for i in [*g.initializer, *self.initializers] if i.name in used]
        graph = helper.make_graph(self.onnx_nodes, g.name, list(g.input), list(g.output), inits)
        tuned = helper.make_model(graph, opset_imports=list(self.model.opset_import),
                                  producer_name=self.model.producer_name)
        onnx.checker.check_model(tuned)
        return tuned


def tune(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with the rewrites above applied; the graph's inputs, outputs
    and results stay the same."""
    return _Rewriter(model).run()
