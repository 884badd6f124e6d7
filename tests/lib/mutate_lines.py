#!/usr/bin/env python3
"""Write mutated trace lines for tests/front/test_fast_lexer.sh: seeded, so a failure reproduces.

Usage: mutate_lines.py SEED COUNT OUTDIR CORPUS.log...
Writes OUTDIR/mut-K.log files of 200 lines each (COUNT lines in all), every line a corpus line with one to
three edits at the places the two lexers decide things: a byte deleted, inserted or replaced by one of
the format's special characters, a digit run lengthened past 64-bit range, a UTF-8 or invalid byte, a
span doubled.  Each file starts with the header and weights lines, so the lines are parsed as a body."""

import os
import random
import sys

SPECIAL = b'%$[](),:=@"\\-.0123456789eE+_ \t#xnaiftu\r'
ODD = [b"\xc3\xa9", b"\xff", b"\x00", b"\xe2\x82", b"99999999999999999999", b"1e999", b"-0.0", b"..."]


def mutate(rng: random.Random, line: bytes) -> bytes:
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(line))
        kind = rng.randrange(6)
        if kind == 0 and line:
            line = line[:i] + line[i + 1:]
        elif kind == 1:
            line = line[:i] + bytes([rng.choice(SPECIAL)]) + line[i:]
        elif kind == 2 and i < len(line):
            line = line[:i] + bytes([rng.choice(SPECIAL)]) + line[i + 1:]
        elif kind == 3:
            line = line[:i] + rng.choice(ODD) + line[i:]
        elif kind == 4:
            j = rng.randint(i, min(len(line), i + 12))
            line = line[:j] + line[i:j] + line[j:]
        else:
            digits = [k for k, b in enumerate(line) if 48 <= b <= 57]
            if digits:
                k = rng.choice(digits)
                line = line[:k] + b"9" * rng.randint(10, 25) + line[k:]
    return line.replace(b"\n", b"")


def main() -> None:
    seed, count, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    lines = []
    for path in sys.argv[4:]:
        with open(path, "rb") as f:
            lines += [l.rstrip(b"\n") for l in f if l.strip() and not l.startswith((b"ptcc-trace", b"weights"))]
    rng = random.Random(seed)
    for k in range(0, count, 200):
        with open(os.path.join(outdir, f"mut-{k // 200}.log"), "wb") as f:
            f.write(b'ptcc-trace 1\nweights "none.safetensors"\n')
            for _ in range(min(200, count - k)):
                f.write(mutate(rng, rng.choice(lines)) + b"\n")


if __name__ == "__main__":
    main()
