"""The recorder on small modules: exact log text, weights contents, outputs, and validity."""

from __future__ import annotations

import os
import re
import sys
import unittest

import ptcctest

ptcctest.require_torch()

import torch  # noqa: E402

import models  # noqa: E402
import tracecheck  # noqa: E402
from ptcc.record import record  # noqa: E402


def body(log_path: str) -> str:
    """The log without its provenance comment and source positions (which name test files' lines)."""
    with open(log_path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r" @ \"[^\"]*\"", "", text)
    return "".join(line for line in text.splitlines(True) if not line.startswith("# recorded by"))


def read_tensor(path: str, name: str) -> torch.Tensor:
    """Read one F32 tensor back from a safetensors file with the test's own reader."""
    import json
    import struct

    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    info = json.loads(data[8:8 + n])[name]
    assert info["dtype"] == "F32"
    begin, end = info["data_offsets"]
    raw = bytearray(data[8 + n + begin:8 + n + end])
    return torch.frombuffer(raw, dtype=torch.float32).reshape(info["shape"])


class RecordTest(unittest.TestCase):
    def setUp(self) -> None:
        torch.manual_seed(0)
        self.dir = ptcctest.out_dir("recorder", self.id().rsplit(".", 1)[-1])

    def record(self, model, inputs, name: str):
        path = os.path.join(self.dir, name + ".log")
        outputs = record(model.eval(), inputs, path)
        self.assertEqual(tracecheck.check(path), [])
        return path, outputs

    def test_inplace_views_several_results_two_inputs_two_outputs(self) -> None:
        model = models.Mixed()
        a, b = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)
        with torch.no_grad():
            expected = model.eval()(a.clone(), b.clone())
        path, outputs = self.record(model, (a, b), "mixed")
        for got, want in zip(outputs, expected):
            torch.testing.assert_close(got, want)
        self.assertEqual(body(path), """\
ptcc-trace 1
weights "mixed.safetensors"
param $conv.weight : f32[8,4,3,3]
param $conv.bias : f32[8]
param $bn.running_mean : f32[8]
param $bn.running_var : f32[8]
param $bn.weight : f32[8]
param $bn.bias : f32[8]
input %0 "a" : f32[1,4,6,6]
input %1 "b" : f32[1,4,6,6]
call "" Mixed
  call conv Conv2d
    %2 = conv2d(%0, $conv.weight, $conv.bias, stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1) : f32[1,8,6,6]
  return conv
  call bn BatchNorm2d
    %3 = batch_norm(%2, $bn.running_mean, $bn.running_var, $bn.weight, $bn.bias, training=false, momentum=0.1, eps=1e-05) : f32[1,8,6,6]
  return bn
  call act ReLU
    %3 = relu(%3, inplace=true) : f32[1,8,6,6]
  return act
  %4 = repeat(%1, [1, 2, 1, 1]) : f32[1,8,6,6]
  %3 = add_(%3, %4) : f32[1,8,6,6]
  %3 = mul_(%3, 0.5) : f32[1,8,6,6]
  %5 = view(%3, [1, 8, -1]) : f32[1,8,36]
  %6, %7 = chunk(%3, chunks=2, dim=1) : f32[1,4,6,6], f32[1,4,6,6]
  %8, %9 = split(%7, split_size_or_sections=[1, 3], dim=1) : f32[1,1,6,6], f32[1,3,6,6]
  %10 = cat([%6, %8], dim=1) : f32[1,5,6,6]
  %11, _ = max(%5, 2) : f32[1,8], i64[1,8]
  %12 = flatten(%10, start_dim=1) : f32[1,180]
  %13 = sub(1, %11) : f32[1,8]
  %14 = mean(%9) : f32[]
  %15 = add(%13, %14) : f32[1,8]
return ""
output %12 "output0"
output %15 "output1"
""")
        weights = os.path.join(self.dir, "mixed.safetensors")
        torch.testing.assert_close(read_tensor(weights, "conv.weight"), model.conv.weight.detach(), rtol=0, atol=0)
        torch.testing.assert_close(read_tensor(weights, "bn.running_var"), model.bn.running_var, rtol=0, atol=0)

    def test_constants_made_in_forward(self) -> None:
        model = models.WithConstants()
        path, _ = self.record(model, torch.randn(1, 3, 2, 2), "constants")
        self.assertEqual(body(path), """\
ptcc-trace 1
weights "constants.safetensors"
const $const0 : f32[1,3,1,1]
const $const1 : f32[1,3,1,1]
const $const2 : f32[1,3,1,1]
input %0 "x" : f32[1,3,2,2]
call "" WithConstants
  %1 = mul(%0, $const0) : f32[1,3,2,2]
  %2 = add(%1, $const1) : f32[1,3,2,2]
  %3 = add(%2, $const2) : f32[1,3,2,2]
return ""
output %3
""")
        weights = os.path.join(self.dir, "constants.safetensors")
        self.assertEqual(read_tensor(weights, "const0").flatten().tolist(), [1.0, 2.0, 3.0])
        self.assertEqual(read_tensor(weights, "const1").flatten().tolist(), [0.0, 0.5, 1.0])
        self.assertEqual(read_tensor(weights, "const2").flatten().tolist(), [0.25, 0.25, 0.25])

    def test_constant_changed_in_place_keeps_earlier_value(self) -> None:
        class Accumulate(torch.nn.Module):
            def forward(self, x):
                c = torch.ones(2)
                y = x + c
                c.add_(1)  # a later in-place change must not alter what `y` read
                return y * c

        path, out = self.record(Accumulate(), torch.zeros(2), "accumulate")
        self.assertEqual(out.tolist(), [2.0, 2.0])
        weights = os.path.join(self.dir, "accumulate.safetensors")
        self.assertEqual(read_tensor(weights, "const0").tolist(), [1.0, 1.0])
        self.assertEqual(read_tensor(weights, "const1").tolist(), [2.0, 2.0])

    def test_scopes_shared_module_super_forward_dict_output(self) -> None:
        path, _ = self.record(models.Shared(), torch.randn(1, 2, 3, 3), "shared")
        self.assertEqual(body(path), """\
ptcc-trace 1
weights "shared.safetensors"
param $block.conv.weight : f32[2,2,1,1]
param $seq.0.weight : f32[2,2,1,1]
param $seq.0.bias : f32[2]
input %0 "x" : f32[1,2,3,3]
call "" Shared
  call block Extended
    call block.conv Conv2d
      %1 = conv2d(%0, $block.conv.weight, none, stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1) : f32[1,2,3,3]
    return block.conv
    %2 = relu(%1, inplace=false) : f32[1,2,3,3]
    %3 = mul(%2, 2) : f32[1,2,3,3]
  return block
  call block Extended
    call block.conv Conv2d
      %4 = conv2d(%3, $block.conv.weight, none, stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1) : f32[1,2,3,3]
    return block.conv
    %5 = relu(%4, inplace=false) : f32[1,2,3,3]
    %6 = mul(%5, 2) : f32[1,2,3,3]
  return block
  call seq Sequential
    call seq.0 Conv2d
      %7 = conv2d(%6, $seq.0.weight, $seq.0.bias, stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1) : f32[1,2,3,3]
    return seq.0
    call seq.1 Sigmoid
      %8 = sigmoid(%7) : f32[1,2,3,3]
    return seq.1
  return seq
return ""
output %8 "features"
output %0 "input"
""")

    def test_dead_ops_are_dropped(self) -> None:
        class Dead(torch.nn.Module):
            def forward(self, x):
                unused = torch.sigmoid(x) * 3  # noqa: F841
                y = torch.tanh(x)
                y.relu_()
                return x + 1

        path, _ = self.record(Dead(), torch.randn(3), "dead")
        ops = [line.strip() for line in body(path).splitlines() if " = " in line]
        self.assertEqual(ops, ["%1 = add(%0, 1) : f32[3]"])

    def test_write_through_a_view_is_kept(self) -> None:
        class ViewWrite(torch.nn.Module):
            def forward(self, x):
                y = x * 2
                z = y.view(-1)
                z.relu_()  # changes y as well
                return y

        path, out = self.record(ViewWrite(), torch.tensor([[-1.0, 2.0]]), "viewwrite")
        self.assertEqual(out.tolist(), [[0.0, 4.0]])
        self.assertIn("= relu_(%2) : f32[2]", body(path))

    def test_write_through_a_detached_alias_is_kept(self) -> None:
        # detach() shares its input's storage with _base None: the write to one changes the other, so
        # it joins the alias group and is kept (it was dropped as dead, a silently wrong trace)
        class DetachWrite(torch.nn.Module):
            def forward(self, x):
                a = x * 2
                b = a.detach()
                a.mul_(0.5)
                return b + 1

        path, out = self.record(DetachWrite(), torch.tensor([[-1.0, 2.0]]), "detachwrite")
        self.assertEqual(out.tolist(), [[0.0, 3.0]])
        self.assertIn("%2 = detach(%1)", body(path))
        self.assertIn("= mul_(%1, 0.5)", body(path))

    def test_operators_and_indexing(self) -> None:
        class Ops(torch.nn.Module):
            def forward(self, x):
                y = 2 / x[:, 1:3, ..., None] - x[0, 0]
                y[:, 0] = 0.5
                return (-y) ** 2, y.permute(0, 3, 2, 1).to(torch.float64)

        path, _ = self.record(Ops(), torch.rand(1, 4, 2) + 1, "ops")
        ops = [line.strip() for line in body(path).splitlines() if " = " in line]
        self.assertEqual(ops, [
            "%1 = getitem(%0, [slice(none, none, none), slice(1, 3, none), ..., none]) : f32[1,2,2,1]",
            "%2 = div(2, %1) : f32[1,2,2,1]",
            "%3 = getitem(%0, [0, 0]) : f32[2]",
            "%4 = sub(%2, %3) : f32[1,2,2,2]",
            "%4 = setitem(%4, [slice(none, none, none), 0], 0.5) : f32[1,2,2,2]",
            "%5 = neg(%4) : f32[1,2,2,2]",
            "%6 = pow(%5, 2) : f32[1,2,2,2]",
            "%7 = permute(%4, [0, 3, 2, 1]) : f32[1,2,2,2]",
            "%8 = to(%7, f64) : f64[1,2,2,2]",
        ])

    def test_lone_indices_are_recorded(self) -> None:
        # torch 1.13 indexes by a lone int or slice on a fast path its function mode does not see: the
        # result was an untraced tensor (a ViT's `q, k, v = qkv[0], qkv[1], qkv[2]` failed at the next op)
        class Lone(torch.nn.Module):
            def forward(self, x):
                y = x * 2
                y[1] = 0.25
                return y[0] + y[1:].sum(0), y[None][..., 0]

        path, out = self.record(Lone(), torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), "lone")
        self.assertEqual(out[0].tolist(), [12.25, 16.25])
        ops = [line.strip() for line in body(path).splitlines() if " = " in line]
        self.assertEqual(ops, [
            "%1 = mul(%0, 2) : f32[3,2]",
            "%1 = setitem(%1, [1], 0.25) : f32[3,2]",
            "%2 = getitem(%1, [0]) : f32[2]",
            "%3 = getitem(%1, [slice(1, none, none)]) : f32[2,2]",
            "%4 = sum(%3, dim=0) : f32[2]",
            "%5 = add(%2, %4) : f32[2]",
            "%6 = getitem(%1, [none]) : f32[1,3,2]",
            "%7 = getitem(%6, [..., 0]) : f32[1,3]",
        ])
        self.assertEqual(type(torch.Tensor.__getitem__).__name__, "wrapper_descriptor")  # restored

    def test_shape_only_results_are_constants(self) -> None:
        # zeros_like(x) depends on x's shape alone: a constant, as an op on constants is
        class Like(torch.nn.Module):
            def forward(self, x):
                return x + torch.zeros_like(x), torch.full_like(x, 2.0) * x, x.new_ones(2) - x

        path, _ = self.record(Like(), torch.tensor([[1.0, 2.0]]), "like")
        text = body(path)
        ops = [line.split("=")[1].split("(")[0].strip() for line in text.splitlines() if " = " in line]
        self.assertEqual(ops, ["add", "mul", "sub"])
        self.assertEqual(text.count("const $const"), 3)

    def test_scope_of_a_forward_whose_first_parameter_is_not_self(self) -> None:
        # scopes were found by the name `self`: `def forward(this, x)` lost its module's scope
        class Inner(torch.nn.Module):
            def __init__(this) -> None:
                super().__init__()
                this.fc = torch.nn.Linear(2, 2)

            def forward(this, x):
                return torch.relu(this.fc(x))

        model = torch.nn.Sequential(Inner())
        path, _ = self.record(model, torch.ones(1, 2), "this")
        text = body(path)
        self.assertIn('  call 0 Inner\n', text)
        self.assertIn('    call 0.fc Linear\n', text)

    def test_training_mode_is_switched_to_eval_and_back(self) -> None:
        model = torch.nn.Sequential(torch.nn.Dropout(0.9), torch.nn.BatchNorm1d(3))
        model.train()
        path = os.path.join(self.dir, "train.log")
        x = torch.randn(4, 3)
        out = record(model, x, path)
        self.assertTrue(model.training)
        with torch.no_grad():
            torch.testing.assert_close(out, model.eval()(x))
        self.assertIn("training=false", body(path))


if __name__ == "__main__":
    ptcctest.main()
