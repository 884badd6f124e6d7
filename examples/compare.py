"""Run a compiled Caffe model in OpenCV dnn and compare it with PyTorch on the same input.

    /usr/bin/python3 examples/compare.py SPEC --input 1x3x224x224 [--seed N] NET.prototxt [NET.caffemodel]

SPEC, --input and --seed are those given to ptcc-record: the model and its input are rebuilt exactly as
the recorder built them, so PyTorch's output here is the recorded run's.  Prints the largest absolute
difference and the verdict of ptcc's tolerance, max |Δ| ≤ 1e-4 · max(1, max |reference|); exits 1 when
it is exceeded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ptcc.cli import build, load_object, parse_shape  # noqa: E402


def input_blobs(prototxt: str) -> list[str]:
    """The tops of the Input layers, in order (ptcc names them after the model's inputs)."""
    with open(prototxt) as f:
        text = f.read()
    return re.findall(r'type: "Input"\n\s*top: "([^"]*)"', text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--input", action="append", default=[], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("prototxt")
    parser.add_argument("caffemodel", nargs="?")
    args = parser.parse_args()
    caffemodel = args.caffemodel or os.path.splitext(args.prototxt)[0] + ".caffemodel"

    torch.manual_seed(args.seed)  # as ptcc-record does: the seed builds the weights and the inputs
    model, _ = build(load_object(args.spec), args.spec)
    model.eval()
    generator = torch.Generator().manual_seed(args.seed)
    inputs = [torch.randn(*parse_shape(s), generator=generator) for s in args.input]
    with torch.no_grad():
        reference = model(*inputs)
    reference = reference if isinstance(reference, (list, tuple)) else [reference]

    net = cv2.dnn.readNetFromCaffe(args.prototxt, caffemodel)
    for name, x in zip(input_blobs(args.prototxt), inputs):
        net.setInput(x.numpy(), name)
    names = net.getUnconnectedOutLayersNames()
    outputs = net.forward(names)
    worst = 0.0
    for got, want in zip(outputs, reference):
        want = want.numpy()
        diff = float(np.max(np.abs(got.reshape(want.shape) - want)))
        scale = max(1.0, float(np.max(np.abs(want))))
        worst = max(worst, diff / scale)
        print(f"output {want.shape}: max |PyTorch - OpenCV| = {diff:.3g} (max |reference| {scale:.3g})")
    ok = worst <= 1e-4
    print("parity: " + ("ok" if ok else "FAILED") + f" (relative error {worst:.3g}, tolerance 1e-4)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
