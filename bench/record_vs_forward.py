"""Benchmark: ptcc's two recorders on resnet50 against a plain forward pass of the same model and input.

    make bench-record
    PYTHONPATH=python /usr/bin/python3 bench/record_vs_forward.py [--model resnet50] [--repeat 5]

Prints the median wall time of each, timed in interleaved rounds (one of each per round) in this one run:
the forward pass under no_grad, record() through the Python calls (the default), and record(via="autograd"),
which runs the forward with grad, one backward pass (its hooks give the forward order and the shapes) and
reads the graph; each record() includes writing the log and the ~100 MB weights file.  Then the ratios.
The target, for the default recorder, is a ratio <= 2.0; the exit status is 1 above it.  PyTorch runs with
its default thread count unless --threads is given.

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

        record(model, x, log, via="autograd")
        rows = {"forward": forward, "record()": lambda: record(model, x, log),
                "record(via=autograd)": lambda: record(model, x, log, via="autograd"), "write floor": write_floor}
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeat):
            for name, fn in rows.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(t) for name, t in times.items()}
        size = len(blob)
    ratio = median["record()"] / median["forward"]
    print(f"model            {args.model} (1x3x224x224), torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"weights file     {size / 1e6:.1f} MB")
    print(f"forward          {median['forward'] * 1e3:8.1f} ms (median of {args.repeat})")
    print(f"record()         {median['record()'] * 1e3:8.1f} ms (median of {args.repeat})")
    print(f"  via=autograd   {median['record(via=autograd)'] * 1e3:8.1f} ms (median of {args.repeat})")
    print(f"write floor      {median['write floor'] * 1e3:8.1f} ms (one write() of the same {size / 1e6:.1f} MB, "
          "median)")
    print(f"ratio            {ratio:8.2f} record() / forward (target <= {TARGET})")
    print(f"                 {median['record(via=autograd)'] / median['forward']:8.2f} record(via=autograd) / "
          "forward")
    print(f"                 {median['record(via=autograd)'] / median['record()']:8.2f} record(via=autograd) / "
          "record()")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
