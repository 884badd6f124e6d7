"""The ONNX reader's and importer's diagnostics: each bad model of bad_models.py gives exactly
tests/onnx/NAME.err on stderr (the whole of it) and its exit status, and writes nothing.  Plus: -o naming
the model is refused and the model is left as it was; --input sets a symbolic batch without the note; and
--emit=log writes a trace and a safetensors file whose compilation is the ONNX model's net (the prototxt
but its comments, and the caffemodel byte for byte).

No torch here: the models are built with python3-onnx (scripts/install-deps), which CI requires.
    PTCC_UPDATE_GOLDEN=1 ... rewrites the .err files (review the diff).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unittest

import ptcctest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import bad_models  # noqa: E402  (python3-onnx)
except ImportError as e:
    print(f"python3-onnx is missing ({e}); scripts/install-deps installs it", file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") == "true" else ptcctest.EXIT_SKIP)
from onnx import helper  # noqa: E402

PTCC = os.path.join(ptcctest.BUILDDIR, "src", "ptcc")


def ptcc(cwd: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PTCC, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


class BadModels(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("onnx-errors", self._testMethodName)
        shutil.rmtree(self.dir)
        os.makedirs(self.dir)

    def test_each_bad_model(self) -> None:
        for name, write, args, status in bad_models.CASES:
            with self.subTest(case=name):
                model = write(self.dir)
                before = sorted(os.listdir(self.dir))
                r = ptcc(self.dir, model, "-o", name + ".prototxt", *args)
                golden = os.path.join(HERE, name + ".err")
                if os.environ.get("PTCC_UPDATE_GOLDEN"):
                    with open(golden, "w", encoding="utf-8") as f:
                        f.write(r.stderr)
                with open(golden, encoding="utf-8") as f:
                    self.assertEqual(r.stderr, f.read())
                self.assertEqual(r.returncode, status, r.stderr)
                if status:
                    self.assertEqual(sorted(os.listdir(self.dir)), before, "nothing written")

    def test_output_over_the_model(self) -> None:
        model = bad_models.save(self.dir, "m", bad_models.relu_model())
        with open(os.path.join(self.dir, model), "rb") as f:
            data = f.read()
        for args in (["-o", model], ["-o", "m.prototxt", "-w", model], ["--emit=log", "-o", model]):
            with self.subTest(args=args):
                r = ptcc(self.dir, model, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                flag = "-w" if "-w" in args else "-o"
                self.assertEqual(r.stderr.splitlines()[0],
                                 f"ptcc: error: {flag} m.onnx is the input model; ptcc never writes over its input")
                with open(os.path.join(self.dir, model), "rb") as f:
                    self.assertEqual(f.read(), data)
                self.assertEqual(sorted(os.listdir(self.dir)), ["m.onnx"])

    def test_not_a_regular_file(self) -> None:
        """A FIFO or a directory, named .onnx or not, is refused without being waited on."""
        os.mkfifo(os.path.join(self.dir, "pipe.onnx"))
        os.mkfifo(os.path.join(self.dir, "pipe.bin"))
        os.mkdir(os.path.join(self.dir, "dir.onnx"))
        for name, want in (("pipe.onnx", "'pipe.onnx' is not a regular file (a FIFO)"),
                           ("pipe.bin", "'pipe.bin' is not a regular file (a FIFO)"),
                           ("dir.onnx", "'dir.onnx' is a directory")):
            with self.subTest(name=name):
                r = subprocess.run([PTCC, name], cwd=self.dir, capture_output=True, text=True, timeout=10)
                self.assertEqual((r.returncode, r.stderr), (2, f"ptcc: error: {want}\n"))

    def test_input_sets_a_symbolic_dim(self) -> None:
        model = bad_models.dynamic_batch(self.dir)
        r = ptcc(self.dir, model, "--input", "x=2x3x4x4", "--emit=summary")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("f32[2,3,4,4]", r.stdout)

    def small_net(self, name: str = "net.onnx") -> str:
        w = bad_models.weight("w", (4, 3, 3, 3))
        b = bad_models.weight("b", (4,))
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/features/conv/Conv", kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["y"], name="/features/act/Relu")]
        model = bad_models.graph(nodes, [bad_models.x_info()], [bad_models.y_info()], [w, b])
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(model.SerializeToString())
        return name

    def test_every_option_as_for_a_trace(self) -> None:
        """--check, --target, -O, -w, --emit=ir/summary/dot/none, --dump-net, --after; and a model file
        without the .onnx extension is known by its first bytes."""
        model = self.small_net("net.bin")
        for args, files in ((["--check"], []), (["--emit=none", "--target=opencv"], []),
                            (["-o", "a.prototxt", "-w", "b.caffemodel", "-O2", "--target=caffe-master"],
                             ["a.prototxt", "b.caffemodel"]),
                            (["-o", "c.prototxt", "--no-weights", "-O0"], ["c.prototxt"])):
            with self.subTest(args=args):
                r = ptcc(self.dir, model, *args)
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                self.assertEqual(sorted(os.listdir(self.dir)), sorted(["net.bin", *files]))
                for f in files:
                    os.unlink(os.path.join(self.dir, f))
        r = ptcc(self.dir, model, "--emit=ir")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.startswith("ptcc-trace 1 ssa\n# converted by ptcc from net.bin (ONNX opset 13"))
        self.assertIn("%1 = conv2d(input=%0, weight=$w, bias=$b, stride=[1, 1], padding=[1, 1], dilation=[1, 1], "
                      "groups=1) : f32[1,4,4,4] @ \"/features/conv/Conv\"", r.stdout)
        r = ptcc(self.dir, model, "--emit=dot")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.startswith("digraph"))
        r = ptcc(self.dir, model, "--emit=dot", "--after=fuse")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("features.conv", r.stdout)
        self.assertIn("conv2d net.bin:0", r.stdout)  # an ONNX model's "line" is the node's index
        r = ptcc(self.dir, model, "--dump-net=lower", "--no-weights", "-o", "d.prototxt")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("Convolution", r.stdout)

    def test_producer_cannot_add_lines(self) -> None:
        """The header comment names the model and its producer: their line ends cannot end it."""
        model = bad_models.relu_model()
        model.producer_name = 'evil)\ninput %9 "z" : f32[2]\n#'
        bad_models.save(self.dir, "evil\nname", model)
        r = ptcc(self.dir, "evil\nname.onnx", "--emit=log", "-o", "run.log")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        with open(os.path.join(self.dir, "run.log"), encoding="utf-8") as f:
            self.assertEqual(f.read().splitlines()[1], '# converted by ptcc from evil?name.onnx (ONNX opset 13, '
                                                       'written by evil)?input %9 "z" : f32[2]?#)')
        r = ptcc(self.dir, "run.log", "-o", "run.prototxt")
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_emit_log_compiles_to_the_same_net(self) -> None:
        w = bad_models.weight("w", (4, 3, 3, 3))
        b = bad_models.weight("b", (4,))
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/features/conv/Conv", kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"], name="/features/act/Relu"),
                 helper.make_node("GlobalAveragePool", ["r"], ["p"], name="/pool/GlobalAveragePool"),
                 helper.make_node("Flatten", ["p"], ["y"], name="/Flatten")]
        model = bad_models.save(self.dir, "net", bad_models.graph(nodes, [bad_models.x_info()],
                                                                    [bad_models.y_info()], [w, b]))
        r = ptcc(self.dir, model, "--emit=log", "-o", "run.log")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(sorted(os.listdir(self.dir)), ["net.onnx", "run.log", "run.safetensors"])
        with open(os.path.join(self.dir, "run.log"), encoding="utf-8") as f:
            log = f.read()
        self.assertIn('weights "run.safetensors"\nparam $w : f32[4,3,3,3]\nparam $b : f32[4]\n', log)
        self.assertIn("  call features onnx\n    call features.conv onnx\n", log)
        self.assertIn('@ "/features/conv/Conv"', log)
        for src in ("run.log", model):
            r = ptcc(self.dir, src, "-o", src.split(".")[0] + ".prototxt")
            self.assertEqual((r.returncode, r.stderr), (0, ""))

        def text(p: str) -> list[str]:
            with open(os.path.join(self.dir, p), encoding="utf-8") as f:
                return [line for line in f if not line.lstrip().startswith("#")]
        self.assertEqual(text("run.prototxt"), text("net.prototxt"))
        with open(os.path.join(self.dir, "run.caffemodel"), "rb") as a, \
                open(os.path.join(self.dir, "net.caffemodel"), "rb") as b2:
            self.assertEqual(a.read(), b2.read())
        # to stdout: the weights beside the model, and a note saying so
        r = ptcc(self.dir, model, "--emit=log")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "ptcc: note: the trace's weights are in net.safetensors (its 'weights' line "
                                   "names 'net.safetensors', beside the trace)\n")
        self.assertTrue(os.path.exists(os.path.join(self.dir, "net.safetensors")))


if __name__ == "__main__":
    ptcctest.main()
