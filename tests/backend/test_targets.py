"""--target: `opencv` adds ReLU6, Swish and HardSwish layers, exact in OpenCV dnn; `caffe` and
`caffe-master` write only the portable layers, exact in OpenCV dnn and BVLC Caffe (when pycaffe imports:
parity.require_bvlc); mobilenet_v2 and mobilenet_v3 keep parity on `opencv`."""

from __future__ import annotations

import os
import re
import unittest

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ptcc.record import record  # noqa: E402

OPENCV_TYPES = parity.OPENCV_OWN_TYPES


class Activations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        return F.relu6(y), F.silu(y), F.hardswish(y), F.hardtanh(y, 0.0, 6.0), F.relu6(y * 1e-6)


def types_of(prototxt: str) -> list[str]:
    with open(prototxt) as f:
        return re.findall(r'type: "([^"]*)"', f.read())


def body(prototxt: str) -> str:
    """The prototxt without its first line (a comment naming the target)."""
    with open(prototxt) as f:
        return f.read().split("\n", 1)[1]


class TargetTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("backend", "targets")

    def compile(self, log: str, name: str, *args: str) -> str:
        prototxt = os.path.join(self.dir, name + ".prototxt")
        r = parity.compile_log(log, prototxt, *args)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(parity.opencv_allowed(parity.validate(prototxt, parity.caffemodel_of(prototxt))), [])
        return prototxt

    def test_opencv_layers_are_exact(self) -> None:
        torch.manual_seed(0)
        model = Activations().eval()
        x = torch.randn(1, 3, 9, 9) * 4
        with torch.no_grad():
            want = [t.numpy() for t in model(x)]
        log = os.path.join(self.dir, "act.log")
        record(model, x, log)
        for level in ("-O0", "-O1", "-O2"):
            with self.subTest(level=level):
                prototxt = self.compile(log, "act" + level, "--target=opencv", level)
                types = types_of(prototxt)
                self.assertEqual(types.count("ReLU6"), 3)
                self.assertEqual(types.count("Swish"), 1)
                self.assertEqual(types.count("HardSwish"), 1)
                self.assertNotIn("Eltwise", types)
                self.assertExact(prototxt, "opencv", x, want)
        portable = self.compile(log, "act-caffe")
        self.assertFalse(OPENCV_TYPES & set(types_of(portable)))
        master = self.compile(log, "act-master", "--target=caffe-master")
        self.assertEqual(body(master).replace("caffe-master", "caffe"), body(portable))
        for prototxt, target in ((portable, "caffe"), (master, "caffe-master")):
            for runtime in parity.runtimes(target):
                with self.subTest(target=target, runtime=runtime):
                    self.assertExact(prototxt, runtime, x, want)

    def assertExact(self, prototxt: str, runtime: str, x: torch.Tensor, want: list[np.ndarray]) -> None:
        """Every output within 1e-6 of PyTorch's relative to its own scale: the 1e-6 branch must keep its
        precision."""
        try:
            names, outs = parity.run_named(runtime, prototxt, parity.caffemodel_of(prototxt), [x.numpy()], ["x"])
        except parity.CaffeRefused as e:
            self.fail(f"{os.path.basename(prototxt)}: BVLC Caffe refused the net: {e}")
        self.assertEqual(len(outs), len(want), f"{runtime}: outputs {names}")
        for name, got, ref in zip(names, outs, want):
            self.assertIsNone(parity.shape_error(got, ref, runtime), f"{runtime} {name}")
            self.assertLessEqual(parity.relative_error(got, ref), 1e-6, f"{runtime} {name}")

    def test_zoo_on_opencv(self) -> None:
        for name in ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"):
            with self.subTest(model=name):
                log, io = parity.zoo_files(name)
                tensors = parity.read_safetensors(io)
                prototxt = self.compile(log, name, "--target=opencv")
                self.assertTrue(OPENCV_TYPES & set(types_of(prototxt)))
                (got,) = parity.run_opencv(prototxt, parity.caffemodel_of(prototxt), [tensors["input"]], ["x"])
                err = parity.error(got, tensors["output"])
                print(f"{name} --target=opencv: {err:.2e}")
                self.assertLessEqual(err, parity.TOLERANCE)
                os.unlink(parity.caffemodel_of(prototxt))


if __name__ == "__main__":
    ptcctest.main()
