"""Record one run of a model from its autograd graph (`ptcc-record --via=autograd`): the second recorder.

The default recorder (record.py) watches Python's calls.  This one watches nothing while the model runs:
it runs the model once with the inputs and parameters requiring grad, then reads what autograd kept,
walking from the outputs through `grad_fn.next_functions`.  Each backward node names the C++ op that ran
(`ConvolutionBackward0`: a convolution) and, since torch 1.9, keeps that op's arguments as `_saved_*`
attributes (`_saved_stride`, `_saved_padding`, the saved input and weight).  So the two recorders see the
same run through different mechanisms, and `ptcc-record --cross-check` (crosscheck.py) compares them.

What the graph does not hold is found by one backward pass from the outputs: a hook on every node sees the
gradients of the op's outputs, which have the outputs' shapes and dtypes (the types the trace writes), and
the engine runs the nodes in the reverse of the order in which the forward pass made them (its ready queue
is ordered by sequence number), so the hooks' order reversed is the forward order.

Parameters come from the `AccumulateGrad` leaves (named from `named_parameters()`), buffers and constants
from the saved tensors (buffers named from `named_buffers()`, by identity).  Module scopes are not in the
graph: an op whose parameters all belong to one module is written inside `call MODULE Class`, any other op
at the model's top level.  What autograd cannot show (an operand it kept no copy of, a custom
autograd.Function, an in-place write into a view, a backward node this recorder has no op for) is refused
with a RecordError that names the node.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import torch

from . import TRACE_VERSION, textlog
from .record import RecordError, _flatten_outputs, _input_names, _write_atomically
from .textlog import Ref, Unrepresentable


@dataclass(eq=False)
class Leaf:
    """A tensor the trace declares: an input (`%N`), a parameter or buffer (`$name`), or a constant."""

    tensor: torch.Tensor
    kind: str  # "input", "param" or "const"
    name: str = ""
    label: str = ""  # an input's name
    number: int = -1


@dataclass(eq=False)
class Result:
    """Output `index` of an op line."""

    op: "Op"
    index: int
    number: int = -1


Arg = Union[Leaf, Result]


@dataclass(eq=False)
class Op:
    name: str
    args: list
    kwargs: list[tuple[str, Any]]
    types: list[Optional[tuple[torch.dtype, tuple[int, ...]]]] = field(default_factory=list)
    node: str = ""  # the backward node's class, for messages
    scope: str = ""
    results: list[Result] = field(default_factory=list)
    live: bool = False


class Alias:
    """A node whose output is its input (a clone, a no-op copy): no op line, the input stands for it."""

    def __init__(self, arg: Arg) -> None:
        self.arg = arg


class _Graph:
    """The autograd graph of one run, and what the backward pass told about it."""

    def __init__(self, roots: list[Any]) -> None:
        self.nodes: list[Any] = []  # every non-leaf node, in the forward order once `run_backward` ran
        self.types: dict[Any, list] = {}  # node -> [(dtype, shape) or None] per output
        seen: set = set()
        stack = [r for r in roots if r is not None]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if type(node).__name__ != "AccumulateGrad":
                self.nodes.append(node)
            stack.extend(fn for fn, _ in node.next_functions if fn is not None)

    def run_backward(self, outputs: list[torch.Tensor]) -> None:
        fired: list[Any] = []

        def hook(node: Any) -> Callable:
            def seen(grad_inputs: Any, grad_outputs: Any) -> None:
                fired.append(node)
                self.types[node] = [(g.dtype, tuple(g.shape)) if g is not None else None for g in grad_outputs]
            return seen

        handles = [node.register_hook(hook(node)) for node in self.nodes]
        try:
            torch.autograd.backward(outputs, [torch.ones_like(t) for t in outputs], retain_graph=True)
        finally:
            for h in handles:
                h.remove()
        if len(fired) != len(self.nodes):
            missing = next(n for n in self.nodes if n not in self.types)
            raise RecordError(f"{type(missing).__name__}: autograd's backward pass did not reach this node")
        self.nodes = fired[::-1]


class _Mapper:
    """Turns backward nodes into op lines."""

    def __init__(self, model: torch.nn.Module, graph: _Graph, inputs: dict[int, Leaf]) -> None:
        self.graph = graph
        self.leaves: dict[int, Leaf] = dict(inputs)  # id(tensor) -> leaf
        self.names: dict[int, str] = {}  # id(parameter or buffer) -> its qualified name
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            self.names.setdefault(id(t), name)
        self.attributes: set[int] = set()  # tensors kept on modules unregistered: constants (record.py too)
        for module in model.modules():
            self.attributes.update(id(v) for v in vars(module).values() if isinstance(v, torch.Tensor))
        self.values: dict[tuple[Any, int], Arg] = {}  # (node, output index) -> what holds it
        self.ops: list[Op] = []

    # -- references --

    def leaf(self, t: torch.Tensor, node: str) -> Leaf:
        """The parameter, buffer or constant `t` (a saved tensor, or the variable of an AccumulateGrad).
        A tensor that is none of the model's may have been computed from the inputs and detached: taking
        its value as a constant would give a net that ignores the inputs there, so it is refused."""
        found = self.leaves.get(id(t))
        if found is not None:
            return found
        name = self.names.get(id(t))
        if name is not None:
            leaf = Leaf(t, "param", name)
        elif id(t) in self.attributes:
            leaf = Leaf(t.detach().clone(), "const")
        else:
            raise RecordError(f"{node}: an operand requires no grad and is not a parameter, buffer or tensor "
                              "attribute of the model (a detached or integer tensor, or one made during the "
                              "run): autograd cannot show how it was computed; record without --via=autograd")
        self.leaves[id(t)] = leaf
        return leaf

    def edge(self, node: Any, i: int) -> Optional[Arg]:
        """Input `i` of the op that made `node`, when autograd followed it (None when it requires no grad)."""
        fn, nr = node.next_functions[i]
        if fn is None:
            return None
        if type(fn).__name__ == "AccumulateGrad":
            var = fn.variable
            if id(var) not in self.leaves and id(var) not in self.names:
                raise RecordError(f"{type(node).__name__}: an operand is a tensor that requires grad but is "
                                  "not an input or a parameter of the model")
            return self.leaf(var, f"{type(node).__name__}: operand {i + 1}")
        value = self.values.get((fn, nr))
        if value is None:
            raise RecordError(f"{type(fn).__name__}: output {nr} is used but was not recorded")
        return value

    def tensor_arg(self, node: Any, i: int, saved: str = "") -> Arg:
        """Input `i`, else the tensor the node saved as `saved` (a constant, buffer or parameter)."""
        arg = self.edge(node, i)
        if arg is not None:
            return arg
        if saved and hasattr(node, "_saved_" + saved):
            t = getattr(node, "_saved_" + saved)
            if isinstance(t, torch.Tensor):
                return self.leaf(t, f"{type(node).__name__}: operand {i + 1}")
        raise RecordError(f"{type(node).__name__}: operand {i + 1} requires no grad (a Python number, a "
                          "constant, an integer or a detached tensor), and autograd keeps no copy of it; "
                          "record without --via=autograd")

    def saved(self, node: Any, name: str) -> Optional[Leaf]:
        """The tensor the node saved as `name` (a buffer, a parameter), or None when it saved none."""
        t = getattr(node, "_saved_" + name)
        return None if t is None else self.leaf(t, f"{type(node).__name__}: {name}")

    def edge_or_saved(self, node: Any, i: int, name: str) -> Optional[Arg]:
        """Input `i` when autograd followed it, else the tensor saved as `name`, else None (absent)."""
        arg = self.edge(node, i)
        return arg if arg is not None else self.saved(node, name)

    def operand(self, node: Any, i: int, saved: str) -> Any:
        """Like tensor_arg, but a saved 0-dim tensor that is no parameter is a plain number (PyTorch wraps
        the `2` of `x * 2` as one)."""
        arg = self.edge(node, i)
        if arg is not None:
            return arg
        t = getattr(node, "_saved_" + saved, None)
        if isinstance(t, torch.Tensor) and t.dim() == 0 and id(t) not in self.names:
            # PyTorch wraps the 2 of `x * 2` as a 0-dim tensor; a detached 0-dim tensor looks the same in
            # torch 1.13's graph (no flag tells them apart) and is written as the number it held: the
            # cross-check shows the difference from the call trace then
            return t.item()
        return self.tensor_arg(node, i, saved)

    def out_type(self, node: Any, k: int = 0) -> tuple[torch.dtype, tuple[int, ...]]:
        types = self.graph.types.get(node, [])
        if k < len(types) and types[k] is not None:
            return types[k]
        raise RecordError(f"{type(node).__name__}: autograd gave no shape for output {k}")

    # -- the nodes --

    def map_all(self) -> None:
        for node in self.graph.nodes:
            kind = type(node).__name__
            if isinstance(node, torch.autograd.function.BackwardCFunction):
                raise RecordError(f"{kind}: a custom autograd.Function; autograd does not record what its "
                                  "forward computed")
            handler = NODES.get(kind)
            if handler is None:
                raise RecordError(f"{kind}: {REFUSED.get(kind, 'no trace op for this backward node')}")
            made = handler(self, node)
            if isinstance(made, Alias):
                self.values[(node, 0)] = made.arg
                continue
            made.node = kind
            if not made.types:
                made.types = self.graph.types[node]
            made.results = [Result(made, k) for k in range(len(made.types))]
            for k, r in enumerate(made.results):
                self.values[(node, k)] = r
            self.ops.append(made)

    def mark_live(self, outputs: list[Arg]) -> None:
        live = {id(o) for o in outputs}
        for op in reversed(self.ops):
            if any(id(r) in live for r in op.results):
                op.live = True
                for a in _args_of(op):
                    live.add(id(a))


def _args_of(op: Op) -> list[Arg]:
    found: list[Arg] = []

    def walk(v: Any) -> None:
        if isinstance(v, (Leaf, Result)):
            found.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(op.args)
    walk([v for _, v in op.kwargs])
    return found


# --- one function per backward node: the op the default recorder writes for the forward call ------------


def _ints(v: Sequence[int]) -> list[int]:
    """Saved int lists as Python ints.  torch 1.13 hands negative dims back as unsigned 64-bit numbers
    (MeanBackward1's dim -1 reads 2**64 - 1): wrapped back."""
    return [_int(x) for x in v]


def _int(x: Any) -> int:
    return int(x) - (1 << 64) if int(x) >= 1 << 63 else int(x)


def _conv(m: _Mapper, n: Any) -> Op:
    weight = m.tensor_arg(n, 1, "weight")
    bias = m.edge(n, 2)
    if bias is None and tuple(n._saved_bias_sym_sizes_opt or ()) not in ((), (0,)):
        bias = m.tensor_arg(n, 2)  # refuses: a bias that requires no grad is not kept (no bias: size 0)
    spatial = len(n._saved_stride)
    args = [m.tensor_arg(n, 0, "input"), weight, bias]
    if n._saved_transposed:
        return Op(f"conv_transpose{spatial}d", args,
                  [("stride", _ints(n._saved_stride)), ("padding", _ints(n._saved_padding)),
                   ("output_padding", _ints(n._saved_output_padding)), ("groups", int(n._saved_groups)),
                   ("dilation", _ints(n._saved_dilation))])
    return Op(f"conv{spatial}d", args,
              [("stride", _ints(n._saved_stride)), ("padding", _ints(n._saved_padding)),
               ("dilation", _ints(n._saved_dilation)), ("groups", int(n._saved_groups))])


def _batch_norm(m: _Mapper, n: Any) -> Op:
    args = [m.tensor_arg(n, 0, "input"), m.saved(n, "running_mean"), m.saved(n, "running_var"),
            m.edge_or_saved(n, 1, "weight"), m.edge(n, 2)]
    return Op("batch_norm", args, [("training", bool(n._saved_training)), ("eps", float(n._saved_eps))],
              types=[m.out_type(n, 0)])


def _layer_norm(m: _Mapper, n: Any) -> Op:
    shape = _ints(n._saved_normalized_shape)
    eps = _layer_norm_eps(n, n._saved_input, shape)
    return Op("layer_norm", [m.tensor_arg(n, 0, "input")],
              [("normalized_shape", shape), ("weight", m.edge_or_saved(n, 1, "weight")),
               ("bias", m.edge_or_saved(n, 2, "bias")), ("eps", eps)],
              types=[m.out_type(n, 0)])


# eps is not among what NativeLayerNormBackward0 saves in torch 1.13; these are the values PyTorch and the
# common model zoos use.  The one that gives back the saved 1/σ bit for bit is taken.
_LAYER_NORM_EPS = (1e-5, 1e-6, 1e-12, 1e-8, 1e-7, 1e-4, 1e-3, 1e-10)


def _layer_norm_eps(n: Any, x: torch.Tensor, shape: list[int]) -> float:
    rstd = n._saved_result2
    with torch.no_grad():
        matching = [eps for eps in _LAYER_NORM_EPS
                    if torch.equal(torch.native_layer_norm(x, shape, None, None, eps)[2], rstd)]
    if len(matching) != 1:
        raise RecordError("NativeLayerNormBackward0: torch keeps no copy of eps, and "
                          + ("no usual value" if not matching else "more than one usual value")
                          + " reproduces the saved 1/σ exactly")
    return matching[0]


def _linear_weight(m: _Mapper, n: Any, i: int) -> Optional[Arg]:
    """The parameter W when operand i is `W.t()` (F.linear's weight): TBackward0 of a parameter leaf."""
    fn, _ = n.next_functions[i]
    if fn is None or type(fn).__name__ != "TBackward0":
        return None
    inner, _ = fn.next_functions[0]
    if inner is None or type(inner).__name__ != "AccumulateGrad":
        return None
    return m.edge(fn, 0)


def _addmm(m: _Mapper, n: Any) -> Op:
    weight = _linear_weight(m, n, 2)
    alpha, beta = n._saved_alpha, n._saved_beta
    if weight is not None and alpha == 1 and beta == 1:
        return Op("linear", [m.tensor_arg(n, 1, "mat1"), weight, m.tensor_arg(n, 0)], [])
    raise RecordError("AddmmBackward0: an addmm that is not F.linear's (a parameter's transpose as mat2, "
                      "alpha = beta = 1) has no trace op")


def _mm(m: _Mapper, n: Any) -> Op:
    weight = _linear_weight(m, n, 1)
    if weight is not None:
        return Op("linear", [m.tensor_arg(n, 0, "self"), weight, None], [])
    return Op("mm", [m.tensor_arg(n, 0, "self"), m.tensor_arg(n, 1, "mat2")], [])


def _unary(name: str) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        return Op(name, [m.tensor_arg(n, 0, "self")], [])
    return make


def _binary(name: str, with_alpha: bool = False) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        kwargs: list[tuple[str, Any]] = []
        if with_alpha and n._saved_alpha != 1:
            kwargs.append(("alpha", n._saved_alpha))
        return Op(name, [m.operand(n, 0, "self"), m.operand(n, 1, "other")], kwargs)
    return make


def _scalar(name: str) -> Callable[[_Mapper, Any], Op]:
    """An op of a tensor and a scalar that the node saved (`x * 0.5`: MulBackward1's other)."""
    def make(m: _Mapper, n: Any) -> Op:
        return Op(name, [m.tensor_arg(n, 0, "self"), n._saved_other], [])
    return make


def _reshape(m: _Mapper, n: Any) -> Op:
    return Op("reshape", [m.tensor_arg(n, 0), list(m.out_type(n)[1])], [])


def _pool_args(n: Any) -> list[tuple[str, Any]]:
    return [("kernel_size", _ints(n._saved_kernel_size)), ("stride", _ints(n._saved_stride)),
            ("padding", _ints(n._saved_padding))]


def _max_pool(m: _Mapper, n: Any) -> Op:
    spatial = len(n._saved_kernel_size)
    return Op(f"max_pool{spatial}d", [m.tensor_arg(n, 0, "self")],
              _pool_args(n) + [("dilation", _ints(n._saved_dilation)), ("ceil_mode", bool(n._saved_ceil_mode))],
              types=[m.out_type(n, 0)])


def _avg_pool(m: _Mapper, n: Any) -> Op:
    spatial = len(n._saved_kernel_size)
    return Op(f"avg_pool{spatial}d", [m.tensor_arg(n, 0, "self")],
              _pool_args(n) + [("ceil_mode", bool(n._saved_ceil_mode)),
                               ("count_include_pad", bool(n._saved_count_include_pad)),
                               ("divisor_override", n._saved_divisor_override)])


def _adaptive(name: str) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        dtype, shape = m.out_type(n, 0)
        spatial = 2 if "2d" in name else 1
        return Op(name, [m.tensor_arg(n, 0, "self")], [("output_size", list(shape[-spatial:]))],
                  types=[(dtype, shape)])
    return make


def _reduce(name: str) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        return Op(name, [m.tensor_arg(n, 0, "self")],
                  [("dim", _ints(n._saved_dim)), ("keepdim", bool(n._saved_keepdim))])
    return make


def _mean_all(m: _Mapper, n: Any) -> Op:
    return Op("mean", [m.tensor_arg(n, 0, "self")], [])


def _max_dim(m: _Mapper, n: Any) -> Op:
    dtype, shape = m.out_type(n, 0)
    return Op("max", [m.tensor_arg(n, 0, "self"), _int(n._saved_dim)], [("keepdim", bool(n._saved_keepdim))],
              types=[(dtype, shape), (torch.int64, shape)])


def _cat(name: str) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        parts = [m.tensor_arg(n, i) for i in range(len(n.next_functions))]
        return Op(name, [parts], [("dim", _int(n._saved_dim))])
    return make


def _split(m: _Mapper, n: Any) -> Op:
    sizes = _ints(n._saved_self_sizes)
    dim = _int(n._saved_dim) % len(sizes)
    if hasattr(n, "_saved_split_sizes"):
        parts = _ints(n._saved_split_sizes)
        arg: Any = parts
    else:
        step = _int(n._saved_split_size)
        parts = [min(step, sizes[dim] - s) for s in range(0, sizes[dim], step)] or [0]
        arg = step
    dtype = next(t[0] for t in m.graph.types[n] if t is not None)
    types = [(dtype, tuple(sizes[:dim] + [p] + sizes[dim + 1:])) for p in parts]
    return Op("split", [m.tensor_arg(n, 0)], [("split_size_or_sections", arg), ("dim", dim)], types=types)


def _unbind(m: _Mapper, n: Any) -> Op:
    return Op("unbind", [m.tensor_arg(n, 0)], [("dim", _int(n._saved_dim))])


def _hardtanh(m: _Mapper, n: Any) -> Op:
    return Op("hardtanh", [m.tensor_arg(n, 0, "self")],
              [("min_val", float(n._saved_min_val)), ("max_val", float(n._saved_max_val))])


def _clamp(m: _Mapper, n: Any) -> Op:
    lo, hi = getattr(n, "_saved_min", None), getattr(n, "_saved_max", None)
    if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
        raise RecordError("ClampBackward0: a clamp to tensor bounds has no trace op")
    return Op("clamp", [m.tensor_arg(n, 0, "self")], [("min", lo), ("max", hi)])


def _leaky_relu(m: _Mapper, n: Any) -> Op:
    return Op("leaky_relu", [m.tensor_arg(n, 0, "self")], [("negative_slope", float(n._saved_negative_slope))])


def _elu(m: _Mapper, n: Any) -> Op:
    if n._saved_scale != 1 or n._saved_input_scale != 1:
        raise RecordError("EluBackward0: an ELU with a scale (selu, celu) has no trace op here")
    return Op("elu", [m.tensor_arg(n, 0, "self")], [("alpha", float(n._saved_alpha))])


def _gelu(m: _Mapper, n: Any) -> Op:
    return Op("gelu", [m.tensor_arg(n, 0, "self")], [("approximate", str(n._saved_approximate))])


def _softmax(name: str) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        return Op(name, [m.tensor_arg(n, 0, "self")], [("dim", _int(n._saved_dim))])
    return make


def _prelu(m: _Mapper, n: Any) -> Op:
    return Op("prelu", [m.tensor_arg(n, 0, "self"), m.tensor_arg(n, 1, "weight")], [])


def _pow(m: _Mapper, n: Any) -> Op:
    return Op("pow", [m.tensor_arg(n, 0, "self"), n._saved_exponent], [])


def _transpose(m: _Mapper, n: Any) -> Op:
    return Op("transpose", [m.tensor_arg(n, 0)], [("dim0", _int(n._saved_dim0)), ("dim1", _int(n._saved_dim1))])


def _t(m: _Mapper, n: Any) -> Op:
    return Op("t", [m.tensor_arg(n, 0)], [])


def _permute(m: _Mapper, n: Any) -> Op:
    return Op("permute", [m.tensor_arg(n, 0), _ints(n._saved_dims)], [])


def _expand(m: _Mapper, n: Any) -> Op:
    return Op("expand", [m.tensor_arg(n, 0), list(m.out_type(n)[1])], [])


def _select(m: _Mapper, n: Any) -> Op:
    return Op("select", [m.tensor_arg(n, 0)], [("dim", _int(n._saved_dim)), ("index", _int(n._saved_index))])


def _slice(m: _Mapper, n: Any) -> Op:
    """x[..., a:b:c] along one dim: narrow when the step is 1, else getitem with one slice (the ends
    clipped as PyTorch clips them)."""
    sizes = _ints(n._saved_self_sym_sizes)
    dim = _int(n._saved_dim) % len(sizes)
    start, end, step = (_int(n._saved_start), _int(n._saved_end), _int(n._saved_step))
    start = min(max(start + sizes[dim] if start < 0 else start, 0), sizes[dim])
    end = min(max(end + sizes[dim] if end < 0 else end, start), sizes[dim])
    if step == 1:
        return Op("narrow", [m.tensor_arg(n, 0)], [("dim", dim), ("start", start), ("length", end - start)])
    index = [slice(None, None, None)] * dim + [slice(start, end, step)]
    return Op("getitem", [m.tensor_arg(n, 0), index], [])


def _bmm(m: _Mapper, n: Any) -> Op:
    return Op("bmm", [m.tensor_arg(n, 0, "self"), m.tensor_arg(n, 1, "mat2")], [])


def _upsample(mode: str) -> Callable[[_Mapper, Any], Op]:
    def make(m: _Mapper, n: Any) -> Op:
        scales = n._saved_scale_factors
        kwargs: list[tuple[str, Any]]
        if scales is not None:
            kwargs = [("scale_factor", [float(s) for s in scales])]
        else:
            kwargs = [("size", _ints(n._saved_output_size))]
        kwargs.append(("mode", mode))
        if hasattr(n, "_saved_align_corners"):
            kwargs.append(("align_corners", bool(n._saved_align_corners)))
        return Op("interpolate", [m.tensor_arg(n, 0)], kwargs)
    return make


def _pixel_shuffle(m: _Mapper, n: Any) -> Op:
    return Op("pixel_shuffle", [m.tensor_arg(n, 0)], [("upscale_factor", int(n._saved_upscale_factor))])


def _pad(m: _Mapper, n: Any) -> Op:
    return Op("pad", [m.tensor_arg(n, 0), _ints(n._saved_pad)], [])


def _alias(m: _Mapper, n: Any) -> Alias:
    return Alias(m.tensor_arg(n, 0))


NODES: dict[str, Callable[[_Mapper, Any], Union[Op, Alias]]] = {
    "ConvolutionBackward0": _conv,
    "NativeBatchNormBackward0": _batch_norm,
    "NativeLayerNormBackward0": _layer_norm,
    "AddmmBackward0": _addmm,
    "MmBackward0": _mm,
    "BmmBackward0": _bmm,
    "ReluBackward0": _unary("relu"),
    "SigmoidBackward0": _unary("sigmoid"),
    "TanhBackward0": _unary("tanh"),
    "SiluBackward0": _unary("silu"),
    "HardswishBackward0": _unary("hardswish"),
    "HardsigmoidBackward0": _unary("hardsigmoid"),
    "MishBackward0": _unary("mish"),
    "ExpBackward0": _unary("exp"),
    "LogBackward0": _unary("log"),
    "SqrtBackward0": _unary("sqrt"),
    "RsqrtBackward0": _unary("rsqrt"),
    "NegBackward0": _unary("neg"),
    "AbsBackward0": _unary("abs"),
    "ReciprocalBackward0": _unary("reciprocal"),
    "ErfBackward0": _unary("erf"),
    "HardtanhBackward0": _hardtanh,
    "ClampBackward1": _clamp,
    "LeakyReluBackward0": _leaky_relu,
    "EluBackward0": _elu,
    "GeluBackward0": _gelu,
    "PreluBackward0": _prelu,
    "SoftmaxBackward0": _softmax("softmax"),
    "LogSoftmaxBackward0": _softmax("log_softmax"),
    "AddBackward0": _binary("add", with_alpha=True),
    "SubBackward0": _binary("sub", with_alpha=True),
    "MulBackward0": _binary("mul"),
    "DivBackward0": _binary("div"),
    "MulBackward1": _scalar("mul"),
    "DivBackward1": _scalar("div"),
    "PowBackward0": _pow,
    "MaximumBackward0": _binary("maximum"),
    "MinimumBackward0": _binary("minimum"),
    "ViewBackward0": _reshape,
    "ReshapeAliasBackward0": _reshape,
    "UnsafeViewBackward0": _reshape,
    "UnsqueezeBackward0": _reshape,
    "SqueezeBackward0": _reshape,
    "SqueezeBackward1": _reshape,
    "ExpandBackward0": _expand,
    "TBackward0": _t,
    "TransposeBackward0": _transpose,
    "PermuteBackward0": _permute,
    "SelectBackward0": _select,
    "SliceBackward0": _slice,
    "SplitBackward0": _split,
    "SplitWithSizesBackward0": _split,
    "UnsafeSplitBackward0": _split,
    "UnbindBackward0": _unbind,
    "CatBackward0": _cat("cat"),
    "StackBackward0": _cat("stack"),
    "CloneBackward0": _alias,
    "MaxPool2DWithIndicesBackward0": _max_pool,
    "AvgPool2DBackward0": _avg_pool,
    "AdaptiveAvgPool2DBackward0": _adaptive("adaptive_avg_pool2d"),
    "AdaptiveMaxPool2DBackward0": _adaptive("adaptive_max_pool2d"),
    "MeanBackward0": _mean_all,
    "MeanBackward1": _reduce("mean"),
    "SumBackward1": _reduce("sum"),
    "AmaxBackward0": _reduce("amax"),
    "MaxBackward0": _max_dim,
    "UpsampleNearest2DBackward1": _upsample("nearest"),
    "UpsampleBilinear2DBackward1": _upsample("bilinear"),
    "PixelShuffleBackward0": _pixel_shuffle,
    "ConstantPadNdBackward0": _pad,
}

# Nodes refused with a reason more precise than "no trace op".
REFUSED: dict[str, str] = {
    "CopySlices": "an in-place write into a view (x[...] = y, or an in-place op on a slice); autograd "
                  "keeps no order between it and the view's other readers",
    "AddBackward1": "autograd keeps no copy of the scalar added",
    "SubBackward1": "autograd keeps no copy of the scalar subtracted",
    "RsubBackward1": "autograd keeps no copy of the scalar that the tensor is subtracted from",
    "ToCopyBackward0": "a dtype or device conversion",
    "MaxUnpool2DBackward0": "max_unpool2d needs pooling indices, which require no grad",
}


# --- the log ------------------------------------------------------------------------------------------


class _Text:
    """Numbers handles, names constants and writes the lines."""

    def __init__(self, mapper: _Mapper, inputs: list[Leaf]) -> None:
        self.mapper = mapper
        self.inputs = inputs
        self.next = 0
        self.declared: list[Leaf] = []
        self.taken = {leaf.name for leaf in mapper.leaves.values() if leaf.kind == "param"}
        self.next_const = 0
        self.used: set[int] = set()

    def ref(self, v: Any) -> Any:
        if isinstance(v, Leaf):
            if v.kind == "input":
                return Ref(f"%{v.number}")
            if v not in self.declared:
                self.declared.append(v)
                if v.kind == "const" and not v.name:
                    v.name, self.next_const = textlog.const_name(self.taken, self.next_const)
            return Ref("$" + textlog.name(v.name))
        if isinstance(v, Result):
            return Ref(f"%{v.number}")
        if isinstance(v, list):
            return [self.ref(x) for x in v]
        return v

    def op_line(self, op: Op) -> str:
        args = [textlog.value(self.ref(a)) for a in op.args]
        args += [f"{k}={textlog.value(self.ref(v))}" for k, v in op.kwargs]
        for r in op.results:
            if id(r) in self.used:
                r.number = self.next
                self.next += 1
        results = ", ".join(f"%{r.number}" if id(r) in self.used else "_" for r in op.results)
        try:
            types = ", ".join(textlog.tensor_type(*t) for t in op.types)
        except Unrepresentable as e:
            raise RecordError(f"{op.node}: {e}") from None
        return f"{results} = {op.name}({', '.join(args)}) : {types}"

    def lines(self, model: torch.nn.Module, outputs: list[tuple[Arg, str]], weights_name: str,
              origin: str) -> str:
        live = [op for op in self.mapper.ops if op.live]
        for op in live:
            self.used.update(id(a) for a in _args_of(op))
        self.used.update(id(a) for a, _ in outputs)
        for leaf in self.inputs:
            leaf.number = self.next
            self.next += 1
        body = [f"call \"\" {textlog.name(type(model).__name__)}"]
        for op in live:
            line = self.op_line(op)
            if op.scope:
                cls = type(model.get_submodule(op.scope)).__name__
                body += [f"  call {textlog.name(op.scope)} {textlog.name(cls)}", "    " + line,
                         f"  return {textlog.name(op.scope)}"]
            else:
                body.append("  " + line)
        body.append('return ""')
        for arg, label in outputs:
            ref = textlog.value(self.ref(arg))
            body.append(f"output {ref}" + (f" {textlog.string(label)}" if label else ""))
        head = [f"ptcc-trace {TRACE_VERSION}", f"# {origin}", f"weights {textlog.string(weights_name)}"]
        for leaf in self.declared:
            head.append(f"{leaf.kind} ${textlog.name(leaf.name)} : "
                        f"{textlog.tensor_type(leaf.tensor.dtype, leaf.tensor.shape)}")
        for leaf in self.inputs:
            named = f" {textlog.string(leaf.label)}" if leaf.label else ""
            head.append(f"input %{leaf.number}{named} : "
                        f"{textlog.tensor_type(leaf.tensor.dtype, leaf.tensor.shape)}")
        return "\n".join(head + body) + "\n"


def _scope(op: Op) -> str:
    """The module that owns every parameter the op reads, when there is exactly one."""
    owners = {leaf.name.rpartition(".")[0] for leaf in _args_of(op) if isinstance(leaf, Leaf)
              and leaf.kind == "param"}
    return owners.pop() if len(owners) == 1 else ""


def record_autograd(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: str, *,
                    origin: str = "") -> Any:
    """record(..., via="autograd"): see record.record.  Returns the model's outputs."""
    for i, t in enumerate(inputs):
        if not t.is_floating_point():
            raise RecordError(f"input {i}: a {t.dtype} tensor; autograd follows floating-point tensors only")
    weights_path = os.path.splitext(path)[0] + ".safetensors"
    was_training = model.training
    if was_training:
        print(f"ptcc-record: warning: {type(model).__name__} was in training mode; recording in eval mode",
              file=sys.stderr)
        model.eval()
    params = [p for p in model.parameters() if p.is_floating_point()]
    flags = [(p, p.requires_grad, p.grad) for p in params]
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    names = _input_names(model, len(inputs))
    input_leaves = [Leaf(x, "input", label=name) for x, name in zip(leaves, names)]
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            try:
                result = model(*leaves)
            except Exception as e:
                raise RecordError(f"the model raised {type(e).__name__}: {e}") from e
        outputs = _flatten_outputs(result)
        for i, (t, _) in enumerate(outputs):
            if not t.requires_grad:
                raise RecordError(f"output {i} requires no grad: it was computed from constants, integers or "
                                  "detached tensors, which autograd does not follow; record without "
                                  "--via=autograd")
        graph = _Graph([t.grad_fn for t, _ in outputs])
        graph.run_backward([t for t, _ in outputs])
        mapper = _Mapper(model, graph, {id(x): leaf for x, leaf in zip(leaves, input_leaves)})
        mapper.map_all()
        out_args = [(_output_arg(mapper, t), label) for t, label in outputs]
    finally:
        for p, flag, grad in flags:
            p.requires_grad_(flag)
            p.grad = grad
        if was_training:
            model.train()
    mapper.mark_live([a for a, _ in out_args])
    for op in mapper.ops:
        op.scope = _scope(op)
    text = _Text(mapper, input_leaves)
    log = text.lines(model, out_args, os.path.basename(weights_path),
                     f"recorded by ptcc-record --via=autograd{' from ' + origin if origin else ''} "
                     f"with torch {torch.__version__}")
    _write_atomically(path, weights_path, log, [(leaf.name, leaf.tensor.detach()) for leaf in text.declared])
    return _detached(result)


def _output_arg(mapper: _Mapper, t: torch.Tensor) -> Arg:
    if t.grad_fn is None:
        return mapper.leaf(t, "an output")
    return mapper.values[(t.grad_fn, t.output_nr)]


def _detached(result: Any) -> Any:
    if isinstance(result, torch.Tensor):
        return result.detach()
    if isinstance(result, (list, tuple)):
        return type(result)(_detached(r) for r in result)
    if isinstance(result, dict):
        return {k: _detached(v) for k, v in result.items()}
    return result
