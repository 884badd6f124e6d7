"""ONNX ops and opset variants that torch.onnx.export does not write, in graphs built by hand with
python3-onnx: each compiled by ptcc and run in OpenCV dnn and BVLC Caffe against a reference written here
from the ONNX operator specification (Debian's onnx 1.12 has no reference evaluator), in float64 where it
matters.  Exact means max |Δ| ≤ 1e-4 · max(1, max |ref|), with a healthy (non-constant) reference.

    PTCC_ONNX_OPS="gemm softmax" make check TESTS=tests/backend/test_onnx_ops.py   # a subset
"""

from __future__ import annotations

import os
import subprocess
import unittest
from typing import Callable, Sequence

import numpy as np

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()
try:
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # CI installs python3-onnx (scripts/install-deps)
    import sys
    print(f"python3-onnx is missing ({e})", file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") == "true" else ptcctest.EXIT_SKIP)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

RNG = np.random.default_rng(7)
SELECTED = os.environ.get("PTCC_ONNX_OPS", "").split()


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def T(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


class Case:
    """One graph: nodes over input "x" (and constants), its outputs, and the reference."""

    def __init__(self, name: str, nodes: list, x: np.ndarray, outputs: Sequence[str],
                 ref: Callable[[torch.Tensor], Sequence[torch.Tensor]], inits: dict | None = None,
                 opset: int = 13) -> None:
        self.name, self.nodes, self.x, self.outputs, self.ref = name, nodes, x, list(outputs), ref
        self.inits, self.opset = inits or {}, opset

    def model_bytes(self) -> bytes:
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in self.inits.items()]
        g = helper.make_graph(self.nodes, self.name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.x.shape))],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in self.outputs],
                              initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 7
        return m.SerializeToString()


def node(op: str, inputs: list[str], outputs: list[str], **attrs):
    return helper.make_node(op, inputs, outputs, name=f"/{op}", **attrs)


def i64(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def f32(*v: float) -> np.ndarray:
    return np.array(v, dtype=np.float32)


def softmax_coerced(x: torch.Tensor, axis: int, log: bool = False) -> torch.Tensor:
    """Softmax before opset 13: over all the axes from `axis` on, as one."""
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    y = torch.log_softmax(flat, 1) if log else torch.softmax(flat, 1)
    return y.reshape(x.shape)


def conv_ref(x, w, b=None, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1):
    """ONNX pads [top, left, bottom, right]."""
    xp = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
    return F.conv2d(xp, w, b, stride, 0, dilation, groups)


def same_pads(size: int, k: int, s: int, lower: bool) -> tuple[int, int]:
    out = -(-size // s)
    total = max(0, (out - 1) * s + k - size)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


W33 = rand(4, 3, 3, 3, scale=0.3)
B4 = rand(4)
X = rand(1, 3, 7, 8)


def cases() -> list[Case]:
    c: list[Case] = []
    A, B, C = rand(2, 6), rand(6, 5), rand(5)
    c.append(Case("gemm_alpha_beta", [node("Gemm", ["x", "B", "C"], ["y"], alpha=0.5, beta=2.0)], A, ["y"],
                  lambda x: [0.5 * x @ T(B) + 2.0 * T(C)], {"B": B, "C": C}))
    c.append(Case("gemm_transB_no_C", [node("Gemm", ["x", "Bt"], ["y"], transB=1)], A, ["y"],
                  lambda x: [x @ T(B)], {"Bt": np.ascontiguousarray(B.T)}))
    # (4-D: OpenCV's Python binding reads a 3-D array as an image with channels)
    c.append(Case("matmul_const", [node("MatMul", ["x", "B"], ["y"])], rand(1, 2, 3, 6), ["y"],
                  lambda x: [x @ T(B)], {"B": B}))
    x4 = rand(1, 3, 4, 5, scale=2)
    c.append(Case("softmax_opset11_axis1", [node("Softmax", ["x"], ["y"], axis=1)], x4, ["y"],
                  lambda x: [softmax_coerced(x, 1)], opset=11))
    c.append(Case("softmax_opset11_default", [node("Softmax", ["x"], ["y"])], x4, ["y"],
                  lambda x: [softmax_coerced(x, 1)], opset=11))
    c.append(Case("softmax_opset13_axis1", [node("Softmax", ["x"], ["y"], axis=1)], x4, ["y"],
                  lambda x: [torch.softmax(x, 1)]))
    c.append(Case("logsoftmax_opset11_axis2", [node("LogSoftmax", ["x"], ["y"], axis=2)], x4, ["y"],
                  lambda x: [softmax_coerced(x, 2, log=True)], opset=11))
    c.append(Case("clip_opset9_attrs", [node("Clip", ["x"], ["y"], min=-0.5, max=0.75)], x4, ["y"],
                  lambda x: [x.clamp(-0.5, 0.75)], opset=9))
    c.append(Case("clip_opset11_max_only", [node("Clip", ["x", "", "hi"], ["y"])], x4, ["y"],
                  lambda x: [x.clamp(max=0.25)], {"hi": np.array(0.25, np.float32)}, opset=11))
    c.append(Case("pad_opset9_reflect", [node("Pad", ["x"], ["y"], mode="reflect", pads=[0, 0, 1, 2, 0, 0, 2, 1])],
                  X, ["y"], lambda x: [F.pad(x, (2, 1, 1, 2), mode="reflect")], opset=9))
    c.append(Case("pad_opset11_edge", [node("Pad", ["x", "p"], ["y"], mode="edge")], X, ["y"],
                  lambda x: [F.pad(x, (1, 0, 0, 2), mode="replicate")], {"p": i64(0, 0, 0, 1, 0, 0, 2, 0)}, opset=11))
    # (a value other than 0 is refused: Caffe pads with zeros)
    c.append(Case("pad_opset11_constant", [node("Pad", ["x", "p", "v"], ["y"])], X, ["y"],
                  lambda x: [F.pad(x, (1, 2, 2, 1), value=0.0)],
                  {"p": i64(0, 0, 2, 1, 0, 0, 1, 2), "v": np.array(0.0, np.float32)}, opset=11))
    c.append(Case("conv_asymmetric_pads", [node("Conv", ["x", "W", "b"], ["y"], kernel_shape=[3, 3],
                                                pads=[0, 1, 1, 2])], X, ["y"],
                  lambda x: [conv_ref(x, T(W33), T(B4), pads=(0, 1, 1, 2))], {"W": W33, "b": B4}))
    for mode, lower in (("SAME_UPPER", False), ("SAME_LOWER", True)):
        ph, pw = same_pads(7, 3, 2, lower), same_pads(8, 3, 2, lower)
        c.append(Case(f"conv_{mode.lower()}", [node("Conv", ["x", "W"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                   auto_pad=mode)], X, ["y"],
                      lambda x, ph=ph, pw=pw: [conv_ref(x, T(W33), None, 2, (ph[0], pw[0], ph[1], pw[1]))],
                      {"W": W33}))
    c.append(Case("conv_transpose_output_padding",
                  [node("ConvTranspose", ["x", "Wt", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1],
                        output_padding=[1, 1], kernel_shape=[3, 3])], X, ["y"],
                  lambda x: [F.conv_transpose2d(x, T(WT), T(B4), 2, 1, 1)], {"Wt": WT, "b": B4}))
    c.append(Case("maxpool_ceil", [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
                  X, ["y"], lambda x: [F.max_pool2d(x, 3, 2, ceil_mode=True)]))
    c.append(Case("avgpool_include_pad", [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                               count_include_pad=1)], X, ["y"],
                  lambda x: [F.avg_pool2d(x, 3, 1, 1, count_include_pad=True)]))
    c.append(Case("avgpool_exclude_pad", [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                               pads=[1, 1, 1, 1])], X, ["y"],
                  lambda x: [F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)]))
    c.append(Case("upsample_opset9_nearest", [node("Upsample", ["x", "s"], ["y"], mode="nearest")], X, ["y"],
                  lambda x: [F.interpolate(x, scale_factor=2, mode="nearest")], {"s": f32(1, 1, 2, 2)}, opset=9))
    c.append(Case("resize_opset11_align_corners", [node("Resize", ["x", "roi", "sc", "sz"], ["y"], mode="linear",
                                                        coordinate_transformation_mode="align_corners")], X, ["y"],
                  lambda x: [F.interpolate(x, size=(11, 13), mode="bilinear", align_corners=True)],
                  {"roi": f32(), "sc": f32(), "sz": i64(1, 3, 11, 13)}, opset=11))
    c.append(Case("resize_opset13_half_pixel", [node("Resize", ["x", "", "sc"], ["y"], mode="linear")], X, ["y"],
                  lambda x: [F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)],
                  {"sc": f32(1, 1, 2, 2)}))
    c.append(Case("resize_nearest_floor", [node("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                                                coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                  X, ["y"], lambda x: [F.interpolate(x, scale_factor=3, mode="nearest")], {"sc": f32(1, 1, 3, 3)}))
    c.append(Case("split_opset11_attr", [node("Split", ["x"], ["a", "b"], axis=1, split=[1, 2])], X, ["a", "b"],
                  lambda x: list(torch.split(x, [1, 2], 1)), opset=11))
    c.append(Case("split_opset13_input", [node("Split", ["x", "s"], ["a", "b"], axis=3)], X, ["a", "b"],
                  lambda x: list(torch.split(x, [5, 3], 3)), {"s": i64(5, 3)}))
    c.append(Case("split_equal", [node("Split", ["x"], ["a", "b"], axis=3)], X, ["a", "b"],
                  lambda x: list(torch.split(x, 4, 3))))
    c.append(Case("squeeze_unsqueeze_opset11", [node("Unsqueeze", ["x"], ["u"], axes=[0, 3]),
                                                node("Relu", ["u"], ["r"]), node("Squeeze", ["r"], ["y"], axes=[0, 3])],
                  X, ["y"], lambda x: [x.relu()], opset=11))
    c.append(Case("squeeze_unsqueeze_opset13", [node("Unsqueeze", ["x", "a"], ["u"]), node("Relu", ["u"], ["r"]),
                                                node("Squeeze", ["r", "a"], ["y"])],
                  X, ["y"], lambda x: [x.relu()], {"a": i64(-1)}))
    # the review's findings that were wrong nets: Squeeze without axes, Max/Min of constants folded,
    # float16 constants, ConvTranspose without kernel_shape
    c.append(Case("squeeze_opset13_no_axes", [node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u"], ["y"])],
                  X, ["y"], lambda x: [x.squeeze()], {"a": i64(0, 3)}))
    c.append(Case("max_min_of_constants", [node("Max", ["k1", "k2"], ["M"]), node("Min", ["k1", "k2"], ["N"]),
                                           node("Add", ["x", "M"], ["a"]), node("Mul", ["x", "N"], ["b"])],
                  X, ["a", "b"], lambda x: [x + T(np.maximum(K1, K2)), x * T(np.minimum(K1, K2))],
                  {"k1": K1, "k2": K2}))
    c.append(Case("float16_constants", [node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
                                        node("Mul", ["x", "hf"], ["a"]),
                                        node("Conv", ["x", "Wh"], ["b"], kernel_shape=[3, 3])], X, ["a", "b"],
                  lambda x: [x * T(H3.astype(np.float32)), F.conv2d(x, T(W33.astype(np.float16).astype(np.float32)))],
                  {"h": H3, "Wh": W33.astype(np.float16)}))
    # folds of float16 constants (Concat, Gather, Slice) are float32: element by element, not bytes
    hcat = np.concatenate([H3.reshape(3), H3.reshape(3)[:1]]).astype(np.float32)
    c.append(Case("float16_constants_folded",
                  [node("Concat", ["ha", "hb"], ["hc"], axis=0), node("Gather", ["hc", "ix"], ["hg"], axis=0),
                   node("Slice", ["hg", "st", "en"], ["hs"]), node("Reshape", ["hs", "sh"], ["hr"]),
                   node("Cast", ["hr"], ["hf"], to=TensorProto.FLOAT), node("Mul", ["x", "hf"], ["y"])], X, ["y"],
                  lambda x: [x * T(hcat[[3, 0, 2, 1]][1:4].reshape(3, 1, 1))],
                  {"ha": H3.reshape(3), "hb": H3.reshape(3)[:1], "ix": i64(3, 0, 2, 1), "st": i64(1),
                   "en": i64(4), "sh": i64(3, 1, 1)}))
    c.append(Case("conv_transpose_no_kernel_shape", [node("ConvTranspose", ["x", "Wt"], ["y"], strides=[2, 2])], X,
                  ["y"], lambda x: [F.conv_transpose2d(x, T(WT), None, 2)], {"Wt": WT}))
    c.append(Case("reduce_mean_max_min", [node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
                                          node("ReduceMax", ["x"], ["M"], axes=[1]),
                                          node("ReduceMin", ["x"], ["n"], axes=[3], keepdims=1)], X, ["m", "M", "n"],
                  lambda x: [x.mean((2, 3)), x.amax(1, keepdim=True), x.amin(3, keepdim=True)]))
    c.append(Case("reduce_sum_opset13", [node("ReduceSum", ["x", "a"], ["y"], keepdims=0)], X, ["y"],
                  lambda x: [x.sum(1)], {"a": i64(1)}))
    c.append(Case("activations", [node("LeakyRelu", ["x"], ["a"], alpha=0.2), node("Elu", ["x"], ["b"], alpha=0.7),
                                  node("HardSigmoid", ["x"], ["c"], alpha=0.3, beta=0.4),
                                  node("HardSigmoid", ["x"], ["d"]),
                                  node("PRelu", ["x", "slope"], ["e"]), node("Sigmoid", ["x"], ["f"]),
                                  node("Tanh", ["x"], ["g"]), node("Softplus", ["x"], ["h"])],
                  rand(1, 3, 7, 8, scale=3), list("abcdefgh"),
                  lambda x: [F.leaky_relu(x, 0.2), F.elu(x, 0.7), (0.3 * x + 0.4).clamp(0, 1),
                             (0.2 * x + 0.5).clamp(0, 1), torch.where(x > 0, x, x * T(SLOPE)),
                             torch.sigmoid(x), torch.tanh(x), F.softplus(x)], {"slope": SLOPE}))
    c.append(Case("hardswish_opset14", [node("HardSwish", ["x"], ["y"])], rand(1, 3, 7, 8, scale=4), ["y"],
                  lambda x: [F.hardswish(x)], opset=14))
    c.append(Case("instance_norm", [node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)], X, ["y"],
                  lambda x: [F.instance_norm(x, weight=T(S3), bias=T(B3), eps=1e-3)], {"s": S3, "b": B3}))
    c.append(Case("conv_batchnorm", [node("Conv", ["x", "W", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                                     node("BatchNormalization", ["c", "s4", "b4", "m4", "v4"], ["y"])], X, ["y"],
                  lambda x: [F.batch_norm(F.conv2d(x, T(W33), T(B4), padding=1), T(M4), T(V4), T(S4), T(BB4),
                                          False, 0.0, 1e-5)],
                  {"W": W33, "b": B4, "s4": S4, "b4": BB4, "m4": M4, "v4": V4}))
    c.append(Case("batchnorm_opset9", [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-4)],
                  X, ["y"], lambda x: [F.batch_norm(x, T(M3), T(V3), T(S3), T(B3), False, 0.0, 1e-4)],
                  {"s": S3, "b": B3, "m": M3, "v": V3}, opset=9))
    c.append(Case("global_max_pool_flatten_axis2", [node("GlobalMaxPool", ["x"], ["p"]),
                                                    node("Flatten", ["x"], ["f"], axis=2)], X, ["p", "f"],
                  lambda x: [x.amax((2, 3), keepdim=True), x.reshape(3, 56)]))
    c.append(Case("transpose_concat_slice", [node("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]),
                                             node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
                                             node("Concat", ["x", "x"], ["c"], axis=2)], X, ["t", "s", "c"],
                  lambda x: [x.permute(0, 1, 3, 2), x[:, :, 1:6:2, -5:], torch.cat([x, x], 2)],
                  {"st": i64(1, -5), "en": i64(6, 2**62), "ax": i64(2, 3), "sp": i64(2, 1)}))
    c.append(Case("gather_scalar_index", [node("Gather", ["x", "i"], ["y"], axis=1)], X, ["y"],
                  lambda x: [x[:, 2]], {"i": np.array(-1, np.int64)}))
    c.append(Case("reshape_zero_and_minus_one", [node("Reshape", ["x", "s"], ["y"])], X, ["y"],
                  lambda x: [x.reshape(1, 3, 56)], {"s": i64(0, 0, -1)}))
    c.append(Case("shape_chain_reshape", [node("Shape", ["x"], ["sh"]), node("Gather", ["sh", "zero"], ["n"]),
                                          node("Unsqueeze", ["n", "ax0"], ["n1"]),
                                          node("Concat", ["n1", "minus"], ["shape"], axis=0),
                                          node("Reshape", ["x", "shape"], ["y"])], X, ["y"],
                  lambda x: [x.reshape(1, -1)], {"zero": np.array(0, np.int64), "ax0": i64(0), "minus": i64(-1)}))
    c.append(Case("arith_with_constants", [node("Mul", ["x", "k"], ["a"]), node("Add", ["x", "kc"], ["b"]),
                                           node("Div", ["x", "two"], ["d"]), node("Sub", ["one", "x"], ["e"]),
                                           node("Pow", ["x", "two"], ["f"]), node("Max", ["x", "a"], ["g"]),
                                           node("Min", ["x", "b"], ["h"])], X, list("abdefgh"),
                  lambda x: [x * 1.5, x + T(KC), x / 2, 1 - x, x ** 2, torch.maximum(x, x * 1.5),
                             torch.minimum(x, x + T(KC))],
                  {"k": np.array([1.5], np.float32), "kc": KC, "two": np.array(2.0, np.float32),
                   "one": np.array(1.0, np.float32)}))
    c.append(Case("gelu_as_erf", [node("Div", ["x", "r2"], ["d"]), node("Erf", ["d"], ["e"]),
                                  node("Add", ["e", "one"], ["a"]), node("Mul", ["x", "a"], ["m"]),
                                  node("Mul", ["m", "half"], ["y"])], rand(1, 3, 7, 8, scale=3), ["y"],
                  lambda x: [F.gelu(x)], {"r2": np.array(1.4142135381698608, np.float32),
                                          "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32)}))
    c.append(Case("depth_to_space_crd", [node("Relu", ["x"], ["x4r"]),
                                         node("Conv", ["x4r", "W16"], ["x4"], kernel_shape=[1, 1]),
                                         node("DepthToSpace", ["x4"], ["d"], blocksize=2, mode="CRD")], X, ["d"],
                  lambda x: [F.pixel_shuffle(F.conv2d(x.relu(), T(W16)), 2)], {"W16": W16}))
    c.append(Case("dropout_identity_cast", [node("Dropout", ["x", "ratio"], ["d"]), node("Identity", ["d"], ["i"]),
                                            node("Cast", ["i"], ["c"], to=TensorProto.FLOAT),
                                            node("Relu", ["c"], ["y"])], X, ["y"],
                  lambda x: [x.relu()], {"ratio": np.array(0.3, np.float32)}))
    return c


WT = rand(3, 4, 3, 3, scale=0.3)
SLOPE = rand(3, 1, 1, scale=0.3)
S3, B3, M3, V3 = rand(3) + 1.5, rand(3), rand(3), np.abs(rand(3)) + 0.5
KC = rand(3, 1, 1)
K1, K2 = rand(3, 1, 1), rand(3, 1, 1)
H3 = rand(3, 1, 1).astype(np.float16)
S4, BB4, M4, V4 = rand(4) + 1.5, rand(4), rand(4), np.abs(rand(4)) + 0.5
W16 = rand(16, 3, 1, 1, scale=0.5)
TOLERANCE = 1e-4
ALL_LEVELS = {"conv_batchnorm", "batchnorm_opset9", "conv_asymmetric_pads", "activations", "arith_with_constants",
              "gemm_alpha_beta", "matmul_const"}


class OnnxOps(unittest.TestCase):
    def run_case(self, case: Case) -> None:
        d = ptcctest.out_dir("onnx-ops")
        path = os.path.join(d, case.name + ".onnx")
        with open(path, "wb") as f:
            f.write(case.model_bytes())
        with torch.no_grad():
            want = [np.asarray(w, dtype=np.float64) for w in case.ref(T(case.x))]
        for w in want:  # a reference that is constant or vanishes proves nothing
            self.assertGreater(float(np.ptp(w)), 1e-3, f"{case.name}: degenerate reference")
        # every level where fusion has something to do (-O2 folds a BatchNorm into weights read in
        # place, -O1 makes neurons in place); -O1 alone elsewhere (CI time)
        for level in ("-O0", "-O1", "-O2") if case.name in ALL_LEVELS else ("-O1",):
            with self.subTest(level=level):
                self.run_level(case, path, level, want)

    def run_level(self, case: Case, path: str, level: str, want: list) -> None:
        prototxt = path[:-5] + level + ".prototxt"
        r = subprocess.run([parity.ptcc_binary(), path, "-o", prototxt, level], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        caffemodel = parity.caffemodel_of(prototxt)
        self.assertEqual(parity.validate(prototxt, caffemodel), [])
        for runtime in parity.runtimes():
            if runtime == "opencv":  # by name: an output another layer reads is not "unconnected"
                names, got = case.outputs, parity.run_opencv_outputs(prototxt, caffemodel, [case.x], ["x"],
                                                                     case.outputs)
            else:
                names, got = parity.run_caffe_named(prototxt, caffemodel, [case.x], ["x"], case.outputs)
            by_name = dict(zip(names, got))
            for o, w in zip(case.outputs, want):
                self.assertIn(o, by_name, f"{runtime}: outputs {names}")
                g = by_name[o]
                self.assertIsNone(parity.shape_error(g, w, runtime), f"{runtime} {o}")
                err = parity.error(g, w)
                self.assertLessEqual(err, TOLERANCE, f"{case.name} {level} {runtime} {o}: max |Δ| {err:.3e}")


for _case in cases():
    if not SELECTED or any(s in _case.name for s in SELECTED):
        setattr(OnnxOps, "test_" + _case.name, lambda self, c=_case: self.run_case(c))

if __name__ == "__main__":
    ptcctest.main()
