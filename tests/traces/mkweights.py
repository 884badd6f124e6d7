#!/usr/bin/env python3
"""Write NAME.safetensors for a hand-written trace NAME.log: one tensor per `param`/`const` line, with
deterministic values.  No torch needed.  Usage: mkweights.py NAME.log [OUT.safetensors]"""
import json
import re
import struct
import sys

SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I8": 1, "I16": 2, "I32": 4, "I64": 8, "U8": 1, "BOOL": 1}
PACK = {"F32": "<f", "F64": "<d", "I64": "<q", "I32": "<i", "I16": "<h", "I8": "<b", "U8": "<B", "BOOL": "<B"}


def tensors(log):
    for line in open(log, encoding="utf-8"):
        m = re.match(r"\s*(param|const)\s+\$(\S+)\s*:\s*(\w+)\[([\d,\s]*)\]", line)
        if m:
            dims = [int(d) for d in m.group(4).split(",") if d.strip()]
            yield m.group(2), m.group(3).upper(), dims


def main():
    log = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else re.sub(r"\.log$", ".safetensors", log)
    header, data = {}, bytearray()
    for k, (name, dt, dims) in enumerate(tensors(log)):
        n = 1
        for d in dims:
            n *= d
        begin = len(data)
        for i in range(n):
            v = ((i * 7 + k * 13) % 17 - 8) / 16.0
            if dt in ("F16", "BF16"):
                f = struct.unpack("<I", struct.pack("<f", v))[0]
                data += struct.pack("<H", f >> 16) if dt == "BF16" else struct.pack("<e", v)
            elif dt in ("F32", "F64"):
                data += struct.pack(PACK[dt], v)
            else:
                data += struct.pack(PACK[dt], int(abs(v) * 16) % 2 if dt == "BOOL" else int(v * 16))
        header[name] = {"dtype": dt, "shape": dims, "data_offsets": [begin, len(data)]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(data))


if __name__ == "__main__":
    main()
