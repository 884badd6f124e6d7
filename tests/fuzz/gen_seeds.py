#!/usr/bin/env python3
"""Seeds for fuzz_safetensors: the weights file of its fixed trace (fuzz_safetensors.c), one
parameter of each dtype, [2, 3] each, written with the standard library only (the test traces'
weights files are all F32; these make every conversion of tensor_f32 reachable at once), and a few
variants: each dtype alone, metadata, an empty file's header, unaligned F32.

usage: gen_seeds.py DIR"""
import json
import os
import struct
import sys

# dtype: (struct format of one element, six values as stored)
VALUES = {
    "F16": ("<6H", [0x3C00, 0xC000, 0x0001, 0x7C00, 0x7E00, 0x8000]),  # 1 -2 subnormal inf nan -0
    "BF16": ("<6H", [0x3F80, 0xC000, 0x0001, 0x7F80, 0x7FC0, 0x8000]),
    "F32": ("<6f", [1.0, -2.5, 1e-40, float("inf"), float("nan"), -0.0]),
    "F64": ("<6d", [1.0, -2.5, 1e300, float("inf"), float("nan"), 1e-320]),
    "I8": ("<6b", [0, 1, -1, 127, -128, 5]),
    "I16": ("<6h", [0, 1, -1, 32767, -32768, 5]),
    "I32": ("<6i", [0, 1, -1, 2**31 - 1, -2**31, 5]),
    "I64": ("<6q", [0, 1, -1, 2**63 - 1, -2**63, 5]),
    "U8": ("<6B", [0, 1, 2, 255, 128, 5]),
    "BOOL": ("<6B", [0, 1, 0, 1, 1, 0]),
}


def safetensors(tensors, metadata=None, pad=0):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (fmt, values) in tensors:
        blob = struct.pack(fmt, *values)
        header[name] = {"dtype": name.split(".")[0], "shape": [2, 3],
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode() + b" " * pad
    return struct.pack("<Q", len(text)) + text + data


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {"all": safetensors(VALUES.items(), {"format": "pt"})}
    for name, v in VALUES.items():
        seeds[name.lower()] = safetensors([(name, v)])
    seeds["empty"] = safetensors([])
    seeds["unaligned"] = safetensors([("F32", VALUES["F32"])], pad=1)
    for name, blob in seeds.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(blob)


main()
