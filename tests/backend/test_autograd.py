"""The autograd recorder (ptcc-record --via=autograd) and the cross-check of the two recorders.

- Every zoo model recorded from its autograd graph compiles (-O1) to a net whose output matches PyTorch's
  in OpenCV dnn and BVLC Caffe, and its trace agrees with the call recorder's (the zoo test's
  $PTCC_TEST_OUT/zoo/NAME.log) under ptcc-record's cross-check.  The table goes to
  $PTCC_TEST_OUT/autograd.md.
- The families of test_families.py the same way (calibrated, -O1, both runtimes) and cross-checked; the
  ones autograd cannot show are refused with their reason.
- Each refusal with its exact message, nothing written; the cross-check finds planted differences and
  reports them with both lines; the CLI's --via and --cross-check.

    PTCC_AUTOGRAD_MODELS="resnet18 alexnet" make check TESTS=tests/backend/test_autograd.py
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import unittest

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

import torch  # noqa: E402
from torch import nn  # noqa: E402

import test_families  # noqa: E402  (tests/backend, this file's directory)
from ptcc import crosscheck  # noqa: E402
from ptcc.record import RecordError, record  # noqa: E402

RELATIVE_GUARD = 1e-3  # as test_parity: an output that lost its signal fails


def ptcc() -> str:
    return parity.ptcc_binary()


class AutogradZoo(unittest.TestCase):
    def test_zoo(self) -> None:
        out = ptcctest.out_dir("autograd")
        models = os.environ.get("PTCC_AUTOGRAD_MODELS", "").split() or list(ptcctest.ZOO)
        rows = []
        for name in models:
            with self.subTest(model=name):
                rows.append(self.one(name, out))
        table = ["| model | ops (canonical) | cross-check | OpenCV dnn | BVLC Caffe |", "|---|---|---|---|---|"]
        table += [f"| {' | '.join(str(c) for c in row)} |" for row in rows]
        text = "\n".join(table) + "\n"
        print("\n" + text)
        with open(os.path.join(out, "autograd.md"), "w") as f:
            f.write(text)
        self.assertEqual(len(rows), len(models))

    def one(self, name: str, out: str) -> list:
        calls_log, io = parity.zoo_files(name)
        ref = parity.read_safetensors(io)
        model = ptcctest.zoo_model(name)
        x = torch.from_numpy(ref["input"].copy())
        log = os.path.join(out, name + ".log")
        got = record(model, x, log, via="autograd", origin=f"torchvision.models:{name}")
        # the run under autograd computes what the plain run computed
        torch.testing.assert_close(got, torch.from_numpy(ref["output"].copy()), rtol=0, atol=0)
        difference, ops, _ = crosscheck.compare(calls_log, log, ptcc())
        self.assertIsNone(difference, f"{name}: the traces differ: {difference}")
        prototxt = os.path.join(out, name + ".prototxt")
        parity.compile_ok(log, prototxt, "-O1")
        cells = {}
        try:
            for runtime in parity.runtimes():
                names, outs = parity.run_named(runtime, prototxt, parity.caffemodel_of(prototxt), [ref["input"]],
                                               ["x"])
                want = ref["output"]
                self.assertIsNone(parity.shape_error(outs[0], want, runtime))
                err, rel = parity.error(outs[0], want), parity.relative_error(outs[0], want)
                cells[runtime] = f"{err:.1e}"
                self.assertLessEqual(err, parity.TOLERANCE, f"{name} {runtime}: max |Δ| {err:.3e}")
                self.assertLessEqual(rel, RELATIVE_GUARD, f"{name} {runtime}: max |Δ| / max |ref| {rel:.3e}")
        finally:
            if os.environ.get("PTCC_KEEP_OUTPUTS") != "1":
                for p in (prototxt, parity.caffemodel_of(prototxt)):
                    if os.path.exists(p):
                        os.unlink(p)
        return [name, ops, "agree", cells.get("opencv", "-"), cells.get("bvlc", "-")]


class _Autograd:
    """Mixed into test_families' cases: record through autograd, -O1 on target caffe in both runtimes,
    then the cross-check against the call recorder's trace of the same model and input."""

    via = "autograd"

    def family(self, name: str, model: nn.Module, shape: tuple[int, ...]) -> None:
        model = test_families.calibrate(model, shape)
        torch.manual_seed(1)
        x = test_families.randn(*shape)
        self.check(name, model, x, levels=("-O1",))
        calls = os.path.join(self.dir, name + ".calls.log")
        record(model, x, calls)
        difference, ops, _ = crosscheck.compare(calls, os.path.join(self.dir, name + ".log"), ptcc())
        self.assertIsNone(difference, f"{name}: the traces differ: {difference}")
        print(f"autograd: {name}: {ops} canonical ops, the two recorders agree", file=sys.stderr)

    def refused(self, model: nn.Module, shape: tuple[int, ...], message: str) -> None:
        model = test_families.calibrate(model, shape)
        log = os.path.join(self.dir, "refused.log")
        with self.assertRaises(RecordError) as caught:
            record(model, test_families.randn(*shape), log, via="autograd")
        self.assertEqual(str(caught.exception), message)
        self.assertFalse(os.path.exists(log))


class AutogradFamilies(_Autograd, test_families.Families):
    group = "autograd-families"

    def test_convnext_block(self) -> None:
        # the channels-first LayerNorm's `s + 1e-6`: torch 1.13's AddBackward0 keeps no copy of a number
        self.refused(test_families.ConvNeXtBlock(), (1, 3, 10, 10),
                     "AddBackward0: operand 2 requires no grad (a Python number, a constant, an integer or a "
                     "detached tensor), and autograd keeps no copy of it; record without --via=autograd")

    def test_refused_with_reason(self) -> None:
        # the LSTM runs as its cells' ops under autograd; its zero initial state is made during the run
        self.refused(test_families.CRNN(), (1, 1, 8, 12),
                     "AddmmBackward0: operand 2: an operand requires no grad and is not a parameter, buffer or "
                     "tensor attribute of the model (a detached or integer tensor, or one made during the "
                     "run): autograd cannot show how it was computed; record without --via=autograd")


class AutogradTorchvision(_Autograd, test_families.Torchvision):
    group = "autograd-families"


# --- refusals -------------------------------------------------------------------------------------------


class Net(nn.Module):
    """conv, then `body` on its output."""

    def __init__(self, body) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.body = body

    def forward(self, x):
        return self.body(self, self.conv(x))


class Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def _write_into_view(m, y):
    y = y.clone()
    y[:, 0] = 0
    return y


class Refusals(unittest.TestCase):
    """Each thing autograd cannot show, refused with its message; nothing is written."""

    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("autograd-refusals")
        torch.manual_seed(0)

    def refused(self, model: nn.Module, x, message: str) -> None:
        log = os.path.join(self.dir, "run.log")
        with self.assertRaises(RecordError) as caught:
            record(model, x, log, via="autograd")
        self.assertEqual(str(caught.exception), message)
        self.assertFalse(os.path.exists(log))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "run.safetensors")))
        self.assertTrue(all(p.grad is None for p in model.parameters()), "gradients left on the parameters")
        self.assertTrue(all(p.requires_grad for p in model.parameters()))

    def test_cases(self) -> None:
        x = torch.randn(1, 3, 6, 6)
        for what, body, message in [
            ("a number added", lambda m, y: y + 3,
             "AddBackward0: operand 2 requires no grad (a Python number, a constant, an integer or a detached "
             "tensor), and autograd keeps no copy of it; record without --via=autograd"),
            ("a number subtracted from", lambda m, y: 1 - y,
             "RsubBackward1: autograd keeps no copy of the scalar that the tensor is subtracted from"),
            ("a detached output", lambda m, y: y.detach() * 2,
             "output 0 requires no grad: it was computed from constants, integers or detached tensors, which "
             "autograd does not follow; record without --via=autograd"),
            ("a detached operand", lambda m, y: y * y.detach().sigmoid(),
             "MulBackward0: operand 2: an operand requires no grad and is not a parameter, buffer or tensor "
             "attribute of the model (a detached or integer tensor, or one made during the run): autograd "
             "cannot show how it was computed; record without --via=autograd"),
            ("a custom Function", lambda m, y: Double.apply(y),
             "DoubleBackward: a custom autograd.Function; autograd does not record what its forward computed"),
            ("a write into a view", _write_into_view,
             "CopySlices: an in-place write into a view (x[...] = y, or an in-place op on a slice); autograd "
             "keeps no order between it and the view's other readers"),
            ("no op for the node", lambda m, y: torch.cumsum(y, 1),
             "CumsumBackward0: no trace op for this backward node"),
            ("a LayerNorm eps that is no usual value", lambda m, y: nn.functional.layer_norm(y, [6], eps=0.37),
             "NativeLayerNormBackward0: torch keeps no copy of eps, and no usual value reproduces the saved "
             "1/σ exactly"),
            ("the model raising", lambda m, y: y.view(5, 5),
             "the model raised RuntimeError: shape '[5, 5]' is invalid for input of size 144"),
        ]:
            with self.subTest(what=what):
                self.refused(Net(body).eval(), x, message)

    def test_integer_input(self) -> None:
        with self.assertRaises(RecordError) as caught:
            record(nn.Identity(), torch.arange(4), os.path.join(self.dir, "int.log"), via="autograd")
        self.assertEqual(str(caught.exception), "input 0: a torch.int64 tensor; autograd follows floating-point "
                                                "tensors only")

    def test_values_need_calls(self) -> None:
        with self.assertRaises(RecordError) as caught:
            record(nn.ReLU(), torch.randn(2), os.path.join(self.dir, "v.log"), via="autograd", values={})
        self.assertEqual(str(caught.exception), "via=autograd records no intermediate values (ptcc-verify "
                                                "--layers needs via=calls)")

    def test_unknown_via(self) -> None:
        with self.assertRaises(RecordError) as caught:
            record(nn.ReLU(), torch.randn(2), os.path.join(self.dir, "v.log"), via="jit")
        self.assertEqual(str(caught.exception), "via='jit': expected one of calls, autograd")


# --- the cross-check ------------------------------------------------------------------------------------


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 3 * 3, 5)
        self.scale = torch.linspace(0.5, 1.5, 4).view(1, 4, 1, 1)  # a tensor attribute: a constant

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x))) * self.scale
        y = nn.functional.max_pool2d(y, 2)
        return self.fc(torch.flatten(y, 1)) + y.mean()


class CrossCheck(unittest.TestCase):
    """The comparison finds what it must: each planted difference reported with its reason and both lines."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = ptcctest.out_dir("autograd-crosscheck")
        torch.manual_seed(0)
        cls.model = test_families.calibrate(Small(), (1, 3, 6, 6))
        cls.x = torch.randn(1, 3, 6, 6)
        cls.calls = os.path.join(cls.dir, "small.log")
        cls.autograd = os.path.join(cls.dir, "small.autograd.log")
        record(cls.model, cls.x, cls.calls)
        record(cls.model, cls.x, cls.autograd, via="autograd")

    def planted(self, old: str, new: str, count: int = 1) -> str:
        """A copy of the autograd trace (and its weights) with `old` replaced by `new`."""
        with open(self.autograd, encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(text.count(old), count, f"{old!r} in {text}")
        path = os.path.join(self.dir, "planted.log")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new).replace('weights "small.autograd.safetensors"',
                                                   'weights "planted.safetensors"'))
        shutil.copy(os.path.splitext(self.autograd)[0] + ".safetensors", os.path.join(self.dir, "planted.safetensors"))
        return path

    def line(self, log: str, pattern: str) -> str:
        with open(log, encoding="utf-8") as f:
            found = [l.strip() for l in f if re.search(pattern, l)]
        self.assertEqual(len(found), 1, pattern)
        return found[0]

    def test_agree(self) -> None:
        difference, ops, ops_autograd = crosscheck.compare(self.calls, self.autograd, ptcc())
        self.assertIsNone(difference)
        self.assertEqual((ops, ops_autograd), (9, 9))

    def test_planted(self) -> None:
        for what, old, new, why, calls_op in [
            ("eps", "eps=1e-05", "eps=0.001", "eps=1e-05 against eps=0.001", "batch_norm"),
            ("mode", "ceil_mode=false", "ceil_mode=true", "ceil_mode=False against ceil_mode=True", "max_pool2d"),
            ("flag", "training=false", "training=true", "training=False against training=True", "batch_norm"),
            ("op", "= relu(", "= sigmoid(", "op relu against sigmoid", "relu"),
            ("operand", "mul(%3, $const0)", "mul(%2, $const0)", "op relu against batch_norm", "relu"),
            ("parameter", "$bn.weight, $bn.bias", "$bn.bias, $bn.weight", "operand 4: $bn.weight against $bn.bias",
             "batch_norm"),
        ]:
            with self.subTest(what=what):
                planted = self.planted(old, new)
                difference, _, _ = crosscheck.compare(self.calls, planted, ptcc())
                self.assertIsNotNone(difference)
                self.assertEqual(difference.why, why)
                self.assertEqual(difference.calls.text, self.line(self.calls, rf"= {calls_op}\("))
                self.assertEqual(difference.autograd.text,
                                 self.line(planted, "= batch_norm" if what == "operand" else re.escape(new)))

    def test_constant_value(self) -> None:
        from ptcc import safetensors

        planted = self.planted("$const0", "$const0", count=2)
        weights = os.path.join(self.dir, "planted.safetensors")
        scale = self.model.scale.clone()
        scale[0, 1] += 1
        with open(weights, "wb") as f:
            safetensors.write(f, [(n, t) for n, t in self.model.state_dict().items() if "num_batches" not in n]
                              + [("const0", scale)])
        difference, _, _ = crosscheck.compare(self.calls, planted, ptcc())
        self.assertEqual(difference.why, "operand 2: $const0 and $const0 hold different values")

    def test_cli(self) -> None:
        spec = os.path.join(self.dir, "models.py")
        with open(spec, "w") as f:
            f.write("import torch\nfrom torch import nn\n\n\n"
                    "class Scaled(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
                    "    def forward(self, x):\n        y = self.conv(x)\n        return y * y.mean().detach()\n\n\n"
                    "class Plain(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
                    "    def forward(self, x):\n        return torch.sigmoid(self.conv(x))\n")
        env = {"PTCC": ptcc()}
        r = ptcctest.run_recorder(f"{spec}:Plain", "--input", "1x3x5x5", "-o", "plain.log", "--cross-check",
                                  cwd=self.dir, env_extra=env)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "ptcc-record: cross-check: plain.log and plain.autograd.log agree (2 ops after "
                                   "canonicalisation)\n")
        # a detached 0-dim tensor reads as a plain number in autograd's graph: the witness sees the difference
        r = ptcctest.run_recorder(f"{spec}:Scaled", "--input", "1x3x5x5", "-o", "scaled.log", "--cross-check",
                                  cwd=self.dir, env_extra=env)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 3, r.stderr)
        self.assertRegex(lines[0], r"^ptcc-record: cross-check: scaled.log and scaled.autograd.log differ: operand "
                                   r"2: the result of mean against -?\d\.\d+(e-\d+)?$")
        self.assertRegex(lines[1], r'^  calls:    %\d+ = mul\(%\d+, %\d+\) : f32\[1,4,3,3\] @ "models.py:12"$')
        self.assertRegex(lines[2], r"^  autograd: %\d+ = mul\(%\d+, -?\d\.\d+(e-\d+)?\) : f32\[1,4,3,3\]$")
        # --via=autograd alone writes the trace; it compiles
        r = ptcctest.run_recorder(f"{spec}:Plain", "--input", "1x3x5x5", "-o", "via.log", "--via=autograd",
                                  cwd=self.dir)
        self.assertEqual((r.returncode, r.stderr, r.stdout), (0, "", ""))
        parity.compile_ok(os.path.join(self.dir, "via.log"), os.path.join(self.dir, "via.prototxt"), "-O1")
        # --via=autograd alone records the detached 0-dim operand as the number it held (see above)
        r = ptcctest.run_recorder(f"{spec}:Scaled", "--input", "1x3x5x5", "-o", "no.log", "--via=autograd",
                                  cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = ptcctest.run_recorder(f"{spec}:Plain", "--input", "1x3x5x5", "-o", "x.log", "--cross-check",
                                  cwd=self.dir, env_extra={"PTCC": "/nonexistent/ptcc"})
        self.assertEqual((r.returncode, r.stderr), (2, "ptcc-record: error: --cross-check: /nonexistent/ptcc: not "
                                                        "an executable ptcc\n"))


if __name__ == "__main__":
    ptcctest.main()
