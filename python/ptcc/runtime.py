"""Run a net that ptcc wrote in a Caffe runtime: OpenCV dnn in this process, BVLC Caffe's pycaffe in a
child process (Caffe aborts the process on a failed check; the child's abort becomes a message).

What a runtime needs to know about the net comes from the prototxt ptcc wrote: the Input layers' tops (the
net's inputs, in order), the `# outputs:` line (the trace's outputs, in order), and the note above each
layer (`# run.log:57: %41 = conv2d @ resnet.py:92`, which trace value each top holds).
"""

from __future__ import annotations

import codecs
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

BVLC_DEFAULT = "/opt/bvlc-caffe"


class RuntimeFailure(Exception):
    """The runtime could not load or run the net; the message says why."""


@dataclass
class Held:
    """A trace value that a layer's top holds: the handle and the line that defines it."""

    handle: int
    line: int


@dataclass
class NetLayer:
    name: str
    type: str
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    trace: str = ""          # the note's trace file name ("" without a note)
    line: int = 0            # the note's trace line
    op: str = ""             # the op the layer lowers
    source: str = ""         # the op's Python source position
    holds: list[Optional[Held]] = field(default_factory=list)  # per top


@dataclass
class NetText:
    layers: list[NetLayer]
    outputs: list[str]       # blob names from `# outputs:`
    inputs: list[str]        # the Input layers' tops
    declared: bool = True    # outputs come from a `# outputs:` line, not from the blobs no layer reads

    def writer_of(self, blob: str) -> Optional[NetLayer]:
        """The layer that writes `blob` last (what the blob holds after a forward pass)."""
        last = None
        for layer in self.layers:
            if blob in layer.tops:
                last = layer
        return last


def _unquote(text: str) -> str:
    return codecs.escape_decode(text.encode("utf-8"))[0].decode("utf-8", "replace")


_STRING = r'"((?:[^"\\]|\\.)*)"'
_NOTE = re.compile(r"^# (.*):(\d+): (?:(.*?) = )?(\S+)(?: @ (.*))?$")
_HELD = re.compile(r"^%(\d+)(?: \(line (\d+)\))?$")


def _parse_note(note: str, layer: NetLayer) -> None:
    m = _NOTE.match(note)
    if not m:
        return
    layer.trace, layer.line, layer.op, layer.source = m[1], int(m[2]), m[4], m[5] or ""
    for part in (m[3].split(", ") if m[3] else []):
        h = _HELD.match(part)
        layer.holds.append(Held(int(h[1]), int(h[2] or m[2])) if h else None)


def read_net(prototxt: str) -> NetText:
    """The layers of a prototxt written by ptcc (one field a line, as ptcc prints them)."""
    layers: list[NetLayer] = []
    outputs: list[str] = []
    note = ""
    depth = 0
    with open(prototxt, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if depth == 0 and line.startswith("# outputs:"):
                outputs = [_unquote(q) for q in re.findall(_STRING, line)]
            elif depth == 0 and line.startswith("#"):
                note = line
            elif depth == 0 and line == "layer {":
                layers.append(NetLayer("", ""))
                if note:
                    _parse_note(note, layers[-1])
                note = ""
                depth = 1
            elif depth >= 1 and line.endswith("{"):
                depth += 1
            elif depth >= 1 and line == "}":
                depth -= 1
            elif depth == 1:
                key, _, value = line.partition(": ")
                m = re.fullmatch(_STRING, value)
                if m and key in ("name", "type"):
                    setattr(layers[-1], key, _unquote(m[1]))
                elif m and key in ("bottom", "top"):
                    getattr(layers[-1], key + "s").append(_unquote(m[1]))
    for layer in layers:
        layer.holds += [None] * (len(layer.tops) - len(layer.holds))
    inputs = [l.tops[0] for l in layers if l.type == "Input" and l.tops]
    declared = bool(outputs)
    if not declared:  # not ptcc's, or its comments removed: the blobs no layer reads, in layer order
        read = {b for l in layers for b in l.bottoms}
        for layer in layers:  # but for the cut-off parts of ptcc's Slices
            outputs += [t for t in layer.tops if t not in read and t not in outputs and not t.endswith(".discard")]
    return NetText(layers, outputs, inputs, declared)


# --- OpenCV dnn ----------------------------------------------------------------------------------------


def opencv_available() -> Optional[str]:
    """None when cv2 imports, else why not."""
    try:
        import cv2  # noqa: F401
    except ImportError as e:
        return f"OpenCV's Python module does not import: {e}"
    return None


def run_opencv(prototxt: str, caffemodel: str, net: NetText, inputs: Sequence[np.ndarray],
               layers: Sequence[str]) -> list[np.ndarray]:
    """The first top of each named layer after one forward pass.  OpenCV does not fuse a layer whose
    output is asked for, so every layer's own result is seen."""
    import cv2

    try:
        dnn = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
        dnn.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        dnn.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        for name, x in zip(net.inputs, inputs):
            dnn.setInput(np.ascontiguousarray(x, dtype=np.float32), name)
        return [np.array(o) for o in dnn.forward(list(layers))]
    except cv2.error as e:
        raise RuntimeFailure(f"OpenCV: {str(e).strip()}") from None


# --- BVLC Caffe ------------------------------------------------------------------------------------------


def bvlc_python_dir() -> str:
    return os.path.join(os.environ.get("BVLC_CAFFE") or BVLC_DEFAULT, "python")


_CHILD = r"""
import json, os, sys
os.environ.setdefault("GLOG_minloglevel", "2")
job = json.load(open(sys.argv[1]))
sys.path.insert(0, job["python_dir"])
import numpy as np
import caffe
if job.get("probe"):
    sys.exit(0)
caffe.set_mode_cpu()
net = caffe.Net(job["prototxt"], job["caffemodel"], caffe.TEST)
data = np.load(job["inputs"])
for name in job["input_names"]:
    x = data[name]
    net.blobs[name].reshape(*x.shape)
    net.blobs[name].data[...] = x
net.forward()
np.savez(job["outputs"], **{f"b{i}": net.blobs[b].data.copy() for i, b in enumerate(job["blobs"])})
"""


def _caffe_child(job: dict, timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="ptcc-caffe-") as d:
        path = os.path.join(d, "job.json")
        with open(path, "w") as f:
            json.dump(job, f)
        return subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True,
                              timeout=timeout)


def bvlc_available() -> Optional[str]:
    """None when pycaffe imports (from $BVLC_CAFFE/python, default /opt/bvlc-caffe/python), else why not."""
    python_dir = bvlc_python_dir()
    if not os.path.isdir(python_dir):
        return f"BVLC Caffe's pycaffe is not installed ({python_dir} does not exist)"
    r = _caffe_child({"python_dir": python_dir, "probe": True}, 120)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"pycaffe does not import from {python_dir}: {tail}"
    return None


_GLOG = re.compile(r"^[FE]\d{4} [\d:.]+\s+\d+ \S+\] (.*)$")


def run_caffe(prototxt: str, caffemodel: str, net: NetText, inputs: Sequence[np.ndarray],
              blobs: Sequence[str], timeout: float = 900) -> list[np.ndarray]:
    """The named blobs after one forward pass in BVLC Caffe.  A blob holds its last writer's result."""
    with tempfile.TemporaryDirectory(prefix="ptcc-caffe-") as d:
        feed = os.path.join(d, "inputs.npz")
        np.savez(feed, **{name: np.ascontiguousarray(x, dtype=np.float32) for name, x in zip(net.inputs, inputs)})
        out = os.path.join(d, "outputs.npz")
        job = {"python_dir": bvlc_python_dir(), "prototxt": os.path.abspath(prototxt),
               "caffemodel": os.path.abspath(caffemodel), "inputs": feed, "input_names": net.inputs[:len(inputs)],
               "outputs": out, "blobs": list(blobs)}
        r = _caffe_child(job, timeout)
        if r.returncode != 0:
            fatal = [m[1] for m in map(_GLOG.match, r.stderr.splitlines()) if m]
            tail = fatal[-1] if fatal else (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            raise RuntimeFailure(f"BVLC Caffe: {tail}")
        with np.load(out) as data:
            return [data[f"b{i}"] for i in range(len(blobs))]
