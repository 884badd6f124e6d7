"""The BVLC Caffe worker of tests/lib/parity.py: imports pycaffe once, then runs one forward pass per job.

Started by parity.run_caffe() as `PYTHON bvlc_worker.py CAFFE_PYTHON_DIR TMPDIR` with GLOG_minloglevel=2.  It
answers one JSON line on stdout when ready ({"ready": true} or {"ready": false, "error": ...}), then reads
jobs as JSON lines on stdin and answers each with one JSON line:

  job:    {"dir": D, "prototxt": P, "caffemodel": M or null, "inputs": [[blob, "D/in0.npy"], ...],
           "outputs": [blob, ...] or null, "timeout": seconds}
  answer: {"ok": true, "outputs": [blob, ...]}     the arrays are in D/out0.npy, D/out1.npy, ...
          {"ok": false, "signal": N, "stderr": text}  Caffe aborted (a glog CHECK) or crashed
          {"ok": false, "exit": N, "error": text}     a Python error in the job (a test's mistake)

Each job runs in a forked child, so a CHECK abort kills only the child; the child's stdout and stderr go
to D/stderr.txt.  Without "outputs" the outputs are OpenCV's unconnected outputs (see net_outputs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import traceback
from typing import Optional

CHILD_ERROR = 3   # the child's exit status after a Python exception (written to D/error.txt)


def net_outputs(net) -> list[str]:
    """OpenCV's unconnected outputs: for each layer none of whose tops a later layer reads, in the net's
    order, its first top (a Slice's discarded part beside a used part is no output)."""
    last_read: dict[str, int] = {}
    for i, name in enumerate(net._layer_names):
        for b in net.bottom_names[name]:
            last_read[b] = i
    outs = []
    for i, name in enumerate(net._layer_names):
        tops = list(net.top_names[name])
        if tops and all(last_read.get(t, -1) <= i for t in tops):
            outs.append(tops[0])
    return outs


def forward(caffe, np, job: dict) -> list[str]:
    """Load the net, feed the inputs, run forward, save the outputs; returns their blob names."""
    if job["caffemodel"]:
        net = caffe.Net(job["prototxt"], caffe.TEST, weights=job["caffemodel"])
    else:
        net = caffe.Net(job["prototxt"], caffe.TEST)
    arrays = [(name, np.load(path)) for name, path in job["inputs"]]
    reshaped = False
    for name, a in arrays:
        if name not in net.blobs:
            raise KeyError(f"input {name!r} is not a blob of the net; blobs: {list(net.blobs)[:20]}")
        if tuple(net.blobs[name].data.shape) != a.shape:
            net.blobs[name].reshape(*a.shape)
            reshaped = True
    if reshaped:
        net.reshape()
    for name, a in arrays:
        net.blobs[name].data[...] = a
    net.forward()
    names = job["outputs"] or net_outputs(net)
    for i, name in enumerate(names):
        if name not in net.blobs:
            raise KeyError(f"output {name!r} is not a blob of the net")
        np.save(os.path.join(job["dir"], f"out{i}.npy"), np.array(net.blobs[name].data, dtype=np.float32))
    return names


def child(caffe, np, job: dict) -> None:
    """In the forked child: never returns."""
    status = CHILD_ERROR
    try:
        fd = os.open(os.path.join(job["dir"], "stderr.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        signal.alarm(int(job.get("timeout") or 0))
        names = forward(caffe, np, job)
        with open(os.path.join(job["dir"], "outputs.json"), "w") as f:
            json.dump(names, f)
        status = 0
    except BaseException:
        try:
            with open(os.path.join(job["dir"], "error.txt"), "w") as f:
                f.write(traceback.format_exc())
        except BaseException:
            pass
    finally:
        os._exit(status)


def read_text(path: str, limit: int = 20000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


def run_job(caffe, np, job: dict) -> dict:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        child(caffe, np, job)
    _, status = os.waitpid(pid, 0)
    d = job["dir"]
    if os.WIFSIGNALED(status):
        return {"ok": False, "signal": os.WTERMSIG(status), "stderr": read_text(os.path.join(d, "stderr.txt"))}
    code = os.WEXITSTATUS(status)
    if code != 0:
        return {"ok": False, "exit": code, "error": read_text(os.path.join(d, "error.txt"))
                or read_text(os.path.join(d, "stderr.txt"))}
    with open(os.path.join(d, "outputs.json")) as f:
        return {"ok": True, "outputs": json.load(f)}


def answer(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def import_caffe(python_dir: str) -> tuple[Optional[object], Optional[object], str]:
    sys.path.insert(0, python_dir)
    try:
        import numpy as np
        import caffe
        caffe.set_mode_cpu()
    except BaseException as e:   # an ImportError, or a shared library that does not load
        return None, None, f"{type(e).__name__}: {e}"
    return caffe, np, ""


def serve(python_dir: str) -> int:
    caffe, np, why = import_caffe(python_dir)
    answer({"ready": caffe is not None, "error": why})
    if caffe is None:
        return 1
    for line in sys.stdin:
        if line.strip():
            answer(run_job(caffe, np, json.loads(line)))
    return 0


def main() -> int:
    """Serve until stdin closes, then remove TMPDIR (the jobs' folders), also when the test process was
    killed and could not."""
    try:
        return serve(sys.argv[1])
    finally:
        if len(sys.argv) > 2:
            shutil.rmtree(sys.argv[2], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
