"""Benchmark: compiling resnet50's trace with ptcc against `cp` of its weights file, in one run.

    make bench-compile            (the trace)
    make bench-compile-onnx       (--onnx: resnet50's ONNX file against `cp` of that file, issue 12)
    PYTHONPATH=python:tests/lib /usr/bin/python3 bench/compile_vs_cp.py [--ptcc src/ptcc] [--model resnet50]
        [--repeat 5] [--dir DIR] [--onnx]

What it measures (issue 4, Performance):

- Wall time: the median of --repeat runs of `ptcc NAME.log -o DIR/net.prototxt` (which writes net.prototxt
  and the ~100 MB net.caffemodel), against the median of as many `cp NAME.safetensors DIR/copy` runs, both
  writing to the same directory and both started as a subprocess the same way.  The page cache is warm:
  the weights file is read once, and each command runs once untimed, before timing.  Outputs are removed
  before each timed run, so both create new files.  Target: ptcc ≤ 1.5 × cp.
- Memory: ptcc's peak resident set size (ru_maxrss of the child, from wait4), which counts the weight
  pages ptcc mmaps and touches (file-backed, shared with the page cache) as well as its heap.  The target
  is peak RSS ≤ 64 MiB + the weights file's size: nothing proportional to the weights may be on the heap
  beyond those mapped pages.  To show the split, /proc/PID/status is also sampled every millisecond during
  one extra run for RssAnon (heap, stacks: what the program allocated) and RssFile (mapped file pages);
  being sampled, those two are lower bounds of their peaks.  Both numbers and the weights size are printed
  so the reader can judge.

The model's trace is $PTCC_TEST_OUT/zoo/NAME.log (written by tests/recorder/test_zoo.py), recorded here
if missing.  With --onnx the input is $PTCC_TEST_OUT/onnx-bench/NAME.onnx, torch.onnx.export's file of
the same model (opset 13, exported here if missing), and `cp` copies that file: the model file is both
what ptcc reads its weights from and what the memory target allows for.  Exit status 1 when a target is missed, 2 on setup errors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TIME_TARGET = 1.5
HEAP_ALLOWANCE = 64 << 20


def here(*parts: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)


def run_timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes (ru_maxrss of this child alone)."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}:\n{err}")
    return seconds, usage.ru_maxrss * 1024


def sampled_rss(argv: list[str]) -> dict[str, int]:
    """Peak RssAnon / RssFile / VmRSS of one run, sampled from /proc every millisecond (lower bounds)."""
    peaks = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = f"/proc/{p.pid}/status"

    def sample() -> None:
        while p.poll() is None:
            try:
                with open(path) as f:
                    for line in f:
                        key = line.split(":", 1)[0]
                        if key in peaks:
                            peaks[key] = max(peaks[key], int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.001)

    t = threading.Thread(target=sample)
    t.start()
    p.wait()
    t.join()
    return peaks


def find_or_record(model: str) -> str:
    out = os.environ.get("PTCC_TEST_OUT") or here("tests", "out")
    log = os.path.join(out, "zoo", model + ".log")
    if os.path.exists(log) and os.path.exists(os.path.join(out, "zoo", model + ".safetensors")):
        return log
    sys.path[:0] = [here("python"), here("tests", "lib")]
    import parity  # records the same way the zoo test does

    print(f"recording {model} (no {log})", file=sys.stderr)
    return parity.zoo_files(model)[0]


def find_or_export(model: str) -> str:
    out = os.environ.get("PTCC_TEST_OUT") or here("tests", "out")
    path = os.path.join(out, "onnx-bench", model + ".onnx")
    if os.path.exists(path):
        return path
    print(f"exporting {model} (no {path})", file=sys.stderr)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # in a child: a child ptcc forked from this process once it held torch would count torch's pages
    # in its ru_maxrss (Linux records the forked image's peak at exec)
    code = ("import sys, torch, ptcctest; m = ptcctest.zoo_model(sys.argv[1]); "
            "torch.onnx.export(m, torch.randn(*ptcctest.ZOO[sys.argv[1]]), sys.argv[2], opset_version=13, "
            "input_names=['x'], output_names=['y'])")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here("python"), here("tests", "lib")]))
    subprocess.run([sys.executable, "-c", code, model, path + ".tmp"], env=env, check=True)
    os.replace(path + ".tmp", path)
    return path


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptcc", default=os.path.join(os.environ.get("PTCC_BUILDDIR") or here(), "src", "ptcc"))
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", help="where outputs go (default: a temporary directory beside the log)")
    parser.add_argument("--onnx", action="store_true", help="compile the model's ONNX file, against cp of it")
    args = parser.parse_args()
    if not os.access(args.ptcc, os.X_OK):
        print(f"no ptcc at {args.ptcc}", file=sys.stderr)
        return 2
    if args.onnx:
        log = weights = os.path.abspath(find_or_export(args.model))
    else:
        log = os.path.abspath(find_or_record(args.model))
        weights = os.path.splitext(log)[0] + ".safetensors"
    wsize = os.path.getsize(weights)
    work = args.dir or tempfile.mkdtemp(prefix="bench-compile-", dir=os.path.dirname(log))
    os.makedirs(work, exist_ok=True)
    try:
        prototxt = os.path.join(work, "net.prototxt")
        caffemodel = os.path.join(work, "net.caffemodel")
        copy = os.path.join(work, "copy" + os.path.splitext(weights)[1])
        compile_argv = [args.ptcc, log, "-o", prototxt]
        cp_argv = ["cp", weights, copy]

        def clean() -> None:
            for p in (prototxt, caffemodel, copy):
                if os.path.exists(p):
                    os.unlink(p)

        with open(weights, "rb") as f:   # warm the page cache
            while f.read(1 << 24):
                pass
        clean()
        run_timed(compile_argv)
        clean()
        run_timed(cp_argv)
        ptcc_times, cp_times, rss = [], [], []
        for _ in range(args.repeat):      # interleaved, so that drift affects both alike
            clean()
            s, r = run_timed(compile_argv)
            ptcc_times.append(s)
            rss.append(r)
            clean()
            s, _ = run_timed(cp_argv)
            cp_times.append(s)
        clean()
        sampled = sampled_rss(compile_argv)
        cm_size = os.path.getsize(caffemodel)
        clean()
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    t_ptcc = statistics.median(ptcc_times)
    t_cp = statistics.median(cp_times)
    ratio = t_ptcc / t_cp
    peak = max(rss)
    limit = HEAP_ALLOWANCE + wsize
    print(f"model            {args.model}: weights {mib(wsize)} ({weights}), caffemodel written {mib(cm_size)}")
    print(f"ptcc compile     median {t_ptcc * 1000:8.1f} ms   (runs: {', '.join(f'{t * 1000:.0f}' for t in ptcc_times)})")
    print(f"input            {'ONNX file' if args.onnx else 'trace and weights file'} {log}")
    print(f"cp weights       median {t_cp * 1000:8.1f} ms   (runs: {', '.join(f'{t * 1000:.0f}' for t in cp_times)})")
    print(f"ratio            {ratio:.2f} x cp   (target <= {TIME_TARGET})")
    print(f"ptcc peak RSS    {mib(peak)} (ru_maxrss, max of {args.repeat}); limit 64 MiB + weights = {mib(limit)}")
    print(f"  sampled peaks  RssAnon {mib(sampled['RssAnon'])} (heap etc.), RssFile {mib(sampled['RssFile'])} "
          f"(mapped file pages), VmRSS {mib(sampled['VmRSS'])}")
    ok = ratio <= TIME_TARGET and peak <= limit
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
