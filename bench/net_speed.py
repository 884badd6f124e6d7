"""Benchmark: how fast the nets ptcc writes run in OpenCV dnn, against PyTorch and OpenCV's own ONNX import.

    make bench-runtime
    PYTHONPATH=python:tests/lib /usr/bin/python3 bench/net_speed.py [--model resnet50 ...] [--repeat 7]
        [--size 320]

For each model (default: resnet50, mobilenet_v2, efficientnet_b0 from torchvision, with calibrated BatchNorm
statistics as the tests use, and a YOLOv5s-style detector built here: Focus, Conv-BN-SiLU, C3, SPPF, FPN,
three detect heads) it records a trace with ptcc.record, compiles it at -O0, -O1 and -O2 for target caffe and
target opencv, and times, all in this one run:

- PyTorch's forward of the model (torch.no_grad), with 1 thread and with torch's default thread count;
- each net's forward in OpenCV dnn (readNetFromCaffe, the OpenCV backend on the CPU), with 1 thread and with
  OpenCV's default thread count, after checking that its outputs match PyTorch's (max |Δ| / max(1, |ref|)
  printed beside the time: a fast wrong net does not count);
- OpenCV's import of torch.onnx.export's file of the same model (opset 13), where OpenCV 4.6 takes it, or
  the first line of its refusal.

Each time is the median of --repeat forward calls after two untimed ones, the rows of a model timed in
interleaved rounds (each row once per round, the thread count set once for all) so that the machine's drift
affects them alike.  The table also has each net's
layer count (layers in the prototxt).  Nothing is asserted: the numbers are for the closing notes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(HERE, "python"), os.path.join(HERE, "tests", "lib")]

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import parity  # noqa: E402
import ptcctest  # noqa: E402
from ptcc.record import record  # noqa: E402
from testmodules import C3, SPPF, conv_bn  # noqa: E402

LEVELS = ("-O0", "-O1", "-O2")
TARGETS = ("caffe", "opencv")


# --- a YOLOv5s-style detector (width 0.5, depth 0.33 of YOLOv5l, as v5s is), of testmodules' blocks ------

class Yolo5s(nn.Module):
    def __init__(self, classes: int = 80, anchors: int = 3) -> None:
        super().__init__()
        self.backbone = nn.ModuleList([
            conv_bn(3, 32, 6, 2, p=2), conv_bn(32, 64, 3, 2), C3(64, 64, 1), conv_bn(64, 128, 3, 2), C3(128, 128, 2),
            conv_bn(128, 256, 3, 2), C3(256, 256, 3), conv_bn(256, 512, 3, 2), C3(512, 512, 1), SPPF(512, 512)])
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.lat1, self.c3_up1 = conv_bn(512, 256), C3(512, 256, 1, False)
        self.lat2, self.c3_up2 = conv_bn(256, 128), C3(256, 128, 1, False)
        self.down1, self.c3_down1 = conv_bn(128, 128, 3, 2), C3(256, 256, 1, False)
        self.down2, self.c3_down2 = conv_bn(256, 256, 3, 2), C3(512, 512, 1, False)
        self.detect = nn.ModuleList(nn.Conv2d(c, anchors * (classes + 5), 1) for c in (128, 256, 512))

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.backbone):
            x = m(x)
            if i in (4, 6):
                feats.append(x)
        p3, p4 = feats
        l1 = self.lat1(x)
        u1 = self.c3_up1(torch.cat([self.up(l1), p4], 1))
        l2 = self.lat2(u1)
        o3 = self.c3_up2(torch.cat([self.up(l2), p3], 1))
        o4 = self.c3_down1(torch.cat([self.down1(o3), l2], 1))
        o5 = self.c3_down2(torch.cat([self.down2(o4), l1], 1))
        return [torch.sigmoid(conv(f)) for conv, f in zip(self.detect, (o3, o4, o5))]


def model_and_input(name: str, size: int) -> tuple[nn.Module, torch.Tensor]:
    if name == "yolov5s":
        torch.manual_seed(0)
        shape = (1, 3, size, size)
        return ptcctest.calibrate(Yolo5s(), shape), torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    return ptcctest.zoo_model(name), torch.randn(*ptcctest.ZOO[name], generator=torch.Generator().manual_seed(1))


# --- timing -----------------------------------------------------------------------------------------------

class Job:
    """One row: a forward pass to time with 1 thread and with all, and what the table says of it."""

    def __init__(self, what: str, layers: str, err: str, run: Callable[[], object] | None) -> None:
        self.what, self.layers, self.err, self.run = what, layers, err, run
        self.times: dict[int, list[float]] = {}


def time_jobs(jobs: list[Job], repeat: int, thread_counts: tuple[int, ...]) -> None:
    """For each thread count (set once, for torch and OpenCV alike: changing it between calls costs
    more than some forward passes), interleaved rounds: every job once per round, so that drift in
    the machine's speed affects every row alike; two untimed runs of each first."""
    for threads in thread_counts:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        live = [job for job in jobs if job.run]
        for job in live:
            job.run()
            job.run()
        for _ in range(repeat):
            for job in live:
                start = time.perf_counter()
                job.run()
                job.times.setdefault(threads, []).append(time.perf_counter() - start)


def caffe_job(log: str, work: str, level: str, target: str, inputs: list[np.ndarray],
              expected: list[np.ndarray]) -> Job:
    stem = os.path.join(work, f"net{level}-{target}")
    parity.compile_ok(log, stem + ".prototxt", level, f"--target={target}", check=False)
    layers = parity.prototxt_layers(stem + ".prototxt")
    names = parity.trace_inputs(log)
    outs = parity.opencv_output_layers(stem + ".prototxt")
    net = parity.opencv_net(stem + ".prototxt", stem + ".caffemodel")

    def run():
        for n, x in zip(names, inputs):
            net.setInput(x, n)
        return net.forward(outs)

    got = [np.array(o) for o in run()]
    err = max(parity.error(g.reshape(e.shape), e) for g, e in zip(got, expected))
    return Job(f"ptcc {level} --target={target}", str(len(layers)), f"{err:.1e}", run)


def onnx_job(model: nn.Module, x: torch.Tensor, work: str, expected: list[np.ndarray]) -> Job:
    path = os.path.join(work, "model.onnx")
    torch.onnx.export(model, x, path, opset_version=13)
    try:
        net = cv2.dnn.readNetFromONNX(path)
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        names = list(net.getUnconnectedOutLayersNames())

        def run():
            net.setInput(x.numpy())
            return net.forward(names)

        got = [np.array(o) for o in run()]
        err = max(parity.error(g.reshape(e.shape), e) for g, e in zip(got, expected)) \
            if len(got) == len(expected) else float("nan")
        return Job("OpenCV's ONNX import", "", f"{err:.1e}", run)
    except cv2.error as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        why = next((line for line in lines if "Node [" in line or "parse error" in line), lines[-1] if lines else "")
        return Job("OpenCV's ONNX import", "", "refused: " + why.replace("|", "/")[:120], None)


def bench(name: str, args: argparse.Namespace, work: str) -> list[tuple]:
    model, x = model_and_input(name, args.size)
    with torch.no_grad():
        ref = model(x.clone())
    expected = [t.numpy() for t in (ref if isinstance(ref, (list, tuple)) else [ref])]
    log = os.path.join(work, name + ".log")
    record(model, x, log)

    def forward():
        with torch.no_grad():
            return model(x)

    jobs = [Job("PyTorch", "", "", forward), onnx_job(model, x, work, expected)]
    jobs += [caffe_job(log, work, level, target, [x.numpy()], expected) for target in TARGETS for level in LEVELS]
    all_threads = os.cpu_count() or 1
    saved = torch.get_num_threads()
    try:
        time_jobs(jobs, args.repeat, (1, all_threads))
    finally:
        torch.set_num_threads(saved)
        cv2.setNumThreads(-1)

    def ms(job: Job, threads: int) -> str:
        return f"{statistics.median(job.times[threads]) * 1000:.1f}" if job.times else ""

    return [(name, j.what, j.layers, j.err, ms(j, 1), ms(j, all_threads)) for j in jobs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append",
                        help="resnet50, mobilenet_v2, efficientnet_b0, yolov5s or another zoo model; repeatable")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--size", type=int, default=320, help="the YOLOv5s-style net's input side")
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs; medians of "
          f"{args.repeat} forward passes, ms")
    print("| model | net | layers | max |Δ| vs PyTorch | 1 thread | all threads |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ptcc-net-speed-") as work:
        for name in args.model or ["resnet50", "mobilenet_v2", "efficientnet_b0", "yolov5s"]:
            for row in bench(name, args, work):
                print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
