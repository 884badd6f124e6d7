"""Writes unsupported.onnx, the README's example of ONNX diagnostics: a Hardmax (no row in ptcc's ONNX
op table) and a Conv whose weight does not fit its input, each reported at its node in one run.

    /usr/bin/python3 examples/onnx/make_unsupported.py   (needs python3-onnx)
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((2, 5, 3, 3)).astype(np.float32), "w")
nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Hardmax", ["r"], ["h"], name="/head/Hardmax"),
         helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3])]
graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("h", "c")],
                          initializer=[w])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="bad_models")
model.ir_version = 7
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "unsupported.onnx"))
