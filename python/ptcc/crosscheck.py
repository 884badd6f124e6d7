"""`ptcc-record --cross-check`: the two recorders must describe the same computation.

Both traces go through `ptcc --emit=log` (the compiler parses, resolves and type-checks each one and
prints it canonically), then through the rewrites below, which make one spelling of what the two
recorders see differently for the same computation: the call recorder sees Python's calls
(`F.adaptive_avg_pool2d(x, 1)`, `x.flatten(1)`, `q @ k`), autograd the C++ ops they ran (`mean`,
a view, `expand`/`bmm`/`view`).  Every rewrite keeps the computation: it names a Python-level op by the
ops PyTorch runs for it.  Scopes and source positions are set aside.

Then the graphs are compared from the outputs backwards: output i of one trace with output i of the
other, each op with the op of the other that computes the same value: the same op, the same arguments,
the same types, parameters by name and constants by value.  The first difference (the earliest line of
the call trace whose operands agree but which does not) is reported with both lines.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any, Optional

# --- reading a canonical log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    text: str  # %N or $name


@dataclass(frozen=True)
class Slice:
    start: Any
    stop: Any
    step: Any


ELLIPSIS = "..."


@dataclass
class Line:
    number: int
    text: str
    results: list[str]
    op: str
    args: list
    kwargs: dict
    types: list[tuple[str, tuple[int, ...]]]


@dataclass
class Trace:
    ops: list[Line] = field(default_factory=list)
    decls: dict[str, tuple[str, str]] = field(default_factory=dict)  # $name -> (param|const, type text)
    inputs: list[str] = field(default_factory=list)
    input_types: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    weights: str = ""


_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<ref>[%$](?:\d+|[\w.\-/]+|"(?:[^"\\]|\\.)*"))'
                    r'|(?P<num>[-+]?(?:inf|nan|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))'
                    r'|(?P<dots>\.\.\.)|(?P<word>[A-Za-z_]\w*)|(?P<punct>[\[\](),=]))')


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"cannot read {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    return bytes(s[1:-1], "utf-8").decode("unicode_escape") if "\\" in s else s[1:-1]


def _items(toks: list[tuple[str, str]], i: int, close: str) -> tuple[list, int]:
    """Comma-separated values from toks[i] up to the punctuation `close`; the index after it."""
    items = []
    while toks[i] != ("punct", close):
        v, i = _value(toks, i)
        items.append(v)
        if toks[i] == ("punct", ","):
            i += 1
    return items, i + 1


def _value(toks: list[tuple[str, str]], i: int) -> tuple[Any, int]:
    kind, text = toks[i]
    if kind == "punct" and text == "[":
        return _items(toks, i + 1, "]")
    if kind == "word" and text == "slice" and toks[i + 1] == ("punct", "("):
        parts, i = _items(toks, i + 2, ")")
        return Slice(*parts), i
    if kind == "str":
        return _unquote(text), i + 1
    if kind == "ref":
        return Ref(text[0] + _unquote(text[1:]) if text[1:2] == '"' else text), i + 1
    if kind == "num":
        return (float(text) if any(c in text for c in ".eEin") else int(text)), i + 1
    if kind == "dots":
        return ELLIPSIS, i + 1
    if kind == "word":
        return {"none": None, "true": True, "false": False}.get(text, text), i + 1
    raise ValueError(f"unexpected {text!r}")


_TYPE = re.compile(r"(\w+)\[([\d,]*)\]")
_OP = re.compile(r"^\s*(?P<res>(?:%\d+|_)(?:, (?:%\d+|_))*) = (?P<op>\w+)\((?P<rest>.*)$")


def parse(text: str) -> Trace:
    t = Trace()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split(None, 1)[0]
        if word in ("param", "const"):
            name, _, typ = line.split(None, 1)[1].rpartition(" : ")
            t.decls[_value(_tokens(name), 0)[0].text] = (word, typ.strip())
        elif word == "input":
            t.inputs.append(line.split()[1])
            dtype, dims = _TYPE.findall(line.rpartition(" : ")[2])[0]
            t.input_types.append((dtype, tuple(int(d) for d in dims.split(",") if d)))
        elif word == "output":
            t.outputs.append(_value(_tokens(line[len("output"):]), 0)[0].text)
        elif word == "weights":
            t.weights = _unquote(line.split(None, 1)[1])
        elif (m := _OP.match(raw)):
            t.ops.append(_op_line(number, raw, m))
    return t


def _op_line(number: int, raw: str, m: re.Match) -> Line:
    rest = m["rest"]
    where = rest.rfind(" @ ")
    if where >= 0 and rest[where + 3:].startswith('"'):
        rest = rest[:where]
    types: list[tuple[str, tuple[int, ...]]] = []
    colon = rest.rfind(") : ")
    if colon >= 0:
        for dtype, dims in _TYPE.findall(rest[colon + 4:]):
            types.append((dtype, tuple(int(d) for d in dims.split(",") if d)))
        rest = rest[:colon + 1]
    toks = _tokens(rest)
    args, kwargs, i = [], {}, 0
    while i < len(toks) and toks[i] != ("punct", ")"):
        if toks[i][0] == "word" and i + 1 < len(toks) and toks[i + 1] == ("punct", "="):
            key = toks[i][1]
            kwargs[key], i = _value(toks, i + 2)
        else:
            v, i = _value(toks, i)
            args.append(v)
        if i < len(toks) and toks[i] == ("punct", ","):
            i += 1
    return Line(number, raw.strip(), [r.strip() for r in m["res"].split(",")], m["op"], args, kwargs, types)


# --- canonical ops -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    op: str
    args: tuple
    kwargs: tuple
    types: tuple
    line: Line


@dataclass(frozen=True)
class Out:
    node: Node
    index: int


IDENTITY = {"dropout", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "contiguous", "clone",
            "detach"}
RESHAPES = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
CASTS = {"float", "double", "type_as", "to"}
WINDOW_PARAMS = {"kernel_size", "stride", "padding", "dilation", "output_padding"}


class Canonical:
    """One trace as a graph of canonical nodes; `value[%N]` is what holds each handle."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.value: dict[str, Any] = {}
        self.nodes: list[Node] = []
        for i, name in enumerate(trace.inputs):
            self.value[name] = ("input", i)
        for line in trace.ops:
            self.add(line)
        self.outputs = [self.ref(Ref(o)) for o in trace.outputs]

    def ref(self, v: Any) -> Any:
        if isinstance(v, Ref):
            if v.text.startswith("$"):
                kind, typ = self.trace.decls[v.text]
                return (kind, v.text if kind == "param" else typ, v.text)
            return self.value[v.text]
        if isinstance(v, list):
            return [self.ref(x) for x in v]
        return v

    def type_of(self, v: Any) -> Optional[tuple[str, tuple[int, ...]]]:
        if isinstance(v, Out):
            return v.node.types[v.index]
        if isinstance(v, tuple) and v[:1] == ("input",):
            return self.trace.input_types[v[1]]
        if isinstance(v, tuple) and v and v[0] in ("param", "const"):
            m = _TYPE.match(self.trace.decls[v[2]][1])
            return (m.group(1), tuple(int(d) for d in m.group(2).split(",") if d)) if m else None
        return None

    def emit(self, op: str, args: list, kwargs: dict, types: list, line: Line) -> Out:
        node = Node(op, _frozen(args), tuple(sorted((k, _frozen(v)) for k, v in kwargs.items())), tuple(types),
                    line)
        self.nodes.append(node)
        return Out(node, 0)

    def reshape(self, x: Any, shape: tuple[int, ...], dtype: str, line: Line) -> Any:
        """reshape(reshape(x)) is reshape(x); a reshape to x's own shape is x."""
        while isinstance(x, Out) and x.node.op == "reshape":
            x = x.node.args[0]
        if self.type_of(x) == (dtype, shape):
            return x
        return self.emit("reshape", [x, list(shape)], {}, [(dtype, shape)], line)

    def add(self, line: Line) -> None:
        op = line.op[:-1] if line.op.endswith("_") and line.op[:-1] in _FUNCTIONAL else line.op
        args = [self.ref(a) for a in line.args]
        kwargs = {k: self.ref(v) for k, v in line.kwargs.items() if k != "inplace"}
        outs = _REWRITES.get(op, _plain)(self, op, args, kwargs, line)
        for name, v in zip(line.results, outs):
            if name != "_":
                self.value[name] = v


def _frozen(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    if isinstance(v, float) and v == int(v) and not math.isinf(v):
        return int(v)  # 6 and 6.0 are one bound
    return v


_FUNCTIONAL = {"relu", "hardtanh", "hardswish", "hardsigmoid", "silu", "sigmoid", "tanh", "leaky_relu", "elu",
               "selu", "clamp", "neg", "add", "sub", "mul", "div", "pow", "bitwise_and", "bitwise_or",
               "bitwise_xor"}


def _plain(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    node = c.emit(op, args, kwargs, line.types, line)
    return [Out(node.node, i) for i in range(len(line.types))] or [node]


def _identity(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    return [args[0]]


def _cast(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    if line.types and c.type_of(args[0]) == line.types[0]:
        return [args[0]]
    return _plain(c, op, args, kwargs, line)


def _as_reshape(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    dtype, shape = line.types[0]
    return [c.reshape(args[0], shape, dtype, line)]


def _expand(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    if line.types and c.type_of(args[0]) == line.types[0]:
        return [args[0]]  # to its own shape: nothing
    return _plain(c, op, args[:1], {"size": list(line.types[0][1])}, line)


def _spatial(v: Any, k: int) -> list:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [v] * k
    if isinstance(v, list) and len(v) == 1 and k > 1:
        return v * k
    return v


def _window(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    """Convolutions and poolings with every window parameter spelt out as a list per spatial dim."""
    k = int(op[-2]) if op[-2].isdigit() else 2
    if op.startswith(("max_pool", "avg_pool")):
        kw = dict(zip(("kernel_size", "stride", "padding"), args[1:]))
        kw.update(kwargs)
        kw.setdefault("padding", 0)
        if kw.get("stride") in (None, []):
            kw["stride"] = kw["kernel_size"]
        if op.startswith("max_pool"):
            kw.setdefault("dilation", 1)
            kw.pop("return_indices", None)
        else:
            kw.setdefault("count_include_pad", True)
            kw.setdefault("divisor_override", None)
        kw.setdefault("ceil_mode", False)
        args = args[:1]
    else:
        kw = dict(kwargs)
        kw.setdefault("groups", 1)
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
            kw.setdefault(name, default)
        if "transpose" in op:
            kw.setdefault("output_padding", 0)
    for name in WINDOW_PARAMS & kw.keys():
        kw[name] = _spatial(kw[name], k)
    types = line.types[:1] if op.startswith("max_pool") else line.types
    node = c.emit(op, args, kw, types, line)
    return [node]


def _batch_norm(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(kwargs)
    kw.pop("momentum", None)  # moves the running statistics in training only; no output depends on it
    kw.setdefault("training", False)
    kw.setdefault("eps", 1e-5)
    return _plain(c, op, args, kw, line)


def _relu6(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    return _plain(c, "hardtanh", args[:1], {"min_val": 0, "max_val": 6}, line)


def _hardtanh(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(zip(("min_val", "max_val"), args[1:]))
    kw.update(kwargs)
    kw.setdefault("min_val", -1)
    kw.setdefault("max_val", 1)
    return _plain(c, "hardtanh", args[:1], kw, line)


def _dims(v: Any, rank: int) -> list[int]:
    dims = [v] if isinstance(v, int) else list(v)
    return sorted(d % rank for d in dims)


def _mean(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(zip(("dim", "keepdim"), args[1:]))
    kw.update(kwargs)
    kw.pop("dtype", None)
    t = c.type_of(args[0])
    if "dim" in kw and kw["dim"] is not None and t is not None:
        kw["dim"] = _dims(kw["dim"], len(t[1]))
    kw.setdefault("keepdim", False)
    return _plain(c, op, args[:1], kw, line)


def _adaptive_avg(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    """adaptive_avg_pool2d to 1×1 is the mean over H and W (PyTorch runs it as that mean)."""
    size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
    if _spatial(size, 2) == [1, 1] and line.types and len(line.types[0][1]) == 4:
        return _plain(c, "mean", args[:1], {"dim": [2, 3], "keepdim": True}, line)
    return _plain(c, op, args[:1], {"output_size": _spatial(size, 2)}, line)


def _adaptive_max(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
    node = c.emit(op, args[:1], {"output_size": _spatial(size, 2)}, line.types[:1], line)
    return [node]


def _linear(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    """linear of an N-D input is linear of its (·, in) reshape, reshaped back (at::linear's own form)."""
    x = args[0]
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    t = c.type_of(x)
    dtype, shape = line.types[0]
    if t is None or len(t[1]) <= 2:
        return _plain(c, op, [x, args[1], bias], {}, line)
    rows = math.prod(t[1][:-1])
    flat = c.reshape(x, (rows, t[1][-1]), dtype, line)
    node = c.emit("linear", [flat, args[1], bias], {}, [(dtype, (rows, shape[-1]))], line)
    return [c.reshape(node, shape, dtype, line)]


def _matmul(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    """matmul of two ≥3-D operands with equal batch dims is bmm of their 3-D reshapes, reshaped back
    (at::matmul's own form); of two matrices, mm."""
    a, b = args[0], args[1]
    ta, tb = c.type_of(a), c.type_of(b)
    dtype, shape = line.types[0]
    if ta and tb and len(ta[1]) == 2 and len(tb[1]) == 2:
        return _plain(c, "mm", [a, b], {}, line)
    if not (ta and tb and len(ta[1]) >= 3 and ta[1][:-2] == tb[1][:-2]):
        return _plain(c, op, args, kwargs, line)
    batch = math.prod(ta[1][:-2])
    a3 = c.reshape(a, (batch, *ta[1][-2:]), dtype, line)
    b3 = c.reshape(b, (batch, *tb[1][-2:]), dtype, line)
    node = c.emit("bmm", [a3, b3], {}, [(dtype, (batch, *shape[-2:]))], line)
    return [c.reshape(node, shape, dtype, line)]


def _split(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    """chunk and split with the sizes of their pieces spelt out."""
    t = c.type_of(args[0])
    dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
    rank = len(t[1]) if t else 1
    dim %= rank
    sizes = [typ[1][dim] for typ in line.types]
    node = c.emit("split", [args[0]], {"sizes": sizes, "dim": dim}, line.types, line)
    return [Out(node.node, i) for i in range(len(line.types))]


def _index(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    """getitem, narrow and select as a chain of one-dim steps: select(dim, i) and slice(dim, a, b, s)."""
    x, t = args[0], c.type_of(args[0])
    if t is None:
        return _plain(c, op, args, kwargs, line)
    dtype, shape = t[0], list(t[1])
    if op == "narrow":
        kw = dict(zip(("dim", "start", "length"), args[1:]))
        kw.update(kwargs)
        dim = kw["dim"] % len(shape)
        steps = [(dim, Slice(kw["start"], kw["start"] + kw["length"], 1))]
    elif op == "select":
        kw = dict(zip(("dim", "index"), args[1:]))
        kw.update(kwargs)
        steps = [(kw["dim"] % len(shape), kw["index"])]
    else:
        index = args[1] if isinstance(args[1], list) else [args[1]]
        if any(isinstance(i, (Out, tuple)) or i is None for i in index) or index.count(ELLIPSIS) > 1:
            return _plain(c, op, args, kwargs, line)
        steps, dim = [], 0
        for pos, i in enumerate(index):
            if i == ELLIPSIS:
                dim = len(shape) - (len(index) - pos - 1)
                continue
            steps.append((dim, i))
            dim += 1
    out, removed = x, 0
    for dim, i in steps:
        d = dim - removed
        if isinstance(i, Slice):
            start, stop, step = _slice_bounds(i, shape[d])
            if (start, stop, step) == (0, shape[d], 1):
                continue
            shape[d] = max(0, -(-(stop - start) // step))
            out = c.emit("slice", [out], {"dim": d, "start": start, "end": stop, "step": step},
                         [(dtype, tuple(shape))], line)
        else:
            del shape[d]
            out = c.emit("select", [out], {"dim": d, "index": i % t[1][dim]}, [(dtype, tuple(shape))], line)
            removed += 1
    return [out]


def _slice_bounds(s: Slice, size: int) -> tuple[int, int, int]:
    step = 1 if s.step is None else s.step
    start = 0 if s.start is None else (s.start + size if s.start < 0 else s.start)
    stop = size if s.stop is None else (s.stop + size if s.stop < 0 else s.stop)
    start = min(max(start, 0), size)
    return start, min(max(stop, start), size), step


def _interpolate(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(zip(("size", "scale_factor", "mode", "align_corners"), args[1:]))
    kw.update(kwargs)
    kw.setdefault("mode", "nearest")
    if kw.get("align_corners") is None:
        kw["align_corners"] = False
    if kw.get("scale_factor") is not None and not kw.get("recompute_scale_factor"):
        kw["scale_factor"] = [float(s) for s in _spatial(kw["scale_factor"], 2)]
        kw.pop("size", None)
    else:
        kw.pop("scale_factor", None)
        kw["size"] = list(line.types[0][1][2:])
    kw.pop("recompute_scale_factor", None)
    kw.pop("antialias", None)
    return _plain(c, "interpolate", args[:1], kw, line)


def _max(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(zip(("dim", "keepdim"), args[1:]))
    kw.update(kwargs)
    kw.setdefault("keepdim", False)
    t = c.type_of(args[0])
    if "dim" in kw and t is not None:
        kw["dim"] %= len(t[1])
    return _plain(c, op, args[:1], kw, line)


def _transpose(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(zip(("dim0", "dim1"), args[1:]))
    kw.update(kwargs)
    rank = len(line.types[0][1])
    return _plain(c, op, args[:1], {"dims": sorted((kw["dim0"] % rank, kw["dim1"] % rank))}, line)


def _softmax(c: Canonical, op: str, args: list, kwargs: dict, line: Line) -> list:
    kw = dict(zip(("dim",), args[1:]))
    kw.update(kwargs)
    kw.pop("dtype", None)
    kw["dim"] %= len(line.types[0][1])
    return _plain(c, op, args[:1], kw, line)


_REWRITES = {
    **{op: _identity for op in IDENTITY},
    **{op: _as_reshape for op in RESHAPES},
    **{op: _cast for op in CASTS},
    **{op: _window for op in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                              "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d",
                              "avg_pool2d", "avg_pool3d")},
    "expand": _expand, "batch_norm": _batch_norm, "relu6": _relu6, "hardtanh": _hardtanh,
    "mean": _mean, "sum": _mean, "amax": _mean, "adaptive_avg_pool2d": _adaptive_avg,
    "adaptive_max_pool2d": _adaptive_max, "linear": _linear,
    "matmul": _matmul, "split": _split, "chunk": _split, "getitem": _index, "narrow": _index,
    "select": _index, "interpolate": _interpolate, "max": _max, "transpose": _transpose,
    "softmax": _softmax, "log_softmax": _softmax,
}


# --- comparing the graphs ---------------------------------------------------------------------------------


@dataclass
class Difference:
    calls: Optional[Line]
    autograd: Optional[Line]
    why: str


class _Compare:
    def __init__(self, a: Canonical, b: Canonical, consts_equal) -> None:
        self.a, self.b = a, b
        self.consts_equal = consts_equal
        self.pairs: dict[tuple[int, int], Optional[Difference]] = {}

    def value(self, x: Any, y: Any) -> Optional[Difference]:
        if isinstance(x, Out) and isinstance(y, Out):
            if x.index != y.index:
                return Difference(x.node.line, y.node.line, "different results of the op")
            return self.node(x.node, y.node)
        if isinstance(x, Out) or isinstance(y, Out):
            return Difference(None, None, f"{_describe(x)} against {_describe(y)}")
        if isinstance(x, tuple) and isinstance(y, tuple) and x[:1] == y[:1] == ("const",):
            return None if x[1] == y[1] and self.consts_equal(x[2], y[2]) else Difference(
                None, None, f"{x[2]} and {y[2]} hold different values")
        if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y) and x and x[0] not in (
                "param", "const", "input"):
            for xi, yi in zip(x, y):
                d = self.value(xi, yi)
                if d:
                    return d
            return None
        return None if x == y else Difference(None, None, f"{_describe(x)} against {_describe(y)}")

    def node(self, x: Node, y: Node) -> Optional[Difference]:
        key = (id(x), id(y))
        if key in self.pairs:
            return self.pairs[key]
        self.pairs[key] = None  # a cycle cannot happen in SSA; this only stops repeated work
        found = self._node(x, y)
        self.pairs[key] = found
        return found

    def _node(self, x: Node, y: Node) -> Optional[Difference]:
        """The first difference among the operands (which an earlier op explains, or which is this op's
        when the operand is a parameter, constant or number), else in the op itself."""
        kx, ky = dict(x.kwargs), dict(y.kwargs)
        operands = list(zip(x.args, y.args)) if len(x.args) == len(y.args) else []
        labels = [f"operand {i + 1}" for i in range(len(operands))]
        for k in sorted(set(kx) & set(ky)):
            if _has_values(kx[k]) or _has_values(ky[k]):
                operands.append((kx[k], ky[k]))
                labels.append(k)
        for label, (xa, ya) in zip(labels, operands):
            d = self.value(xa, ya)
            if d and d.calls is None and d.autograd is None:
                return Difference(x.line, y.line, f"{label}: {d.why}")
            if d:
                return d
        if x.op != y.op:
            return Difference(x.line, y.line, f"op {x.op} against {y.op}")
        if len(x.args) != len(y.args):
            return Difference(x.line, y.line, f"{len(x.args)} arguments against {len(y.args)}")
        for xa, ya in zip(x.args, y.args):
            if not _has_values(xa) and xa != ya:
                return Difference(x.line, y.line, f"argument {_describe(xa)} against {_describe(ya)}")
        if set(kx) != set(ky):
            return Difference(x.line, y.line, "arguments " + ", ".join(sorted(set(kx) ^ set(ky)))
                              + " on one side only")
        for k in sorted(kx):
            if not _has_values(kx[k]) and kx[k] != ky[k]:
                return Difference(x.line, y.line, f"{k}={_describe(kx[k])} against {k}={_describe(ky[k])}")
        if x.types != y.types:
            return Difference(x.line, y.line, "result types differ")
        return None


def _has_values(v: Any) -> bool:
    if isinstance(v, Out) or (isinstance(v, tuple) and v[:1] in (("param",), ("const",), ("input",))):
        return True
    return isinstance(v, tuple) and any(_has_values(x) for x in v)


def _describe(v: Any) -> str:
    if isinstance(v, Out):
        return f"the result of {v.node.op}"
    if isinstance(v, tuple) and v[:1] == ("input",):
        return f"input {v[1]}"
    if isinstance(v, tuple) and v[:1] in (("param",), ("const",)):
        return v[2]
    return repr(v)


def compare(calls_log: str, autograd_log: str, ptcc: str) -> tuple[Optional[Difference], int, int]:
    """Canonicalise both logs through `ptcc --emit=log` and compare them.  Returns (the first difference or
    None, canonical ops of the call trace, of the autograd trace)."""
    a = Canonical(parse(_emit_log(ptcc, calls_log)))
    b = Canonical(parse(_emit_log(ptcc, autograd_log)))
    weights = (_weights(calls_log, a.trace), _weights(autograd_log, b.trace))
    cmp = _Compare(a, b, lambda x, y: _tensor_bytes(weights[0], x) == _tensor_bytes(weights[1], y))
    if len(a.outputs) != len(b.outputs):
        return Difference(None, None, f"{len(a.outputs)} outputs against {len(b.outputs)}"), len(a.nodes), len(b.nodes)
    for x, y in zip(a.outputs, b.outputs):
        d = cmp.value(x, y)
        if d:
            return d, len(a.nodes), len(b.nodes)
    return None, len(a.nodes), len(b.nodes)


class CrossCheckError(Exception):
    pass


def _emit_log(ptcc: str, log: str) -> str:
    r = subprocess.run([ptcc, "--emit=log", log], capture_output=True, text=True)
    if r.returncode != 0:
        raise CrossCheckError(f"ptcc --emit=log {log} failed (exit {r.returncode}):\n{r.stderr.rstrip()}")
    return r.stdout


def _weights(log: str, trace: Trace) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(log)), trace.weights)


def _tensor_bytes(path: str, name: str) -> bytes:
    from . import safetensors

    return safetensors.read_bytes(path, name[1:])
