"""Recording the shipped LeNet example again gives the committed files byte for byte."""

from __future__ import annotations

import os
import unittest

import ptcctest

ptcctest.require_torch()


class DeterminismTest(unittest.TestCase):
    def test_lenet_rerecords_identically(self) -> None:
        out = ptcctest.out_dir("determinism")
        log = os.path.join(out, "lenet.log")
        # the same command as examples/README.md, run from the top of the source tree
        r = ptcctest.run_recorder("examples/lenet/lenet.py:LeNet", "--input", "1x1x28x28", "-o", log)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        for name in ("lenet.log", "lenet.safetensors"):
            with self.subTest(file=name):
                with open(os.path.join(ptcctest.SRCDIR, "examples", "lenet", name), "rb") as f:
                    committed = f.read()
                with open(os.path.join(out, name), "rb") as f:
                    self.assertEqual(f.read(), committed)


if __name__ == "__main__":
    ptcctest.main()
