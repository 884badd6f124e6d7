#!/usr/bin/env python3
"""Lexer benchmark for one long token (issue 11): a comment, a string and a run of blanks of
1, 32 and 256 MiB on one line of an otherwise tiny trace.

For each kind and size it writes the trace to a temporary file, runs `ptcc --emit=none` on it and
prints the wall time and the time per MiB.  Lexing is linear when the time per MiB stays about the
same from one size to the next (the ratio column: time per MiB over that of the smallest size).

Usage: long_tokens.py [PTCC] [--sizes 1,32,256] [--kinds comment,string,spaces]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HEAD = ('ptcc-trace 1\nweights "none.safetensors"\ninput %0 "x" : f32[1,3,8,8]\n')


def write_trace(path, kind, size):
    chunk = 1 << 20
    with open(path, "w") as f:
        f.write(HEAD)
        if kind == "comment":
            f.write("#")
            body = "x" * chunk
        elif kind == "string":
            f.write('%1 = relu(%0) : f32[1,3,8,8] @ "')
            body = "y" * chunk
        else:
            f.write("%1 = relu(%0)")
            body = " " * chunk
        for _ in range(size):
            f.write(body)
        if kind == "comment":
            f.write("\n%1 = relu(%0) : f32[1,3,8,8]\n")
        elif kind == "string":
            f.write(':1"\n')
        else:
            f.write(": f32[1,3,8,8]\n")
        f.write("output %1\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ptcc", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "ptcc"))
    ap.add_argument("--sizes", default="1,32,256", help="sizes in MiB, comma-separated")
    ap.add_argument("--kinds", default="comment,string,spaces")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"{'kind':8} {'MiB':>5} {'seconds':>9} {'s/MiB':>9} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "long.log")
        for kind in a.kinds.split(","):
            base = None
            for size in sizes:
                write_trace(path, kind, size)
                t0 = time.monotonic()
                try:
                    p = subprocess.run([a.ptcc, "--emit=none", path], stderr=subprocess.PIPE,
                                       text=True, timeout=a.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{kind:8} {size:5} {'>' + str(a.timeout):>9}  (timed out)")
                    break
                dt = time.monotonic() - t0
                if p.returncode != 0:
                    sys.exit(f"ptcc failed on the {size} MiB {kind}:\n{p.stderr[:2000]}")
                per = dt / size
                base = base or per
                print(f"{kind:8} {size:5} {dt:9.3f} {per:9.4f} {per / base:7.2f}", flush=True)
                os.unlink(path)


if __name__ == "__main__":
    main()
