"""Benchmark: compiling a model with ptcc against `cp` and `cat` of its weights file, measured in one run.

    make bench-compile            (resnet50's and vgg16's traces)
    make bench-compile-onnx       (--onnx: resnet50's ONNX file against cp of that file, issue 12)
    PYTHONPATH=python:tests/lib /usr/bin/python3 bench/compile_vs_cp.py [--ptcc src/ptcc]
        [--model resnet50 [--model vgg16 ...]] [--repeat 21] [--dir DIR] [--onnx] [--target 1.2]
        [--compare NAME=PTCC ...]

What it measures (issues 4, 12 and 14):

- Time: --repeat rounds; each round runs `ptcc NAME.log -o DIR/net.prototxt` (which writes net.prototxt and
  the caffemodel), `cp WEIGHTS DIR/copy` and `cat WEIGHTS > DIR/copy`, one after the other (the order
  rotating from round to round), each started as a subprocess the same way and writing a new file into
  the same directory.  For each command: the median wall time and the median CPU time (user + system of
  the child, from wait4).  The ratios are the medians of the per-round ratios (paired runs, so that drift
  affects both sides alike).  The page cache is warm: the weights file is read once, and each command runs
  once untimed, before timing.  Target: ptcc's wall time <= --target x cp's (median of paired ratios).
  --compare NAME=PTCC times another build of ptcc (a dynamic one, an older commit's) in the same rounds
  and prints its ratio to cp too, so that a change's effect is measured against the same noise.
  cp asks the kernel to copy (copy_file_range); cat copies through a buffer in user space.
- Memory: ptcc's peak resident set size (ru_maxrss of the child, from wait4), which counts the weight
  pages ptcc maps and touches (file-backed, shared with the page cache) as well as its heap.  The limit
  is peak RSS <= 64 MiB + the weights file's size: nothing proportional to the weights may be on the heap
  beyond those mapped pages.  To show the split, /proc/PID/status is also sampled every millisecond during
  one extra run for RssAnon (heap, stacks: what the program allocated) and RssFile (mapped file pages);
  being sampled, those two are lower bounds of their peaks.

A zoo model's trace is $PTCC_TEST_OUT/zoo/NAME.log (written by tests/recorder/test_zoo.py), recorded here
if missing; another torchvision model (vgg16) is recorded into $PTCC_TEST_OUT/bench/NAME.log with
ptcc-record.  With --onnx the input is $PTCC_TEST_OUT/onnx-bench/NAME.onnx, torch.onnx.export's file of
the same model (opset 13, exported here if missing), and cp copies that file: the model file is both what
ptcc reads its weights from and what the memory limit allows for.  Exit status 1 when a target is missed,
2 on setup errors.
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

TIME_TARGET = 1.2
HEAP_ALLOWANCE = 64 << 20


def here(*parts: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)


class Run:
    """One timed child: wall seconds, CPU seconds (user + system), peak RSS in bytes (ru_maxrss)."""

    def __init__(self, wall: float, cpu: float, rss: int) -> None:
        self.wall, self.cpu, self.rss = wall, cpu, rss


def run_timed(argv: list[str], stdout_path: str | None = None) -> Run:
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - start
    finally:
        if stdout_path:
            out.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}:\n{err}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)


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
    sys.path[:0] = [here("python"), here("tests", "lib")]
    import ptcctest

    out = os.environ.get("PTCC_TEST_OUT") or here("tests", "out")
    if model not in ptcctest.ZOO:  # recorded here, once, with ptcc-record
        log = os.path.join(out, "bench", model + ".log")
        if not os.path.exists(log) or not os.path.exists(os.path.splitext(log)[0] + ".safetensors"):
            print(f"recording {model} (no {log})", file=sys.stderr)
            os.makedirs(os.path.dirname(log), exist_ok=True)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([here("python"), here("tests", "lib")]))
            subprocess.run([sys.executable, here("ptcc-record"), f"torchvision.models:{model}", "--input",
                            "1x3x224x224", "-o", log], env=env, check=True)
        return log
    log = os.path.join(out, "zoo", model + ".log")
    if os.path.exists(log) and os.path.exists(os.path.join(out, "zoo", model + ".safetensors")):
        return log
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


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def bench_model(args: argparse.Namespace, model: str) -> bool:
    """Time one model; print its lines; whether it met the targets."""
    if args.onnx:
        log = weights = os.path.abspath(find_or_export(model))
    else:
        log = os.path.abspath(find_or_record(model))
        weights = os.path.splitext(log)[0] + ".safetensors"
    wsize = os.path.getsize(weights)
    work = args.dir or tempfile.mkdtemp(prefix="bench-compile-", dir=os.path.dirname(log))
    os.makedirs(work, exist_ok=True)
    prototxt = os.path.join(work, "net.prototxt")
    caffemodel = os.path.join(work, "net.caffemodel")
    copy = os.path.join(work, "copy" + os.path.splitext(weights)[1])
    commands = {  # name: (argv, stdout file)
        "ptcc": ([args.ptcc, log, "-o", prototxt], None),
        "cp": (["cp", weights, copy], None),
        "cat": (["cat", weights], copy),
    }
    for name, path in args.compare:  # other builds, timed in the same rounds (not held to the target)
        commands[name] = ([path, log, "-o", prototxt], None)
    runs: dict[str, list[Run]] = {name: [] for name in commands}

    def clean() -> None:
        for p in (prototxt, caffemodel, copy):
            if os.path.exists(p):
                os.unlink(p)

    try:
        with open(weights, "rb") as f:  # warm the page cache
            while f.read(1 << 24):
                pass
        for argv, stdout_path in commands.values():
            clean()
            run_timed(argv, stdout_path)
        names = list(commands)
        for k in range(args.repeat):
            turn = k % len(names)
            for name in names[turn:] + names[:turn]:  # rotated, so no command always runs first
                clean()
                runs[name].append(run_timed(*commands[name]))
        clean()
        sampled = sampled_rss(commands["ptcc"][0])
        cm_size = os.path.getsize(caffemodel)
        clean()
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)

    def median(name: str, what: str) -> float:
        return statistics.median(getattr(r, what) for r in runs[name])

    def ratio(name: str, what: str, of: str = "ptcc") -> float:  # the median of the per-round ratios
        return statistics.median(getattr(p, what) / getattr(q, what)
                                 for p, q in zip(runs[of], runs[name]))

    peak = max(r.rss for r in runs["ptcc"])
    limit = HEAP_ALLOWANCE + wsize
    print(f"model            {model}: {'ONNX file' if args.onnx else 'trace'} {log}")
    print(f"                 weights {mib(wsize)}, caffemodel written {mib(cm_size)}; {args.repeat} rounds")
    for name in commands:
        print(f"{name:16s} wall median {ms(median(name, 'wall'))}   CPU median {ms(median(name, 'cpu'))}"
              f"   (wall: {', '.join(f'{r.wall * 1000:.0f}' for r in runs[name])})")
    wall_cp = ratio("cp", "wall")
    for name in ("cp", "cat"):
        print(f"ptcc / {name:9s} wall {ratio(name, 'wall'):5.2f} x   CPU {ratio(name, 'cpu'):5.2f} x"
              + (f"   (target: wall <= {args.target})" if name == "cp" else ""))
    for name, _ in args.compare:
        print(f"{name + ' / cp':16s} wall {ratio('cp', 'wall', name):5.2f} x   CPU {ratio('cp', 'cpu', name):5.2f} x")
    print(f"ptcc peak RSS    {mib(peak)} (ru_maxrss, max of {args.repeat}); limit 64 MiB + weights = {mib(limit)}")
    print(f"  sampled peaks  RssAnon {mib(sampled['RssAnon'])} (heap etc.), RssFile {mib(sampled['RssFile'])} "
          f"(mapped file pages), VmRSS {mib(sampled['VmRSS'])}")
    ok = wall_cp <= args.target and peak <= limit
    print("PASS" if ok else "FAIL")
    return ok


def compare_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not os.access(path, os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH of an executable ptcc")
    return name, path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptcc", default=os.path.join(os.environ.get("PTCC_BUILDDIR") or here(), "src", "ptcc"))
    parser.add_argument("--model", action="append", help="a torchvision model (default: resnet50); repeatable")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--dir", help="where outputs go (default: a temporary directory beside the log)")
    parser.add_argument("--onnx", action="store_true", help="compile the model's ONNX file, against cp of it")
    parser.add_argument("--target", type=float, default=TIME_TARGET, help="the largest ptcc / cp wall ratio")
    parser.add_argument("--compare", action="append", default=[], type=compare_arg, metavar="NAME=PTCC",
                        help="another ptcc build timed in the same rounds, its ratio to cp printed (repeatable)")
    args = parser.parse_args()
    if not os.access(args.ptcc, os.X_OK):
        print(f"no ptcc at {args.ptcc}", file=sys.stderr)
        return 2
    ok = True
    for model in args.model or ["resnet50"]:
        ok = bench_model(args, model) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
