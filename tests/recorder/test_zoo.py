"""Record the torchvision zoo and validate every trace with the independent checker.

Writes (through ptcctest.record_zoo) $PTCC_TEST_OUT/zoo/NAME.log and NAME.safetensors for the compiler's
tests, NAME.io.safetensors with the example input and PyTorch's output (for parity tests), and ops.md,
the op counts per model.
"""

from __future__ import annotations

import collections
import os
import re
import unittest

import ptcctest

ptcctest.require_torch()

import torch  # noqa: E402

import tracecheck  # noqa: E402

_OP = re.compile(r"^\s*(?:%\d+|_)(?:, (?:%\d+|_))* = (\w+)\(", re.M)


class ZooTest(unittest.TestCase):
    def test_zoo(self) -> None:
        out = ptcctest.out_dir("zoo")
        rows = []
        for name in ptcctest.ZOO:
            with self.subTest(model=name):
                got, expected, seconds = ptcctest.record_zoo(name)
                torch.testing.assert_close(got, expected, rtol=0, atol=0)
                log = os.path.join(out, name + ".log")
                self.assertEqual(tracecheck.check(log), [])
                with open(log, encoding="utf-8") as f:
                    ops = collections.Counter(_OP.findall(f.read()))
                self.assertGreater(sum(ops.values()), 0)
                rows.append((name, sum(ops.values()), seconds, ops))
        table = ["| model | ops | record s | op counts |", "|---|---|---|---|"]
        for name, total, seconds, ops in rows:
            counts = ", ".join(f"{op} {n}" for op, n in ops.most_common())
            table.append(f"| {name} | {total} | {seconds:.2f} | {counts} |")
        text = "\n".join(table) + "\n"
        print("\n" + text)
        with open(os.path.join(out, "ops.md"), "w") as f:
            f.write(text)
        self.assertEqual(len(rows), len(ptcctest.ZOO))


if __name__ == "__main__":
    ptcctest.main()
