"""ptcc-verify: passes every zoo model with every layer compared, names the broken layer of a sabotaged
resnet18 (a ReLU swapped for a TanH in the prototxt, a weight changed before compiling), refuses to pass
vanishing or constant outputs, pairs outputs by name, and its command line's report and exit status.

Reuses the recorder zoo test's $PTCC_TEST_OUT/zoo/NAME.log (recording a model only when it is missing).
Runs OpenCV and, when pycaffe imports (required in CI), BVLC Caffe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import unittest

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from ptcc import safetensors, verify  # noqa: E402

# Layer by layer in OpenCV alone: alexnet's and vgg11_bn's caffemodels load slowly in BVLC, and the
# deepest nets' every blob is slow to fetch from it (CI time); their BVLC parity is test_parity's.
HEAVY = {"alexnet", "vgg11_bn", "densenet121", "inception_v3"}
RUNTIMES = ["opencv", "caffe"] if parity.bvlc_available() else ["opencv"]
CHOICE = "auto" if parity.bvlc_available() else "opencv"


def zoo(name: str) -> tuple[torch.nn.Module, torch.Tensor, str]:
    """The zoo model, its input and its trace (as test_zoo recorded them)."""
    log = os.path.join(ptcctest.out_dir("zoo"), name + ".log")
    if not os.path.exists(log):
        ptcctest.record_zoo(name)
    x = torch.randn(*ptcctest.ZOO[name], generator=torch.Generator().manual_seed(1))
    return ptcctest.zoo_model(name), x, log


class Zoo(unittest.TestCase):
    def test_every_zoo_model_passes_layer_by_layer(self) -> None:
        out = ptcctest.out_dir("verify", "zoo")
        for name in ptcctest.ZOO:
            with self.subTest(model=name):
                model, x, log = zoo(name)
                prototxt = os.path.join(out, name + ".prototxt")
                parity.compile_ok(log, prototxt, "-O1")
                # HEAVY: their BVLC parity is test_parity's, their layers are compared in OpenCV here
                runtimes = ["opencv"] if name in HEAVY else RUNTIMES
                report = verify.verify(model, [x], prototxt, runtime_choice=CHOICE if name not in HEAVY else "opencv",
                                       layers=True, trace=log)
                self.assertEqual(report.failures, [])
                self.assertEqual(report.notes, [], "the recording matches the trace")
                self.assertEqual([o.verdict for o in report.outputs], ["ok"] * len(runtimes),
                                 [(o.runtime, o.why) for o in report.outputs])
                self.assertEqual(sorted(report.layers), sorted(runtimes))
                notes = sum(1 for l in parity.prototxt_layers(prototxt))
                # OpenCV sees every layer's own first top: most layers hold a trace value
                self.assertGreater(len(report.layers["opencv"]), notes // 3, "layers compared")
                self.assertEqual({rt: d for rt, d in report.divergence.items() if d}, {})
                self.assertTrue(report.passed)
                for suffix in (".prototxt", ".caffemodel"):
                    os.unlink(os.path.join(out, name + suffix))


class Sabotage(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.model, cls.x, cls.log = zoo("resnet18")
        cls.dir = ptcctest.out_dir("verify", "sabotage")

    def divergence(self, prototxt: str, trace: str) -> dict[str, verify.LayerCheck]:
        report = verify.verify(self.model, [self.x], prototxt, runtime_choice=CHOICE, layers=True, trace=trace)
        self.assertFalse(report.passed)
        self.assertEqual([o.verdict for o in report.outputs], ["MISMATCH"] * len(RUNTIMES))
        self.assertEqual(sorted(d for d in report.divergence if report.divergence[d]), sorted(RUNTIMES))
        return {rt: report.divergence[rt] for rt in RUNTIMES}, report

    def test_relu_swapped_for_tanh(self) -> None:
        good = os.path.join(self.dir, "resnet18.prototxt")
        parity.compile_ok(self.log, good, "-O1")
        with open(good) as f:
            text = f.read()
        at = text.index('type: "ReLU"', text.index('name: "layer2.0.relu"'))
        bad = os.path.join(self.dir, "tanh.prototxt")
        with open(bad, "w") as f:
            f.write(text[:at] + 'type: "TanH"' + text[at + len('type: "ReLU"'):])
        shutil.copy(parity.caffemodel_of(good), parity.caffemodel_of(bad))
        found, report = self.divergence(bad, self.log)
        for rt, d in found.items():
            self.assertEqual(d.layer.name, "layer2.0.relu", rt)
            self.assertRegex(verify.describe_divergence(report, d),
                             r'^layer "layer2\.0\.relu" \(resnet18\.log:\d+: %\d+ = relu_?\(\.\.\.\), '
                             r'torchvision/models/resnet\.py:\d+\): max rel error 0\.\d+$')

    def test_weight_changed(self) -> None:
        # the trace is the model's; its weights file has one convolution's weights scaled by 1.5
        log = os.path.join(self.dir, "scaled.log")
        with open(self.log) as f:
            text = f.read()
        with open(log, "w") as f:
            f.write(text.replace('weights "resnet18.safetensors"', 'weights "scaled.safetensors"'))
        tensors = parity.read_safetensors(os.path.splitext(self.log)[0] + ".safetensors")
        tensors["layer3.1.conv2.weight"] = tensors["layer3.1.conv2.weight"] * 1.5
        with open(os.path.join(self.dir, "scaled.safetensors"), "wb") as f:
            safetensors.write(f, [(k, torch.from_numpy(np.array(v))) for k, v in tensors.items()])
        prototxt = os.path.join(self.dir, "scaled.prototxt")
        parity.compile_ok(log, prototxt, "-O1")
        found, _ = self.divergence(prototxt, log)
        # OpenCV gives the convolution's own result; in BVLC the BatchNorm after it runs in place and
        # overwrites that blob, so the first blob seen wrong is the BatchNorm's
        self.assertEqual(found["opencv"].layer.name, "layer3.1.conv2")
        if "caffe" in found:
            self.assertEqual(found["caffe"].layer.name, "layer3.1.bn2.scale")

    def test_o2_folded_batch_norm_maps_to_its_value(self) -> None:
        # at -O2 the convolution holds the batch_norm's value: the note says so, and every layer agrees
        prototxt = os.path.join(self.dir, "resnet18-O2.prototxt")
        parity.compile_ok(self.log, prototxt, "-O2")
        report = verify.verify(self.model, [self.x], prototxt, runtime_choice=CHOICE, layers=True, trace=self.log)
        self.assertTrue(report.passed, [(c.layer.name, c.relative) for c in report.layers["opencv"]
                                        if not c.relative <= 1e-4])
        with open(prototxt) as f:
            self.assertRegex(f.read(), r"# resnet18\.log:\d+: %\d+ \(line \d+\) = conv2d @ ")


class Command(unittest.TestCase):
    """python3 -m ptcc.verify: the report, exit statuses 0, 1, 2, names, vanishing and constant outputs."""

    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("verify", "command")
        with open(os.path.join(self.dir, "models.py"), "w") as f:
            f.write(MODELS)

    def record_and_compile(self, name: str, shape: str) -> str:
        spec = f"{self.dir}/models.py:{name}"
        log = os.path.join(self.dir, name + ".log")
        r = self.run_tool("ptcc", spec, "--input", shape, "-o", log)
        self.assertEqual(r.returncode, 0, r.stderr)
        prototxt = os.path.join(self.dir, name + ".prototxt")
        parity.compile_ok(log, prototxt, "-O1")
        return prototxt

    def run_tool(self, module: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                              cwd=self.dir)

    def test_pass_by_name(self) -> None:
        prototxt = self.record_and_compile("Heads", "1x3x8x8")
        r = self.run_tool("ptcc.verify", f"{self.dir}/models.py:Heads", "--input", "1x3x8x8", prototxt,
                          "--runtime", "opencv", "--layers", "-v")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        pattern = (r'^opencv: output "{}" \(1, 4, 6, 6\): max \|Δ\| [0-9.e+-]+, max \|ref\| [0-9.e+-]+, '
                   r'max \|Δ\| / max\(1, max \|ref\|\) [0-9.e+-]+: ok$')
        self.assertRegex(lines[0], pattern.format("out"))
        self.assertRegex(lines[1], pattern.format("aux"))
        self.assertEqual(lines[2], "opencv: 3 layers compared with their trace values, 0 differ")
        self.assertRegex(lines[3], r"^  ok      conv \(%1, Heads\.log:\d+\) [0-9.e+-]+$")
        self.assertEqual(lines[-1], "verdict: pass (tolerance 0.0001)")

    def test_a_prototxt_without_comments(self) -> None:
        # a net whose comments were removed (or not ptcc's): outputs are the blobs no layer reads, and
        # --layers says it has nothing to compare
        prototxt = self.record_and_compile("Heads", "1x3x8x8")
        bare = os.path.join(self.dir, "bare.prototxt")
        with open(prototxt) as f, open(bare, "w") as out:
            out.writelines(l for l in f if not l.startswith("#"))
        shutil.copy(parity.caffemodel_of(prototxt), parity.caffemodel_of(bare))
        r = self.run_tool("ptcc.verify", f"{self.dir}/models.py:Heads", "--input", "1x3x8x8", bare,
                          "--runtime", "opencv", "--layers")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[:2], [
            f"note: {bare} has no '# outputs:' line: its outputs are taken to be the blobs no layer reads (out, aux)",
            f"note: {bare} has no layer notes (`# run.log:57: %41 = conv2d`, which ptcc writes above each layer): "
            "--layers has nothing to compare"])

    def test_vanishing_and_constant_outputs_do_not_pass(self) -> None:
        for name, why in (("Tiny", "the reference is vanishing (max |ref| "),
                          ("Constant", "the reference is constant (every value within the tolerance")):
            prototxt = self.record_and_compile(name, "1x3x8x8")
            r = self.run_tool("ptcc.verify", f"{self.dir}/models.py:{name}", "--input", "1x3x8x8", prototxt,
                              "--runtime", "opencv")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(f": INCONCLUSIVE ({why}", r.stdout)
            self.assertEqual(r.stdout.splitlines()[-1], "verdict: FAIL (tolerance 0.0001)")

    def test_mismatch_and_usage(self) -> None:
        prototxt = self.record_and_compile("Heads", "1x3x8x8")
        spec = f"{self.dir}/models.py:Heads"
        # another seed: other weights, so the outputs differ
        r = self.run_tool("ptcc.verify", spec, "--input", "1x3x8x8", "--seed", "7", prototxt, "--runtime", "opencv")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r': MISMATCH \(max \|Δ\| over 0\.0001 · max\(1, max \|ref\|\)\)\n')
        for args, message in (
                ([spec, "--input", "1x3x8x8", os.path.join(self.dir, "none.prototxt")],
                 f"ptcc-verify: error: {self.dir}/none.prototxt: no such file"),
                ([spec, "--input", "1x3xq", prototxt],
                 "ptcc-verify: error: --input '1x3xq': expected a shape such as 1x3x224x224"),
                ([spec, "--input", "1x3x8x8", "--input", "1x3x8x8", prototxt],
                 f"ptcc-verify: error: {prototxt} has 1 inputs (x); 2 --input shapes were given"),
                ([spec, "--input", "1x3x8x8", parity.caffemodel_of(prototxt)],
                 f"ptcc-verify: error: {parity.caffemodel_of(prototxt)}: not a text prototxt (is it the "
                 "caffemodel?)")):
            r = self.run_tool("ptcc.verify", *args)
            self.assertEqual((r.returncode, r.stderr.strip()), (2, message))


class Convert(unittest.TestCase):
    """ptcc.convert(): records, compiles with the given ptcc, verifies; every failure is a ConvertError."""

    def setUp(self) -> None:
        import ptcc

        self.ptcc = ptcc
        self.dir = ptcctest.out_dir("verify", "convert")
        torch.manual_seed(0)

    def test_converts_and_verifies(self) -> None:
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
        model.train()
        got = self.ptcc.convert(model, torch.randn(1, 3, 12, 12), f"{self.dir}/new/net.prototxt", layers=True,
                                ptcc=parity.ptcc_binary())
        self.assertTrue(model.training, "the model's mode is left as it was")
        self.assertEqual((got.log, got.weights, got.caffemodel),
                         tuple(f"{self.dir}/new/net.{e}" for e in ("log", "safetensors", "caffemodel")))
        for path in (got.log, got.weights, got.prototxt, got.caffemodel):
            self.assertTrue(os.path.getsize(path) > 0, path)
        self.assertTrue(got.report.passed)
        self.assertEqual([(o.runtime, o.verdict) for o in got.report.outputs], [(rt, "ok") for rt in RUNTIMES])
        self.assertEqual(sorted(got.report.layers), sorted(RUNTIMES))
        # the opencv target is verified in OpenCV alone
        got = self.ptcc.convert(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU6()), torch.randn(1, 3, 5, 5),
                                f"{self.dir}/net6.prototxt", target="opencv", ptcc=parity.ptcc_binary())
        self.assertEqual([o.runtime for o in got.report.outputs], ["opencv"])

    def test_errors(self) -> None:
        x = torch.randn(1, 3, 4, 4)
        conv = nn.Conv2d(3, 3, 1)
        with self.assertRaises(self.ptcc.ConvertError) as e:
            self.ptcc.convert(conv, x, f"{self.dir}/a.prototxt", ptcc=f"{self.dir}/no-ptcc")
        self.assertEqual(str(e.exception), f"{self.dir}/no-ptcc: not an executable ptcc")
        with self.assertRaises(self.ptcc.ConvertError) as e:
            self.ptcc.convert(conv, x, f"{self.dir}/a.prototxt", target="tflite", ptcc=parity.ptcc_binary())
        self.assertEqual(str(e.exception), "target 'tflite': expected one of caffe, caffe-master, opencv")
        # an op ptcc refuses: the exception carries ptcc's diagnostics, and nothing is written
        refused = Lambda(lambda x: torch.threshold(x, 0.1, -1.0))
        with self.assertRaises(self.ptcc.ConvertError) as e:
            self.ptcc.convert(refused, x, f"{self.dir}/refused.prototxt", ptcc=parity.ptcc_binary())
        self.assertRegex(e.exception.diagnostics, rf"^{re.escape(self.dir)}/refused\.log:\d+:\d+: error: ")
        self.assertTrue(str(e.exception).startswith(
            f"ptcc could not compile {self.dir}/refused.log (exit status 1):\n"))
        self.assertFalse(os.path.exists(f"{self.dir}/refused.prototxt"))
        # a tolerance no float32 net meets: the report comes with the exception
        with self.assertRaises(self.ptcc.ConvertError) as e:
            self.ptcc.convert(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Tanh()), torch.randn(1, 3, 9, 9),
                              f"{self.dir}/strict.prototxt", tolerance=1e-12, ptcc=parity.ptcc_binary())
        self.assertFalse(e.exception.report.passed)
        self.assertIn(": MISMATCH (max |Δ| over 1e-12 · max(1, max |ref|))", str(e.exception))


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


MODELS = '''
import torch
import torch.nn as nn


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return {"out": torch.relu(y), "aux": torch.sigmoid(y)}


class Tiny(nn.Module):  # outputs of magnitude ~1e-9, as torchvision's default init gives mobilenet_v2
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        with torch.no_grad():
            self.conv.weight.mul_(1e-8)
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x)


class Constant(nn.Module):  # ignores its input
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.fill_(2.0)

    def forward(self, x):
        return self.conv(x)
'''


if __name__ == "__main__":
    ptcctest.main()
