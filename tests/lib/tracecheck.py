"""An independent checker of ptcc traces, written from docs/trace-format.md alone.

It shares no code with the recorder: its own tokenizer and parser for the grammar of §1-§2, its own
safetensors reader for §5, and the checks of §3:

- the header, one `weights` line, declarations before use and in their place;
- every handle and `$` name defined or declared before it is used;
- every result annotated with a type, one per result;
- every definition of a handle used by a later line (or an output);
- `call`/`return` properly nested and closed;
- every `param`/`const` present in the weights file with the same dtype, shape and byte length.

Usage as a program: `tracecheck.py RUN.log...` prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
from dataclasses import dataclass, field

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "trace-format.md")


def _spec_view_ops() -> frozenset[str]:
    """§4.2: the ops whose result may alias their first argument, read from the spec's table."""
    with open(SPEC, encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("### 4.2"):text.index("\n## 5")]
    views = frozenset(re.findall(r"^\| `(\w+)` \|.*\| view \|$", section, re.M))
    if len(views) < 10:
        raise RuntimeError(f"{SPEC}: could not read the view ops of §4.2")
    return views


VIEW_OPS = _spec_view_ops()
DTYPE_SIZES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "u8": 1, "bool": 1}
SAFETENSORS_DTYPES = {"F16": "f16", "BF16": "bf16", "F32": "f32", "F64": "f64", "I8": "i8", "I16": "i16",
                      "I32": "i32", "I64": "i64", "U8": "u8", "BOOL": "bool"}

_NAMECHARS = r"[A-Za-z0-9_.\-\x80-\U0010ffff]+"
_STRING = r'"(?:[^"\\\n\r]|\\["\\nrt]|\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4})*"'
_TOKEN = re.compile(
    r"(?P<ws>[ \t]+)"
    r"|(?P<comment>#[^\n]*)"
    r"|(?P<handle>%[0-9]{1,9})"
    r"|(?P<param>\$(?:" + _NAMECHARS + "|" + _STRING + "))"
    r"|(?P<float>-?(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|inf)|nan)(?![A-Za-z0-9_])"
    r"|(?P<int>-?[0-9]+)(?![A-Za-z0-9_.])"
    r"|(?P<string>" + _STRING + ")"
    r"|(?P<header>ptcc-trace)(?![A-Za-z0-9_])"
    r"|(?P<ellipsis>\.\.\.)"
    r"|(?P<under>_)(?![A-Za-z0-9_])"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[=()\[\],:@])")
_PATH = re.compile(r"[ \t]*(?:(" + _NAMECHARS + ")|(" + _STRING + "))")


class TraceError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class Tok:
    kind: str
    text: str


@dataclass
class OpLine:
    line: int
    results: list  # handle text or "_"
    name: str
    args: list
    kwargs: list
    types: list
    where: str | None


@dataclass
class Trace:
    version: int = 0
    weights: str | None = None
    params: dict = field(default_factory=dict)  # name -> (dtype, shape, const)
    inputs: list = field(default_factory=list)  # (handle, name, type)
    ops: list = field(default_factory=list)
    scopes: list = field(default_factory=list)  # (line, "call"/"return", name, class)
    outputs: list = field(default_factory=list)  # (line, ref, name)
    statements: list = field(default_factory=list)  # (line, kind) in file order


def unquote(text: str) -> str:
    body = text[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in "\"\\":
            out += nxt.encode()
            i += 2
        elif nxt in "nrt":
            out += {"n": b"\n", "r": b"\r", "t": b"\t"}[nxt]
            i += 2
        elif nxt == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        else:
            out += chr(int(body[i + 2:i + 6], 16)).encode("utf-8")
            i += 6
    return out.decode("utf-8")


def tokenize(text: str, lineno: int) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(text):
        if toks and toks[-1].kind == "ident" and toks[-1].text in ("call", "return") and len(toks) == 1:
            # after call/return, names are PATH tokens
            while True:
                m = _PATH.match(text, pos)
                if not m:
                    break
                toks.append(Tok("path", m.group(1) if m.group(1) is not None else unquote(m.group(2))))
                pos = m.end()
            rest = text[pos:].strip(" \t")
            if rest and not rest.startswith("#"):
                raise TraceError(lineno, f"unexpected text after scope names: {rest!r}")
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise TraceError(lineno, f"bad character {text[pos]!r} at column {pos + 1}")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        toks.append(Tok(kind, m.group(kind)))
    return toks


class _Parser:
    def __init__(self, toks: list[Tok], lineno: int) -> None:
        self.toks = toks
        self.i = 0
        self.lineno = lineno

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, kind: str, text: str | None = None) -> Tok:
        t = self.peek()
        if t is None or t.kind != kind or (text is not None and t.text != text):
            want = text or kind
            got = "end of line" if t is None else repr(t.text)
            raise TraceError(self.lineno, f"expected {want}, got {got}")
        self.i += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.peek()
        return t is not None and t.kind == kind and (text is None or t.text == text)

    def end(self) -> None:
        if self.peek() is not None:
            raise TraceError(self.lineno, f"unexpected {self.peek().text!r}")

    def type(self) -> tuple[str, list[int]]:
        dtype = self.take("ident").text
        if dtype not in DTYPE_SIZES:
            raise TraceError(self.lineno, f"unknown dtype {dtype}")
        self.take("punct", "[")
        dims = []
        if not self.at("punct", "]"):
            dims.append(int(self.take("int").text))
            while self.at("punct", ","):
                self.take("punct", ",")
                dims.append(int(self.take("int").text))
        self.take("punct", "]")
        if any(d < 0 for d in dims):
            raise TraceError(self.lineno, "negative dimension")
        return dtype, dims

    def value(self, depth: int = 0):
        if depth > 64:
            raise TraceError(self.lineno, "lists nested too deeply")
        t = self.peek()
        if t is None:
            raise TraceError(self.lineno, "expected a value")
        if t.kind == "handle":
            self.i += 1
            return ("handle", t.text)
        if t.kind == "param":
            self.i += 1
            name = t.text[1:]
            return ("param", unquote(name) if name.startswith('"') else name)
        if t.kind == "int":
            self.i += 1
            v = int(t.text)
            if not -(2 ** 63) <= v < 2 ** 63:
                raise TraceError(self.lineno, "integer out of range")
            return v
        if t.kind == "float":
            self.i += 1
            return float(t.text)
        if t.kind == "string":
            self.i += 1
            return unquote(t.text)
        if t.kind == "ellipsis":
            self.i += 1
            return Ellipsis
        if t.kind == "punct" and t.text == "[":
            self.i += 1
            items = []
            if not self.at("punct", "]"):
                items.append(self.value(depth + 1))
                while self.at("punct", ","):
                    self.i += 1
                    items.append(self.value(depth + 1))
            self.take("punct", "]")
            return items
        if t.kind == "ident":
            self.i += 1
            if t.text in ("none", "true", "false"):
                return {"none": None, "true": True, "false": False}[t.text]
            if t.text == "slice":
                self.take("punct", "(")
                a = self.value(depth + 1)
                self.take("punct", ",")
                b = self.value(depth + 1)
                self.take("punct", ",")
                c = self.value(depth + 1)
                self.take("punct", ")")
                return slice(a, b, c)
            return ("symbol", t.text)
        raise TraceError(self.lineno, f"unexpected {t.text!r}")


def parse(text: str) -> Trace:
    trace = Trace()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for index, raw in enumerate(lines):
        lineno = index + 1
        if raw.endswith("\r"):
            raw = raw[:-1]
        if "\r" in raw:
            raise TraceError(lineno, "carriage return inside a line")
        toks = tokenize(raw, lineno)
        if index == 0:
            if len(toks) != 2 or toks[0].kind != "header" or toks[1].kind != "int":
                raise TraceError(1, "the first line must be 'ptcc-trace VERSION'")
            trace.version = int(toks[1].text)
            continue
        if not toks:
            continue
        p = _Parser(toks, lineno)
        first = toks[0]
        if first.kind == "ident" and first.text == "weights" and len(toks) == 2:
            p.i = 1
            if trace.weights is not None:
                raise TraceError(lineno, "second weights line")
            trace.weights = unquote(p.take("string").text)
            kind = "weights"
        elif first.kind == "ident" and first.text in ("param", "const") and len(toks) > 1 and toks[1].kind == "param":
            p.i = 1
            name = p.value()[1]
            p.take("punct", ":")
            dtype, dims = p.type()
            if name in trace.params:
                raise TraceError(lineno, f"${name} declared twice")
            trace.params[name] = (dtype, dims, first.text == "const")
            kind = "decl"
        elif first.kind == "ident" and first.text == "input" and len(toks) > 1 and toks[1].kind == "handle":
            p.i = 1
            handle = p.take("handle").text
            label = unquote(p.take("string").text) if p.at("string") else None
            p.take("punct", ":")
            trace.inputs.append((lineno, handle, label, p.type()))
            kind = "input"
        elif first.kind == "ident" and first.text in ("call", "return") and all(t.kind == "path" for t in toks[1:]):
            want = 3 if first.text == "call" else 2
            if len(toks) != want:
                raise TraceError(lineno, f"{first.text} takes {want - 1} name(s)")
            trace.scopes.append((lineno, first.text, toks[1].text, toks[2].text if want == 3 else None))
            kind = "scope"
            p.i = len(toks)
        elif first.kind == "ident" and first.text == "output" and len(toks) > 1 and toks[1].kind in ("handle", "param"):
            p.i = 1
            ref = p.value()
            label = unquote(p.take("string").text) if p.at("string") else None
            trace.outputs.append((lineno, ref, label))
            kind = "output"
        else:
            results = []
            while True:
                if p.at("handle"):
                    results.append(p.take("handle").text)
                else:
                    p.take("under")
                    results.append("_")
                if not p.at("punct", ","):
                    break
                p.take("punct", ",")
            p.take("punct", "=")
            name = p.take("ident").text
            p.take("punct", "(")
            args, kwargs = [], []
            if not p.at("punct", ")"):
                while True:
                    if p.at("ident") and p.peek(1) is not None and p.peek(1).text == "=":
                        key = p.take("ident").text
                        p.take("punct", "=")
                        if any(k == key for k, _ in kwargs):
                            raise TraceError(lineno, f"keyword {key} given twice")
                        kwargs.append((key, p.value()))
                    else:
                        if kwargs:
                            raise TraceError(lineno, "positional argument after a keyword argument")
                        args.append(p.value())
                    if not p.at("punct", ","):
                        break
                    p.take("punct", ",")
            p.take("punct", ")")
            types = []
            if p.at("punct", ":"):
                p.take("punct", ":")
                types.append(p.type())
                while p.at("punct", ","):
                    p.take("punct", ",")
                    types.append(p.type())
            where = None
            if p.at("punct", "@"):
                p.take("punct", "@")
                where = unquote(p.take("string").text)
            trace.ops.append(OpLine(lineno, results, name, args, kwargs, types, where))
            kind = "op"
        p.end()
        trace.statements.append((lineno, kind))
    return trace


def read_safetensors(path: str) -> dict:
    """name -> (dtype, shape, nbytes), after checking the layout of §5."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", prefix)
        if n > size - 8:
            raise ValueError(f"{path}: header length {n} runs past the end of the file")
        header = json.loads(f.read(n).decode("utf-8"))
    data_size = size - 8 - n
    entries = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        if not 0 <= begin <= end <= data_size:
            raise ValueError(f"{path}: {name}: offsets {begin}..{end} outside the data ({data_size} bytes)")
        if end - begin != count * DTYPE_SIZES[dtype]:
            raise ValueError(f"{path}: {name}: {end - begin} bytes for {count} x {dtype}")
        spans.append((begin, end, name))
        entries[name] = (dtype, list(info["shape"]), end - begin)
    covered = 0
    for begin, end, name in sorted(spans):
        if begin != covered:
            raise ValueError(f"{path}: {name}: data at {begin}, expected {covered} (gap or overlap)")
        covered = end
    if covered != data_size:
        raise ValueError(f"{path}: tensors cover {covered} of {data_size} data bytes")
    return entries


def _refs(v, out: list) -> None:
    if isinstance(v, tuple) and len(v) == 2 and v[0] in ("handle", "param"):
        out.append(v)
    elif isinstance(v, list):
        for x in v:
            _refs(x, out)
    elif isinstance(v, slice):
        for x in (v.start, v.stop, v.step):
            _refs(x, out)


def check(log_path: str) -> list[str]:
    """All problems found in the trace at log_path and its weights file; [] when it is valid."""
    with open(log_path, "rb") as f:
        text = f.read().decode("utf-8")
    try:
        trace = parse(text)
    except TraceError as e:
        return [str(e)]
    problems: list[str] = []

    def problem(line: int, message: str) -> None:
        problems.append(f"line {line}: {message}")

    if trace.version != 1:
        problem(1, f"version {trace.version}, expected 1")
    if trace.weights is None:
        problem(1, "no weights line")
    # statement order (§2)
    order = {"weights": 0, "decl": 1, "input": 2, "scope": 3, "op": 3, "output": 4}
    high = 0
    for line, kind in trace.statements:
        if order[kind] < high:
            problem(line, f"{kind} line out of place")
        high = max(high, order[kind])
    # scopes nest
    stack: list[str] = []
    for line, kind, name, _ in trace.scopes:
        if kind == "call":
            stack.append(name)
        elif not stack or stack.pop() != name:
            problem(line, f"return {name!r} does not close the innermost call")
    if stack:
        problem(trace.scopes[-1][0], f"calls left open: {stack}")
    # definitions and uses, in file order.  A definition must be used by a later line, except an
    # in-place write into a view whose alias group is used later (§3.4).
    defined: dict[str, int] = {}  # handle -> line of its current definition
    used_since_def: dict[str, bool] = {}
    group: dict[str, str] = {}  # handle -> a representative of its alias group
    last_use: dict[str, int] = {}  # alias group -> line of its last use
    writes: list[tuple[str, int]] = []  # in-place writes into a view: (handle, line)

    def root(h: str) -> str:
        while group.get(h, h) != h:
            h = group[h]
        return h
    used_params: set[str] = set()
    for line, handle, _, _ in trace.inputs:
        if handle in defined:
            problem(line, f"input {handle} defined twice")
        defined[handle] = line
        used_since_def[handle] = False

    def use(line: int, refs: list) -> None:
        for kind, name in refs:
            if kind == "handle":
                if name not in defined:
                    problem(line, f"{name} used before it is defined")
                else:
                    used_since_def[name] = True
                    last_use[root(name)] = line
            else:
                if name not in trace.params:
                    problem(line, f"${name} is not declared")
                used_params.add(name)

    viewed: set = set()  # alias roots that a view shares storage with
    for op in trace.ops:
        refs: list = []
        for a in op.args:
            _refs(a, refs)
        for _, v in op.kwargs:
            _refs(v, refs)
        use(op.line, refs)
        if not op.types:
            problem(op.line, f"{op.name}: results have no type annotation")
        elif len(op.types) != len(op.results):
            problem(op.line, f"{op.name}: {len(op.results)} results but {len(op.types)} types")
        first = op.args[0] if op.args else None
        for r in op.results:
            if r == "_":
                continue
            if r in defined and not used_since_def[r]:
                problem(defined[r], f"{r} is defined and never used")
            if r in defined and (root(r) != r or r in viewed):
                writes.append((r, op.line))  # a write that a view of the same storage sees
            elif op.name in VIEW_OPS and isinstance(first, tuple) and first[0] == "handle":
                group[r] = root(first[1])
                viewed.add(group[r])
            defined[r] = op.line
            used_since_def[r] = False
    for line, ref, _ in trace.outputs:
        use(line, [ref])
    for handle, line in writes:
        if defined[handle] == line and last_use.get(root(handle), 0) > line:
            used_since_def[handle] = True
    for handle, line in defined.items():
        if not used_since_def[handle]:
            problem(line, f"{handle} is defined and never used")
    for name in trace.params:
        if name not in used_params:
            problems.append(f"${name} is declared and never used")
    # weights (§5)
    if trace.weights is not None:
        path = os.path.join(os.path.dirname(os.path.abspath(log_path)), trace.weights)
        try:
            stored = read_safetensors(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"weights: {e}")
            stored = None
        if stored is not None:
            for name, (dtype, dims, _) in trace.params.items():
                if name not in stored:
                    problems.append(f"${name} is not in {trace.weights}")
                    continue
                sdtype, sshape, nbytes = stored[name]
                count = 1
                for d in dims:
                    count *= d
                if (sdtype, sshape) != (dtype, dims) or nbytes != count * DTYPE_SIZES[dtype]:
                    problems.append(f"${name}: log says {dtype}{dims}, file has {sdtype}{sshape} ({nbytes} bytes)")
    return problems


def main(argv: list[str]) -> int:
    status = 0
    for path in argv:
        for p in check(path):
            print(f"{path}: {p}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
