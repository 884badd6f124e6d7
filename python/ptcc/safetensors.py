"""Write safetensors files with nothing but the standard library and torch.

Layout (docs/trace-format.md §5): u64 little-endian header length, a JSON header padded with spaces to a
multiple of 8 bytes, then each tensor's raw little-endian bytes in C order, back to back.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import BinaryIO, Iterable

import torch

# torch dtype -> (safetensors dtype, trace-log dtype).  The only dtypes a trace can carry.
DTYPES: dict[torch.dtype, tuple[str, str]] = {
    torch.float16: ("F16", "f16"),
    torch.bfloat16: ("BF16", "bf16"),
    torch.float32: ("F32", "f32"),
    torch.float64: ("F64", "f64"),
    torch.int8: ("I8", "i8"),
    torch.int16: ("I16", "i16"),
    torch.int32: ("I32", "i32"),
    torch.int64: ("I64", "i64"),
    torch.uint8: ("U8", "u8"),
    torch.bool: ("BOOL", "bool"),
}


def _raw(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes as a buffer, without a per-element Python loop and without a copy when the
    tensor is already contiguous and on the CPU."""
    t = tensor.detach().cpu().contiguous()
    if t.numel() == 0:
        return memoryview(b"")
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; the bits are what we want
        t = t.view(torch.int16)
    array = t.numpy()
    if sys.byteorder != "little":
        array = array.byteswap()
    return memoryview(array).cast("B")


def header_bytes(tensors: Iterable[tuple[str, torch.Tensor]]) -> bytes:
    """The length prefix and JSON header for these tensors, stored in this order."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, t in tensors:
        size = t.numel() * t.element_size()
        header[name] = {
            "dtype": DTYPES[t.dtype][0],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def write(out: BinaryIO, tensors: list[tuple[str, torch.Tensor]]) -> None:
    """Write a complete safetensors file to the open binary stream."""
    out.write(header_bytes(tensors))
    for _, t in tensors:
        out.write(_raw(t))


def read_bytes(path: str, name: str) -> bytes:
    """The raw bytes of tensor `name` in the safetensors file at `path` (KeyError when it has none)."""
    import json
    import struct

    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        begin, end = header[name]["data_offsets"]
        f.seek(8 + size + begin)
        return f.read(end - begin)
