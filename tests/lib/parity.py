"""Run a compiled Caffe model in OpenCV dnn and compare it with PyTorch's output.

The criterion of design.md: max |Δ| ≤ 1e-4 · max(1, max |reference|), in float32.
"""

from __future__ import annotations

import os
import subprocess
from typing import Sequence

import numpy as np

import ptcctest

TOLERANCE = 1e-4


def ptcc_binary() -> str:
    return os.path.join(ptcctest.BUILDDIR, "src", "ptcc")


def compile_log(log: str, prototxt: str, *args: str) -> subprocess.CompletedProcess:
    """Run `ptcc LOG -o PROTOTXT ARGS...`."""
    return subprocess.run([ptcc_binary(), log, "-o", prototxt, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def run_opencv(prototxt: str, caffemodel: str, inputs: Sequence[np.ndarray],
               input_names: Sequence[str]) -> list[np.ndarray]:
    """Forward the net in OpenCV dnn; returns the unconnected outputs in the net's order."""
    import cv2

    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    for name, x in zip(input_names, inputs):
        net.setInput(np.ascontiguousarray(x, dtype=np.float32), name)
    names = net.getUnconnectedOutLayersNames()
    outs = net.forward(names)
    return [np.asarray(o) for o in outs]


def error(got: np.ndarray, want: np.ndarray) -> float:
    """max |Δ| relative to max(1, max |reference|); inf when the shapes differ."""
    got = np.asarray(got, dtype=np.float32)
    want = np.asarray(want, dtype=np.float32)
    if got.size != want.size:
        return float("inf")
    got = got.reshape(want.shape)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0
