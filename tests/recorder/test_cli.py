"""ptcc-record's command line: specs, inputs, seeds, exit status and messages."""

from __future__ import annotations

import os
import unittest

import ptcctest

ptcctest.require_torch()

import tracecheck  # noqa: E402

LENET = "examples/lenet/lenet.py:LeNet"


class CliTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("cli", self.id().rsplit(".", 1)[-1])

    def test_help(self) -> None:
        r = ptcctest.run_recorder("--help")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: ptcc-record [-h] [--input SHAPE] [-o FILE] [--arg NAME=VALUE]"),
                        r.stdout)
        self.assertIn("Example: ptcc-record torchvision.models:resnet18 --input 1x3x224x224", r.stdout)

    def test_file_spec_with_input(self) -> None:
        log = os.path.join(self.dir, "lenet.log")
        r = ptcctest.run_recorder(LENET, "--input", "2x1x28x28", "-o", log)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(tracecheck.check(log), [])
        with open(log) as f:
            text = f.read()
        self.assertIn('input %0 "x" : f32[2,1,28,28]\n', text)
        self.assertIn(f"# recorded by ptcc-record from {LENET} with torch", text)

    def test_module_spec_and_function_returning_inputs(self) -> None:
        # a module:function SPEC whose function returns (module, example_inputs)
        pkg = ptcctest.out_dir("cli", "pkg")
        with open(os.path.join(pkg, "tinynet.py"), "w") as f:
            f.write("import torch\n"
                    "def make():\n"
                    "    return torch.nn.Sequential(torch.nn.Linear(3, 2)), (torch.ones(4, 3),)\n")
        log = os.path.join(self.dir, "tiny.log")
        r = ptcctest.run_recorder("tinynet:make", "-o", log, env_extra={
            "PYTHONPATH": os.path.join(ptcctest.SRCDIR, "python") + os.pathsep + pkg})
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(tracecheck.check(log), [])

    def test_constructor_arguments_and_build_errors(self) -> None:
        pkg = ptcctest.out_dir("cli", "pkg_args")
        with open(os.path.join(pkg, "argnet.py"), "w") as f:
            f.write("import torch, urllib.error\n"
                    "class Net(torch.nn.Module):\n"
                    "    def __init__(self, width=2, act=None, weights='DEFAULT'):\n"
                    "        super().__init__()\n"
                    "        if weights is not None:\n"
                    "            raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')\n"
                    "        self.fc = torch.nn.Linear(3, width)\n"
                    "        self.act = act\n"
                    "    def forward(self, x):\n"
                    "        return self.fc(x)\n"
                    "def broken():\n"
                    "    raise ValueError('no such variant')\n")
        env = {"PYTHONPATH": os.path.join(ptcctest.SRCDIR, "python") + os.pathsep + pkg}
        log = os.path.join(self.dir, "argnet.log")
        r = ptcctest.run_recorder("argnet:Net", "--input", "1x3", "--arg", "width=5", "--arg", "weights=None",
                                  "--arg", "act='relu'", "-o", log, env_extra=env)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        with open(log) as f:
            self.assertIn(": f32[1,5]", f.read())
        cases = [
            (["argnet:Net", "--input", "1x3"], 1,
             "ptcc-record: error: building argnet:Net raised URLError: <urlopen error [Errno -3] Temporary failure "
             "in name resolution>; it tried to download something, and nothing can be downloaded here: build it "
             "without pretrained weights (for torchvision, --arg weights=None --arg weights_backbone=None)\n"),
            (["argnet:broken", "--input", "1x3"], 1,
             "ptcc-record: error: building argnet:broken raised ValueError: no such variant\n"),
            (["argnet:Net", "--arg", "width"], 2,
             "ptcc-record: error: --arg 'width': expected name=value, such as num_classes=4\n"),
            (["argnet:Net", "--arg", "act=relu"], 2,
             "ptcc-record: error: --arg 'act=relu': 'relu' is not a Python literal (a number, string, None, "
             "True, False, or a tuple, list or dict of them)\n"),
            (["argnet:Net", "--input", "1x3", "--arg", "depth=3"], 1,
             "ptcc-record: error: building argnet:Net raised TypeError: Net.__init__() got an unexpected keyword "
             "argument 'depth'\n"),
        ]
        for args, status, message in cases:
            with self.subTest(args=args):
                r = ptcctest.run_recorder(*args, "-o", os.path.join(self.dir, "no.log"), env_extra=env)
                self.assertEqual((r.returncode, r.stderr), (status, message))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no.log")))

    def test_seed_changes_weights_and_same_seed_repeats(self) -> None:
        def weights(seed: str, name: str) -> bytes:
            log = os.path.join(self.dir, name + ".log")
            r = ptcctest.run_recorder(LENET, "--input", "1x1x28x28", "--seed", seed, "-o", log)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(self.dir, name + ".safetensors"), "rb") as f:
                return f.read()

        self.assertEqual(weights("3", "a"), weights("3", "b"))
        self.assertNotEqual(weights("3", "c"), weights("4", "d"))

    def test_errors(self) -> None:
        cases = [
            (["nocolon"], 2, "ptcc-record: error: 'nocolon': expected package.module:NAME or path/to/file.py:NAME\n"),
            (["missing/file.py:Net"], 2, "ptcc-record: error: missing/file.py: no such file\n"),
            (["ptcc_no_such_module:Net"], 2,
             "ptcc-record: error: cannot import ptcc_no_such_module: No module named 'ptcc_no_such_module'\n"),
            (["examples/lenet/lenet.py:Nope"], 2,
             "ptcc-record: error: examples/lenet/lenet.py has no attribute 'Nope'\n"),
            ([LENET], 2, f"ptcc-record: error: {LENET} gives no example inputs: pass --input SHAPE\n"),
            ([LENET, "--input", "1x1xbad"], 2,
             "ptcc-record: error: --input '1x1xbad': expected a shape such as 1x3x224x224\n"),
            ([LENET, "--input", "1x1x28x28", "-o", "/nonexistent-dir/x.log"], 2, None),
            ([LENET, "--input", "1x2x28x28", "-o", os.path.join(self.dir, "bad.log")], 1,
             "ptcc-record: error: examples/lenet/lenet.py:27: the model raised RuntimeError: Given groups=1, "
             "weight of size [6, 1, 5, 5], expected input[1, 2, 28, 28] to have 1 channels, but got 2 channels "
             "instead\n"),
        ]
        for args, status, message in cases:
            with self.subTest(args=args):
                r = ptcctest.run_recorder(*args)
                self.assertEqual(r.returncode, status, r.stderr)
                if message is not None:
                    self.assertEqual(r.stderr, message)
                else:
                    self.assertTrue(r.stderr.startswith("ptcc-record: error: "), r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "bad.log")))


if __name__ == "__main__":
    ptcctest.main()
