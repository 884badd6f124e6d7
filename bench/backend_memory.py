#!/usr/bin/env python3
"""Back-end memory benchmark (issue 11): peak memory per op of the front end against the whole
compilation, on synthetic traces of 10^5 and 10^6 ops.

Two kinds of trace: parse_bench.py's (a ResNet basic block repeated: conv, batch_norm, relu_, conv,
batch_norm, add_, relu_, in call/return scopes; about 1.3 Caffe layers per op) and a chain of relus
(one layer per op).  For each, in one run:

- front end: `ptcc --emit=none --stats`, whose stats line gives the peak RSS when the front end
  (parse, resolve, shape) has finished, before lowering;
- whole compilation: `ptcc --no-weights -o DIR/net.prototxt`, its peak RSS (ru_maxrss from wait4)
  and wall time.

It prints bytes per op of each, the back end's share (whole minus front end, per op) and the ratio
of the back end's bytes per op to the front end's.

Usage: backend_memory.py [PTCC] [--sizes 100000,1000000] [--kinds block,relu]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parse_bench  # noqa: E402  (its trace writer)


def write_relu_chain(path: str, nops: int) -> None:
    with open(path, "w") as f:
        f.write('ptcc-trace 1\nweights "none.safetensors"\ninput %0 "x" : f32[1,3,8,8]\n')
        for i in range(1, nops + 1):
            f.write(f"%{i} = relu(%{i - 1}) : f32[1,3,8,8]\n")
        f.write(f"output %{nops}\n")


def front_end_rss(ptcc: str, path: str) -> int:
    p = subprocess.run([ptcc, "--emit=none", "--stats", path], stderr=subprocess.PIPE, text=True)
    m = re.search(r"maxrss (\d+) KiB", p.stderr)
    if not m:
        sys.exit(f"no stats line from ptcc on {path}:\n{p.stderr}")
    return int(m.group(1)) * 1024


def whole_rss(ptcc: str, path: str, out: str) -> tuple:
    start = time.monotonic()
    proc = subprocess.Popen([ptcc, "--no-weights", "-o", out, path], stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        sys.exit(f"ptcc failed on {path} (status {status}):\n{err}")
    return usage.ru_maxrss * 1024, seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ptcc", nargs="?",
                    default=os.path.join(os.path.dirname(__file__), "..", "src", "ptcc"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--kinds", default="block,relu")
    args = ap.parse_args()
    writers = {"block": parse_bench.write_trace, "relu": write_relu_chain}
    print(f"{'trace':>6} {'ops':>8} {'front MB':>9} {'front B/op':>10} {'whole MB':>9} "
          f"{'back B/op':>9} {'back/front':>10} {'whole s':>8}")
    with tempfile.TemporaryDirectory(prefix="ptcc-bench-") as d:
        for kind in args.kinds.split(","):
            for n in (int(s) for s in args.sizes.split(",")):
                path = os.path.join(d, f"{kind}{n}.log")
                writers[kind](path, n)
                front = front_end_rss(args.ptcc, path)
                whole, seconds = whole_rss(args.ptcc, path, os.path.join(d, "net.prototxt"))
                back = (whole - front) / n
                print(f"{kind:>6} {n:>8} {front / 2**20:>9.1f} {front / n:>10.1f} "
                      f"{whole / 2**20:>9.1f} {back:>9.1f} {back / (front / n):>10.2f} "
                      f"{seconds:>8.2f}")
                os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
