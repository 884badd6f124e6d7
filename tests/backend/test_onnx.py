"""The ONNX front end on torch.onnx.export's own files: torchvision models exported at opsets 11 and 13,
with and without constant folding, and with a dynamic batch axis; each compiled by ptcc and run in OpenCV
dnn and BVLC Caffe against PyTorch (max |Δ| ≤ 1e-4 · max(1, max |ref|), and the error relative to the
output's scale below 1e-3 so that a vanishing output cannot pass).

Prints the parity table model × export × runtime and writes it to $PTCC_TEST_OUT/onnx-parity.md.

    PTCC_ONNX_MODELS="resnet18" make check TESTS=tests/backend/test_onnx.py   # a subset
"""

from __future__ import annotations

import os
import subprocess
import unittest

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

# Each model at opsets 11 and 13 (constant folding on, torch's default); the variants (folding off, a
# dynamic batch axis) on the models whose exports they change.  CI time: these are the zoo's cheapest
# models that reach every op torch writes for the zoo (Conv, BatchNormalization, Relu, MaxPool,
# AveragePool, GlobalAveragePool, Flatten, Gemm, Add, Concat, Clip, HardSigmoid, HardSwish, Mul, Sigmoid,
# ReduceMean, Reshape, Transpose, Shape/Gather/Unsqueeze/Concat chains, Slice, Split, Dropout).
EXPORTS = [
    ("resnet18", 11, "fold"), ("resnet18", 13, "fold"), ("resnet18", 13, "nofold"),
    ("resnet18", 13, "dynamic"),
    ("mobilenet_v2", 11, "fold"), ("mobilenet_v2", 13, "fold"),
    ("mobilenet_v3_small", 13, "fold"),
    ("shufflenet_v2_x1_0", 11, "fold"), ("shufflenet_v2_x1_0", 13, "nofold"),
    ("squeezenet1_0", 11, "fold"),
    ("googlenet", 13, "fold"),
    ("efficientnet_b0", 13, "fold"),
]
SELECTED = os.environ.get("PTCC_ONNX_MODELS", "").split()
TOLERANCE = 1e-4
RELATIVE_GUARD = 1e-3


def export(name: str, opset: int, variant: str, out: str):
    """The model (calibrated, as every zoo test builds it), its ONNX file, the input and PyTorch's output."""
    import torch

    model = ptcctest.zoo_model(name)
    x = torch.randn(*ptcctest.ZOO[name], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x.clone())
    path = os.path.join(out, f"{name}-{opset}-{variant}.onnx")
    kwargs = {}
    if variant == "dynamic":
        kwargs["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    torch.onnx.export(model, x, path, opset_version=opset, do_constant_folding=variant != "nofold",
                      input_names=["x"], output_names=["y"], **kwargs)
    return path, x.numpy(), expected.numpy()


class OnnxParity(unittest.TestCase):
    rows: list[str] = []

    @classmethod
    def tearDownClass(cls) -> None:
        table = ["| model | opset | export | OpenCV dnn | BVLC Caffe |", "|---|---|---|---|---|", *cls.rows]
        text = "\n".join(table) + "\n"
        print("\n" + text)
        with open(os.path.join(ptcctest.out_dir(), "onnx-parity.md"), "w") as f:
            f.write(text)

    def check(self, name: str, opset: int, variant: str) -> None:
        out = ptcctest.out_dir("onnx")
        path, x, want = export(name, opset, variant, out)
        prototxt = path[:-5] + ".prototxt"
        args = ["--input", "x=" + "x".join(map(str, x.shape))] if variant == "dynamic" else []
        r = subprocess.run([parity.ptcc_binary(), path, "-o", prototxt, *args], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        if variant == "dynamic":
            self.assertEqual(r.stderr, "")  # --input sets the symbolic batch: no note
        caffemodel = parity.caffemodel_of(prototxt)
        self.assertEqual(parity.validate(prototxt, caffemodel), [])
        cells = []
        for runtime in parity.runtimes():
            run = parity.run_opencv if runtime == "opencv" else parity.run_caffe
            got = run(prototxt, caffemodel, [x], ["x"])
            self.assertEqual(len(got), 1)
            problem = parity.shape_error(got[0], want, runtime)
            self.assertIsNone(problem, f"{runtime}: {problem}")
            err, rel = parity.error(got[0], want), parity.relative_error(got[0], want)
            cells.append(f"{err:.1e}")
            self.assertLessEqual(err, TOLERANCE, f"{runtime}: max |Δ| {err:.3e}")
            self.assertLessEqual(rel, RELATIVE_GUARD, f"{runtime}: relative error {rel:.3e}")
        while len(cells) < 2:
            cells.append("not run")
        self.rows.append(f"| {name} | {opset} | {variant} | {cells[0]} | {cells[1]} |")
        if not os.environ.get("PTCC_KEEP_OUTPUTS"):
            for p in (path, prototxt, caffemodel):
                os.remove(p)


def make_test(name: str, opset: int, variant: str):
    def test(self: OnnxParity) -> None:
        self.check(name, opset, variant)
    return test


for _name, _opset, _variant in EXPORTS:
    if not SELECTED or _name in SELECTED:
        setattr(OnnxParity, f"test_{_name}_{_opset}_{_variant}", make_test(_name, _opset, _variant))

if __name__ == "__main__":
    ptcctest.main()
