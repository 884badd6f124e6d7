"""Back-end errors: exact first diagnostic line and exit status, and nothing written or clobbered.

- an op the `caffe` target cannot lower (glu), and two of them in one log (threshold and glu: both
  reported, each at its own line);
- a weight of the wrong shape in a hand-edited log (declaration and weights file edited to agree, so that
  the op no longer fits), for a linear and a conv;
- output paths that cannot be written: exit 2, no file created, an existing NET.prototxt and
  NET.caffemodel keep their content, no temporary file left behind; an input error with existing outputs
  leaves them as they were.
ptcc runs in the log's directory with the log's base name, so the diagnostics' file names are stable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import torch
import torch.nn as nn
import torch.nn.functional as F

import ptcctest
import parity

parity.require_tools()

from optest import OpTestCase, diagnostics  # noqa: E402
from ptcc import safetensors  # noqa: E402


def ptcc(cwd: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([parity.ptcc_binary(), *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C", NO_COLOR="1"))


class Glu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return F.glu(self.conv(x), 1)


class ThresholdGlu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(5, 5)

    def forward(self, x):
        y = torch.threshold(self.conv(x), 0.1, -1.0)
        return self.fc(F.glu(y, 1))


def first_line(stderr: str) -> str:
    return stderr.splitlines()[0] if stderr else ""


def col_of(log: str, line: int, op: str) -> int:
    """1-based column of `op(` on that line of the log (where a diagnostic about the op points)."""
    with open(log, encoding="utf-8") as f:
        text = f.read().splitlines()[line - 1]
    return text.index(op if op.startswith(("$", "f32")) else op + "(") + 1


class UnsupportedOps(OpTestCase):
    group = "errors"

    def test_one_unsupported_op(self) -> None:
        log, _ = self.record("glu", Glu(), torch.randn(1, 3, 6, 6))
        (line,) = self.log_line(log, "= glu(")
        r = ptcc(self.dir, "glu.log", "-o", "glu.prototxt")
        self.assertEqual(r.returncode, 1, r.stderr)
        diags = diagnostics(r.stderr)
        self.assertEqual(len(diags), 1, r.stderr)
        file, dline, _, msg = diags[0]
        col = col_of(log, line, "glu")
        self.assertEqual((file, dline), ("glu.log", line), r.stderr)
        self.assertIn("glu", msg)
        self.assertIn("does not lower this op yet", msg)
        self.assertEqual(first_line(r.stderr), EXPECT["glu"].format(line=line, col=col), r.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), ["glu.log", "glu.safetensors"],
                         "nothing written, no temporary file left")

    def test_two_unsupported_ops_both_reported(self) -> None:
        log, _ = self.record("two", ThresholdGlu(), torch.randn(1, 3, 7, 7))
        (tline,) = self.log_line(log, "= threshold(")
        (gline,) = self.log_line(log, "= glu(")
        for level in ("-O0", "-O1", "-O2"):
            r = ptcc(self.dir, "two.log", "-o", "two.prototxt", level)
            self.assertEqual(r.returncode, 1, r.stderr)
            diags = diagnostics(r.stderr)
            self.assertEqual([(d[0], d[1]) for d in diags], [("two.log", tline), ("two.log", gline)], r.stderr)
            self.assertIn("threshold", diags[0][3])
            self.assertIn("glu", diags[1][3])
            self.assertEqual(first_line(r.stderr),
                             EXPECT["threshold"].format(line=tline, col=col_of(log, tline, "threshold")))
            self.assertIn(EXPECT["glu"].format(line=gline, col=col_of(log, gline, "glu"))
                          .replace("glu.log", "two.log") + "\n", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "two.prototxt")))

    def test_unsupported_op_other_targets_too(self) -> None:
        # `--target=caffe` spelled out gives the same
        log, _ = self.record("glu2", Glu(), torch.randn(1, 3, 6, 6))
        a = ptcc(self.dir, "glu2.log", "-o", "a.prototxt", "--target=caffe")
        b = ptcc(self.dir, "glu2.log", "-o", "a.prototxt")
        self.assertEqual((a.returncode, a.stderr), (b.returncode, b.stderr))


class ZooRefusal(OpTestCase):
    group = "errors"

    def test_every_stray_transpose_compiles(self) -> None:
        """shufflenet_v2's channel shuffles (view, transpose(1, 2), view) compile as a permutation
        Convolution; once the final views are cut away, every transpose is a stray 5-D transpose, which was
        refused and now compiles as a block swap (runtime-facts S12): all 16, in a net that validates."""
        log, _ = parity.zoo_files("shufflenet_v2_x1_0")
        lines = self.log_line(log, " = transpose(")
        self.assertEqual(len(lines), 16)
        with open(log) as f:
            text = f.read()
        # make each transpose's result an output of its own: `contiguous` then has a second use
        outputs = "".join(f"output %{m}\n" for m in re.findall(r"%(\d+) = transpose\(", text))
        cut = os.path.join(self.dir, "shuffle_cut.log")
        with open(cut, "w") as f:
            f.write(text + outputs)
        shutil.copy(log[:-4] + ".safetensors", os.path.join(self.dir, "shufflenet_v2_x1_0.safetensors"))
        prototxt = os.path.join(self.dir, "shufflenet.prototxt")
        r = parity.compile_log(cut, prototxt)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(parity.validate(prototxt, parity.caffemodel_of(prototxt)), [])
        swaps = [l for l in parity.prototxt_layers(prototxt) if l.name.endswith(".swap")]
        self.assertEqual(len(swaps), 16, [l.name for l in swaps])


class WrongWeightShape(OpTestCase):
    group = "errors"

    def edited_lenet(self, name: str, pname: str, new_shape: list[int]) -> str:
        """Copy of LeNet's trace with `pname` declared and stored with new_shape (its data cut or tiled)."""
        src = os.path.join(ptcctest.SRCDIR, "examples", "lenet")
        tensors = parity.read_safetensors(os.path.join(src, "lenet.safetensors"))
        old = tensors[pname]
        flat = torch.from_numpy(old.copy()).flatten()
        n = int(torch.tensor(new_shape).prod())
        new = flat.repeat(n // flat.numel() + 1)[:n].reshape(new_shape).contiguous()
        with open(os.path.join(src, "lenet.log"), encoding="utf-8") as f:
            text = f.read()
        decl = f"param ${pname} : f32[{','.join(map(str, old.shape))}]"
        self.assertIn(decl, text)
        text = text.replace(decl, f"param ${pname} : f32[{','.join(map(str, new_shape))}]")
        text = text.replace('weights "lenet.safetensors"', f'weights "{name}.safetensors"')
        log = os.path.join(self.dir, name + ".log")
        with open(log, "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(self.dir, name + ".safetensors"), "wb") as f:
            safetensors.write(f, [(k, new if k == pname else torch.from_numpy(v.copy())) for k, v in tensors.items()])
        return log

    def test_linear_weight_wrong_shape(self) -> None:
        log = self.edited_lenet("fc1", "fc1.weight", [120, 250])
        (line,) = self.log_line(log, "= linear(%7, $fc1.weight")
        r = ptcc(self.dir, "fc1.log", "-o", "fc1.prototxt")
        self.assertEqual(r.returncode, 1, r.stderr)
        diags = diagnostics(r.stderr)
        self.assertEqual((diags[0][0], diags[0][1]), ("fc1.log", line), r.stderr)
        self.assertEqual(first_line(r.stderr), EXPECT["fc1"].format(line=line, col=col_of(log, line, "$fc1.weight")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "fc1.prototxt")))

    def test_conv_weight_wrong_shape(self) -> None:
        log = self.edited_lenet("conv2", "conv2.weight", [16, 4, 5, 5])
        (line,) = self.log_line(log, "= conv2d(%3, $conv2.weight")
        r = ptcc(self.dir, "conv2.log", "-o", "conv2.prototxt")
        self.assertEqual(r.returncode, 1, r.stderr)
        diags = diagnostics(r.stderr)
        self.assertEqual((diags[0][0], diags[0][1]), ("conv2.log", line), r.stderr)
        self.assertEqual(first_line(r.stderr), EXPECT["conv2"].format(line=line, col=col_of(log, line, "$conv2.weight")))

    def test_weights_file_disagrees_with_declaration(self) -> None:
        # the log still declares f32[6] for conv1.bias; the file holds 5 floats
        log = self.edited_lenet("bias", "conv1.bias", [5])
        with open(log, encoding="utf-8") as f:
            text = f.read().replace("param $conv1.bias : f32[5]", "param $conv1.bias : f32[6]")
        with open(log, "w", encoding="utf-8") as f:
            f.write(text)
        r = ptcc(self.dir, "bias.log", "-o", "bias.prototxt")
        self.assertEqual(r.returncode, 1, r.stderr)
        (line,) = self.log_line(log, "param $conv1.bias")
        self.assertEqual(first_line(r.stderr), EXPECT["bias"].format(line=line, col=col_of(log, line, "f32[6]")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "bias.prototxt")))


class Unwritable(OpTestCase):
    group = "errors"

    def setUp(self) -> None:
        super().setUp()
        src = os.path.join(ptcctest.SRCDIR, "examples", "lenet")
        for f in ("lenet.log", "lenet.safetensors"):
            shutil.copy(os.path.join(src, f), self.dir)
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out, exist_ok=True)
        self.proto = os.path.join(self.out, "NET.prototxt")
        self.model = os.path.join(self.out, "NET.caffemodel")
        with open(self.proto, "w") as f:
            f.write("old prototxt\n")
        with open(self.model, "w") as f:
            f.write("old caffemodel\n")

    def assert_untouched(self) -> None:
        with open(self.proto) as f:
            self.assertEqual(f.read(), "old prototxt\n", "NET.prototxt was clobbered")
        with open(self.model) as f:
            self.assertEqual(f.read(), "old caffemodel\n", "NET.caffemodel was clobbered")
        self.assertEqual(sorted(os.listdir(self.out)), ["NET.caffemodel", "NET.prototxt"],
                         "a temporary or partial file was left behind")

    def test_missing_directory(self) -> None:
        r = ptcc(self.dir, "lenet.log", "-o", "no/such/dir/NET.prototxt")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no/such/dir/NET", r.stderr)
        self.assertEqual(first_line(r.stderr), EXPECT["nodir"], r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))
        self.assert_untouched()

    def test_parent_is_a_file(self) -> None:
        r = ptcc(self.dir, "lenet.log", "-o", "lenet.log/NET.prototxt")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("lenet.log/NET", r.stderr)

    def test_output_is_a_directory(self) -> None:
        r = ptcc(self.dir, "lenet.log", "-o", "out")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(os.path.isdir(self.out))
        self.assert_untouched()

    def test_caffemodel_unwritable_keeps_prototxt(self) -> None:
        # the text could be written, the binary cannot: neither file is replaced
        r = ptcc(self.dir, "lenet.log", "-o", "out/NET.prototxt", "-w", "no/such/dir/NET.caffemodel")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(first_line(r.stderr), EXPECT["nodir-w"], r.stderr)
        self.assert_untouched()

    def test_prototxt_unwritable_keeps_caffemodel(self) -> None:
        r = ptcc(self.dir, "lenet.log", "-o", "no/such/dir/NET.prototxt", "-w", "out/NET.caffemodel")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assert_untouched()

    def test_input_error_keeps_outputs(self) -> None:
        with open(os.path.join(self.dir, "lenet.log"), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(self.dir, "bad.log"), "w", encoding="utf-8") as f:
            self.assertIn("%2 = relu(%1, inplace=false)", text)
            f.write(text.replace("%2 = relu(%1, inplace=false)", "%2 = glu(%1)"))
        r = ptcc(self.dir, "bad.log", "-o", "out/NET.prototxt")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assert_untouched()

    def test_success_replaces_both(self) -> None:
        r = ptcc(self.dir, "lenet.log", "-o", "out/NET.prototxt")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(parity.validate(self.proto, self.model), [])
        self.assertEqual(sorted(os.listdir(self.out)), ["NET.caffemodel", "NET.prototxt"])

    def test_bad_target_is_usage_error(self) -> None:
        r = ptcc(self.dir, "lenet.log", "-o", "out/NET.prototxt", "--target=tensorrt")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assert_untouched()


class TooLarge(OpTestCase):
    group = "errors"

    def test_caffemodel_over_2gib(self) -> None:
        """A caffemodel over protobuf's 2 GiB parse limit is an error before anything is written.  The
        2.4 GB weights file is sparse (a header, then a hole), so the test costs no disk."""
        import json
        import struct

        header = json.dumps({"fc.weight": {"dtype": "F32", "shape": [600000, 1000],
                                           "data_offsets": [0, 2400000000]}}).encode()
        header += b" " * (-len(header) % 8)
        with open(os.path.join(self.dir, "big.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header)
            f.truncate(8 + len(header) + 2400000000)
        with open(os.path.join(self.dir, "big.log"), "w") as f:
            f.write('ptcc-trace 1\nweights "big.safetensors"\nparam $fc.weight : f32[600000,1000]\n'
                    'input %0 "x" : f32[1,1000]\ncall fc Linear\n'
                    '  %1 = linear(%0, $fc.weight, none) : f32[1,600000]\nreturn fc\noutput %1\n')
        r = ptcc(self.dir, "big.log", "-o", "big.prototxt")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(first_line(r.stderr), EXPECT["2gib"], r.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), ["big.log", "big.safetensors"])
        # the text alone is fine
        r = ptcc(self.dir, "big.log", "-o", "big.prototxt", "--no-weights")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(parity.validate(os.path.join(self.dir, "big.prototxt")), [])


# The exact first diagnostic lines ({line} and {col} filled in by each test).
EXPECT = {
    "glu": "glu.log:{line}:{col}: error: glu: ptcc does not lower this op yet, for any target",
    "threshold": "two.log:{line}:{col}: error: threshold: ptcc does not lower this op yet, for any target",
    "fc1": "fc1.log:{line}:{col}: error: weight of linear has type f32[120,250], but the input f32[1,256] has "
           "256 features",
    "conv2": "conv2.log:{line}:{col}: error: weight of conv2d has type f32[16,4,5,5]: 4 input channels x 1 "
             "groups, but the input f32[1,6,12,12] has 6 channels",
    "bias": "bias.log:{line}:{col}: error: $conv1.bias is declared f32[6], but the weights file has f32[5]",
    "2gib": "big.caffemodel: error: the model would be 2400000096 bytes; Caffe cannot read a caffemodel over "
            "2 GiB (2147483647 bytes)",
    "nodir": "ptcc: error: cannot create 'no/such/dir/NET.prototxt': No such file or directory",
    "nodir-w": "ptcc: error: cannot create 'no/such/dir/NET.caffemodel': No such file or directory",
}


if __name__ == "__main__":
    ptcctest.main()
