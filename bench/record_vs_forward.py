"""Benchmark: ptcc's record() of resnet50 against a plain forward pass of the same model and input.

    PYTHONPATH=python /usr/bin/python3 bench/record_vs_forward.py [--model resnet50] [--repeat 5]

Prints the median wall time of each (record() includes writing the log and the ~100 MB weights file) and
their ratio, all measured in this one run.  The target is a ratio <= 2.0; the exit status is 1 above it.
PyTorch runs with its default thread count unless --threads is given.

For context it also times writing the same bytes with one plain file write: on a small VM that floor
alone can cost more than a multi-threaded forward pass, and no recorder can beat it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import torchvision

from ptcc.record import record

TARGET = 2.0


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        log = os.path.join(tmp, "run.log")

        def forward() -> None:
            with torch.no_grad():
                model(x)

        forward()  # warm up both paths once: first calls allocate and load kernels
        record(model, x, log)
        weights = os.path.join(tmp, "run.safetensors")
        with open(weights, "rb") as f:
            blob = f.read()

        def write_floor() -> None:
            with open(os.path.join(tmp, "floor.bin"), "wb") as f:
                f.write(blob)

        t_forward = median_seconds(forward, args.repeat)
        t_record = median_seconds(lambda: record(model, x, log), args.repeat)
        t_floor = median_seconds(write_floor, args.repeat)
        size = len(blob)
    ratio = t_record / t_forward
    print(f"model            {args.model} (1x3x224x224), torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"weights file     {size / 1e6:.1f} MB")
    print(f"forward          {t_forward * 1e3:8.1f} ms (median of {args.repeat})")
    print(f"record()         {t_record * 1e3:8.1f} ms (median of {args.repeat})")
    print(f"write floor      {t_floor * 1e3:8.1f} ms (one write() of the same {size / 1e6:.1f} MB, median)")
    print(f"ratio            {ratio:8.2f} (target <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
