"""Run a compiled Caffe model in OpenCV dnn and compare it with PyTorch's output; validate what ptcc wrote.

The criterion of design.md: max |Δ| ≤ 1e-4 · max(1, max |reference|), in float32.

The helpers every back-end test uses:

- require_tools(): fail (CI=true) or skip (exit 77) unless torch, cv2 and protoc are all there.
- compile_ok(log, prototxt, *args): run ptcc, raise AssertionError with its stderr unless it exits 0,
  then validate() what it wrote.
- validate(prototxt, caffemodel): `protoc --encode=caffe.NetParameter` accepts the text;
  `protoc --decode=caffe.NetParameter` accepts the binary (files up to PROTOC_DECODE_LIMIT bytes; larger
  ones are walked by this module's own wire-format reader, which is exact about structure but does not
  print 10^8 floats as text; PTCC_PROTOC_DECODE_ALL=1 decodes every one with protoc); the caffemodel's
  layers, less their blobs, are the prototxt's layers byte for byte; and the net obeys the Caffe load-time
  rules of docs/runtime-facts.md S7 (one producer per top unless in place, no in-place Reshape/Flatten, every
  bottom produced earlier, unique layer names, blob counts and shapes of BatchNorm/Scale/Convolution/
  InnerProduct, no empty `shape`, only layer types portable to BVLC Caffe 1.0 and OpenCV 4.6).
- run_opencv(prototxt, caffemodel, inputs, names): forward in OpenCV; the outputs are the blobs that no
  layer consumes, in the net's order.

BVLC Caffe, the second runtime: target `caffe` (and `caffe-master`) must be exact in OpenCV and in BVLC
Caffe (built by ../shared/runtimes/bvlc-caffe/build into $BVLC_CAFFE, default /opt/bvlc-caffe).

- bvlc_available(): pycaffe imports (checked once, by the worker below).
- require_bvlc(): True when available; else fail in CI (CI=true), or print one note and return False
  (the BVLC half of each test is skipped).
- run_caffe(prototxt, caffemodel, inputs, input_names, output_names=None): forward once in BVLC Caffe
  (CPU); by default returns the outputs run_opencv() returns; raises CaffeRefused with Caffe's
  fatal message when a CHECK aborts (Caffe refuses at load time what OpenCV lets pass).  One worker
  process per test process (tests/lib/bvlc_worker.py) imports caffe once and forks a child per net.
- run_named(runtime, ...): OpenCV or BVLC by name, for tests that compare in both (RUNTIMES).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from typing import IO, Optional, Sequence

import numpy as np

import ptcctest

TOLERANCE = 1e-4

# protoc --decode prints every float as text: ~0.1 s per MB (a 9 MB SSDlite model: 1 s, and the family
# tests write dozens of such nets), minutes for vgg11_bn's 500 MB.  Larger files get this module's own
# wire-format walk alone (every field's tag, wire type and length, the layers byte-equal to the text's).
PROTOC_DECODE_LIMIT = 2 << 20

# Layer types that stock BVLC Caffe 1.0 and Debian's OpenCV 4.6 both load and compute as Caffe does
# (docs/runtime-facts.md S1): the portable target `caffe` must emit only these.
PORTABLE_TYPES = {
    "Input", "Convolution", "Deconvolution", "InnerProduct", "BatchNorm", "Scale", "ReLU", "PReLU", "ELU",
    "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log", "Softmax", "Pooling", "Slice", "Concat",
    "Eltwise", "Reshape", "Flatten", "Dropout", "Split", "Crop", "MVN", "Silence",
}


# --- tools ----------------------------------------------------------------------------------------

def require_tools() -> None:
    """Exit the test process unless torch, cv2 and protoc are all usable: fail in CI, skip elsewhere."""
    ptcctest.require_torch()
    missing = []
    try:
        import cv2  # noqa: F401
    except ImportError:
        missing.append(f"cv2 (python3-opencv) for {sys.executable}")
    if shutil.which("protoc") is None:
        missing.append("protoc (protobuf-compiler)")
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        sys.exit(1 if os.environ.get("CI") == "true" else ptcctest.EXIT_SKIP)


def ptcc_binary() -> str:
    return os.path.join(ptcctest.BUILDDIR, "src", "ptcc")


def caffe_proto() -> str:
    return os.path.join(ptcctest.SRCDIR, "src", "proto", "caffe.proto")


def caffemodel_of(prototxt: str) -> str:
    return os.path.splitext(prototxt)[0] + ".caffemodel"


def net_key(prototxt: str) -> str:
    """The net's identity: its text without comment lines, and its weights.  Two nets with one key run
    alike in every runtime (same layers, names, params and blobs): the tests run such a net once."""
    import hashlib

    h = hashlib.sha256()
    with open(prototxt, "rb") as f:
        h.update(b"".join(l for l in f if not l.startswith(b"#")))
    with open(caffemodel_of(prototxt), "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def compile_log(log: str, prototxt: str, *args: str) -> subprocess.CompletedProcess:
    """Run `ptcc LOG -o PROTOTXT ARGS...`."""
    return subprocess.run([ptcc_binary(), log, "-o", prototxt, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C", NO_COLOR="1"))


# The layer types target opencv adds to the portable set (src/layers.def): the validator calls them not
# portable, which is what target opencv allows.
OPENCV_OWN_TYPES = {"ReLU6", "Swish", "HardSwish"}


def opencv_allowed(problems: list[str]) -> list[str]:
    """validate()'s problems less the portability of target opencv's own layer types."""
    return [p for p in problems if not any(f"({t})" in p and "not portable" in p for t in OPENCV_OWN_TYPES)]


def compile_ok(log: str, prototxt: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Compile; raise AssertionError with ptcc's stderr unless it succeeded; validate what it wrote (for
    --target=opencv, its own layer types allowed)."""
    r = compile_log(log, prototxt, *args)
    if r.returncode != 0:
        raise AssertionError(f"ptcc {os.path.basename(log)} {' '.join(args)} exited {r.returncode}:\n"
                             f"{r.stderr[:4000]}")
    if check:
        validate_ok(prototxt, *args)
    return r


def validate_ok(prototxt: str, *args: str) -> None:
    """compile_ok's check of what `ptcc ... args` wrote: raise AssertionError unless validate() passes
    (for --target=opencv, its own layer types allowed)."""
    model = None if "--no-weights" in args else caffemodel_of(prototxt)
    if "-w" in args:
        model = args[args.index("-w") + 1]
    problems = validate(prototxt, model)
    if "--target=opencv" in args:
        problems = opencv_allowed(problems)
    if problems:
        raise AssertionError(f"{prototxt} ({' '.join(args)}):\n  " + "\n  ".join(problems[:30]))


# --- validation -------------------------------------------------------------------------------------

def protoc(mode: str, data_path: str, out=subprocess.PIPE) -> subprocess.CompletedProcess:
    proto = caffe_proto()
    with open(data_path, "rb") as f:
        return subprocess.run(["protoc", f"--{mode}=caffe.NetParameter", "-I", os.path.dirname(proto),
                               os.path.basename(proto)], stdin=f, stdout=out, stderr=subprocess.PIPE)


def validate(prototxt: str, caffemodel: Optional[str] = None) -> list[str]:
    """Everything design.md's Verification asks of an emitted model; returns the problems found."""
    problems: list[str] = []
    if not os.path.isfile(caffe_proto()):
        return [f"{caffe_proto()} does not exist"]
    r = protoc("encode", prototxt)
    if r.returncode != 0:
        return [f"protoc --encode rejects {prototxt}: {r.stderr.decode(errors='replace').strip()[:2000]}"]
    text_net = r.stdout
    try:
        layers = parse_net(text_net)
    except ValueError as e:
        return [f"{prototxt}: encoded text does not parse as a NetParameter: {e}"]
    problems += lint(layers, with_blobs=False)
    if caffemodel is None:
        return problems
    size = os.path.getsize(caffemodel)
    if size <= PROTOC_DECODE_LIMIT or os.environ.get("PTCC_PROTOC_DECODE_ALL") == "1":
        r = protoc("decode", caffemodel, out=subprocess.DEVNULL)
        if r.returncode != 0:
            problems.append(f"protoc --decode rejects {caffemodel}: "
                            f"{r.stderr.decode(errors='replace').strip()[:2000]}")
            return problems
    import mmap
    with open(caffemodel, "rb") as f:
        if size == 0:
            return problems + [f"{caffemodel} is empty"]
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        problems += _compare_model(prototxt, caffemodel, layers, memoryview(data))
    finally:
        try:
            data.close()
        except BufferError:  # a slice is still referenced somewhere; the GC unmaps it later
            pass
    return problems


def _compare_model(prototxt: str, caffemodel: str, layers: list, data) -> list[str]:
    problems: list[str] = []
    try:
        mlayers = parse_net(data)
    except ValueError as e:
        return [f"{caffemodel}: not a NetParameter: {e}"]
    # the same NetParameter: compare each layer's fields other than blobs, byte for byte
    if [l.name for l in mlayers] != [l.name for l in layers]:
        return [f"{caffemodel}: layers {[l.name for l in mlayers][:8]}... differ from the "
                f"prototxt's {[l.name for l in layers][:8]}..."]
    for a, b in zip(layers, mlayers):
        if a.without_blobs != b.without_blobs:
            problems.append(f"{caffemodel}: layer {a.name!r} differs from the prototxt's "
                            "(fields other than blobs)")
        if a.blobs:
            problems.append(f"{prototxt}: layer {a.name!r} has blobs in the text")
    if not problems:
        problems += lint(mlayers, with_blobs=True)
    return problems


# --- a minimal protobuf wire reader for caffe.NetParameter -------------------------------------------

def _varint(buf, i: int) -> tuple[int, int]:
    shift = 0
    value = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf) -> list[tuple[int, int, object, int, int]]:
    """(number, wire type, value, start, end) of each field of one message; values of type 2 are slices."""
    out = []
    i = 0
    n = len(buf)
    while i < n:
        start = i
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError(f"field number 0 at byte {start}")
        if wt == 0:
            value, i = _varint(buf, i)
        elif wt == 1:
            if i + 8 > n:
                raise ValueError("truncated fixed64")
            value = bytes(buf[i:i + 8])
            i += 8
        elif wt == 5:
            if i + 4 > n:
                raise ValueError("truncated fixed32")
            value = bytes(buf[i:i + 4])
            i += 4
        elif wt == 2:
            length, i = _varint(buf, i)
            if i + length > n:
                raise ValueError(f"field {num}: length {length} runs past the end")
            value = buf[i:i + length]
            i += length
        else:
            raise ValueError(f"wire type {wt} at byte {start}")
        out.append((num, wt, value, start, i))
    return out


def _packed_varints(buf) -> list[int]:
    vals = []
    i = 0
    while i < len(buf):
        v, i = _varint(buf, i)
        vals.append(v - (1 << 64) if v >= 1 << 63 else v)
    return vals


class Blob:
    def __init__(self, buf) -> None:
        self.shape: Optional[list[int]] = None   # None: no shape field
        self.legacy = [None, None, None, None]
        self.count = 0
        self.data: Optional[memoryview] = None
        for num, wt, v, _, _ in fields(buf):
            if num == 7 and wt == 2:
                dims = []
                for n2, w2, v2, _, _ in fields(v):
                    if n2 == 1 and w2 == 2:
                        dims += _packed_varints(v2)
                    elif n2 == 1 and w2 == 0:
                        dims.append(v2)
                self.shape = dims
            elif num == 5 and wt == 2:
                if len(v) % 4:
                    raise ValueError("packed float data of a length not a multiple of 4")
                self.count += len(v) // 4
                self.data = v
            elif num == 5 and wt == 5:
                raise ValueError("blob data is not packed (caffe.proto: [packed = true])")
            elif num in (1, 2, 3, 4) and wt == 0:
                self.legacy[num - 1] = v
            elif num in (8, 9):
                raise ValueError("double_data/double_diff: OpenCV reads only float data")

    def array(self) -> np.ndarray:
        a = np.frombuffer(self.data, dtype="<f4") if self.data is not None else np.zeros(0, np.float32)
        return a.reshape(self.shape) if self.shape else a


class Layer:
    def __init__(self, buf) -> None:
        self.name = ""
        self.type = ""
        self.bottom: list[str] = []
        self.top: list[str] = []
        self.blobs: list[Blob] = []
        self.params: dict[int, list] = {}   # field number -> list of raw values (sub-messages as slices)
        kept = []
        for num, wt, v, s, e in fields(buf):
            if num == 1:
                self.name = bytes(v).decode()
            elif num == 2:
                self.type = bytes(v).decode()
            elif num == 3:
                self.bottom.append(bytes(v).decode())
            elif num == 4:
                self.top.append(bytes(v).decode())
            elif num == 7:
                self.blobs.append(Blob(v))
            if num != 7:
                kept.append(bytes(buf[s:e]))
                if num >= 100:
                    self.params.setdefault(num, []).append(bytes(v) if wt == 2 else v)
        self.without_blobs = b"".join(kept)

    def param(self, field: int) -> dict[int, list]:
        """One *_param sub-message as {field: [raw values]}."""
        out: dict[int, list] = {}
        for raw in self.params.get(field, []):
            for num, wt, v, _, _ in fields(raw):
                out.setdefault(num, []).append(bytes(v) if wt == 2 else v)
        return out


def parse_net(buf) -> list[Layer]:
    layers = []
    for num, wt, v, _, _ in fields(buf):
        if num == 100 and wt == 2:
            layers.append(Layer(v))
        elif num == 2:
            raise ValueError("V1 `layers` field used")
    return layers


# field numbers of caffe.proto (BVLC)
CONVOLUTION_PARAM, INNER_PRODUCT_PARAM, BATCH_NORM_PARAM, SCALE_PARAM = 106, 117, 139, 142


def lint(layers: list[Layer], with_blobs: bool) -> list[str]:
    """Caffe's load-time rules (docs/runtime-facts.md S4-S7) that OpenCV alone would not catch."""
    problems = []
    names = set()
    produced: dict[str, str] = {}
    for l in layers:
        where = f"layer {l.name!r} ({l.type})"
        if not l.name:
            problems.append(f"a {l.type} layer has no name")
        if l.name in names:
            problems.append(f"{where}: duplicate layer name")
        names.add(l.name)
        if l.type not in PORTABLE_TYPES:
            problems.append(f"{where}: type not portable to BVLC Caffe 1.0 and OpenCV 4.6")
        for b in l.bottom:
            if b not in produced:
                problems.append(f"{where}: bottom {b!r} is not produced by an earlier layer")
        for t in l.top:
            in_place = t in l.bottom
            if in_place and l.type in ("Reshape", "Flatten", "Concat", "Slice", "Eltwise", "Pooling",
                                       "Convolution", "InnerProduct", "Softmax"):
                problems.append(f"{where}: cannot run in place (top {t!r} == bottom)")
            if t in produced and not in_place:
                problems.append(f"{where}: top {t!r} is already produced by {produced[t]!r}")
            produced[t] = l.name
        if not with_blobs:
            continue
        for i, b in enumerate(l.blobs):
            if b.shape == [] and all(d is None for d in b.legacy):
                problems.append(f"{where}: blob {i} has an empty shape (crashes OpenCV; omit the field)")
        nb = len(l.blobs)
        if l.type == "BatchNorm":
            if nb != 3:
                problems.append(f"{where}: {nb} blobs; BVLC needs 3 (mean, var, scale factor)")
            else:
                if b_shape(l.blobs[2]) != [1]:
                    problems.append(f"{where}: blob 2 shape {b_shape(l.blobs[2])}, must be [1]")
                c = b_shape(l.blobs[0])
                if len(c) != 1 or b_shape(l.blobs[1]) != c:
                    problems.append(f"{where}: mean/var shapes {c} {b_shape(l.blobs[1])}")
        elif l.type == "Scale":
            p = l.param(SCALE_PARAM)
            bias = bool(p.get(4, [0])[-1])
            want = (1 if len(l.bottom) == 1 else 0) + bias
            if nb != want:
                problems.append(f"{where}: {nb} blobs, want {want} (bias_term {bias})")
        elif l.type == "Convolution":
            p = l.param(CONVOLUTION_PARAM)
            bias = bool(p.get(2, [1])[-1])
            if nb != 1 + bias:
                problems.append(f"{where}: {nb} blobs with bias_term {bias}")
            elif len(b_shape(l.blobs[0])) != 4:
                problems.append(f"{where}: weight shape {b_shape(l.blobs[0])} is not 4-D")
            num_output = p.get(1, [None])[-1]
            if nb and b_shape(l.blobs[0])[:1] != [num_output]:
                problems.append(f"{where}: weight {b_shape(l.blobs[0])} vs num_output {num_output}")
        elif l.type == "InnerProduct":
            p = l.param(INNER_PRODUCT_PARAM)
            bias = bool(p.get(2, [1])[-1])
            if nb != 1 + bias:
                problems.append(f"{where}: {nb} blobs with bias_term {bias}")
            elif len(b_shape(l.blobs[0])) != 2:
                problems.append(f"{where}: weight shape {b_shape(l.blobs[0])} is not 2-D (BVLC checks)")
        elif l.type in ("ReLU", "Pooling", "Eltwise", "Concat", "Slice", "Reshape", "Flatten", "Softmax",
                        "Sigmoid", "TanH", "Power", "Input", "Dropout") and nb:
            problems.append(f"{where}: {nb} blobs on a layer that has none")
        for i, b in enumerate(l.blobs):
            shape = b_shape(b)
            if shape and int(np.prod(shape)) != b.count:
                problems.append(f"{where}: blob {i} shape {shape} holds {b.count} floats")
    return problems


def b_shape(b: Blob) -> list[int]:
    if b.shape is not None:
        return b.shape
    if any(d is not None for d in b.legacy):
        return [d or 1 for d in b.legacy]
    return []


def caffemodel_layers(path: str) -> list[Layer]:
    with open(path, "rb") as f:
        return parse_net(f.read())


def prototxt_layers(path: str) -> list[Layer]:
    r = protoc("encode", path)
    if r.returncode != 0:
        raise AssertionError(r.stderr.decode(errors="replace"))
    return parse_net(r.stdout)


# --- the zoo -----------------------------------------------------------------------------------------

def zoo_files(name: str) -> tuple[str, str]:
    """NAME.log and NAME.io.safetensors written by tests/recorder/test_zoo.py; recorded here (the same
    way, the same seeds) when absent, e.g. when a back-end test runs alone."""
    zoo = ptcctest.out_dir("zoo")
    log = os.path.join(zoo, name + ".log")
    io = os.path.join(zoo, name + ".io.safetensors")
    if not all(os.path.exists(p) for p in (log, io, os.path.join(zoo, name + ".safetensors"))):
        ptcctest.record_zoo(name)
    return log, io


# --- safetensors and OpenCV --------------------------------------------------------------------------

def read_safetensors(path: str) -> dict[str, np.ndarray]:
    dtypes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw, dtype=dtypes[info["dtype"]], count=(b - a) // np.dtype(
            dtypes[info["dtype"]]).itemsize, offset=8 + n + a).reshape(info["shape"])
    return out


def run_opencv(prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
               input_names: Sequence[str]) -> list[np.ndarray]:
    """Forward the net in OpenCV dnn; returns the unconnected outputs in the net's order."""
    return run_opencv_named(prototxt, caffemodel, inputs, input_names)[1]


def opencv_net(prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray] = (),
               input_names: Sequence[str] = ()):
    """The net read by OpenCV dnn (its own backend, on the CPU), its inputs set."""
    import cv2

    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel) if caffemodel else cv2.dnn.readNetFromCaffe(prototxt)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    for name, x in zip(input_names, inputs):
        net.setInput(np.ascontiguousarray(x, dtype=np.float32), name)
    return net


def run_opencv_named(prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
                     input_names: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    net = opencv_net(prototxt, caffemodel, inputs, input_names)
    names = list(net.getUnconnectedOutLayersNames())
    outs = net.forward(names)
    return names, [np.array(o) for o in outs]


def run_opencv_outputs(prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
                       input_names: Sequence[str], outputs: Sequence[str]) -> list[np.ndarray]:
    """The named outputs in OpenCV dnn, whether or not another layer reads them (run_opencv has the
    unconnected ones only); a name is a layer's, whose first top it returns (an ONNX output names its
    blob and the layer writing it)."""
    net = opencv_net(prototxt, caffemodel, inputs, input_names)
    return [np.array(o) for o in net.forward(list(outputs))]


def error(got: np.ndarray, want: np.ndarray) -> float:
    """max |Δ| relative to max(1, max |reference|); inf when the shapes differ."""
    got = np.asarray(got, dtype=np.float32)
    want = np.asarray(want, dtype=np.float32)
    if got.size != want.size:
        return float("inf")
    got = got.reshape(want.shape)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |Δ| / max |reference|: scale-free, so an output that is tiny but wrong cannot pass."""
    got = np.asarray(got, dtype=np.float64).reshape(np.shape(want))
    want = np.asarray(want, dtype=np.float64)
    peak = float(np.max(np.abs(want))) if want.size else 0.0
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    return diff / peak if peak else (0.0 if diff == 0 else float("inf"))


def shape_error(got: np.ndarray, want: np.ndarray, runtime: str = "opencv") -> Optional[str]:
    """None when the runtime's output has PyTorch's shape.  OpenCV has no 1-D Mat: a 1-D result comes back
    as (1, n) or (n, 1), which passes when the element count agrees; BVLC Caffe's blobs keep every shape."""
    if (runtime == "opencv" and np.ndim(want) < 2 and np.ndim(got) == 2
            and np.size(got) == np.size(want)):
        return None
    if tuple(np.shape(got)) != tuple(np.shape(want)):
        return f"shape {tuple(np.shape(got))}, PyTorch {tuple(np.shape(want))}"
    return None


# --- BVLC Caffe --------------------------------------------------------------------------------------

BVLC_DEFAULT = "/opt/bvlc-caffe"
# pycaffe is built for Debian's Python (../shared/runtimes/bvlc-caffe/build); BVLC_PYTHON overrides it.
BVLC_PYTHON = os.environ.get("BVLC_PYTHON") or "/usr/bin/python3"
BVLC_TIMEOUT = 900        # seconds for one forward pass (vgg11_bn loads 500 MB)
RUNTIMES = ("opencv", "bvlc")


class CaffeRefused(Exception):
    """BVLC Caffe refused the net or crashed on it; the message is Caffe's fatal ("F") log lines."""


class _Worker:
    """tests/lib/bvlc_worker.py: imports caffe once, forks a child per forward pass (see its docstring).
    It belongs to the process that started it: a forked copy of the test process starts its own."""

    def __init__(self, python_dir: str) -> None:
        self.owner = os.getpid()
        self.tmp = tempfile.mkdtemp(prefix="ptcc-bvlc-")
        self.jobs = 0
        env = dict(os.environ, GLOG_minloglevel="2")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bvlc_worker.py")
        self.proc = subprocess.Popen([BVLC_PYTHON, script, python_dir, self.tmp], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=self.tmp)
        hello = self.receive()
        if hello is None:
            self.error = f"the worker exited with status {self.proc.returncode}"
        else:
            self.error = "" if hello.get("ready") else hello.get("error") or "the worker did not start"

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def receive(self) -> Optional[dict]:
        """The next answer; None when the worker has exited."""
        line = self.stdout().readline()
        if not line:
            self.proc.wait()
            return None
        return json.loads(line)

    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def run(self, job: dict) -> Optional[dict]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        return self.receive()

    def job_dir(self) -> str:
        self.jobs += 1
        d = os.path.join(self.tmp, f"job{self.jobs}")
        os.mkdir(d)
        return d

    def stop(self) -> None:
        if self.owner != os.getpid():
            return
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


_worker: Optional[_Worker] = None
_bvlc_missing: Optional[str] = None   # why BVLC Caffe is not usable, once known


def bvlc_python_dir() -> str:
    return os.path.join(os.environ.get("BVLC_CAFFE") or BVLC_DEFAULT, "python")


def _stop_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


atexit.register(_stop_worker)


def _bvlc_worker() -> Optional[_Worker]:
    """The running worker, started (or restarted, if it died) here; None when pycaffe does not import."""
    global _worker, _bvlc_missing
    if _worker is not None and _worker.alive():
        return _worker
    _stop_worker()
    if _bvlc_missing is not None:
        return None
    pydir = bvlc_python_dir()
    if not os.path.isfile(os.path.join(pydir, "caffe", "__init__.py")):
        _bvlc_missing = (f"no pycaffe in {pydir} (build it with ../shared/runtimes/bvlc-caffe/build, "
                         "or set BVLC_CAFFE to its prefix)")
        return None
    if not os.access(BVLC_PYTHON, os.X_OK):
        _bvlc_missing = f"{BVLC_PYTHON} (the Python pycaffe is built for) is not there"
        return None
    _worker = _Worker(pydir)
    if _worker.error:
        _bvlc_missing = f"{BVLC_PYTHON} cannot import caffe from {pydir}: {_worker.error}"
        _stop_worker()
        return None
    return _worker


def bvlc_available() -> bool:
    """pycaffe imports (from $BVLC_CAFFE/python, default /opt/bvlc-caffe/python) in BVLC_PYTHON."""
    return _bvlc_worker() is not None


def require_bvlc() -> bool:
    """True when BVLC Caffe is usable.  Otherwise: in CI (CI=true) print why and exit 1, for a test whose
    tool is missing fails in CI; elsewhere print one note and return False (the BVLC half is skipped)."""
    if bvlc_available():
        return True
    if os.environ.get("CI") == "true":
        print(f"missing: BVLC Caffe: {_bvlc_missing}", file=sys.stderr)
        sys.exit(1)
    print(f"BVLC half skipped: {_bvlc_missing}", file=sys.stderr)
    return False


_GLOG_LINE = re.compile(r"^([IWEF])\d{4}(?:\d{4})? \d\d:\d\d:\d\d\.\d+\s+\d+ (.*)$")


def caffe_message(stderr: str, sig: int) -> str:
    """Caffe's fatal lines ("net.cpp:137] Check failed: ..."), then its error lines (a protobuf parse
    error comes before the CHECK that reports it); the last lines of stderr when there is no F line."""
    fatal: list[str] = []
    errors: list[str] = []
    for line in stderr.splitlines():
        m = _GLOG_LINE.match(line)
        if m and m[1] == "F":
            fatal.append(m[2])
        elif (m and m[1] == "E") or line.startswith("[libprotobuf ERROR"):
            errors.append(m[2] if m else line)
    if not fatal:
        tail = "\n".join(stderr.strip().splitlines()[-10:])
        return f"BVLC Caffe died of signal {sig}" + (f":\n{tail}" if tail else " (no message)")
    return "\n".join(fatal + errors)


def run_caffe(prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
              input_names: Sequence[str], output_names: Optional[Sequence[str]] = None) -> list[np.ndarray]:
    """Forward the net once in BVLC Caffe (CPU).  Returns the blobs named in output_names, by default the
    net's outputs as run_opencv() has them: the first top of each layer none of whose tops a later layer
    reads, in the net's order.  Raises CaffeRefused when Caffe aborts (a CHECK at load time or in
    forward)."""
    return run_caffe_named(prototxt, caffemodel, inputs, input_names, output_names)[1]


def run_caffe_named(prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
                    input_names: Sequence[str], output_names: Optional[Sequence[str]] = None
                    ) -> tuple[list[str], list[np.ndarray]]:
    """run_caffe(), with the output blobs' names."""
    for _ in range(2):
        worker = _bvlc_worker()
        if worker is None:
            raise RuntimeError(f"BVLC Caffe is not available: {_bvlc_missing}")
        d = worker.job_dir()
        try:
            job = _caffe_job(d, prototxt, caffemodel, inputs, input_names, output_names)
            reply = worker.run(job)
            if reply is not None:
                return _caffe_reply(d, reply)
            _stop_worker()   # the worker itself died under this job (not Caffe's child): once more, anew
        finally:
            shutil.rmtree(d, ignore_errors=True)
    raise RuntimeError(f"the BVLC worker died twice on {prototxt}")


def _caffe_job(d: str, prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
               input_names: Sequence[str], output_names: Optional[Sequence[str]]) -> dict:
    if len(inputs) != len(input_names):
        raise ValueError(f"{len(inputs)} inputs for {len(input_names)} names")
    feeds = []
    for i, (name, x) in enumerate(zip(input_names, inputs)):
        path = os.path.join(d, f"in{i}.npy")
        np.save(path, np.ascontiguousarray(x, dtype=np.float32))
        feeds.append([name, path])
    return {"dir": d, "prototxt": os.path.abspath(prototxt),
            "caffemodel": os.path.abspath(caffemodel) if caffemodel else None, "inputs": feeds,
            "outputs": list(output_names) if output_names is not None else None, "timeout": BVLC_TIMEOUT}


def _caffe_reply(d: str, reply: dict) -> tuple[list[str], list[np.ndarray]]:
    if reply.get("ok"):
        names = reply["outputs"]
        return names, [np.load(os.path.join(d, f"out{i}.npy")) for i in range(len(names))]
    if reply.get("signal") == 14:   # SIGALRM: the child's alarm(BVLC_TIMEOUT)
        raise RuntimeError(f"BVLC Caffe took more than {BVLC_TIMEOUT} s")
    if "signal" in reply:
        raise CaffeRefused(caffe_message(reply.get("stderr", ""), reply["signal"]))
    if "exit" in reply:
        raise RuntimeError(f"BVLC forward failed (exit {reply['exit']}):\n{reply.get('error', '')}")
    raise RuntimeError(f"BVLC worker: {reply.get('error') or reply}")


def runtimes(target: str = "caffe") -> list[str]:
    """The runtimes a net of `target` must be exact in: OpenCV always; BVLC Caffe too unless the target is
    `opencv` (whose ReLU6/Swish/HardSwish are not BVLC layer types), when it is available.

    PTCC_SANITIZER_RUN=1 (scripts/check-sanitizers, which runs these tests with ptcc built under ASan and
    UBSan to check ptcc itself): OpenCV alone.  BVLC's parity is the normal `make check`'s, which CI runs
    right after; a second BVLC pass there would only check Caffe again, at twice the time."""
    if os.environ.get("PTCC_SANITIZER_RUN") == "1":
        return ["opencv"]
    if target != "opencv" and bvlc_available():
        return list(RUNTIMES)
    return ["opencv"]


def declared_outputs(prototxt: str) -> list[str]:
    """The blobs that ptcc's `# outputs:` line names: the trace's outputs, in the trace's order.  Each
    name is quoted and escaped as in the text format (\\n, \\", octal for other bytes)."""
    import codecs

    with open(prototxt, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            if line.startswith("# outputs:"):
                quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
                return [codecs.escape_decode(q.encode("ascii"))[0].decode("utf-8") for q in quoted]
    raise AssertionError(f"{prototxt} has no '# outputs:' line")


def trace_inputs(log: str) -> list[str]:
    """The trace's input names, in order (ptcc names an unnamed input input<i>)."""
    names: list[str] = []
    with open(log, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'input %\d+(?: "([^"\\]*)")? :', line)
            if m:
                names.append(m[1] or f"input{len(names)}")
    return names


def run_outputs(runtime: str, prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
                input_names: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    """(blob names, values) of the trace's outputs in `runtime`, in the trace's order (declared_outputs),
    also those that other layers read.  OpenCV reads a blob through the layer whose first top it is."""
    blobs = declared_outputs(prototxt)
    if runtime == "bvlc":
        return blobs, run_caffe(prototxt, caffemodel, inputs, input_names, blobs)
    if runtime != "opencv":
        raise ValueError(f"unknown runtime {runtime!r}")
    return blobs, run_opencv_outputs(prototxt, caffemodel, inputs, input_names, opencv_output_layers(prototxt))


def opencv_output_layers(prototxt: str) -> list[str]:
    """The layers through which OpenCV reads the trace's outputs (declared_outputs), in order: each the
    layer whose first top the output blob is."""
    first_top = {l.top[0]: l.name for l in prototxt_layers(prototxt) if l.top}
    blobs = declared_outputs(prototxt)
    missing = [b for b in blobs if b not in first_top]
    if missing:
        raise AssertionError(f"{prototxt}: outputs {missing} are not the first top of a layer (OpenCV cannot "
                             "read them)")
    return [first_top[b] for b in blobs]


def run_named(runtime: str, prototxt: str, caffemodel: Optional[str], inputs: Sequence[np.ndarray],
              input_names: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    """(names, outputs) in `runtime` ("opencv": layer names; "bvlc": blob names)."""
    if runtime == "opencv":
        return run_opencv_named(prototxt, caffemodel, inputs, input_names)
    if runtime == "bvlc":
        return run_caffe_named(prototxt, caffemodel, inputs, input_names)
    raise ValueError(f"unknown runtime {runtime!r}")
