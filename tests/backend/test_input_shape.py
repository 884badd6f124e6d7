"""--input (issue 10): a fully-convolutional model recorded at one input size and compiled with `--input`
at others computes PyTorch's result at the new size, in OpenCV dnn and in BVLC Caffe (when pycaffe
imports: parity.require_bvlc); the trace that `--emit=log --input` writes compiles to the same net."""

from __future__ import annotations

import os
import re
import subprocess
import unittest

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from ptcc.record import record  # noqa: E402

RECORDED = (1, 3, 16, 16)
# batch, odd and non-square sizes; each keeps the residual's two paths the same size (H and W
# multiples of 4)
SIZES = [(1, 3, 24, 40), (2, 3, 32, 12), (1, 3, 8, 8)]


class Net(nn.Module):
    """Shapes that follow the input: convolutions, a max pooling (Caffe rounds its size up, so ptcc crops
    it with Slices at points that depend on the size), a strided convolution and its transpose (a
    residual around them), a channel gate from the spatial mean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.gate = nn.Conv2d(8, 8, 1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.pool(torch.relu(self.bn(self.conv(x))))
        y = y + self.up(torch.relu(self.down(y)))
        y = y * torch.sigmoid(self.gate(y.mean((2, 3), keepdim=True)))
        return self.head(y)


def body(prototxt: str) -> str:
    """The prototxt without its first line (a comment naming the trace) and the notes above its layers (which
    name the trace's file and lines)."""
    with open(prototxt) as f:
        lines = f.read().split("\n")[1:]
    return "\n".join(l for l in lines if not re.match(r"# .*:\d+: ", l))


class InputShapeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("backend", "input_shape")
        torch.manual_seed(0)
        self.model = Net().eval()
        with torch.no_grad():  # BatchNorm statistics that are not the identity
            self.model.bn.running_mean.uniform_(-0.5, 0.5)
            self.model.bn.running_var.uniform_(0.5, 2.0)
        self.log = os.path.join(self.dir, "net.log")
        record(self.model, torch.randn(*RECORDED), self.log)

    def test_parity_at_new_sizes(self) -> None:
        for size in SIZES:
            spec = "x".join(map(str, size))
            with self.subTest(size=spec):
                x = torch.randn(*size)
                with torch.no_grad():
                    want = self.model(x).numpy()
                prototxt = os.path.join(self.dir, f"net-{spec}.prototxt")
                r = parity.compile_ok(self.log, prototxt, "--input", "x=" + spec)
                # the recorded annotations of the ops are all stale: one note says so
                self.assertRegex(r.stderr, r"^ptcc: note: --input x=[0-9x]+: [0-9]+ result annotations "
                                 r"disagree with the new shapes and were ignored \(--emit=log writes the trace "
                                 r"with the new ones\)\n\Z")
                for runtime in parity.runtimes():
                    try:
                        (got,) = parity.run_outputs(runtime, prototxt, parity.caffemodel_of(prototxt),
                                                    [x.numpy()], ["x"])[1]
                    except parity.CaffeRefused as e:
                        self.fail(f"{spec}: BVLC Caffe refused the net: {e}")
                    self.assertIsNone(parity.shape_error(got, want, runtime), f"{spec} {runtime}")
                    err = parity.error(got, want)
                    print(f"--input x={spec} {runtime}: {err:.2e}")
                    self.assertLessEqual(err, parity.TOLERANCE, f"{spec} {runtime}")

    def test_emit_log_compiles_to_the_same_net(self) -> None:
        spec = "x=2x3x32x12"
        relog = os.path.join(self.dir, "net-relog.log")  # beside net.safetensors, which it names
        subprocess.run([parity.ptcc_binary(), self.log, "--input", spec, "--emit=log", "-o", relog], check=True,
                       capture_output=True)
        with open(relog) as f:
            self.assertIn('input %0 "x" : f32[2,3,32,12]\n', f.read())
        a = os.path.join(self.dir, "with-input.prototxt")
        b = os.path.join(self.dir, "relogged.prototxt")
        parity.compile_ok(self.log, a, "--input", spec)
        r = parity.compile_ok(relog, b)
        self.assertEqual(r.stderr, "")
        self.assertEqual(body(a), body(b))
        with open(parity.caffemodel_of(a), "rb") as fa, open(parity.caffemodel_of(b), "rb") as fb:
            self.assertEqual(fa.read(), fb.read())


if __name__ == "__main__":
    ptcctest.main()
