"""Bad ONNX models, built with python3-onnx's helpers (or as raw bytes), for test_onnx_errors.py.

Each case (CASES) is a name, a function that writes the model into a directory and returns its file name,
the extra ptcc arguments and the exit status; the expected diagnostics, the whole of ptcc's stderr, are
tests/onnx/NAME.err beside this file.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def graph(nodes, inputs, outputs, inits=(), opset: int = 13, name: str = "g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="bad_models")
    m.ir_version = 7
    return m


def x_info(name: str = "x", dims=(1, 3, 4, 4)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def y_info(name: str = "y"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def weight(name: str, shape) -> TensorProto:
    rng = np.random.default_rng(0)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def relu_model(opset: int = 13):
    return graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x_info()], [y_info()], opset=opset)


def save(d: str, name: str, model) -> str:
    path = os.path.join(d, name + ".onnx")
    onnx.save(model, path)
    return name + ".onnx"


def raw(d: str, name: str, data: bytes, ext: str = ".onnx") -> str:
    with open(os.path.join(d, name + ext), "wb") as f:
        f.write(data)
    return name + ext


def truncated(d: str) -> str:
    data = relu_model().SerializeToString()
    return raw(d, "truncated", data[: len(data) // 2])


def garbage(d: str) -> str:
    return raw(d, "garbage", bytes(range(7, 200)))


def empty(d: str) -> str:
    return raw(d, "empty", b"")


def old_opset(d: str) -> str:
    return save(d, "old_opset", relu_model(opset=6))


def missing_initializer(d: str) -> str:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", kernel_shape=[3, 3])
    return save(d, "missing_initializer", graph([conv], [x_info()], [y_info()]))


def out_of_order(d: str) -> str:
    a = helper.make_node("Relu", ["b"], ["a"], name="first")
    b = helper.make_node("Relu", ["a"], ["b"], name="second")
    return save(d, "out_of_order", graph([a, b], [x_info()], [y_info("b")]))


def wrong_attribute_type(d: str) -> str:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", kernel_shape=[3, 3], group=1.0)
    return save(d, "wrong_attribute_type", graph([conv], [x_info()], [y_info()], [weight("w", (2, 3, 3, 3))]))


def unknown_attribute(d: str) -> str:
    r = helper.make_node("Relu", ["x"], ["y"], name="relu", flavour=2)
    return save(d, "unknown_attribute", graph([r], [x_info()], [y_info()]))


def unsupported_ops(d: str) -> str:
    """Two unsupported ops and one of another domain, each reported at its node, in one run; the nodes
    after them that read their outputs are skipped; an independent error still reported."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Hardmax", ["r"], ["h"], name="/head/Hardmax"),
             helper.make_node("Relu", ["h"], ["h2"], name="after_hardmax"),
             helper.make_node("Det", ["r"], ["t"], name="/head/Det"),
             helper.make_node("Inverse", ["r"], ["i"], name="custom", domain="com.microsoft"),
             helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3])]
    outs = [y_info("h2"), y_info("t"), y_info("i"), y_info("c")]
    return save(d, "unsupported_ops", graph(nodes, [x_info()], outs, [weight("w", (2, 5, 3, 3))]))


def wrong_raw_size(d: str) -> str:
    w = weight("w", (2, 3, 3, 3))
    w.raw_data = w.raw_data[:-4]
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", kernel_shape=[3, 3])
    return save(d, "wrong_raw_size", graph([conv], [x_info()], [y_info()], [w]))


def external(d: str, name: str, location: str) -> str:
    w = weight("w", (2, 3, 3, 3))
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for k, v in (("location", location), ("offset", "0"), ("length", str(2 * 3 * 3 * 3 * 4))):
        e = w.external_data.add()
        e.key, e.value = k, v
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", kernel_shape=[3, 3])
    return save(d, name, graph([conv], [x_info()], [y_info()], [w]))


def external_outside(d: str) -> str:
    return external(d, "external_outside", "../w.bin")


def external_missing(d: str) -> str:
    return external(d, "external_missing", "w.bin")


def constant_output(d: str) -> str:
    k = helper.make_node("Constant", [], ["y"], name="k", value=numpy_helper.from_array(np.ones(3, np.float32)))
    r = helper.make_node("Relu", ["x"], ["r"], name="relu")
    return save(d, "constant_output", graph([k, r], [x_info()], [y_info(), y_info("r")]))


def conv_channels(d: str) -> str:
    """An error of ptcc's shape pass, reported at the node."""
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="/backbone/conv1/Conv", kernel_shape=[3, 3])
    return save(d, "conv_channels", graph([conv], [x_info()], [y_info()], [weight("w", (2, 5, 3, 3))]))


def dynamic_batch(d: str) -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 4])
    return save(d, "dynamic_batch", graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y_info()]))


def training_dropout(d: str) -> str:
    nodes = [helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")]
    return save(d, "training_dropout", graph(nodes, [x_info()], [y_info()]))


def annotated(d: str, name: str, dims) -> str:
    """A Relu whose value_info and output annotations say dims; the output's is the input's shape."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/act/Relu"),
             helper.make_node("Sigmoid", ["r"], ["y"], name="/act/Sigmoid")]
    m = graph(nodes, [x_info()], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    m.graph.value_info.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, list(dims)))
    return save(d, name, m)


def value_info_mismatch(d: str) -> str:
    return annotated(d, "value_info_mismatch", [1, 3, 4, "w", 5])


def value_info_stale(d: str) -> str:
    """--input gives x another size: the annotations of the exported size are counted, not errors."""
    return annotated(d, "value_info_stale", [1, 3, 4, 4])


def constant_empty_value(d: str) -> str:
    """A Constant whose value is an empty TensorProto (fuzz_onnx's finding: its bytes were NULL)."""
    k = helper.make_node("Constant", [], ["k"], name="k", value=TensorProto())
    nodes = [k, helper.make_node("Add", ["x", "k"], ["y"], name="add")]
    return save(d, "constant_empty_value", graph(nodes, [x_info()], [y_info()]))


# The review's findings (each was a wrong net or a crash): now refused at the node.
def prelu_slope_per_width(d: str) -> str:
    """A slope of [C] broadcasts along the last axis (W), not the channels."""
    nodes = [helper.make_node("PRelu", ["x", "s"], ["y"], name="/act/PRelu")]
    return save(d, "prelu_slope_per_width", graph(nodes, [x_info()], [y_info()],
                                                  [numpy_helper.from_array(np.full(4, 0.25, np.float32), "s")]))


def conv_transpose_same(d: str) -> str:
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="/up/ConvTranspose", strides=[2, 2],
                              auto_pad="SAME_UPPER")]
    return save(d, "conv_transpose_same", graph(nodes, [x_info()], [y_info()], [weight("w", (3, 2, 3, 3))]))


def reshape_wrong_count(d: str) -> str:
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="/Reshape")]
    return save(d, "reshape_wrong_count", graph(nodes, [x_info()], [y_info()],
                                                [numpy_helper.from_array(np.array([1, 50], np.int64), "s")]))


def concat_constants_mismatch(d: str) -> str:
    a = numpy_helper.from_array(np.ones((1, 2), np.int64), "a")
    b = numpy_helper.from_array(np.ones((1, 3), np.int64), "b")
    nodes = [helper.make_node("Concat", ["a", "b"], ["k"], name="/Concat", axis=0),
             helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return save(d, "concat_constants_mismatch", graph(nodes, [x_info()], [y_info()], [a, b]))


def maxpool_ceil_into_padding(d: str) -> str:
    """in 4, kernel 2, stride 3, pads 1: the last window starts in the padding (ONNX keeps it)."""
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[3, 3],
                              pads=[1, 1, 1, 1], ceil_mode=1)]
    return save(d, "maxpool_ceil_into_padding", graph(nodes, [x_info()], [y_info()]))


def split_uneven(d: str) -> str:
    nodes = [helper.make_node("Split", ["x"], ["a", "b", "c"], name="/Split", axis=3)]
    return save(d, "split_uneven", graph(nodes, [x_info()], [y_info("a"), y_info("b"), y_info("c")]))


def resize_pytorch_half_pixel_to_one(d: str) -> str:
    sizes = numpy_helper.from_array(np.array([1, 3, 1, 8], np.int64), "sz")
    nodes = [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], name="/Resize", mode="linear",
                              coordinate_transformation_mode="pytorch_half_pixel")]
    return save(d, "resize_pytorch_half_pixel_to_one", graph(nodes, [x_info()], [y_info()], [sizes]))


def external_symlink(d: str) -> str:
    """A location inside the directory that is a link out of it."""
    outside = os.path.join(os.path.dirname(os.path.abspath(d)), "outside.bin")
    with open(outside, "wb") as f:
        f.write(bytes(216))
    link = os.path.join(d, "w.bin")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(outside, link)
    return external(d, "external_symlink", "w.bin")


# name, writer, ptcc arguments (after the model), exit status
CASES: list[tuple[str, Callable[[str], str], list[str], int]] = [
    ("truncated", truncated, [], 1),
    ("garbage", garbage, [], 1),
    ("empty", empty, [], 1),
    ("old_opset", old_opset, [], 1),
    ("missing_initializer", missing_initializer, [], 1),
    ("out_of_order", out_of_order, [], 1),
    ("wrong_attribute_type", wrong_attribute_type, [], 1),
    ("unknown_attribute", unknown_attribute, [], 1),
    ("unsupported_ops", unsupported_ops, [], 1),
    ("wrong_raw_size", wrong_raw_size, [], 1),
    ("external_outside", external_outside, [], 1),
    ("external_missing", external_missing, [], 1),
    ("constant_output", constant_output, [], 1),
    ("conv_channels", conv_channels, [], 1),
    ("dynamic_batch", dynamic_batch, ["--emit=summary"], 0),
    ("training_dropout", training_dropout, [], 1),
    ("value_info_mismatch", value_info_mismatch, [], 1),
    ("value_info_stale", value_info_stale, ["--input", "x=1x3x8x8"], 0),
    ("constant_empty_value", constant_empty_value, [], 1),
    ("prelu_slope_per_width", prelu_slope_per_width, [], 1),
    ("conv_transpose_same", conv_transpose_same, [], 1),
    ("reshape_wrong_count", reshape_wrong_count, [], 1),
    ("concat_constants_mismatch", concat_constants_mismatch, [], 1),
    ("maxpool_ceil_into_padding", maxpool_ceil_into_padding, [], 1),
    ("split_uneven", split_uneven, [], 1),
    ("resize_pytorch_half_pixel_to_one", resize_pytorch_half_pixel_to_one, [], 1),
    ("external_symlink", external_symlink, [], 1),
]
