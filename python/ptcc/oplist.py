"""The op vocabulary: how a PyTorch call is spelled in the log (docs/trace-format.md §4).

KNOWN maps each op of ptcc's op table to `(positional, parameters, view)`: the first `positional`
arguments stay positional, later positional arguments are written as keywords named by `parameters`
(PyTorch's own names), and `view` says the result may alias the first argument.  It is read from
optable.py, which `ptcc --list-ops=python` generates from src/ops.def (as it does the spec's table), so the
recorder, the compiler and the spec cannot disagree.  PyTorch's overloaded names (`max`) are not in it:
they are written as called.
"""

from __future__ import annotations

from typing import NamedTuple

from .optable import OPS


class OpSpec(NamedTuple):
    positional: int
    parameters: tuple[str, ...]
    view: bool = False


KNOWN: dict[str, OpSpec] = {name: OpSpec(pos, tuple(params.split()), view)
                            for name, (pos, view, params) in OPS.items()}

# Ops whose size argument PyTorch also takes as several integers: `x.view(1, -1)`.
SIZE_VARARGS = frozenset({"view", "reshape", "permute", "expand", "repeat", "tile"})

# Tensor operators, spelled as the function they compute.  A reflected operator swaps its operands so
# that they appear in mathematical order: `1 - x` is `sub(1, %x)`.
OPERATORS: dict[str, tuple[str, bool]] = {
    "__add__": ("add", False), "__radd__": ("add", True), "__iadd__": ("add_", False),
    "__sub__": ("sub", False), "__rsub__": ("sub", True), "__isub__": ("sub_", False),
    "__mul__": ("mul", False), "__rmul__": ("mul", True), "__imul__": ("mul_", False),
    "__truediv__": ("div", False), "__rtruediv__": ("div", True), "__itruediv__": ("div_", False),
    "__div__": ("div", False), "__rdiv__": ("div", True), "__idiv__": ("div_", False),
    "__floordiv__": ("floor_divide", False), "__rfloordiv__": ("floor_divide", True),
    "__mod__": ("remainder", False), "__rmod__": ("remainder", True),
    "__pow__": ("pow", False), "__rpow__": ("pow", True), "__ipow__": ("pow_", False),
    "__matmul__": ("matmul", False), "__rmatmul__": ("matmul", True),
    "__neg__": ("neg", False), "__abs__": ("abs", False), "__invert__": ("bitwise_not", False),
    "__and__": ("bitwise_and", False), "__rand__": ("bitwise_and", True), "__iand__": ("bitwise_and_", False),
    "__or__": ("bitwise_or", False), "__ror__": ("bitwise_or", True), "__ior__": ("bitwise_or_", False),
    "__xor__": ("bitwise_xor", False), "__rxor__": ("bitwise_xor", True), "__ixor__": ("bitwise_xor_", False),
    "__eq__": ("eq", False), "__ne__": ("ne", False), "__lt__": ("lt", False),
    "__le__": ("le", False), "__gt__": ("gt", False), "__ge__": ("ge", False),
    "__getitem__": ("getitem", False), "__setitem__": ("setitem", False),
}

# Calls that compute nothing: bookkeeping on the tensor object, never an op in the log.
IGNORED = frozenset({
    "requires_grad_", "retain_grad", "register_hook", "share_memory_", "__format__", "__repr__",
    "__str__", "__hash__", "__len__", "__dir__", "__reduce_ex__", "__deepcopy__",
})

# Calls whose result depends on their tensor argument's shape and dtype only, never on its values: the
# recorder folds the result into a constant, as it does for ops on constants.
FROM_SHAPE = frozenset({
    "zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full", "new_tensor",
})

# Calls that read a tensor's values into Python.  On a tensor computed from the inputs they make the rest
# of the run depend on data that a trace cannot follow, so the recorder refuses them there.
DATA_READS = frozenset({
    "item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__array__", "__iter__",
    "__reversed__", "__contains__",
})


def normalise(name: str, args: list, kwargs: dict) -> tuple[str, list, list[tuple[str, object]]]:
    """Spell one call as the log writes it: (op name, positional arguments, keyword arguments)."""
    if name.endswith("_with_indices"):  # F.max_pool2d(..., return_indices=True) dispatches to these
        name = name[: -len("_with_indices")]
    if name in OPERATORS:
        name, reflected = OPERATORS[name]
        if reflected and len(args) == 2:
            args = [args[1], args[0]]
    if name in SIZE_VARARGS and len(args) >= 2 and all(isinstance(a, int) for a in args[1:]):
        args = [args[0], list(args[1:])]
    keywords = [(k, v) for k, v in kwargs.items() if not k.startswith("_")]
    spec = KNOWN.get(name)
    if spec is not None:
        # keywords for leading parameters become positional (F.batch_norm passes weight= and bias=)
        given = dict(keywords)
        args = list(args)
        while len(args) < spec.positional and spec.parameters[len(args)] in given:
            args.append(given.pop(spec.parameters[len(args)]))
        keywords = list(given.items())
    if spec is not None and len(args) <= len(spec.parameters):
        taken = {k for k, _ in keywords}
        extra = [(spec.parameters[i], args[i]) for i in range(spec.positional, len(args))]
        if not taken.intersection(k for k, _ in extra):
            args = args[: spec.positional]
            keywords = extra + keywords
    return name, args, keywords
