"""convert.opencv_cpu: the rewritten graph gives OpenCV's results of the
original, and has the shape the rewrites promise."""

from __future__ import annotations

import os
import unittest

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convert import opencv_cpu
from jipjung_model import facemesh as fm


def _net(model: onnx.ModelProto):
    return cv2.dnn.readNetFromONNX(np.frombuffer(model.SerializeToString(), np.uint8))


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    net = _net(model)
    net.setInput(x)
    return net.forward([o.name for o in model.graph.output])


def sample_graph(rng) -> onnx.ModelProto:
    """A 12x12 input with 8 channels through: a narrow depthwise conv
    (stride 1, pads 1), a narrow stride-2 depthwise conv with TF's
    asymmetric SAME pads, a pointwise conv, and a head that covers its 3x3
    input; plus a second output from a wide depthwise conv (24 columns),
    which must stay as it is."""
    c = 8
    w = {
        "dw1/W": rng.normal(0, 0.4, (c, 1, 3, 3)), "dw1/B": rng.normal(0, 0.1, (c,)),
        "dw2/W": rng.normal(0, 0.4, (c, 1, 3, 3)), "dw2/B": rng.normal(0, 0.1, (c,)),
        "pw/W": rng.normal(0, 0.4, (c, c, 1, 1)),
        "pool_dw/W": rng.normal(0, 0.4, (c, 1, 3, 3)),
        "head/W": rng.normal(0, 0.2, (20, c, 3, 3)), "head/B": rng.normal(0, 0.1, (20,)),
        "wide/W": rng.normal(0, 0.4, (c, 1, 3, 3)),
        "up/pads": np.array([0, 0, 0, 0, 0, 0, 0, 12]),
    }
    inits = [numpy_helper.from_array(v.astype(np.int64 if k.endswith("pads") else np.float32), k)
             for k, v in w.items()]
    dw = dict(kernel_shape=[3, 3], group=c)
    nodes = [
        helper.make_node("Conv", ["x", "dw1/W", "dw1/B"], ["dw1"], pads=[1, 1, 1, 1], **dw),
        helper.make_node("Conv", ["dw1", "dw2/W", "dw2/B"], ["dw2"], pads=[0, 0, 1, 1], strides=[2, 2], **dw),
        helper.make_node("Conv", ["dw2", "pw/W"], ["pw"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["pw", "pool_dw/W"], ["pool_dw"], pads=[0, 0, 1, 1], strides=[2, 2], **dw),
        helper.make_node("Conv", ["pool_dw", "head/W", "head/B"], ["head"], kernel_shape=[3, 3], strides=[3, 3]),
        helper.make_node("Pad", ["x", "up/pads"], ["x_wide"], mode="constant"),
        helper.make_node("Conv", ["x_wide", "wide/W"], ["wide"], pads=[1, 1, 1, 1], **dw),
    ]
    graph = helper.make_graph(
        nodes, "sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 12, 12])],
        [helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, 20, 1, 1]),
         helper.make_tensor_value_info("wide", TensorProto.FLOAT, [1, c, 12, 24])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def depthwise_widths(model: onnx.ModelProto) -> dict[str, int]:
    """Output columns of each depthwise conv, by output name."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output]}
    out = {}
    for n in model.graph.node:
        group = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "group"), 1)
        if n.op_type == "Conv" and group > 1:
            out[n.output[0]] = shapes[n.output[0]][3]
    return out


class TuneTest(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(3)
        self.model = sample_graph(rng)
        self.tuned = opencv_cpu.tune(self.model)
        self.x = rng.normal(0, 1, (1, 8, 12, 12)).astype(np.float32)

    def test_same_results(self):
        want = _run(self.model, self.x)
        got = _run(self.tuned, self.x)
        for g, w in zip(got, want):
            self.assertEqual(g.shape, w.shape)
            np.testing.assert_allclose(g, w, atol=1e-5)
        # The data tells a shifted pad from the right one: padding the
        # stride-2 conv on the left instead changes the head by far more.
        shifted = sample_graph(np.random.default_rng(3))
        for n in shifted.graph.node:
            if n.output[0] == "dw2":
                n.attribute.remove(next(a for a in n.attribute if a.name == "pads"))
                n.attribute.append(helper.make_attribute("pads", [1, 1, 0, 0]))
        self.assertGreater(np.abs(_run(shifted, self.x)[0] - want[0]).max(), 0.05)

    def test_narrow_depthwise_convs_are_widened(self):
        before = depthwise_widths(self.model)
        self.assertEqual(before, {"dw1": 12, "dw2": 6, "pool_dw": 3, "wide": 24})
        after = depthwise_widths(self.tuned)
        self.assertTrue(all(w >= opencv_cpu.MIN_DEPTHWISE_WIDTH for w in after.values()), after)
        self.assertEqual(after["wide"], 24)  # wide enough already: untouched
        self.assertEqual(len(after), 4)
        for n in self.tuned.graph.node:
            if n.op_type == "Conv":
                pads = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "pads"), [0] * 4)
                if n.output[0] != "wide":
                    self.assertEqual(list(pads), [0, 0, 0, 0], n.output[0])

    def test_whole_input_conv_becomes_gemm(self):
        ops = [n.op_type for n in self.tuned.graph.node]
        self.assertEqual(ops.count("Gemm"), 1)
        # The pointwise conv (1x1 over 6x6) is not a whole-input conv.
        self.assertIn("pw", [n.output[0] for n in self.tuned.graph.node if n.op_type == "Conv"])
        self.assertNotIn("head/W", [i.name for i in self.tuned.graph.initializer])

    def test_interface_unchanged(self):
        self.assertEqual(self.tuned.graph.input, self.model.graph.input)
        self.assertEqual(self.tuned.graph.output, self.model.graph.output)


class InstalledTest(unittest.TestCase):
    def test_installed_networks_are_tuned(self):
        for path in (fm.DEFAULT_FACEMESH, fm.DEFAULT_IRIS):
            if not os.path.exists(path):
                raise unittest.SkipTest(f"{path} not converted yet: run `node scripts/face-models.mjs`")
            widths = depthwise_widths(onnx.load(path))
            self.assertTrue(widths)
            self.assertGreaterEqual(min(widths.values()), opencv_cpu.MIN_DEPTHWISE_WIDTH, path)


if __name__ == "__main__":
    unittest.main()
