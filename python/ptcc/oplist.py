"""The op vocabulary: how a PyTorch call is spelled in the log (docs/trace-format.md §4).

Each row of KNOWN is `name: (positional, parameters, view)`: the first `positional` arguments stay
positional, later positional arguments are written as keywords named by `parameters` (PyTorch's own
names), and `view` says the result may alias the first argument.  The spec's op table is generated from
this one (`python3 -m ptcc.oplist`).
"""

from __future__ import annotations

from typing import NamedTuple


class OpSpec(NamedTuple):
    positional: int
    parameters: tuple[str, ...]
    view: bool = False


def _row(positional: int, params: str, view: bool = False) -> OpSpec:
    return OpSpec(positional, tuple(params.split()), view)


_CONV = "input weight bias stride padding dilation groups"
_CONVT = "input weight bias stride padding output_padding groups dilation"
_DROPOUT = "input p training inplace"

KNOWN: dict[str, OpSpec] = {
    # convolution and linear
    "conv1d": _row(3, _CONV),
    "conv2d": _row(3, _CONV),
    "conv3d": _row(3, _CONV),
    "conv_transpose1d": _row(3, _CONVT),
    "conv_transpose2d": _row(3, _CONVT),
    "conv_transpose3d": _row(3, _CONVT),
    "linear": _row(3, "input weight bias"),
    "matmul": _row(2, "input other"),
    "mm": _row(2, "input mat2"),
    "bmm": _row(2, "input mat2"),
    # normalisation
    "batch_norm": _row(5, "input running_mean running_var weight bias training momentum eps"),
    "instance_norm": _row(5, "input running_mean running_var weight bias use_input_stats momentum eps"),
    "layer_norm": _row(1, "input normalized_shape weight bias eps"),
    "group_norm": _row(1, "input num_groups weight bias eps"),
    "local_response_norm": _row(1, "input size alpha beta k"),
    "normalize": _row(1, "input p dim eps"),
    # activations
    "relu": _row(1, "input inplace"),
    "relu_": _row(1, "input"),
    "relu6": _row(1, "input inplace"),
    "leaky_relu": _row(1, "input negative_slope inplace"),
    "leaky_relu_": _row(1, "input negative_slope"),
    "hardtanh": _row(1, "input min_val max_val inplace"),
    "hardtanh_": _row(1, "input min_val max_val"),
    "elu": _row(1, "input alpha inplace"),
    "selu": _row(1, "input inplace"),
    "celu": _row(1, "input alpha inplace"),
    "gelu": _row(1, "input approximate"),
    "silu": _row(1, "input inplace"),
    "mish": _row(1, "input inplace"),
    "hardswish": _row(1, "input inplace"),
    "hardsigmoid": _row(1, "input inplace"),
    "sigmoid": _row(1, "input"),
    "sigmoid_": _row(1, "input"),
    "tanh": _row(1, "input"),
    "tanh_": _row(1, "input"),
    "softplus": _row(1, "input beta threshold"),
    "threshold": _row(1, "input threshold value inplace"),
    "prelu": _row(2, "input weight"),
    "glu": _row(1, "input dim"),
    "softmax": _row(1, "input dim dtype"),
    "log_softmax": _row(1, "input dim dtype"),
    # pooling
    "max_pool1d": _row(1, "input kernel_size stride padding dilation ceil_mode return_indices"),
    "max_pool2d": _row(1, "input kernel_size stride padding dilation ceil_mode return_indices"),
    "max_pool3d": _row(1, "input kernel_size stride padding dilation ceil_mode return_indices"),
    "avg_pool1d": _row(1, "input kernel_size stride padding ceil_mode count_include_pad"),
    "avg_pool2d": _row(1, "input kernel_size stride padding ceil_mode count_include_pad divisor_override"),
    "avg_pool3d": _row(1, "input kernel_size stride padding ceil_mode count_include_pad divisor_override"),
    "adaptive_avg_pool1d": _row(1, "input output_size"),
    "adaptive_avg_pool2d": _row(1, "input output_size"),
    "adaptive_avg_pool3d": _row(1, "input output_size"),
    "adaptive_max_pool1d": _row(1, "input output_size return_indices"),
    "adaptive_max_pool2d": _row(1, "input output_size return_indices"),
    # regularisation (identity in eval mode)
    "dropout": _row(1, _DROPOUT, view=True),
    "dropout2d": _row(1, _DROPOUT, view=True),
    "dropout3d": _row(1, _DROPOUT, view=True),
    "alpha_dropout": _row(1, _DROPOUT, view=True),
    "feature_alpha_dropout": _row(1, _DROPOUT, view=True),
    # resampling and padding
    "interpolate": _row(1, "input size scale_factor mode align_corners recompute_scale_factor antialias"),
    "upsample": _row(1, "input size scale_factor mode align_corners"),
    "pad": _row(1, "input pad mode value"),
    "pixel_shuffle": _row(1, "input upscale_factor"),
    "channel_shuffle": _row(1, "input groups"),
    # shape and layout
    "flatten": _row(1, "input start_dim end_dim", view=True),
    "unflatten": _row(1, "input dim sizes", view=True),
    "view": _row(2, "input size", view=True),
    "view_as": _row(2, "input other", view=True),
    "reshape": _row(2, "input shape", view=True),
    "reshape_as": _row(2, "input other", view=True),
    "permute": _row(2, "input dims", view=True),
    "transpose": _row(1, "input dim0 dim1", view=True),
    "t": _row(1, "input", view=True),
    "squeeze": _row(1, "input dim", view=True),
    "unsqueeze": _row(1, "input dim", view=True),
    "expand": _row(2, "input size", view=True),
    "expand_as": _row(2, "input other", view=True),
    "contiguous": _row(1, "input memory_format", view=True),
    "detach": _row(1, "input", view=True),
    "narrow": _row(1, "input dim start length", view=True),
    "select": _row(1, "input dim index", view=True),
    "getitem": _row(2, "input index", view=True),
    "setitem": _row(3, "input index value"),
    "repeat": _row(2, "input repeats"),
    "tile": _row(2, "input dims"),
    "clone": _row(1, "input memory_format"),
    "cat": _row(1, "tensors dim"),
    "concat": _row(1, "tensors dim"),
    "stack": _row(1, "tensors dim"),
    "chunk": _row(1, "input chunks dim", view=True),
    "split": _row(1, "tensor split_size_or_sections dim", view=True),
    "unbind": _row(1, "input dim", view=True),
    # elementwise arithmetic
    "add": _row(2, "input other alpha"),
    "add_": _row(2, "input other alpha"),
    "sub": _row(2, "input other alpha"),
    "sub_": _row(2, "input other alpha"),
    "rsub": _row(2, "input other alpha"),
    "mul": _row(2, "input other"),
    "mul_": _row(2, "input other"),
    "div": _row(2, "input other rounding_mode"),
    "div_": _row(2, "input other rounding_mode"),
    "pow": _row(2, "input exponent"),
    "neg": _row(1, "input"),
    "abs": _row(1, "input"),
    "exp": _row(1, "input"),
    "log": _row(1, "input"),
    "sqrt": _row(1, "input"),
    "rsqrt": _row(1, "input"),
    "reciprocal": _row(1, "input"),
    "clamp": _row(1, "input min max"),
    "clamp_": _row(1, "input min max"),
    "clip": _row(1, "input min max"),
    # reductions
    "mean": _row(1, "input dim keepdim dtype"),
    "sum": _row(1, "input dim keepdim dtype"),
    "amax": _row(1, "input dim keepdim"),
    "amin": _row(1, "input dim keepdim"),
}

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


def is_view(name: str) -> bool:
    spec = KNOWN.get(name)
    return spec is not None and spec.view


def markdown_table() -> str:
    """The op table of docs/trace-format.md §4.2."""
    lines = ["| op | arguments | view |", "|---|---|---|"]
    for name, spec in KNOWN.items():
        params = [f"`{p}`" if i < spec.positional else f"`{p}=`" for i, p in enumerate(spec.parameters)]
        lines.append(f"| `{name}` | {', '.join(params)} | {'view' if spec.view else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
