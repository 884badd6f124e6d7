"""Spelling of trace-log tokens (docs/trace-format.md §1): names, strings, numbers and values."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import torch

from .safetensors import DTYPES

_NAME_CHARS = re.compile(r"[A-Za-z0-9_.\-\x80-\U0010ffff]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}

MEMORY_FORMATS = {
    torch.contiguous_format: "contiguous_format",
    torch.channels_last: "channels_last",
    torch.preserve_format: "preserve_format",
}
if hasattr(torch, "channels_last_3d"):
    MEMORY_FORMATS[torch.channels_last_3d] = "channels_last_3d"


class Unrepresentable(Exception):
    """A Python value that the trace format has no spelling for."""


@dataclass(frozen=True)
class Ref:
    """A reference to a tensor in the log: `%N` or `$name`, resolved when the log is written."""

    text: str

    def __str__(self) -> str:
        return self.text


def string(text: str) -> str:
    """A STRING token: double quotes, C-like escapes, other control characters as \\xHH."""
    if "\0" in text:
        raise Unrepresentable("a string with a NUL character cannot be written to a trace")
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def name(text: str) -> str:
    """A PATH or `$` name: bare when every character is a name-char, else quoted."""
    return text if _NAME_CHARS.fullmatch(text) else string(text)


def number(value: float) -> str:
    """A FLOAT token that reads back as the same double: Python's shortest repr, which always has a '.'
    or an exponent (or is inf/nan)."""
    if math.isnan(value):
        return "nan"
    return repr(float(value))


def tensor_type(dtype: torch.dtype, shape: Sequence[int]) -> str:
    if dtype not in DTYPES:
        raise Unrepresentable(f"tensors of dtype {dtype} cannot be written to a trace")
    return DTYPES[dtype][1] + "[" + ",".join(str(int(d)) for d in shape) + "]"


def value(v: object) -> str:
    """Spell an argument value.  Tensors must already have been replaced by `Ref`s."""
    if isinstance(v, Ref):
        return v.text
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return number(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, slice):
        return "slice(%s, %s, %s)" % (value(v.start), value(v.stop), value(v.step))
    if v is Ellipsis:
        return "..."
    if isinstance(v, torch.dtype):
        if v not in DTYPES:
            raise Unrepresentable(f"dtype {v} has no trace spelling")
        return DTYPES[v][1]
    if isinstance(v, torch.memory_format):
        return MEMORY_FORMATS[v]
    if isinstance(v, torch.layout):
        return str(v).replace("torch.", "")
    if isinstance(v, torch.device):
        return string(str(v))
    # numpy scalars and other number-likes that are exactly an int or a float
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        return value(v.item())
    raise Unrepresentable(f"an argument of type {type(v).__qualname__} cannot be written to a trace")


def const_name(taken: set, start: int) -> tuple[str, int]:
    """The first `constN` name, N counting from `start`, that is not in `taken` (added to it now), and
    the N to start from next time: how both recorders name their constants."""
    while f"const{start}" in taken:
        start += 1
    name = f"const{start}"
    taken.add(name)
    return name, start
