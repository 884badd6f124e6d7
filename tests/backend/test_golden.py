"""Golden prototxt files: lenet (examples/lenet/lenet.log) and resnet18 (the zoo's log), compiled at -O1,
compared as text with tests/golden/NAME.prototxt.

To regenerate them after an intended change of the output, run

    make update-golden          # or: PTCC_UPDATE_GOLDEN=1 make check TESTS=tests/backend/test_golden.py

then read the diff (`git diff tests/golden`) against docs/runtime-facts.md before committing: BatchNorm with 3
blobs then an in-place Scale, in-place ReLU, layer names from the scopes, no Flatten before InnerProduct
at -O1, Slice crops only where Caffe's ceil rule differs from PyTorch's.

Also checked here: the output does not depend on the directory ptcc runs in or on how the log's path is
spelled, two runs give the same bytes (prototxt and caffemodel), and --no-weights writes the same text.
"""

from __future__ import annotations

import difflib
import filecmp
import os
import shutil
import subprocess
import unittest

import ptcctest
import parity

parity.require_tools()

GOLDEN_DIR = os.path.join(ptcctest.SRCDIR, "tests", "golden")
UPDATE = os.environ.get("PTCC_UPDATE_GOLDEN") == "1"


def lenet_log() -> str:
    return os.path.join(ptcctest.SRCDIR, "examples", "lenet", "lenet.log")


class GoldenTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("golden")

    def compare(self, name: str, log: str) -> None:
        prototxt = os.path.join(self.dir, name + ".prototxt")
        parity.compile_ok(log, prototxt, "-O1")
        with open(prototxt, encoding="utf-8") as f:
            got = f.read()
        golden = os.path.join(GOLDEN_DIR, name + ".prototxt")
        if UPDATE:
            os.makedirs(GOLDEN_DIR, exist_ok=True)
            with open(golden, "w", encoding="utf-8") as f:
                f.write(got)
            print(f"updated {golden}")
            return
        self.assertTrue(os.path.exists(golden), f"{golden} is missing; run `make update-golden`")
        with open(golden, encoding="utf-8") as f:
            want = f.read()
        if got != want:
            diff = "".join(list(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                     golden, prototxt))[:80])
            self.fail(f"{name}: the output differs from the golden file "
                      f"(if intended: make update-golden, and review the diff):\n{diff}")

    def test_lenet(self) -> None:
        self.compare("lenet", lenet_log())

    def test_resnet18(self) -> None:
        log, _ = parity.zoo_files("resnet18")
        self.compare("resnet18", log)

    def test_independent_of_cwd_and_path(self) -> None:
        """The same bytes from another directory, through a relative path, and run twice."""
        work = ptcctest.out_dir("golden", "cwd")
        for f in ("lenet.log", "lenet.safetensors"):
            shutil.copy(os.path.join(ptcctest.SRCDIR, "examples", "lenet", f), work)
        a = os.path.join(self.dir, "a.prototxt")
        parity.compile_ok(lenet_log(), a, "-O1")
        r = subprocess.run([parity.ptcc_binary(), "lenet.log", "-o", "b.prototxt", "-O1"], cwd=work,
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        b = os.path.join(work, "b.prototxt")
        self.assertTrue(filecmp.cmp(a, b, shallow=False), "prototxt depends on the path or cwd")
        self.assertTrue(filecmp.cmp(parity.caffemodel_of(a), parity.caffemodel_of(b), shallow=False),
                        "caffemodel depends on the path or cwd")
        c = os.path.join(self.dir, "c.prototxt")
        parity.compile_ok(lenet_log(), c, "-O1", "--no-weights")
        self.assertTrue(filecmp.cmp(a, c, shallow=False), "--no-weights changes the text")
        self.assertFalse(os.path.exists(parity.caffemodel_of(c)), "--no-weights wrote a caffemodel")

    def test_default_level_is_O1_and_target_caffe(self) -> None:
        a = os.path.join(self.dir, "d1.prototxt")
        b = os.path.join(self.dir, "d2.prototxt")
        parity.compile_ok(lenet_log(), a)
        parity.compile_ok(lenet_log(), b, "-O1", "--target=caffe")
        self.assertTrue(filecmp.cmp(a, b, shallow=False))

    def test_explicit_w(self) -> None:
        a = os.path.join(self.dir, "w.prototxt")
        w = os.path.join(self.dir, "weights-elsewhere.bin")
        parity.compile_ok(lenet_log(), a, "-w", w)
        self.assertTrue(os.path.exists(w))
        self.assertFalse(os.path.exists(parity.caffemodel_of(a)))


if __name__ == "__main__":
    ptcctest.main()
