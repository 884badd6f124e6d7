"""Random-model differential testing of ptcc (issue 7).

Part 1, the generator: `generate(seed)` builds a small random PyTorch model from the vocabulary ptcc
lowers (README's lowering table), with its inputs.  Every choice comes from the seed, so a seed is a
reproducible test case.  The model is a `RandomModel`, an nn.Module whose forward interprets a list of
`Call`s; `describe()` prints that list as readable pseudo-Python, one call a line.  While generating, each
call is run on the concrete inputs and kept only if PyTorch accepts it and its result is healthy: finite,
not vanishing, not constant, not huge (so `exp` only sees bounded input, `div` only a denominator away
from 0).  A few calls are deliberate probes of what ptcc must refuse (gelu, permute, a full-shape
constant operand, ...): ptcc must refuse them with a located error, never compile them wrongly.

Part 2, the check: `check_model(model, inputs, ...)` records the model with ptcc's recorder, compiles the
trace at -O0, -O1 and -O2 for every target, and runs each distinct net in OpenCV dnn and (targets caffe
and caffe-master) BVLC Caffe.  A compilation passes when ptcc exits 1 with located diagnostics
(`file:line:col: error:`) and writes nothing, or exits 0 with a net that validates (parity.validate) and
computes every output of the model: max |Δ| ≤ 1e-4 · max(1, max |ref|) against PyTorch's float32 output,
or no further from a float64 run of the model than PyTorch's float32 output is.  Outputs are matched by
the blob names of the prototxt's `# outputs:` line: BVLC reads each blob by name, OpenCV forwards the
layer that last writes it (which must have it as its first top, since forward(layer) returns that);
inputs are fed by name (ptcc leaves out an input nothing reads).  A layer whose result nothing reads and
that is no output fails too (OpenCV would list it among the net's outputs).

Part 3, the campaign: `main()` is scripts/fuzz-models and `make fuzz-models COUNT=N SEED=S`.
"""

from __future__ import annotations

import argparse
import copy
import math
import operator
import os
import random
import re
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import parity
import ptcctest

TARGETS = ("caffe", "caffe-master", "opencv")
LEVELS = ("-O0", "-O1", "-O2")
BVLC_TARGETS = ("caffe", "caffe-master")
PTCC_TIMEOUT = 20   # seconds for one compilation of a tiny model
ATTEMPTS = 20       # regenerations of one seed before giving up on a healthy model

Shape = tuple[int, ...]


# =====================================================================================================
# Part 1: the generator
# =====================================================================================================

@dataclass(frozen=True)
class V:
    """A value of the model: an input or a call's result."""
    id: int

    def __repr__(self) -> str:
        return f"v{self.id}"


@dataclass(frozen=True)
class P:
    """A tensor attribute of the model: an nn.Parameter, a buffer or a plain tensor attribute."""
    name: str

    def __repr__(self) -> str:
        return f"self.{self.name}"


@dataclass(frozen=True)
class K:
    """A constant made in forward from nothing: torch.full(shape, value) (the recorder folds it)."""
    shape: Shape
    value: float

    def __repr__(self) -> str:
        return f"torch.full({self.shape}, {self.value})"


class _FloatType:
    """The model's float dtype as an argument: torch.float32, or float64 in the reference copy."""

    def __repr__(self) -> str:
        return "torch.float32"


FLOAT = _FloatType()


@dataclass
class Call:
    """One call of forward: `outs = fn(*args, **kw)[pick]`.  fn is "F.name", "torch.name",
    "Tensor.name" (a method), "operator.name" (a Python operator) or "self.name" (a submodule)."""
    fn: str
    args: list
    kw: dict = field(default_factory=dict)
    outs: list[int] = field(default_factory=list)
    pick: Optional[int] = None
    note: str = ""

    def values(self) -> list[int]:
        return [a.id for a in _flatten_args(self.args) + _flatten_args(list(self.kw.values())) if isinstance(a, V)]

    def __str__(self) -> str:
        parts = [_fmt(a) for a in self.args] + [f"{k}={_fmt(v)}" for k, v in self.kw.items()]
        lhs = ", ".join(f"v{o}" for o in self.outs) or "_"
        pick = f"[{self.pick}]" if self.pick is not None else ""
        note = f"  # {self.note}" if self.note else ""
        return f"{lhs} = {self.fn}({', '.join(parts)}){pick}{note}"


def _flatten_args(args: list) -> list:
    out = []
    for a in args:
        if isinstance(a, list):
            out += _flatten_args(a)
        else:
            out.append(a)
    return out


def _fmt(a: Any) -> str:
    if isinstance(a, list):
        return "[" + ", ".join(_fmt(x) for x in a) + "]"
    if isinstance(a, float):
        return repr(round(a, 6))
    return repr(a)


_NAMESPACES = {"F": F, "torch": torch, "Tensor": torch.Tensor, "operator": operator}


class RandomModel(nn.Module):
    """A model whose forward runs a list of Calls; inputs are x0, x1, ... (the trace's input names)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.input_shapes: list[Shape] = []
        self.output_ids: list[int] = []
        self.output_labels: Optional[list[str]] = None   # a dict of outputs
        self.plain: list[str] = []                        # plain tensor attributes (recorded as const)
        self.float_type = torch.float32

    def forward(self, x0, x1=None, x2=None, x3=None):
        env = {i: x for i, x in enumerate((x0, x1, x2, x3)[:len(self.input_shapes)])}
        for call in self.calls:
            for o, r in zip(call.outs, self.run_call(call, env)):
                env[o] = r
        outs = [env[i] for i in self.output_ids]
        if self.output_labels:
            return dict(zip(self.output_labels, outs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run_call(self, call: Call, env: dict) -> list[torch.Tensor]:
        ns, name = call.fn.split(".", 1)
        fn = getattr(self, name) if ns == "self" else getattr(_NAMESPACES[ns], name)
        result = fn(*[self.arg(a, env) for a in call.args], **{k: self.arg(v, env) for k, v in call.kw.items()})
        if call.pick is not None:
            result = result[call.pick]
        return [result] if isinstance(result, torch.Tensor) else list(result)

    def arg(self, a: Any, env: dict) -> Any:
        if isinstance(a, V):
            return env[a.id]
        if isinstance(a, P):
            return getattr(self, a.name)
        if isinstance(a, K):
            return torch.full(a.shape, a.value, dtype=self.float_type)
        if isinstance(a, _FloatType):
            return self.float_type
        if isinstance(a, list):
            return [self.arg(x, env) for x in a]
        return a

    def to_double(self) -> "RandomModel":
        """A float64 copy, for the reference that decides when float32 rounding is to blame."""
        m = copy.deepcopy(self).double()
        for name in m.plain:
            setattr(m, name, getattr(m, name).double())
        m.float_type = torch.float64
        return m

    def describe(self) -> str:
        lines = [f"x{i}: {list(s)}" for i, s in enumerate(self.input_shapes)]
        for name, mod in self.named_children():
            lines.append(f"self.{name} = {mod!r}".replace("\n", " "))
        for name, p in self.named_parameters(recurse=False):
            lines.append(f"self.{name} = nn.Parameter({_tensor_repr(p)})")
        for name, b in self.named_buffers(recurse=False):
            lines.append(f"self.{name} = buffer({_tensor_repr(b)})")
        for name in self.plain:
            lines.append(f"self.{name} = tensor({_tensor_repr(getattr(self, name))})  # plain attribute")
        for i in range(len(self.input_shapes)):
            lines.append(f"v{i} = x{i}")
        lines += [str(c) for c in self.calls]
        outs = [f"v{i}" for i in self.output_ids]
        if self.output_labels:
            lines.append("return {" + ", ".join(f"{l!r}: {o}" for l, o in zip(self.output_labels, outs)) + "}")
        else:
            lines.append("return " + ", ".join(outs))
        return "\n".join(lines)


def _tensor_repr(t: torch.Tensor) -> str:
    flat = t.detach().flatten()
    body = ", ".join(f"{x:.3g}" for x in flat[:4].tolist()) + (", ..." if flat.numel() > 4 else "")
    return f"shape {list(t.shape)}: [{body}]"


def healthy(t: torch.Tensor, low: float = 1e-2, high: float = 1e3) -> bool:
    """Finite, max |t| in [low, high], and not constant: a value worth comparing."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
        return False
    t = t.detach()
    if not bool(torch.isfinite(t).all()):
        return False
    peak = float(t.abs().max())
    if not low <= peak <= high:
        return False
    return t.numel() == 1 or float(t.max() - t.min()) > 1e-3 * peak


class Rejected(Exception):
    """A generated call that PyTorch refuses or whose result is not healthy."""


class Broken(Exception):
    """A call that passed its trial on copies failed on the live values: this attempt is abandoned."""


class Generator:
    """Grows one RandomModel call by call; every call is tried on the concrete inputs first."""

    def __init__(self, seed: int, attempt: int = 0) -> None:
        self.seed = seed
        self.rng = random.Random(f"ptcc-randmodel:{seed}:{attempt}")
        torch.manual_seed(self.rng.getrandbits(31))
        self.model = RandomModel()
        self.env: dict[int, torch.Tensor] = {}
        self.uses: dict[int, int] = {}
        self.next_id = 0
        self.pending: list[str] = []   # attributes added by the call being tried
        self.counter = 0
        self.inputs: list[torch.Tensor] = []

    # -- values --

    def new_value(self, t: torch.Tensor) -> int:
        i = self.next_id
        self.next_id += 1
        self.env[i] = t
        self.uses[i] = 0
        return i

    def shape(self, v: int) -> Shape:
        return tuple(self.env[v].shape)

    def live(self, ranks: Sequence[int]) -> list[int]:
        return [v for v, t in self.env.items() if t.dim() in ranks]

    def pick(self, ranks: Sequence[int] = (4,)) -> Optional[int]:
        """A value of one of `ranks`, the most recent ones more likely."""
        vs = self.live(ranks)
        if not vs:
            return None
        weights = [(k + 1) ** 2 for k in range(len(vs))]
        return self.rng.choices(vs, weights)[0]

    def partners(self, v: int, fits: Callable[[Shape], bool]) -> list[int]:
        return [w for w in self.env if self.env[w].dim() == self.env[v].dim() and fits(self.shape(w))]

    # -- attributes of the model --

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def add_module(self, prefix: str, m: nn.Module) -> str:
        name = self.fresh(prefix)
        self.model.add_module(name, m)
        self.pending.append(name)
        return name

    def add_tensor(self, prefix: str, t: torch.Tensor, kind: str) -> P:
        """t as an nn.Parameter, a buffer or a plain attribute (the recorder stores the last as const)."""
        name = self.fresh(prefix)
        if kind == "param":
            self.model.register_parameter(name, nn.Parameter(t, requires_grad=False))
        elif kind == "buffer":
            self.model.register_buffer(name, t)
        else:
            setattr(self.model, name, t)
            self.model.plain.append(name)
        self.pending.append(name)
        return P(name)

    def rollback(self) -> None:
        for name in self.pending:
            if name in self.model.plain:
                self.model.plain.remove(name)
            delattr(self.model, name)
        self.pending = []

    # -- adding calls --

    def add(self, call: Call, check: Callable[[list[torch.Tensor]], bool] = lambda rs: all(healthy(r) for r in rs)
            ) -> list[int]:
        """Try `call` on copies of its arguments; if PyTorch accepts it and `check` likes the results,
        run it for real (in-place calls write the live values) and keep it.  Raises Rejected otherwise."""
        trial = {v: self.env[v].clone() for v in call.values()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results = self.model.run_call(call, trial)
                ok = bool(results) and check(results)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            self.rollback()
            raise Rejected(str(e)) from None
        if not ok:
            self.rollback()
            raise Rejected("unhealthy result")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results = self.model.run_call(call, self.env)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            raise Broken(f"{call}: {e}") from None   # the live values may be half written: start again
        for v in call.values():
            self.uses[v] += 1
        call.outs = [self.new_value(r) for r in results]
        self.model.calls.append(call)
        self.pending = []
        return call.outs

    def try_add(self, call: Call, **kw) -> Optional[int]:
        try:
            return self.add(call, **kw)[0]
        except Rejected:
            return None

    # -- the model --

    def build(self) -> tuple[RandomModel, list[torch.Tensor]]:
        with torch.no_grad():   # as the recorder runs the model
            return self._build()

    def _build(self) -> tuple[RandomModel, list[torch.Tensor]]:
        self.make_inputs()
        steps = self.rng.choice((2, 3, 4, 5, 6, 7, 8, 9, 10, 12))
        if self.rng.random() < 0.1:
            steps = self.rng.randint(14, 24)
        families = list(FAMILIES)
        weights = [FAMILIES[f][0] for f in families]
        done = tries = 0
        while done < steps and tries < steps * 8:
            tries += 1
            family = self.rng.choices(families, weights)[0]
            try:
                FAMILIES[family][1](self)
                done += 1
            except Rejected:
                self.rollback()
        self.use_every_input()
        self.choose_outputs()
        return self.model, self.inputs

    def make_inputs(self) -> None:
        rng = self.rng
        count = rng.choices((1, 2, 3), (70, 22, 8))[0]
        n = rng.choice((1, 1, 1, 2))
        h, w = rng.randint(1, 17), rng.randint(1, 17)
        if rng.random() < 0.6:
            h, w = rng.randint(3, 13), rng.randint(3, 13)
        shapes: list[Shape] = [(n, rng.randint(1, 8), h, w)]
        if rng.random() < 0.06:   # a vector model: (N, F) inputs (OpenCV cannot take 3-D ones)
            f = rng.randint(1, 32)
            shapes = [(n, f) if rng.random() < 0.7 else (n, rng.randint(1, 32)) for _ in range(count)]
            count = 1
        for _ in range(count - 1):
            r = rng.random()
            if r < 0.5:
                shapes.append(shapes[0])
            elif r < 0.8:
                shapes.append((n, rng.randint(1, 8), h, w))
            else:
                shapes.append((n, rng.randint(1, 8), rng.randint(2, 13), rng.randint(2, 13)))
        gen = torch.Generator().manual_seed(rng.getrandbits(31))
        for s in shapes:
            scale = rng.choice((1.0, 1.0, 3.0, 0.5, 1.0, 3.0, 0.5, 10.0))
            x = torch.randn(*s, generator=gen) * scale
            self.inputs.append(x)
            self.new_value(x.clone())
        self.model.input_shapes = shapes

    def storage(self, v: int) -> int:
        return self.env[v].storage().data_ptr()

    def read_values(self, outputs: list[int]) -> set[int]:
        """The values that live calls read: a call is live when an output needs its result, or when it
        writes in place into a tensor whose storage a live value shares (the recorder's rule)."""
        live = set(outputs)
        storages = {self.storage(v) for v in live}
        for call in reversed(self.model.calls):
            args = call.values()
            in_place = any(self.env[o] is self.env[a] for o in call.outs for a in args)
            if any(o in live for o in call.outs) or (in_place and any(self.storage(o) in storages for o in call.outs)):
                live.update(args)
                storages.update(self.storage(a) for a in args)
        return live

    def use_every_input(self) -> None:
        """An input no op reads is a separate probe (rare): usually every input feeds the model."""
        unused = [i for i in range(len(self.inputs)) if self.uses[i] == 0]
        if self.rng.random() < 0.03:
            return
        for i in unused:
            try:
                gen_activation(self, i)
            except Rejected:
                self.rollback()
                self.add(Call("torch.sigmoid", [V(i)]), check=lambda rs: True)

    def choose_outputs(self) -> None:
        rng = self.rng
        n_in = len(self.inputs)
        last = max(self.env)
        leaves = [v for v in self.env if self.uses[v] == 0 and v >= n_in and v != last
                  and self.env[v].dim() <= 4]
        outs = [last]
        for v in leaves:
            if rng.random() < 0.6:
                outs.append(v)
        inner = [v for v in self.env if self.uses[v] > 0 and v >= n_in and self.env[v].dim() <= 4]
        while inner and rng.random() < 0.3:   # outputs that later ops also read: runtimes' fusion hazards
            outs.append(inner.pop(rng.randrange(len(inner))))
        if rng.random() < 0.02:
            outs.append(rng.randrange(n_in))            # an input as an output: refused
        if rng.random() < 0.03:
            outs.append(outs[0])                        # the same tensor twice
        if rng.random() > 0.03:     # else an input that feeds only dead code stays a probe
            for i in range(n_in):
                if i not in self.read_values(outs):
                    outs.append(self.add(Call("torch.sigmoid", [V(i)]), check=lambda rs: True)[0])
        rng.shuffle(outs)
        self.model.output_ids = outs
        if rng.random() < 0.05:
            self.model.output_labels = [f"out{k}" for k in range(len(outs))]


# --- call families: each adds one or a few calls, or raises Rejected --------------------------------

def need(v: Optional[int]) -> int:
    if v is None:
        raise Rejected("no value of the right rank")
    return v


def gen_conv(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    n, c, h, w = g.shape(v)
    groups = rng.choice([d for d in range(1, c + 1) if c % d == 0]) if rng.random() < 0.35 else 1
    out = groups * rng.randint(1, max(1, 8 // groups))
    square = rng.random() < 0.7
    k = [rng.randint(1, 5)] * 2 if square else [rng.randint(1, 5), rng.randint(1, 5)]
    stride = [rng.choice((1, 1, 1, 2, 3))] * 2 if square else [rng.randint(1, 3), rng.randint(1, 3)]
    dilation = [rng.choice((1, 1, 1, 1, 2, 3))] * 2 if square else [rng.choice((1, 1, 2)), rng.choice((1, 1, 2))]
    padding: Any = [rng.randint(0, kk) for kk in k] if rng.random() < 0.8 else rng.choice(("same", "valid"))
    if padding == "same":
        stride = [1, 1]
    bias = rng.random() < 0.7
    mode = "zeros" if rng.random() > 0.03 else rng.choice(("reflect", "replicate", "circular"))
    if rng.random() < 0.75:
        m = nn.Conv2d(c, out, tuple(k), tuple(stride), padding if isinstance(padding, str) else tuple(padding),
                      tuple(dilation), groups, bias, padding_mode=mode)
        m.weight.data.mul_(rng.uniform(1.0, 2.5))
        name = g.add_module("conv", m)
        g.add(Call(f"self.{name}", [V(v)]))
    else:
        wt = torch.randn(out, c // groups, *k) * (rng.uniform(0.5, 1.5) / math.sqrt(c // groups * k[0] * k[1]))
        wp = g.add_tensor("w", wt, rng.choice(("param", "param", "buffer")))
        bp = g.add_tensor("b", torch.randn(out) * 0.5, "param") if bias else None
        g.add(Call("F.conv2d", [V(v), wp, bp], {"stride": stride, "padding": padding, "dilation": dilation,
                                               "groups": groups}))


def gen_conv_transpose(g: Generator) -> None:
    """conv_transpose2d with every argument ptcc lowers (stride, padding, output_padding up to the padding
    and below the stride, groups, bias, non-square kernels); sometimes dilation or output_padding over the
    padding, which must be refused at the line."""
    rng = g.rng
    v = need(g.pick((4,)))
    n, c, h, w = g.shape(v)
    groups = rng.choice([d for d in range(1, c + 1) if c % d == 0]) if rng.random() < 0.3 else 1
    out = groups * rng.randint(1, max(1, 6 // groups))
    square = rng.random() < 0.7
    k = [rng.randint(1, 4)] * 2 if square else [rng.randint(1, 4), rng.randint(1, 4)]
    stride = [rng.choice((1, 2, 2, 3))] * 2 if square else [rng.randint(1, 3), rng.randint(1, 3)]
    pad = [rng.randint(0, kk - 1) for kk in k]
    opad = [rng.randint(0, min(p, s - 1)) if rng.random() < 0.4 else 0 for p, s in zip(pad, stride)]
    dilation = [1, 1]
    if rng.random() < 0.05:
        dilation = [2, 2]
    elif rng.random() < 0.05 and max(stride) > 1:
        opad = [min(s - 1, p + 1) for p, s in zip(pad, stride)]  # may exceed the padding: refused
    size = [(d - 1) * s - 2 * p + dl * (kk - 1) + op + 1
            for d, s, p, dl, kk, op in zip((h, w), stride, pad, dilation, k, opad)]
    if min(size) < 1 or max(size) > 40:
        raise Rejected("output size")
    m = nn.ConvTranspose2d(c, out, tuple(k), tuple(stride), tuple(pad), tuple(opad), groups,
                           rng.random() < 0.7, tuple(dilation))
    m.weight.data.mul_(rng.uniform(1.0, 2.0))
    name = g.add_module("deconv", m)
    g.add(Call(f"self.{name}", [V(v)]))


def gen_range(g: Generator) -> None:
    """narrow or select on a random axis of a 4-D value (a copy through a Slice)."""
    rng = g.rng
    v = need(g.pick((4,)))
    shape = g.shape(v)
    axis = rng.choice([a for a in range(1, 4) if shape[a] > 1] or [1])
    size = shape[axis]
    if rng.random() < 0.6:
        start = rng.randint(0, size - 1)
        length = rng.randint(1, size - start)
        if rng.random() < 0.2:
            start -= size  # a negative start counts from the end
        g.add(Call("torch.narrow", [V(v), axis, start, length]))
    elif rng.random() < 0.5:
        g.add(Call("Tensor.select", [V(v), axis, rng.randint(-size, size - 1)]))
    else:
        gen_getitem(g, v, shape)


def gen_getitem(g: Generator, v: int, shape: Shape) -> None:
    """x[...] on a 4-D value: an offset slice with a step on some of the channel and spatial axes
    (YOLOv5's Focus is x[..., ::2, ::2]), sometimes an integer or None."""
    rng = g.rng
    index: list = [slice(None)]
    for axis in range(1, 4):
        size = shape[axis]
        if rng.random() < 0.35:
            index.append(slice(None))
            continue
        start = rng.randint(0, size - 1)
        step = rng.choice((1, 2, 2, 3))
        stop = rng.choice((None, rng.randint(start + 1, size)))
        index.append(slice(start - size if rng.random() < 0.2 else start, stop, step))
    if rng.random() < 0.15:
        axis = rng.randint(1, 3)
        index[axis] = rng.randint(0, shape[axis] - 1)
    if rng.random() < 0.1:
        index.append(None)
    g.add(Call("operator.getitem", [V(v), tuple(index)]))


def gen_linear(g: Generator) -> None:
    rng = g.rng
    v = g.pick((3,)) if rng.random() < 0.15 else g.pick((2,))   # on (N, L, F): exact or refused
    if v is None or rng.random() < 0.4:
        v = gen_flatten(g, need(g.pick((4,))), to_rank=2)
    f = g.shape(v)[-1]
    out = rng.randint(1, 10)
    if rng.random() < 0.8:
        m = nn.Linear(f, out, bias=rng.random() < 0.8)
        m.weight.data.mul_(rng.uniform(1.0, 2.0))
        g.add(Call(f"self.{g.add_module('fc', m)}", [V(v)]))
    else:
        wp = g.add_tensor("w", torch.randn(out, f) / math.sqrt(f), "param")
        bp = g.add_tensor("b", torch.randn(out) * 0.3, "param") if rng.random() < 0.7 else None
        g.add(Call("F.linear", [V(v), wp, bp]))


def gen_norm(g: Generator) -> None:
    """group_norm, instance_norm or layer_norm with random affine weights (or none)."""
    rng = g.rng
    v = need(g.pick((4, 4, 3, 2)))
    shape = g.shape(v)
    c = shape[1]
    r = rng.random()
    affine = rng.random() < 0.8
    eps = rng.choice((1e-5, 1e-5, 1e-3, 1e-6))
    if r < 0.4 and len(shape) >= 3:
        m: nn.Module = nn.GroupNorm(rng.choice([d for d in range(1, c + 1) if c % d == 0]), c, eps=eps, affine=affine)
    elif r < 0.6 and len(shape) == 4:
        m = nn.InstanceNorm2d(c, eps=eps, affine=affine)
    else:
        k = rng.randint(1, len(shape) - 1)
        m = nn.LayerNorm(list(shape[len(shape) - k:]), eps=eps, elementwise_affine=affine)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-1.5, 1.5)
    g.add(module_call(g, m, V(v)))


def calibrated_bn(c: int, rank: int, rng: random.Random) -> nn.Module:
    m = (nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d)(c, eps=rng.choice((1e-5, 1e-5, 1e-3, 0.1)),
                                                          affine=rng.random() < 0.85)
    with torch.no_grad():
        m.running_mean.uniform_(-1.5, 1.5)
        m.running_var.uniform_(0.2, 3.0)
        if m.affine:
            m.weight.uniform_(0.5, 1.5).mul_(torch.sign(torch.randn(c)) if rng.random() < 0.2 else 1)
            m.bias.uniform_(-0.5, 0.5)
    return m


def gen_batch_norm(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4, 2)))
    s = g.shape(v)
    m = calibrated_bn(s[1], len(s), rng)
    if rng.random() < 0.8:
        g.add(Call(f"self.{g.add_module('bn', m)}", [V(v)]))
        return
    mean = g.add_tensor("mean", m.running_mean.clone(), "buffer")
    var = g.add_tensor("var", m.running_var.clone(), "buffer")
    weight = g.add_tensor("gamma", m.weight.data.clone(), "param") if m.affine else None
    bias = g.add_tensor("beta", m.bias.data.clone(), "param") if m.affine else None
    g.add(Call("F.batch_norm", [V(v), mean, var, weight, bias], {"training": False, "eps": m.eps}))


def activation_call(g: Generator, v: int) -> Call:
    """One activation of the vocabulary on v, in one of its spellings (functional, module, method,
    in place)."""
    rng = g.rng
    t = g.env[v]
    x = V(v)
    ip = rng.random() < 0.25
    lo = round(rng.uniform(-2.0, 0.5), 2)
    hi = round(lo + rng.uniform(0.2, 3.0), 2)
    slope = rng.choice((0.01, 0.1, 0.2, 0.33))
    alpha = rng.choice((1.0, 0.5, 2.0))
    dims = [d for d in range(-t.dim(), t.dim()) if t.shape[d] > 1] or [1]
    table: list[tuple[float, Callable[[], Call]]] = [
        (6, lambda: Call("F.relu", [x], {"inplace": ip})),
        (2, lambda: Call("Tensor.relu_", [x])),
        (2, lambda: Call("torch.relu", [x])),
        (3, lambda: module_call(g, nn.ReLU(inplace=ip), x)),
        (3, lambda: Call("F.leaky_relu", [x, slope], {"inplace": ip})),
        (1, lambda: Call("F.leaky_relu_", [x, slope])),
        (2, lambda: module_call(g, nn.LeakyReLU(slope, inplace=ip), x)),
        (2, lambda: Call("F.relu6", [x], {"inplace": ip})),
        (2, lambda: module_call(g, nn.ReLU6(inplace=ip), x)),
        (3, lambda: Call("F.hardtanh", [x, lo, hi], {"inplace": ip})),
        (1, lambda: Call("F.hardtanh_", [x, lo, hi])),
        (1, lambda: module_call(g, nn.Hardtanh(lo, hi), x)),
        (2, lambda: Call("torch.clamp", [x, lo, hi])),
        (1, lambda: Call("torch.clamp", [x], {"min": lo})),
        (1, lambda: Call("torch.clamp", [x], {"max": hi})),
        (1, lambda: Call("Tensor.clamp_", [x, lo, hi])),
        (1, lambda: Call("torch.clip", [x, lo, hi])),
        (2, lambda: module_call(g, prelu_module(rng, t), x)),
        (3, lambda: Call("torch.sigmoid", [x])),
        (1, lambda: Call("Tensor.sigmoid_", [x])),
        (1, lambda: module_call(g, nn.Sigmoid(), x)),
        (3, lambda: Call("torch.tanh", [x])),
        (1, lambda: Call("Tensor.tanh_", [x])),
        (1, lambda: module_call(g, nn.Tanh(), x)),
        (2, lambda: Call("torch.abs", [x])),
        (1, lambda: Call("Tensor.abs", [x])),
        (2, lambda: Call("torch.exp", [x])),
        (2, lambda: Call("F.elu", [x, alpha], {"inplace": ip})),
        (1, lambda: module_call(g, nn.ELU(alpha), x)),
        (1, lambda: Call("F.softsign", [x])),
        (1, lambda: Call("F.mish", [x])),
        (1, lambda: Call("F.celu", [x, alpha])),
        (1, lambda: Call("F.gelu", [x], {"approximate": "tanh"})),
        (1, lambda: Call("F.gelu", [x])),
        (1, lambda: module_call(g, nn.GELU(), x)),
        (2, lambda: Call("F.softplus", [x])),
        (1, lambda: module_call(g, nn.Softplus(), x)),
        (2, lambda: Call("F.silu", [x], {"inplace": ip})),
        (1, lambda: module_call(g, nn.SiLU(), x)),
        (2, lambda: Call("F.hardsigmoid", [x], {"inplace": ip})),
        (1, lambda: module_call(g, nn.Hardsigmoid(), x)),
        (2, lambda: Call("F.hardswish", [x], {"inplace": ip})),
        (1, lambda: module_call(g, nn.Hardswish(), x)),
        (3, lambda: Call("F.softmax", [x], {"dim": rng.choice(dims)})),
        (1, lambda: Call("torch.softmax", [x, rng.choice(dims)])),
        (1, lambda: module_call(g, nn.Softmax(dim=rng.choice(dims)), x)),
        (1, lambda: Call("Tensor.softmax", [x, rng.choice(dims)])),
    ]
    call = rng.choices([f for _, f in table], [w for w, _ in table])[0]()
    if call.fn == "torch.exp" and float(t.max()) > 5.0:
        raise Rejected("exp of an unbounded value")
    return call


def prelu_module(rng: random.Random, t) -> nn.PReLU:
    """PReLU with one shared slope or one per channel (when there is a channel axis), drawn slopes."""
    per_channel = t.dim() >= 2 and rng.random() < 0.6
    m = nn.PReLU(t.shape[1] if per_channel else 1)
    m.weight.data.uniform_(-0.5, 0.9)
    return m


def module_call(g: Generator, m: nn.Module, x: V) -> Call:
    prefix = type(m).__name__.lower()
    return Call(f"self.{g.add_module(prefix, m)}", [x], note=repr(m))


def gen_activation(g: Generator, v: Optional[int] = None) -> None:
    v = need(g.pick((4, 2, 3)) if v is None else v)
    g.add(activation_call(g, v))


def pool_args(rng: random.Random, h: int, w: int) -> dict:
    square = rng.random() < 0.7
    k = [rng.randint(1, 5)] * 2 if square else [rng.randint(1, 5), rng.randint(1, 5)]
    pad = [rng.randint(0, kk // 2) for kk in k]
    if square:
        pad = [pad[0]] * 2
    stride: Any = None if rng.random() < 0.25 else ([rng.randint(1, 3)] * 2 if square else
                                                    [rng.randint(1, 3), rng.randint(1, 3)])
    return {"kernel_size": k[0] if square and rng.random() < 0.5 else k, "stride": stride,
            "padding": pad[0] if square and rng.random() < 0.5 else pad, "ceil_mode": rng.random() < 0.4}


def gen_pool(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    _, _, h, w = g.shape(v)
    kw = pool_args(rng, h, w)
    x = V(v)
    if rng.random() < 0.5:
        if rng.random() < 0.04:
            kw["divisor_override"] = rng.randint(1, 9)
        kw["count_include_pad"] = rng.random() < 0.5
        if rng.random() < 0.4:
            g.add(module_call(g, nn.AvgPool2d(**kw), x))
        else:
            g.add(Call("F.avg_pool2d", [x], kw))
        return
    if rng.random() < 0.05:
        kw["dilation"] = 2
    if rng.random() < 0.06:
        g.add(Call("F.max_pool2d", [x], dict(kw, return_indices=True), pick=0))
    elif rng.random() < 0.4:
        g.add(module_call(g, nn.MaxPool2d(**kw), x))
    else:
        g.add(Call("F.max_pool2d", [x], kw))


def gen_adaptive(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    _, _, h, w = g.shape(v)
    divisors = lambda n: [d for d in range(1, n + 1) if n % d == 0]
    r = rng.random()
    if r < 0.35:
        size: Any = rng.choice((1, (1, 1)))
    elif r < 0.85:
        size = (rng.choice(divisors(h)), rng.choice(divisors(w)))
    elif r < 0.9:
        size = (None, rng.choice(divisors(w)))
    elif r < 0.93:
        size = (h * rng.choice((1, 2)), w * 2)            # larger than the input: overlapping windows
    else:
        size = (rng.randint(1, h + 1), rng.randint(1, w + 1))   # often uneven: refused
    fn = rng.choice(("F.adaptive_avg_pool2d", "F.adaptive_avg_pool2d", "F.adaptive_max_pool2d"))
    if rng.random() < 0.3:
        m = nn.AdaptiveAvgPool2d(size) if "avg" in fn else nn.AdaptiveMaxPool2d(size)
        g.add(module_call(g, m, V(v)))
    else:
        g.add(Call(fn, [V(v), size]))


def gen_mean(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    dims = rng.choices([(2, 3), [2, 3], (-1, -2), (3, 2), (1,), (2,), (1, 2, 3), (-1,), (1, 3), 1],
                       (4, 3, 3, 1, 1, 0.5, 0.5, 0.5, 0.5, 1))[0]
    fn = rng.choices(["torch.mean", "torch.sum", "torch.amax", "torch.amin", "torch.max"], (4, 1, 1, 1, 1))[0]
    if fn == "torch.max":  # max(x, dim) gives (values, indices): the values
        g.add(Call(fn, [V(v), dims if isinstance(dims, int) else dims[0]], {"keepdim": rng.random() < 0.5}, pick=0))
        return
    g.add(Call(fn, [V(v)], {"dim": dims, "keepdim": rng.random() < 0.5}))


def gen_interpolate(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    _, _, h, w = g.shape(v)
    f = (rng.choice((1, 2, 2, 3)), rng.choice((1, 2, 2, 3))) if rng.random() < 0.3 else (rng.choice((2, 2, 3, 4)),) * 2
    if h * f[0] > 40 or w * f[1] > 40:
        raise Rejected("too large")
    r = rng.random()
    mode = "nearest" if r < 0.45 else "bilinear" if r < 0.85 else "nearest-exact"
    kw: dict = {"mode": mode}
    if mode == "bilinear":
        kw["align_corners"] = rng.random() < 0.25   # True: by interpolation matrices
    if rng.random() < 0.3:
        kw["size"] = [h * f[0], w * f[1]]
    else:
        kw["scale_factor"] = f[0] if f[0] == f[1] and rng.random() < 0.5 else list(f)
    if rng.random() < 0.2:   # any size, down-sampling too: by interpolation matrices
        kw.pop("scale_factor", None)
        kw["size"] = [rng.randint(1, 2 * h + 3), rng.randint(1, 2 * w + 3)]
    elif rng.random() < 0.05:
        kw.pop("size", None)
        kw["scale_factor"] = rng.choice((1.5, 0.5, 2.5))
    if rng.random() < 0.06 and "scale_factor" in kw and mode != "nearest-exact":
        legacy = "F.upsample_nearest" if mode == "nearest" else rng.choice(("F.upsample_bilinear", "F.upsample"))
        extra = {"mode": "bilinear", "align_corners": kw.get("align_corners")} if legacy == "F.upsample" else {}
        g.add(Call(legacy, [V(v)], dict(scale_factor=kw["scale_factor"], **extra)))
    elif rng.random() < 0.25:
        kw = {k: tuple(a) if isinstance(a, list) else a for k, a in kw.items()}
        g.add(module_call(g, nn.Upsample(**kw), V(v)))
    else:
        g.add(Call("F.interpolate", [V(v)], kw))


def gen_dropout(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4, 2, 3)))
    p = rng.choice((0.1, 0.2, 0.5))
    ip = rng.random() < 0.35
    x = V(v)
    choices: list[Callable[[], Call]] = [
        lambda: Call("F.dropout", [x, p], {"training": False, "inplace": ip}),
        lambda: Call("F.dropout2d", [x, p], {"training": False, "inplace": ip}),
        lambda: Call("F.dropout3d", [x, p], {"training": False, "inplace": ip}),
        lambda: Call("F.alpha_dropout", [x, p], {"training": False}),
        lambda: Call("F.feature_alpha_dropout", [x, p], {"training": False}),
        lambda: module_call(g, nn.Dropout(p, inplace=ip), x),
        lambda: module_call(g, nn.Dropout2d(p, inplace=ip), x),
        lambda: module_call(g, nn.Dropout3d(p, inplace=ip), x),
        lambda: module_call(g, nn.AlphaDropout(p), x),
    ]
    g.add(rng.choice(choices)())


def gen_identity(g: Generator) -> None:
    v = need(g.pick((4, 2, 3)))
    fn = g.rng.choice(("Tensor.contiguous", "Tensor.clone", "torch.clone", "Tensor.detach", "torch.detach"))
    g.add(Call(fn, [V(v)]))


def gen_flatten(g: Generator, v: Optional[int] = None, to_rank: int = 0) -> int:
    rng = g.rng
    v = need(g.pick((4,)) if v is None else v)
    n = g.shape(v)[0]
    rank = to_rank or rng.choices((2, 3, 1), (85, 12, 3))[0]
    x = V(v)
    if rank == 1:
        call = Call("torch.flatten", [x])
    elif rank == 3:
        call = rng.choice((Call("torch.flatten", [x, 2]), Call("Tensor.flatten", [x, 2])))
    else:
        call = rng.choice((Call("torch.flatten", [x, 1]), Call("Tensor.flatten", [x, 1]),
                           Call("Tensor.view", [x, n, -1]), Call("Tensor.reshape", [x, n, -1]),
                           Call("Tensor.view", [x, [n, -1]]), None))
        if call is None:
            call = module_call(g, nn.Flatten(), x)
    return g.add(call)[0]


def factor3(rng: random.Random, total: int) -> tuple[int, int, int]:
    divs = [d for d in range(1, total + 1) if total % d == 0]
    a = rng.choice(divs)
    rest = total // a
    b = rng.choice([d for d in range(1, rest + 1) if rest % d == 0])
    return a, b, rest // b


def gen_reshape(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4, 3, 2)))
    s = g.shape(v)
    n, per = s[0], int(np.prod(s[1:]))
    c, h, w = factor3(rng, per)
    if rng.random() < 0.03 and n == 1 and c % 2 == 0:
        n, c = 2, c // 2           # moves data into the batch: refused
    size = [n, c, h, w] if rng.random() < 0.8 else [n, -1, h, w]
    fn = rng.choice(("Tensor.view", "Tensor.reshape", "torch.reshape"))
    args = [V(v), size] if fn == "torch.reshape" or rng.random() < 0.5 else [V(v), *size]
    g.add(Call(fn, args))


def gen_cat(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4, 4, 2, 3)))
    s = g.shape(v)
    rank = len(s)
    dim = rng.choices([1, 2, 3, 0, -1], (70, 10, 10, 3, 7))[0]
    if dim >= rank:
        dim = 1
    d = dim % rank
    fits = lambda t: len(t) == rank and all(t[i] == s[i] for i in range(rank) if i != d)
    pool = g.partners(v, fits)
    k = rng.choice((1, 1, 2))
    others = [rng.choice(pool) for _ in range(k)]
    parts = [V(x) for x in [v] + others]
    rng.shuffle(parts)
    if rng.random() < 0.85:
        g.add(Call("torch.cat", [parts], {"dim": dim} if rng.random() < 0.7 else {}) if dim == 1 else
              Call("torch.cat", [parts, dim]))
    else:
        g.add(Call("torch.concat", [parts], {"dim": dim}))


def gen_split(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4, 4, 2)))
    s = g.shape(v)
    dim = rng.choices([1, 2, 3], (80, 10, 10))[0] if len(s) == 4 else 1
    size = s[dim]
    if size < 2:
        raise Rejected("nothing to split")
    r = rng.random()
    x = V(v)
    if r < 0.4:
        call = Call("torch.chunk", [x, rng.randint(2, min(4, size))], {"dim": dim})
    elif r < 0.6:
        call = Call("Tensor.chunk", [x, rng.randint(2, min(4, size)), dim])
    elif r < 0.8:
        call = Call("torch.split", [x, rng.randint(1, size - 1)], {"dim": dim})
    else:
        cut = rng.randint(1, size - 1)
        call = Call("Tensor.split", [x, [cut, size - cut]], {"dim": dim})
    g.add(call, check=lambda rs: any(healthy(r) for r in rs))


def gen_shuffle(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    n, c, h, w = g.shape(v)
    if rng.random() < 0.3:
        gen_pixel_shuffle(g, v, c, h, w)
        return
    groups = [d for d in range(2, c + 1) if c % d == 0]
    if not groups:
        raise Rejected("no channel shuffle of 1 channel")
    k = rng.choice(groups)
    if rng.random() < 0.08:
        g.add(module_call(g, nn.ChannelShuffle(k), V(v)))
        return
    (a,) = g.add(Call("Tensor.view", [V(v), n, k, c // k, h, w]))
    (b,) = g.add(Call("torch.transpose", [V(a), 1, 2]) if rng.random() < 0.6 else
                 Call("Tensor.transpose", [V(a), 2, 1]))
    if rng.random() < 0.6:
        (b,) = g.add(Call("Tensor.contiguous", [V(b)]))
        g.add(Call("Tensor.view", [V(b), n, -1, h, w]))
    else:
        g.add(Call("Tensor.reshape", [V(b), n, c, h, w]))


def gen_layout(g: Generator) -> None:
    """permute or transpose keeping the batch axis first (sometimes moving it when N = 1), sometimes
    followed by a detection head's contiguous().view(N, -1, k)."""
    rng = g.rng
    v = need(g.pick((4, 4, 3)))
    shape = g.shape(v)
    rank = len(shape)
    rest = list(range(1, rank))
    rng.shuffle(rest)
    if rng.random() < 0.3:
        d0, d1 = rng.sample(range(0 if shape[0] == 1 else 1, rank), 2)
        (w,) = g.add(Call("torch.transpose", [V(v), d0, d1]))
    else:
        (w,) = g.add(Call("Tensor.permute", [V(v), [0] + rest]))
    if rank == 4 and rest == [2, 3, 1] and rng.random() < 0.7:
        k = rng.choice([d for d in range(1, shape[1] + 1) if shape[1] % d == 0])
        (w,) = g.add(Call("Tensor.contiguous", [V(w)]))
        g.add(Call("Tensor.view", [V(w), shape[0], -1, k]))


def gen_matmul(g: Generator) -> None:
    """A product of two computed tensors (attention's scores x @ xᵀ, or with a partner of matching inner
    size), sometimes by a parameter matrix, sometimes after an unbind."""
    rng = g.rng
    v = need(g.pick((4, 4, 3)))
    shape = g.shape(v)
    m, k = shape[-2], shape[-1]
    if rng.random() < 0.25:
        w = g.add_tensor("mat", torch.randn(k, rng.randint(1, 6)) / math.sqrt(k), "param")
        g.add(Call("torch.matmul", [V(v), w]))
        return
    if len(shape) == 4 and shape[1] > 1 and rng.random() < 0.2:
        parts = g.add(Call("torch.unbind", [V(v), 1]))
        v = rng.choice(parts)
        shape = g.shape(v)
    if math.prod(shape) * m > 20000:
        raise Rejected("too many products")
    (t,) = g.add(Call("Tensor.transpose", [V(v), -2, -1]))
    a, b = (V(v), V(t)) if rng.random() < 0.5 else (V(t), V(v))
    g.add(Call("torch.matmul" if rng.random() < 0.7 else "operator.matmul", [a, b]))


def gen_misc(g: Generator) -> None:
    """The rest of issue 9's vocabulary: var and std, powers, squeeze/unsqueeze/expand, float casts."""
    rng = g.rng
    v = need(g.pick((4, 4, 3, 2)))
    shape = g.shape(v)
    r = rng.random()
    if r < 0.25:
        dims = rng.choice([d for d in ((1,), (2, 3), (1, 2, 3), (-1,), (1, 3)) if max(d) < len(shape)] or [(1,)])
        fn = rng.choice(("torch.var", "torch.std"))
        g.add(Call(fn, [V(v)], {"dim": dims, "unbiased": rng.random() < 0.7, "keepdim": rng.random() < 0.5}))
    elif r < 0.5:
        (a,) = g.add(Call("torch.abs", [V(v)]))
        fn = rng.choice(("torch.sqrt", "torch.rsqrt", "torch.reciprocal", "pow"))
        if fn == "pow":
            g.add(Call("torch.pow", [V(a) if rng.random() < 0.5 else V(v), rng.choice((2, 3, 0.5, 1.5, -1))]))
        else:
            (b,) = g.add(Call("operator.add", [V(a), rng.choice((0.5, 1.0))]))
            g.add(Call(fn, [V(b)]))
    elif r < 0.8 and len(shape) == 4:
        (m,) = g.add(Call("torch.mean", [V(v)], {"dim": rng.choice(((2, 3), (1,), (2,))), "keepdim": True}))
        if rng.random() < 0.5:
            g.add(Call("Tensor.expand_as", [V(m), V(v)]))
        else:
            (sq,) = g.add(Call("Tensor.squeeze", [V(m)]))
            if g.shape(sq) and len(g.shape(sq)) >= 1 and g.shape(sq)[0] == shape[0]:
                g.add(Call("Tensor.unsqueeze", [V(sq), -1]))
    elif r < 0.88 and len(shape) == 4:
        k = rng.choice((0, 1, 2))
        pads = [rng.randint(-1 if k == 0 else 0, 2) for _ in range(4)]
        if k and any(p >= min(shape[2], shape[3]) for p in pads):
            raise Rejected("reflect pad too large")
        g.add(Call("F.pad", [V(v), pads], {"mode": ("constant", "reflect", "replicate")[k]}))
    elif r < 0.91:
        if rng.random() < 0.5:
            g.add(Call("F.log_softmax", [V(v)], {"dim": rng.randint(1, len(shape) - 1)}))
        else:
            reps = [1] + [rng.choice((1, 1, 2, 3)) for _ in shape[1:]]
            if math.prod(shape) * math.prod(reps) > 20000:
                raise Rejected("too large")
            g.add(Call("Tensor.repeat", [V(v), *reps]))
    elif r < 0.95:
        parts = g.partners(v, lambda t: t == shape)
        fn = rng.choice(("torch.maximum", "torch.minimum", "torch.stack"))
        w = rng.choice(parts or [v])
        g.add(Call(fn, [[V(v), V(w)], rng.randint(0, len(shape))]) if fn == "torch.stack" else Call(fn, [V(v), V(w)]))
    else:
        g.add(Call("Tensor.to", [V(v), FLOAT]) if rng.random() < 0.7 else Call("Tensor.contiguous", [V(v)]))


def gen_pixel_shuffle(g: Generator, v: int, c: int, h: int, w: int) -> None:
    """pixel_shuffle when C divides by r², else pixel_unshuffle when H and W divide by r (ESPCN's upscaler)."""
    rng = g.rng
    r = rng.choice((2, 2, 3))
    if c % (r * r) == 0 and h * r <= 40 and w * r <= 40:
        g.add(Call("F.pixel_shuffle", [V(v), r]))
    elif h % r == 0 and w % r == 0 and c * r * r <= 64:
        g.add(Call("F.pixel_unshuffle", [V(v), r]))
    else:
        raise Rejected("no pixel shuffle fits")


_BINARY = {
    "+": ("operator.add", "torch.add", "Tensor.add_", "operator.iadd"),
    "-": ("operator.sub", "torch.sub", "Tensor.sub_", "operator.isub"),
    "*": ("operator.mul", "torch.mul", "Tensor.mul_", "operator.imul"),
    "/": ("operator.truediv", "torch.div", "Tensor.div_", "operator.itruediv"),
}


def binary_call(rng: random.Random, op: str, a: Any, b: Any, inplace_ok: bool) -> Call:
    spellings = _BINARY[op]
    k = rng.choices((0, 1, 2, 3), (5, 3, 1, 1) if inplace_ok else (5, 3, 0, 0))[0]
    return Call(spellings[k], [a, b])


def gen_binary(g: Generator) -> None:
    """Two values of the same shape, or x * se with se of shape (N, C, 1, 1), or another broadcast
    along the channel and spatial axes (a partner made by a keepdim reduction when none exists)."""
    rng = g.rng
    v = need(g.pick((4, 4, 2, 3)))
    s = g.shape(v)
    r = rng.random()
    if r < 0.75 or len(s) != 4:
        pool = g.partners(v, lambda t: t == s)
    elif r < 0.85:
        pool = g.partners(v, lambda t: t == (s[0], s[1], 1, 1))
    else:
        pool = g.partners(v, lambda t: t != s and all(a == b or b == 1 for a, b in zip(s, t)))
        if not pool or rng.random() < 0.5:
            axes = rng.choice(((1,), (2,), (3,), (2, 3), (1, 2), (1, 3)))
            fn = rng.choice(("torch.mean", "torch.amax"))
            pool = list(g.add(Call(fn, [V(v)], {"dim": axes, "keepdim": True})))
    w = rng.choice(pool or [v])
    op = rng.choices("+-*/", (4, 3, 4, 1))[0]
    if op == "/" and float(g.env[w].abs().min()) < 0.3:
        op = "*"
    a, b = (V(v), V(w)) if rng.random() < 0.7 or g.shape(w) != s else (V(w), V(v))
    call = binary_call(rng, op, a, b, inplace_ok=g.shape(a.id) == s)
    if rng.random() < 0.05 and op in "+-":
        call = Call("torch.add" if op == "+" else "torch.sub", [a, b], {"alpha": rng.choice((2, 0.5, -1.0))})
    g.add(call)


def gen_scalar(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4, 4, 2, 3)))
    c: Any = rng.choice((0.5, 2.0, -1.5, 3, 2, 0.25, -0.75, 1.0))
    x = V(v)
    r = rng.random()
    if r < 0.5:
        op = rng.choices("+-*/", (3, 3, 3, 2))[0]
        call = binary_call(rng, op, x, c, inplace_ok=True)
    elif r < 0.8:
        op = rng.choice("+-*")
        call = Call({"+": "operator.add", "-": "operator.sub", "*": "operator.mul"}[op], [c, x])
    elif r < 0.93:
        call = Call("torch.rsub", [x, c])
    elif r < 0.97:
        call = Call("torch.add", [x, c], {"alpha": rng.choice((2, 0.5))})
    else:
        if float(g.env[v].abs().min()) < 0.3:
            raise Rejected("reciprocal of a value near 0")
        call = Call("operator.truediv", [c, x])   # c / x: refused
    # operator.sub(c, x) is Python's c - x: for a number c that is x.__rsub__(c)
    g.add(call)


def operand_tensor(g: Generator, shape: Shape, for_div: bool) -> Any:
    rng = g.rng
    if for_div:
        t = torch.empty(shape).uniform_(0.5, 2.0) * torch.where(torch.rand(shape) < 0.2, -1.0, 1.0)
    else:
        t = torch.randn(shape) * rng.choice((0.5, 1.0, 2.0))
    if rng.random() < 0.12:
        return K(shape, round(float(t.flatten()[0]), 3))
    return g.add_tensor(rng.choice(("p", "buf", "t")), t, rng.choice(("param", "buffer", "plain")))


def gen_const_operand(g: Generator) -> None:
    """Arithmetic with a parameter, buffer or constant tensor: per channel, scalar, or full shape."""
    rng = g.rng
    v = need(g.pick((4, 4, 2)))
    s = g.shape(v)
    c = s[1]
    if len(s) == 4:
        options = [(1, c, 1, 1), (c, 1, 1), (), (1,), (1, 1, 1, 1), (1,) + s[1:], s, (1, 1) + s[2:], (1, c, 1, s[3])]
        weights = (10, 3, 5, 2, 2, 3, 2, 1, 1)
    else:
        options = [(c,), (1, c), (), (1,), s]
        weights = (6, 3, 4, 1, 2)
    shape = rng.choices(options, weights)[0]
    op = rng.choices("+-*/", (4, 3, 4, 2))[0]
    k = operand_tensor(g, shape, for_div=op == "/")
    x = V(v)
    if rng.random() < 0.65 or op == "/":
        call = binary_call(rng, op, x, k, inplace_ok=True)
    else:
        call = Call({"+": "operator.add", "-": "operator.sub", "*": "operator.mul"}[op], [k, x])
    g.add(call)


def gen_cat_const(g: Generator) -> None:
    rng = g.rng
    v = need(g.pick((4,)))
    n, c, h, w = g.shape(v)
    k = operand_tensor(g, (n, rng.randint(1, 3), h, w), for_div=False)
    parts = [V(v), k] if rng.random() < 0.7 else [k, V(v)]
    g.add(Call("torch.cat", [parts, 1]))


def gen_se(g: Generator) -> None:
    """Squeeze and excitation: x * sigmoid(fc(relu(fc(pool(x))))), per channel."""
    rng = g.rng
    v = need(g.pick((4,)))
    n, c, h, w = g.shape(v)
    (p,) = g.add(Call("F.adaptive_avg_pool2d", [V(v), 1]) if rng.random() < 0.6 else
                 Call("torch.mean", [V(v), (2, 3)], {"keepdim": True}))
    mid = rng.randint(1, max(1, c))
    (a,) = g.add(Call(f"self.{g.add_module('se', nn.Conv2d(c, mid, 1))}", [V(p)]))
    (a,) = g.add(Call("F.relu", [V(a)]), check=lambda rs: True)
    m = nn.Conv2d(mid, c, 1)
    m.weight.data.mul_(2.0)
    (b,) = g.add(Call(f"self.{g.add_module('se', m)}", [V(a)]), check=lambda rs: True)
    (b,) = g.add(Call(rng.choice(("torch.sigmoid", "F.hardsigmoid")), [V(b)]), check=lambda rs: True)
    r = rng.random()
    if r < 0.6:
        g.add(Call("operator.mul", [V(v), V(b)]))
    elif r < 0.85:
        g.add(Call("operator.mul", [V(b), V(v)]))
    else:
        g.add(Call("torch.mul", [V(v), V(b)]))


def gen_probe(g: Generator) -> None:
    """An op outside the lowered vocabulary, or an argument ptcc cannot lower exactly: must be refused
    at its line (or, if ptcc does lower it, be exact)."""
    rng = g.rng
    v = need(g.pick((4, 2)))
    x = V(v)
    rank = g.env[v].dim()
    table: list[Callable[[], Call]] = [
        lambda: Call("F.gelu", [x]),
        lambda: Call("torch.neg", [x]),
        lambda: Call("torch.sum", [x, 1], {"keepdim": True}),
        lambda: Call("F.log_softmax", [x, 1]),
        lambda: Call("torch.clamp", [x, -0.5, 0.5]),
        lambda: Call("F.softplus", [x], {"beta": 2.0}),
        lambda: Call("F.softplus", [x], {"beta": 1.0, "threshold": 2.0}),
        lambda: Call("F.leaky_relu", [x, -0.5]),
        lambda: Call("F.leaky_relu", [x, 1.5]),
        lambda: Call("F.selu", [x]),
        lambda: Call("F.celu", [x, 0.5]),
        lambda: Call("torch.pow", [x, 2]),
        lambda: Call("Tensor.permute", [x, *reversed(range(rank))]),
        lambda: Call("torch.transpose", [x, -1, -2]),
        lambda: Call("F.pad", [x, [1, 1] * (rank // 2)]),
        lambda: Call("F.softmax", [x], {"dim": 1, "dtype": FLOAT}),
        lambda: Call("torch.amax", [x, 1], {"keepdim": True}),
        lambda: Call("torch.mean", [x, 1], {"keepdim": True}),
        lambda: Call("F.dropout", [x, 0.5], {"training": True}),
        lambda: Call("F.batch_norm", [x, None, None], {"training": True}),
        lambda: Call("F.interpolate", [x], {"scale_factor": 2, "mode": "bilinear", "align_corners": False,
                                            "antialias": True}),
        lambda: Call("F.elu", [x], {"alpha": -0.5}),
        lambda: Call("F.hardtanh", [x, 0.5, 0.5]),
        lambda: Call("F.avg_pool2d", [x, 2], {"divisor_override": 3}),
        lambda: Call("F.max_pool2d", [x, 2], {"dilation": 2}),
    ]
    g.add(rng.choice(table)())


def gen_block(g: Generator) -> None:
    """A module with submodules, called as a unit: Sequential(conv, batch norm, activation), so that
    scopes nest (layer names) and -O2 has a BatchNorm to fold."""
    rng = g.rng
    v = need(g.pick((4,)))
    c = g.shape(v)[1]
    out = rng.randint(1, 8)
    k = rng.choice((1, 3, 3, 5))
    conv = nn.Conv2d(c, out, k, rng.choice((1, 1, 2)), k // 2, bias=rng.random() < 0.3)
    conv.weight.data.mul_(rng.uniform(1.0, 2.0))
    mods: list[nn.Module] = [conv, calibrated_bn(out, 4, rng)]
    act = rng.choice((nn.ReLU(inplace=True), nn.ReLU6(inplace=True), nn.SiLU(inplace=True), nn.Hardswish(),
                      nn.LeakyReLU(0.1, inplace=True), None))
    if act is not None:
        mods.append(act)
    if rng.random() < 0.2:
        mods.append(nn.Dropout(0.2))
    block = nn.Sequential(*mods)
    g.add(Call(f"self.{g.add_module('block', block)}", [V(v)]))


def gen_reuse(g: Generator) -> None:
    """A module of the model called again on another value (shared weights, a second layer name)."""
    rng = g.rng
    mods = [(n, m) for n, m in g.model.named_children()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.Sequential))]
    rng.shuffle(mods)
    for name, m in mods:
        first = m[0] if isinstance(m, nn.Sequential) else m
        if isinstance(first, nn.Conv2d):
            want, rank = first.in_channels, 4
        elif isinstance(first, nn.Linear):
            want, rank = first.in_features, 2
        elif isinstance(first, (nn.BatchNorm2d, nn.BatchNorm1d)):
            want, rank = first.num_features, 4 if isinstance(first, nn.BatchNorm2d) else 2
        else:
            continue
        vs = [v for v in g.live((rank,)) if g.shape(v)[1 if rank == 4 else -1] == want]
        if vs:
            g.add(Call(f"self.{name}", [V(rng.choice(vs))], note="called again"))
            return
    raise Rejected("no module to call again")


# weight, function
FAMILIES: dict[str, tuple[float, Callable[[Generator], Any]]] = {
    "conv": (10, gen_conv),
    "conv_transpose": (2.5, gen_conv_transpose),
    "linear": (3, gen_linear),
    "batch_norm": (5, gen_batch_norm),
    "norm": (2, gen_norm),
    "activation": (14, gen_activation),
    "pool": (7, gen_pool),
    "adaptive": (2.5, gen_adaptive),
    "mean": (2.5, gen_mean),
    "interpolate": (3, gen_interpolate),
    "dropout": (2.5, gen_dropout),
    "identity": (2, gen_identity),
    "flatten": (2.5, gen_flatten),
    "reshape": (2.5, gen_reshape),
    "cat": (4, gen_cat),
    "split": (3, gen_split),
    "range": (2, gen_range),
    "shuffle": (1.5, gen_shuffle),
    "layout": (2, gen_layout),
    "matmul": (1.5, gen_matmul),
    "misc": (1.5, gen_misc),
    "binary": (6, gen_binary),
    "scalar": (4, gen_scalar),
    "const_operand": (5, gen_const_operand),
    "cat_const": (0.7, gen_cat_const),
    "se": (1.5, gen_se),
    "probe": (1.2, gen_probe),
    "block": (2, gen_block),
    "reuse": (1.5, gen_reuse),
}


def flatten_outputs(result: Any) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return list(result.values())
    return list(result)


def generate(seed: int) -> tuple[RandomModel, list[torch.Tensor]]:
    """The model and inputs of `seed`: the first attempt whose every output is healthy in PyTorch
    (max |ref| ≥ 1e-6 and not constant, so a comparison means something)."""
    for attempt in range(ATTEMPTS):
        try:
            model, inputs = Generator(seed, attempt).build()
        except (Rejected, Broken):
            continue
        model.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outs = flatten_outputs(model(*[x.clone() for x in inputs]))
            except RuntimeError:  # e.g. a view of a value that the replay left non-contiguous
                continue
        if all(healthy(o, low=1e-6, high=1e6) for o in outs):
            return model, inputs
    raise RuntimeError(f"seed {seed}: no healthy model in {ATTEMPTS} attempts")


# =====================================================================================================
# Part 2: the check
# =====================================================================================================

_DIAG = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$", re.M)


@dataclass
class Result:
    """The outcome of one model: every compilation's status and every failure found."""
    name: str
    dir: str
    description: str = ""
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)   # "caffe -O1" -> "exact" | "refused" | "FAIL"
    diagnostics: list[str] = field(default_factory=list)     # first diagnostic of each refusal
    nets: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    log: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def outcome(self) -> str:
        if self.failures:
            return "FAIL"
        kinds = set(self.statuses.values())
        return kinds.pop() if len(kinds) == 1 else "mixed"


@dataclass
class Net:
    prototxt: str
    combos: list[tuple[str, str]]   # (target, level) that wrote this same net


def ptcc_command(log: str, prototxt: str, target: str, level: str) -> list[str]:
    return [parity.ptcc_binary(), log, "-o", prototxt, f"--target={target}", level]


def compile_case(log: str, prototxt: str, target: str, level: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(ptcc_command(log, prototxt, target, level), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=PTCC_TIMEOUT,
                              env=dict(os.environ, LC_ALL="C", NO_COLOR="1"))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([], -999, "", f"ptcc did not finish in {PTCC_TIMEOUT} s")


def log_ops(log: str) -> dict[int, str]:
    """Line number -> op name of the log's op lines."""
    ops = {}
    with open(log, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            m = re.match(r"\s*(?:[%_][\w%, ]*)=\s*(\w+)\(", line)
            if m:
                ops[i] = m[1]
    return ops


def check_refusal(log: str, r: subprocess.CompletedProcess, prototxt: str) -> list[str]:
    """Exit 1 must come with located diagnostics at lines of the log, each naming the op of its line,
    and no output files."""
    problems = []
    diags = [d for d in _DIAG.finditer(r.stderr)]
    if not diags:
        problems.append("exit 1 without a located diagnostic (file:line:col: error:)")
    ops = log_ops(log)
    with open(log, encoding="utf-8") as f:
        nlines = sum(1 for _ in f)
    for d in diags:
        line = int(d["line"])
        if d["file"] != log or not 1 <= line <= nlines:
            problems.append(f"diagnostic not at a line of the log: {d[0]}")
        elif line in ops and not re.search(rf"\b{re.escape(ops[line])}\b", d["msg"]):
            problems.append(f"diagnostic at a line of {ops[line]} does not name it: {d[0]}")
    for path in (prototxt, parity.caffemodel_of(prototxt)):
        if os.path.exists(path):
            problems.append(f"{os.path.basename(path)} written despite the error")
    return problems


def distance(got: np.ndarray, want: np.ndarray, want64: np.ndarray, runtime: str) -> Optional[str]:
    """None when `got` is PyTorch's output: same shape (OpenCV gives a 1-D output as 2-D) and max |Δ| ≤
    1e-4 · max(1, max |ref|), or no further from the float64 result than PyTorch's float32 one is."""
    bad = parity.shape_error(got, want, runtime)
    if bad:
        return bad
    err = parity.error(got, want)
    if err <= parity.TOLERANCE:
        return None
    g = np.asarray(got, np.float64).reshape(want.shape)
    d_got = float(np.max(np.abs(g - want64)))
    d_ref = float(np.max(np.abs(want.astype(np.float64) - want64)))
    if d_got <= d_ref:
        return None
    return f"max |Δ| {err:.3g} of max(1, max |ref|) {max(1.0, float(np.max(np.abs(want)))):.3g}; " \
           f"float64: {d_got:.3g} vs PyTorch float32's {d_ref:.3g}"


def unread_layers(layers: list) -> list:
    """Layers none of whose tops a later layer reads (OpenCV's unconnected outputs), less Input layers."""
    out = []
    for i, l in enumerate(layers):
        later = {b for m in layers[i + 1:] for b in m.bottom}
        if l.type != "Input" and not any(t in later for t in l.top):
            out.append(l)
    return out


def last_writers(layers: list) -> dict[str, Any]:
    """Blob name -> the layer that writes it last (an in-place layer after its producer)."""
    return {t: l for l in layers for t in l.top}


@dataclass
class Plan:
    """What one net is checked against: its declared outputs, their writers, the inputs to feed."""
    outputs: list[str]
    writers: dict[str, Any]
    feeds: list[tuple[str, np.ndarray]]


def plan_net(prototxt: str, layers: list, log: str, xs: list[np.ndarray], n_out: int
             ) -> tuple[Optional[Plan], list[str]]:
    """The outputs the prototxt declares (one per model output, each a computed blob), the inputs to
    feed by name, and the problems found on the way: an Input that is no trace input, a layer whose
    result nothing reads and no output is."""
    problems = []
    try:
        outputs = parity.declared_outputs(prototxt)
    except AssertionError:
        return None, ["[outputs] no `# outputs:` line in the prototxt"]
    if len(outputs) != n_out:
        return None, [f"[outputs] `# outputs:` names {len(outputs)} blobs; the model has {n_out} outputs"]
    writers = last_writers(layers)
    missing = [b for b in outputs if b not in writers or writers[b].type == "Input"]
    if missing:
        return None, [f"[outputs] declared outputs {missing} are no computed blob of the net"]
    names = parity.trace_inputs(log)
    feeds = []
    for l in layers:
        if l.type == "Input":
            if l.top[0] not in names:
                problems.append(f"[inputs] Input layer {l.top[0]!r} is none of the trace's inputs {names}")
            else:
                feeds.append((l.top[0], xs[names.index(l.top[0])]))
    writer_names = {writers[b].name for b in outputs}
    dangling = [l.name for l in unread_layers(layers) if l.name not in writer_names]
    if dangling:
        problems.append(f"[dangling] layers {dangling} write blobs that no layer reads and that are no output "
                        "(OpenCV lists them among the net's outputs)")
    return Plan(outputs, writers, feeds), problems


def compare(runtime: str, plan: Plan, got: dict[str, np.ndarray], want: list[np.ndarray],
            want64: list[np.ndarray]) -> list[str]:
    problems = []
    for i, (blob, w, w64) in enumerate(zip(plan.outputs, want, want64)):
        bad = distance(got[blob], w, w64, runtime)
        if bad:
            problems.append(f"[wrong-value] {runtime}: output {i} (blob {blob!r}, layer "
                            f"{plan.writers[blob].name!r} {plan.writers[blob].type}): {bad}")
    return problems


def run_opencv(prototxt: str, plan: Plan, want: list[np.ndarray], want64: list[np.ndarray]) -> list[str]:
    """OpenCV as a user runs it: forward(the layers that write the outputs), which returns each layer's
    first top."""
    import cv2

    problems = []
    for i, blob in enumerate(plan.outputs):
        layer = plan.writers[blob]
        if layer.top[0] != blob:
            problems.append(f"[slice-top] opencv: output {i} is top {layer.top.index(blob)} of layer "
                            f"{layer.name!r}; OpenCV's forward({layer.name!r}) returns its top 0")
    if problems:
        return problems
    names = list(dict.fromkeys(plan.writers[b].name for b in plan.outputs))
    try:
        net = cv2.dnn.readNetFromCaffe(prototxt, parity.caffemodel_of(prototxt))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        for name, x in plan.feeds:
            net.setInput(np.ascontiguousarray(x, dtype=np.float32), name)
        values = dict(zip(names, (np.array(o) for o in net.forward(names))))
    except cv2.error as e:
        return [f"[runtime-refused] opencv: {str(e).strip().splitlines()[-1][:500]}"]
    got = {b: values[plan.writers[b].name] for b in plan.outputs}
    return compare("opencv", plan, got, want, want64)


def run_bvlc(prototxt: str, plan: Plan, want: list[np.ndarray], want64: list[np.ndarray]) -> list[str]:
    """BVLC Caffe: the declared output blobs, by name."""
    blobs = list(dict.fromkeys(plan.outputs))
    try:
        names, arrays = parity.run_caffe_named(prototxt, parity.caffemodel_of(prototxt),
                                               [x for _, x in plan.feeds], [n for n, _ in plan.feeds], blobs)
    except parity.CaffeRefused as e:
        return [f"[runtime-refused] bvlc: {str(e)[:800]}"]
    return compare("bvlc", plan, dict(zip(names, arrays)), want, want64)


def check_net(net: Net, log: str, xs: list[np.ndarray], want: list[np.ndarray], want64: list[np.ndarray],
              bvlc: bool, result: Result) -> list[str]:
    """Validate one net, then run it in OpenCV and (for targets caffe, caffe-master) BVLC Caffe."""
    problems = parity.validate(net.prototxt, parity.caffemodel_of(net.prototxt))
    if all(t == "opencv" for t, _ in net.combos):
        problems = parity.opencv_allowed(problems)
    if problems:
        return ["[validate] " + "; ".join(problems[:6])]
    layers = parity.prototxt_layers(net.prototxt)
    plan, problems = plan_net(net.prototxt, layers, log, xs, len(want))
    if plan is None:
        return problems
    problems += run_opencv(net.prototxt, plan, want, want64)
    result.runs["opencv"] = result.runs.get("opencv", 0) + 1
    if bvlc and any(t in BVLC_TARGETS for t, _ in net.combos):
        problems += run_bvlc(net.prototxt, plan, want, want64)
        result.runs["bvlc"] = result.runs.get("bvlc", 0) + 1
    return problems


def check_model(model: nn.Module, inputs: Sequence[torch.Tensor], name: str, directory: str,
                targets: Sequence[str] = TARGETS, levels: Sequence[str] = LEVELS, bvlc: bool = False,
                model64: Optional[nn.Module] = None) -> Result:
    """Record `model` on `inputs`, compile for every target and level, run and compare (see the module
    docstring).  `model64` is the float64 reference model (default: a float64 copy of `model`)."""
    from ptcc.record import RecordError, record

    start = time.perf_counter()
    os.makedirs(directory, exist_ok=True)
    result = Result(name, directory)
    log = os.path.join(directory, "model.log")
    result.log = log
    model.eval()
    xs = [x.detach().numpy().copy() for x in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = [t.detach().numpy().copy() for t in flatten_outputs(record(model, [x.clone() for x in inputs], log))]
        except RecordError as e:
            result.failures.append(f"[record] ptcc-record refused the model: {e}")
            return result
        if model64 is None:
            model64 = model.to_double() if isinstance(model, RandomModel) else copy.deepcopy(model).double()
        with torch.no_grad():
            want64 = [t.numpy().copy() for t in flatten_outputs(model64.eval()(*[x.double() for x in inputs]))]
    nets: dict[str, Net] = {}
    for target in targets:
        for level in levels:
            combo = f"{target} {level}"
            prototxt = os.path.join(directory, f"{target}{level}.prototxt")
            for stale in (prototxt, parity.caffemodel_of(prototxt)):   # a refusal must write nothing
                if os.path.exists(stale):
                    os.unlink(stale)
            r = compile_case(log, prototxt, target, level)
            cmd = " ".join(ptcc_command(log, prototxt, target, level))
            if r.returncode == 1:
                problems = check_refusal(log, r, prototxt)
                result.statuses[combo] = "refused"
                first = r.stderr.splitlines()[0] if r.stderr else ""
                result.diagnostics.append(first)
                if problems:
                    result.statuses[combo] = "FAIL"
                    result.failures.append(f"[diagnostic] {combo}: {'; '.join(problems)}\n    $ {cmd}\n"
                                           f"    {r.stderr[:1500]}")
            elif r.returncode != 0:
                result.statuses[combo] = "FAIL"
                result.failures.append(f"[crash] {combo}: ptcc exit {r.returncode} (crash or usage error)\n    $ {cmd}\n"
                                       f"    {r.stderr[-1500:]}")
            else:
                result.statuses[combo] = "exact"
                nets.setdefault(parity.net_key(prototxt), Net(prototxt, [])).combos.append((target, level))
    result.nets = len(nets)
    for net in nets.values():
        problems = check_net(net, log, xs, want, want64, bvlc, result)
        if problems:
            combos = ", ".join(f"{t} {l}" for t, l in net.combos)
            for t, l in net.combos:
                result.statuses[f"{t} {l}"] = "FAIL"
            t, l = net.combos[0]
            cmd = " ".join(ptcc_command(log, net.prototxt, t, l))
            result.failures.append(f"{combos}: exit 0, but:\n    " + "\n    ".join(problems) + f"\n    $ {cmd}")
    result.seconds = time.perf_counter() - start
    return result


# =====================================================================================================
# Part 3: seeds and campaigns
# =====================================================================================================

def reproduce_command(seed: int) -> str:
    return f"scripts/fuzz-models --seed {seed} --count 1 --keep   # from the top of the built tree"


def run_seed(seed: int, out: str, bvlc: bool, targets: Sequence[str] = TARGETS,
             levels: Sequence[str] = LEVELS, keep: bool = False) -> Result:
    """Generate the model of `seed`, check it; keep its files under `out`/seed-S when it fails (or
    `keep`), and write there its description and how to reproduce it."""
    directory = os.path.join(out, f"seed-{seed}")
    shutil.rmtree(directory, ignore_errors=True)
    try:
        model, inputs = generate(seed)
        result = check_model(model, inputs, f"seed {seed}", directory, targets, levels, bvlc)
        result.description = model.describe()
    except Exception:   # a bug of this harness: reported as this seed's failure, the campaign goes on
        import traceback

        os.makedirs(directory, exist_ok=True)
        result = Result(f"seed {seed}", directory, failures=["[harness] " + traceback.format_exc()])
    if result.failures or keep:
        with open(os.path.join(directory, "README.txt"), "w") as f:
            f.write(report(result, seed) + "\n")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return result


def report(result: Result, seed: Optional[int] = None) -> str:
    lines = [f"== {result.name}: {result.outcome()} ({result.seconds:.2f} s, {result.nets} distinct nets)"]
    if seed is not None:
        lines.append(f"reproduce: {reproduce_command(seed)}")
    lines.append(f"files: {result.dir}")
    lines.append("model:")
    lines += ["    " + l for l in result.description.splitlines()]
    for f in result.failures:
        lines.append("FAILURE " + f)
    return "\n".join(lines)


def summarise(results: list[Result], seconds: float) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome()] = counts.get(r.outcome(), 0) + 1
    compiles = sum(len(r.statuses) for r in results)
    nets = sum(r.nets for r in results)
    runs = {k: sum(r.runs.get(k, 0) for r in results) for k in ("opencv", "bvlc")}
    per = seconds / max(1, len(results))
    return (f"{len(results)} models in {seconds:.1f} s ({per:.2f} s each): "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f"; {compiles} compilations, {nets} distinct nets, {runs['opencv']} OpenCV runs, "
              f"{runs['bvlc']} BVLC runs")


def _child_init() -> None:
    """In a worker process of --jobs: its own BVLC worker, not the parent's pipes."""
    parity._worker = None
    torch.set_num_threads(1)


def _run_one(job: tuple) -> Result:
    return run_seed(*job)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz-models", description="Random-model differential testing of ptcc: "
                                 "generate, record, compile at -O0/-O1/-O2 for every target, run in OpenCV dnn and "
                                 "BVLC Caffe.")
    ap.add_argument("--seed", type=str, default="", help="first seed (default 0)")
    ap.add_argument("--count", type=str, default="", help="number of seeds (default 200)")
    ap.add_argument("--jobs", type=str, default="", help="worker processes (default 1)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--levels", default=",".join(LEVELS))
    ap.add_argument("--out", default=os.path.join(ptcctest.OUT, "random"),
                    help="where failing cases are kept (default $PTCC_TEST_OUT/random)")
    ap.add_argument("--no-bvlc", action="store_true", help="OpenCV only")
    ap.add_argument("--keep", action="store_true", help="keep every case's files, not only failures")
    ap.add_argument("--describe", action="store_true", help="print each model, do not check it")
    ap.add_argument("--quiet", action="store_true", help="print failures and the summary only")
    args = ap.parse_args(argv)
    first = int(args.seed or 0)
    count = int(args.count or 200)
    jobs = int(args.jobs or 1)
    torch.set_num_threads(1)
    if args.describe:
        for seed in range(first, first + count):
            print(f"== seed {seed}\n{generate(seed)[0].describe()}")
        return 0
    if not os.access(parity.ptcc_binary(), os.X_OK):
        print(f"fuzz-models: no {parity.ptcc_binary()}; build it first (make)", file=sys.stderr)
        return 2
    bvlc = not args.no_bvlc and parity.require_bvlc()
    start = time.perf_counter()
    work = [(seed, args.out, bvlc, args.targets.split(","), args.levels.split(","), args.keep)
            for seed in range(first, first + count)]
    results = []
    if jobs > 1:
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_child_init)
        stream = pool.imap(_run_one, work)
    else:
        pool = None
        stream = map(_run_one, work)
    for (seed, *_), r in zip(work, stream):
        results.append(r)
        if r.failures:
            print(report(r, seed), flush=True)
        elif not args.quiet:
            print(f"seed {seed}: {r.outcome()} ({r.seconds:.2f} s)", flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    print(summarise(results, time.perf_counter() - start))
    failed = [r for r in results if r.failures]
    if failed:
        print("failing seeds: " + " ".join(r.name.split()[-1] for r in failed))
        print("failure kinds: " + failure_kinds(failed))
    return 1 if failed else 0


def failure_kinds(results: list[Result]) -> str:
    """How many failing models show each [kind] of problem."""
    kinds: dict[str, int] = {}
    for r in results:
        for k in {m for f in r.failures for m in re.findall(r"(?m)^\s*\[([a-z-]+)\]", f)} or {"other"}:
            kinds[k] = kinds.get(k, 0) + 1
    return ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    sys.exit(main())
