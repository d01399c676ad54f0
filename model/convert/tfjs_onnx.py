"""TensorFlow.js graph models (model.json + weight shards) to ONNX for OpenCV's DNN.

A pure converter: the parsed ``model.json`` and the weight bytes go in, an
``onnx.ModelProto`` comes out; only the CLI touches files. It covers the
operators of MediaPipe's FaceMesh and iris graphs as TensorFlow.js ships them
(fused conv + bias [+ PReLU], depthwise conv, add, PReLU, max-pool, pad,
sigmoid, reshape, concat, identity) and raises ``UnsupportedOpError`` naming
anything else, so a new graph fails at install time rather than at run time.

What the TFJS format needs care with:

* Weights whose manifest dtype is float32 may be stored quantised: the
  ``quantization`` entry gives the stored dtype (these graphs use float16), so
  byte offsets come from the stored size, not the declared one.
* ``modelTopology.node`` is not in topological order; ONNX requires it, so the
  nodes are emitted depth-first from the outputs (which also drops anything
  the outputs do not need).
* TF's SAME padding puts the odd pixel after: a 3x3 stride-2 conv on an even
  size pads 0 before and 1 after (a centred pad still gives a face flag of
  1.0, with points ~12 px off). SAME becomes explicit (begin, end) pads
  computed from the known input size rather than ``auto_pad``, so what the
  file says does not depend on how a reader interprets SAME_UPPER.
* TF graphs are NHWC; ONNX convolutions are NCHW. The input keeps the graph's
  NHWC shape (one Transpose after it) and 4-D outputs are transposed back, so
  the ONNX model has exactly the TFJS model's input and output shapes;
  in between every 4-D tensor is NCHW and axes/pads/shapes are remapped.
* The PReLU slope constants (named ``.../Neg`` by the TF exporter) hold the
  slope with its final sign, used as is: TFJS's ``prelu(x, a)`` is
  ``x > 0 ? x : a * x``, the same as ONNX ``PRelu``.

The graph is then rewritten by ``opencv_cpu.tune`` (the same results through
OpenCV's faster kernels).

Usage: ``python -m convert.tfjs_onnx MODEL.json OUT.onnx`` (the weight shards
are read from beside MODEL.json, as the manifest names them).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Mapping, Union

import numpy as np
import onnx
from onnx import TensorProto, helper

from . import opencv_cpu
from .graph import GraphBuilder

# Pad-11 (pads as an input) is what OpenCV 4.6's importer reads; nothing here
# needs a newer operator set.
OPSET = 11

SUPPORTED_OPS = (
    "Placeholder", "Const", "Identity", "_FusedConv2D", "Conv2D",
    "DepthwiseConv2dNative", "AddV2", "Add", "Prelu", "MaxPool", "Pad",
    "Sigmoid", "Reshape", "ConcatV2",
)

# NHWC axis -> NCHW axis for 4-D tensors.
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)

_DTYPES: dict[str, type[np.generic]] = {"float32": np.float32, "int32": np.int32}
_STORED: dict[str, type[np.generic]] = {"float16": np.float16}


class UnsupportedOpError(ValueError):
    """The graph uses an operator (or an attribute value) this converter does not handle."""


# -- weights -----------------------------------------------------------------


def read_weights(manifest: list, data: Union[bytes, Mapping[str, bytes]]) -> dict[str, np.ndarray]:
    """Weight arrays by name from a ``weightsManifest`` and its shard bytes.

    ``data`` is either all shards concatenated in manifest order or a mapping
    from each shard path to its bytes. Quantised float16 values are widened to
    float32; other quantisations raise (no graph here uses them)."""
    out: dict[str, np.ndarray] = {}
    offset = 0
    for group in manifest:
        if isinstance(data, (bytes, bytearray, memoryview)):
            buf = bytes(data)
        else:
            buf = b"".join(data[p] for p in group["paths"])
            offset = 0
        for spec in group["weights"]:
            name, dtype, shape = spec["name"], spec["dtype"], [int(d) for d in spec["shape"]]
            if dtype not in _DTYPES:
                raise UnsupportedOpError(f"weight {name}: dtype {dtype} is not supported")
            count = int(np.prod(shape)) if shape else 1
            q = spec.get("quantization")
            stored = _DTYPES[dtype]
            if q:
                if q.get("dtype") not in _STORED:
                    raise UnsupportedOpError(f"weight {name}: quantization {q.get('dtype')} is not supported")
                stored = _STORED[q["dtype"]]
            size = count * np.dtype(stored).itemsize
            if offset + size > len(buf):
                raise ValueError(f"weight {name}: needs bytes {offset}..{offset + size}, shards hold {len(buf)}")
            arr = np.frombuffer(buf, dtype=np.dtype(stored).newbyteorder("<"), count=count, offset=offset)
            out[name] = arr.astype(_DTYPES[dtype]).reshape(shape)
            offset += size
    return out


# -- attributes --------------------------------------------------------------


def _attr_s(node: dict, key: str, default: str | None = None) -> str | None:
    a = node.get("attr", {}).get(key)
    if a is None or "s" not in a:
        return default
    return base64.b64decode(a["s"]).decode()


def _attr_ints(node: dict, key: str, default: list[int] | None = None) -> list[int]:
    a = node.get("attr", {}).get(key)
    if a is None:
        if default is None:
            raise UnsupportedOpError(f"{node.get('op')} {node.get('name')}: attribute {key} is missing")
        return default
    return [int(i) for i in a.get("list", {}).get("i", [])]


def _attr_strs(node: dict, key: str) -> list[str]:
    a = node.get("attr", {}).get(key, {})
    return [base64.b64decode(s).decode() for s in a.get("list", {}).get("s", [])]


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF SAME padding (begin, end) for one spatial axis: the extra pixel goes after."""
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> int:
    eff = (kernel - 1) * dilation + 1
    return (size + pads[0] + pads[1] - eff) // stride + 1


# -- graph -------------------------------------------------------------------


class _Tensor:
    """A converted value: its ONNX name, its shape in TF (NHWC) terms, and
    whether the ONNX value is stored NCHW (4-D activations) or as TF has it."""

    __slots__ = ("name", "shape", "nchw")

    def __init__(self, name: str, shape: list[int], nchw: bool):
        self.name, self.shape, self.nchw = name, shape, nchw


class _Converter(GraphBuilder):
    def __init__(self, model: dict, weights: dict[str, np.ndarray]):
        super().__init__()
        topo = model["modelTopology"]
        self.nodes = {n["name"]: n for n in topo["node"]}
        self.weights = weights
        self.inputs: list[onnx.ValueInfoProto] = []
        self.done: dict[str, _Tensor] = {}
        self.model = model

    # -- helpers --

    def const(self, name: str) -> np.ndarray:
        node = self.nodes.get(name)
        if node is None or node["op"] != "Const":
            raise UnsupportedOpError(f"{name}: expected a constant input")
        if name not in self.weights:
            raise ValueError(f"constant {name} has no weight in the manifest")
        return self.weights[name]

    def to_nhwc(self, t: _Tensor) -> str:
        """The ONNX name of ``t`` laid out as TF has it."""
        if not t.nchw:
            return t.name
        return self.emit("Transpose", [t.name], t.name + "/nhwc", perm=[0, 2, 3, 1])

    # -- traversal --

    def value(self, ref: str) -> _Tensor:
        """Convert the node producing ``ref`` (and its inputs, depth first)."""
        name = ref[1:] if ref.startswith("^") else ref
        base, _, idx = name.partition(":")
        if idx not in ("", "0"):
            raise UnsupportedOpError(f"{name}: multi-output nodes are not supported")
        if base in self.done:
            return self.done[base]
        node = self.nodes.get(base)
        if node is None:
            raise ValueError(f"graph refers to a missing node {base}")
        op = node["op"]
        handler = getattr(self, "op_" + op.lstrip("_"), None)
        if op not in SUPPORTED_OPS or handler is None:
            raise UnsupportedOpError(f"TFJS op {op} (node {base}) is not supported by this converter")
        out = handler(node)
        self.done[base] = out
        return out

    def activations(self, node: dict) -> list[_Tensor]:
        return [self.value(i) for i in node.get("input", []) if not i.startswith("^")]

    # -- ops --

    def op_Placeholder(self, node: dict) -> _Tensor:
        dims = node["attr"]["shape"]["shape"].get("dim", [])
        shape = [int(d.get("size", -1)) for d in dims]
        shape = [1 if (i == 0 and d < 0) else d for i, d in enumerate(shape)]
        if any(d < 0 for d in shape):
            raise UnsupportedOpError(f"input {node['name']}: only the batch size may be unknown, got {shape}")
        self.inputs.append(helper.make_tensor_value_info(node["name"], TensorProto.FLOAT, shape))
        if len(shape) == 4:
            self.emit("Transpose", [node["name"]], node["name"] + "/nchw", perm=[0, 3, 1, 2])
            return _Tensor(node["name"] + "/nchw", shape, True)
        return _Tensor(node["name"], shape, False)

    def op_Const(self, node: dict) -> _Tensor:
        value = self.const(node["name"])
        return _Tensor(self.init(node["name"], value), list(value.shape), False)

    def op_Identity(self, node: dict) -> _Tensor:
        return self.value(node["input"][0])

    def _check_nhwc(self, node: dict) -> None:
        fmt = _attr_s(node, "data_format", "NHWC")
        if fmt != "NHWC":
            raise UnsupportedOpError(f"{node['op']} {node['name']}: data_format {fmt} is not supported")

    def _spatial(self, node: dict, x: _Tensor, kh: int, kw: int) -> tuple[list[int], list[int], list[int], list[int]]:
        """ONNX strides, dilations, pads [t, l, b, r] and the TF output (H, W)."""
        strides = _attr_ints(node, "strides", [1, 1, 1, 1])
        dil = _attr_ints(node, "dilations", [1, 1, 1, 1]) or [1, 1, 1, 1]
        if strides[0] != 1 or strides[3] != 1 or dil[0] != 1 or dil[3] != 1:
            raise UnsupportedOpError(f"{node['op']} {node['name']}: strides/dilations over batch or channels")
        padding = _attr_s(node, "padding", "VALID")
        h, w = x.shape[1], x.shape[2]
        if padding == "SAME":
            ph = _same_pads(h, kh, strides[1], dil[1])
            pw = _same_pads(w, kw, strides[2], dil[2])
        elif padding == "VALID":
            ph = pw = (0, 0)
        else:
            raise UnsupportedOpError(f"{node['op']} {node['name']}: padding {padding} is not supported")
        oh = _out_size(h, kh, strides[1], dil[1], ph)
        ow = _out_size(w, kw, strides[2], dil[2], pw)
        return [strides[1], strides[2]], [dil[1], dil[2]], [ph[0], pw[0], ph[1], pw[1]], [oh, ow]

    def _conv(self, node: dict, depthwise: bool, fused: list[str]) -> _Tensor:
        self._check_nhwc(node)
        inputs = [i for i in node["input"] if not i.startswith("^")]
        x = self.value(inputs[0])
        if not x.nchw:
            raise UnsupportedOpError(f"{node['op']} {node['name']}: input is not a 4-D activation")
        filt = self.const(inputs[1])
        kh, kw, cin, m = filt.shape
        if depthwise:
            # TF [kh, kw, in, mult] -> ONNX [in*mult, 1, kh, kw]; TF's output
            # channel i*mult+k is ONNX group i's k-th output, the same order.
            weight = filt.transpose(2, 3, 0, 1).reshape(cin * m, 1, kh, kw)
            cout, group = cin * m, cin
        else:
            if cin != x.shape[3]:
                raise UnsupportedOpError(f"{node['name']}: grouped Conv2D is not supported")
            weight = filt.transpose(3, 2, 0, 1)
            cout, group = m, 1
        strides, dil, pads, (oh, ow) = self._spatial(node, x, kh, kw)
        name = node["name"]
        conv_in = [x.name, self.init(name + "/W", weight.astype(np.float32))]
        rest = fused
        if rest[:1] == ["BiasAdd"]:
            bias = self.const(inputs[2]).reshape(-1)
            conv_in.append(self.init(name + "/B", bias.astype(np.float32)))
            rest = rest[1:]
        out = name
        conv_out = name if not rest else name + "/conv"
        self.emit("Conv", conv_in, conv_out, kernel_shape=[kh, kw], strides=strides,
                  dilations=dil, pads=pads, group=group)
        if rest == ["Prelu"]:
            alpha = self.const(inputs[3])
            slope = self.init(name + "/slope", alpha.reshape(-1, 1, 1).astype(np.float32))
            self.emit("PRelu", [conv_out, slope], out)
        elif rest == ["Relu"]:
            self.emit("Relu", [conv_out], out)
        elif rest:
            raise UnsupportedOpError(f"{node['op']} {name}: fused ops {fused} are not supported")
        return _Tensor(out, [x.shape[0], oh, ow, cout], True)

    def op_FusedConv2D(self, node: dict) -> _Tensor:
        return self._conv(node, False, _attr_strs(node, "fused_ops"))

    def op_Conv2D(self, node: dict) -> _Tensor:
        return self._conv(node, False, [])

    def op_DepthwiseConv2dNative(self, node: dict) -> _Tensor:
        return self._conv(node, True, [])

    def op_AddV2(self, node: dict) -> _Tensor:
        a, b = self.activations(node)
        if a.shape != b.shape or a.nchw != b.nchw:
            raise UnsupportedOpError(f"Add {node['name']}: broadcasting {a.shape} + {b.shape} is not supported")
        return _Tensor(self.emit("Add", [a.name, b.name], node["name"]), a.shape, a.nchw)

    op_Add = op_AddV2

    def op_Prelu(self, node: dict) -> _Tensor:
        x = self.value(node["input"][0])
        alpha = self.const(node["input"][1])
        if not x.nchw or alpha.size != x.shape[3]:
            raise UnsupportedOpError(f"Prelu {node['name']}: only per-channel slopes on 4-D tensors")
        slope = self.init(node["name"] + "/slope", alpha.reshape(-1, 1, 1).astype(np.float32))
        return _Tensor(self.emit("PRelu", [x.name, slope], node["name"]), x.shape, True)

    def op_Sigmoid(self, node: dict) -> _Tensor:
        x = self.value(node["input"][0])
        return _Tensor(self.emit("Sigmoid", [x.name], node["name"]), x.shape, x.nchw)

    def op_MaxPool(self, node: dict) -> _Tensor:
        self._check_nhwc(node)
        x = self.value(node["input"][0])
        ksize = _attr_ints(node, "ksize")
        if ksize[0] != 1 or ksize[3] != 1:
            raise UnsupportedOpError(f"MaxPool {node['name']}: pooling over batch or channels")
        strides, _, pads, (oh, ow) = self._spatial(node, x, ksize[1], ksize[2])
        # ONNX MaxPool ignores padded cells, as TF's SAME max-pool does.
        out = self.emit("MaxPool", [x.name], node["name"], kernel_shape=ksize[1:3],
                        strides=strides, pads=pads)
        return _Tensor(out, [x.shape[0], oh, ow, x.shape[3]], True)

    def op_Pad(self, node: dict) -> _Tensor:
        x = self.value(node["input"][0])
        pads = self.const(node["input"][1]).astype(np.int64)  # [rank, 2] (begin, end)
        if len(node["input"]) > 2:
            raise UnsupportedOpError(f"Pad {node['name']}: a constant value input is not supported")
        if x.nchw:
            pads = pads[list(NHWC_TO_NCHW_AXIS.index(a) for a in range(4))]
        onnx_pads = np.concatenate([pads[:, 0], pads[:, 1]]).astype(np.int64)
        p = self.init(node["name"] + "/pads", onnx_pads)
        shape = [d + int(b) + int(e) for d, (b, e) in zip(x.shape, self.const(node["input"][1]))]
        return _Tensor(self.emit("Pad", [x.name, p], node["name"], mode="constant"), shape, x.nchw)

    def op_Reshape(self, node: dict) -> _Tensor:
        x = self.value(node["input"][0])
        shape = [int(d) for d in self.const(node["input"][1]).reshape(-1)]
        total = int(np.prod(x.shape))
        if shape.count(-1) == 1:
            known = int(np.prod([d for d in shape if d != -1]))
            shape_out = [total // known if d == -1 else d for d in shape]
        else:
            shape_out = shape
        s = self.init(node["name"] + "/shape", np.array(shape, np.int64))
        # With 1x1 spatial dims NCHW and NHWC hold the values in the same
        # order (the heads' case), so no Transpose is needed before reshaping.
        flat = x.name if x.nchw and x.shape[1] == 1 and x.shape[2] == 1 else self.to_nhwc(x)
        out = self.emit("Reshape", [flat, s], node["name"])
        if len(shape_out) == 4:
            # Keep the invariant that 4-D values are NCHW.
            out = self.emit("Transpose", [out], node["name"] + "/nchw", perm=[0, 3, 1, 2])
            return _Tensor(out, shape_out, True)
        return _Tensor(out, shape_out, False)

    def op_ConcatV2(self, node: dict) -> _Tensor:
        inputs = [i for i in node["input"] if not i.startswith("^")]
        axis = int(self.const(inputs[-1]))
        parts = [self.value(i) for i in inputs[:-1]]
        rank = len(parts[0].shape)
        axis %= rank
        nchw = all(p.nchw for p in parts)
        names = [p.name for p in parts] if nchw else [self.to_nhwc(p) for p in parts]
        onnx_axis = NHWC_TO_NCHW_AXIS[axis] if nchw else axis
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        return _Tensor(self.emit("Concat", names, node["name"], axis=onnx_axis), shape, nchw)

    # -- whole graph --

    def outputs(self) -> list[tuple[str, str]]:
        """(ONNX output name, TF node name) in the signature's order, or the
        graph's sinks when it has no signature."""
        sig = self.model.get("signature") or (self.model.get("userDefinedMetadata") or {}).get("signature")
        if sig and sig.get("outputs"):
            out = []
            for key, spec in sig["outputs"].items():
                tf_name = spec["name"].split(":")[0]
                onnx_name = key if (":" not in key and key.isidentifier()) else tf_name
                out.append((onnx_name, tf_name))
            return out
        used = {i.lstrip("^").split(":")[0] for n in self.nodes.values() for i in n.get("input", [])}
        return [(n, n) for n, node in self.nodes.items() if n not in used and node["op"] != "Const"]

    def build(self, keep: list[str] | None) -> onnx.ModelProto:
        outs = self.outputs()
        if keep:
            missing = set(keep) - {o for o, _ in outs}
            if missing:
                raise ValueError(f"unknown outputs {sorted(missing)}; the graph has {[o for o, _ in outs]}")
            outs = [o for o in outs if o[0] in keep]
        graph_outputs = []
        for onnx_name, tf_name in outs:
            t = self.value(tf_name)
            if t.nchw:
                self.emit("Transpose", [t.name], onnx_name, perm=[0, 2, 3, 1])
            else:
                self.emit("Identity", [t.name], onnx_name)
            graph_outputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, t.shape))
        self._fold_identities()
        graph = helper.make_graph(self.onnx_nodes, "tfjs", self.inputs, graph_outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="jipjung convert.tfjs_onnx")
        onnx.checker.check_model(model)
        return model

    def _fold_identities(self) -> None:
        """Rename the producer of each output Identity to the output's name
        (OpenCV names layers after their outputs; an Identity layer is a copy)."""
        produced = {n.output[0]: n for n in self.onnx_nodes}
        consumers: dict[str, int] = {}
        for n in self.onnx_nodes:
            for i in n.input:
                consumers[i] = consumers.get(i, 0) + 1
        graph_in = {v.name for v in self.inputs}
        keep = []
        for n in self.onnx_nodes:
            src = n.input[0] if n.op_type == "Identity" else None
            if src and src in produced and consumers.get(src) == 1 and src not in graph_in:
                prod = produced[src]
                prod.output[0] = n.output[0]
                prod.name = n.output[0]
                continue
            keep.append(n)
        self.onnx_nodes = keep


def convert(model_json: Union[dict, str, bytes], weights: Union[bytes, Mapping[str, bytes]],
            outputs: list[str] | None = None) -> onnx.ModelProto:
    """ONNX model of a TFJS graph model.

    ``model_json`` is the parsed model.json (or its text); ``weights`` the
    shard bytes (concatenated, or by manifest path). ``outputs`` keeps only
    the named outputs (signature keys, or TF node names) and what they need.
    The graph is then rewritten by ``opencv_cpu.tune``: the same results
    through OpenCV's faster kernels."""
    model = json.loads(model_json) if isinstance(model_json, (str, bytes)) else model_json
    if model.get("format") not in (None, "graph-model"):
        raise UnsupportedOpError(f"format {model.get('format')!r} is not a TFJS graph model")
    conv = _Converter(model, read_weights(model["weightsManifest"], weights))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(conv.nodes) + 1000))
    try:
        model = conv.build(outputs)
    finally:
        sys.setrecursionlimit(limit)
    return opencv_cpu.tune(model)


def convert_file(json_path: str, outputs: list[str] | None = None) -> onnx.ModelProto:
    """``convert`` for a model.json on disk, its shards beside it."""
    with open(json_path, "rb") as f:
        model = json.load(f)
    base = os.path.dirname(os.path.abspath(json_path))
    shards = {}
    for group in model["weightsManifest"]:
        for p in group["paths"]:
            with open(os.path.join(base, p), "rb") as f:
                shards[p] = f.read()
    return convert(model, shards, outputs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m convert.tfjs_onnx", description=__doc__.split("\n")[0])
    ap.add_argument("model_json")
    ap.add_argument("out_onnx")
    ap.add_argument("--outputs", help="comma-separated outputs to keep (default: all)")
    args = ap.parse_args(argv)
    keep = args.outputs.split(",") if args.outputs else None
    try:
        model = convert_file(args.model_json, keep)
    except (UnsupportedOpError, ValueError, OSError) as e:
        print(f"convert.tfjs_onnx: {args.model_json}: {e}", file=sys.stderr)
        return 1
    with open(args.out_onnx, "wb") as f:
        f.write(model.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
