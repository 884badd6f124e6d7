"""Parameters, buffers and constants as operands (issue 7): `y + self.buf`, `y * self.p`,
`y - torch.ones(1, C, 1, 1)`, `torch.cat([y, const], 1)`.  Each is lowered exactly (a Scale whose blobs
carry the values, or the constant as a blob of its own feeding an Eltwise or Concat) at every level and
checked in every runtime, or refused at its line.  The regression they guard: a parameter once shared the
value id of the first input, so the Eltwise read the network input in place of the operand, exit 0.
"""

from __future__ import annotations

import torch
import torch.nn as nn

import parity

parity.require_tools()
parity.require_bvlc()

from optest import OpTestCase  # noqa: E402


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


class WithConstants(nn.Module):
    """conv(x), then fn(self, y) with a buffer `buf`, a parameter `p` (both of shape `shape`) and a
    buffer `full` of the conv output's shape."""

    def __init__(self, fn, shape=(1, 4, 1, 1), c_in: int = 3, c_out: int = 4, out_hw: int = 6) -> None:
        super().__init__()
        self.fn = fn
        self.conv = nn.Conv2d(c_in, c_out, 3)
        self.register_buffer("buf", torch.randn(tuple(shape)))
        self.p = nn.Parameter(torch.randn(tuple(shape)))
        self.register_buffer("full", torch.randn(1, c_out, out_hw, out_hw))

    def forward(self, x):
        return self.fn(self, self.conv(x))


def scale_layers(types: dict[str, list]) -> int:
    return types["-O0"].count("Scale")


class ConstantOperands(OpTestCase):
    def test_add_buffer(self) -> None:
        types = self.check("add_buf", WithConstants(lambda s, y: y + s.buf), randn(1, 3, 8, 8))
        self.assertEqual(scale_layers(types), 1)
        self.assertNotIn("Eltwise", types["-O0"])

    def test_mul_parameter(self) -> None:
        types = self.check("mul_p", WithConstants(lambda s, y: y * s.p), randn(1, 3, 8, 8))
        self.assertEqual(scale_layers(types), 1)

    def test_sub_div_rsub(self) -> None:
        self.check("sub_p", WithConstants(lambda s, y: y - s.p), randn(1, 3, 8, 8))
        self.check("div_p", WithConstants(lambda s, y: y / s.p), randn(1, 3, 8, 8))
        self.check("rsub_p", WithConstants(lambda s, y: torch.rsub(y, s.buf, alpha=2.0)), randn(1, 3, 8, 8))
        self.check("buf_minus_y", WithConstants(lambda s, y: s.buf - y), randn(1, 3, 8, 8))
        self.check("sub_alpha", WithConstants(lambda s, y: torch.sub(y, s.buf, alpha=0.5)), randn(1, 3, 8, 8))

    def test_constant_first(self) -> None:
        self.check("buf_plus_y", WithConstants(lambda s, y: s.buf + y), randn(1, 3, 8, 8))
        self.check("p_times_y", WithConstants(lambda s, y: s.p * y), randn(1, 3, 8, 8))
        self.check("p_over_y", WithConstants(lambda s, y: s.p / (y.abs() + 1)), randn(1, 3, 8, 8))

    def test_folded_constant(self) -> None:
        # torch.ones(...) made in forward is folded by the recorder into a `const` statement
        self.check("sub_ones", WithConstants(lambda s, y: y - torch.ones(1, 4, 1, 1) * 0.5), randn(1, 3, 8, 8))

    def test_scalar_tensor(self) -> None:
        self.check("scalar", WithConstants(lambda s, y: y * s.p + s.buf, shape=()), randn(1, 3, 8, 8))
        self.check("scalar_1", WithConstants(lambda s, y: y + s.buf, shape=(1,)), randn(1, 3, 8, 8))

    def test_channel_vector(self) -> None:
        # shape (C, 1, 1): broadcasts per channel too
        self.check("c11", WithConstants(lambda s, y: y * s.p + s.buf, shape=(4, 1, 1)), randn(1, 3, 8, 8))

    def test_in_place(self) -> None:
        def f(s, y):
            y += s.buf
            y.mul_(s.p)
            return torch.relu(y)
        self.check("inplace", WithConstants(f), randn(1, 3, 8, 8))

    def test_batch_of_two(self) -> None:
        self.check("batch2", WithConstants(lambda s, y: y * s.p + s.buf), randn(2, 3, 8, 8))

    def test_linear_output(self) -> None:
        class M(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(12, 5)
                self.register_buffer("bias2", torch.randn(5))

            def forward(self, x):
                return self.fc(x.flatten(1)) * self.bias2 + self.bias2
        self.check("linear_vec", M(), randn(1, 3, 2, 2))

    def test_full_shape(self) -> None:
        types = self.check("full", WithConstants(lambda s, y: y + s.full), randn(1, 3, 8, 8))
        self.assertIn("InnerProduct", types["-O0"])
        self.check("full_mul", WithConstants(lambda s, y: s.full * y), randn(1, 3, 8, 8))
        self.check("full_rsub", WithConstants(lambda s, y: s.full - 2 * y), randn(1, 3, 8, 8))

    def test_spatial_broadcast(self) -> None:
        # (1, 1, H, W): varies over space, not channels: the constant is broadcast into a blob
        self.check("spatial", WithConstants(lambda s, y: y * s.buf, shape=(1, 1, 6, 6)), randn(1, 3, 8, 8))
        self.check("row", WithConstants(lambda s, y: y + s.buf, shape=(6,)), randn(2, 3, 8, 8))

    def test_cat_constant(self) -> None:
        types = self.check("cat_const", WithConstants(lambda s, y: torch.cat([y, s.full], 1)), randn(1, 3, 8, 8))
        self.assertIn("Concat", types["-O1"])
        self.check("cat_const_first",
                   WithConstants(lambda s, y: torch.cat([s.full, y, s.full], 1)), randn(1, 3, 8, 8))

    def test_constant_with_several_readers(self) -> None:
        def f(s, y):
            z = y + s.buf
            return z * s.p, z - s.full
        self.check("readers", WithConstants(f), randn(1, 3, 8, 8))

    def test_constant_as_activation(self) -> None:
        # an op whose input is a parameter: the parameter becomes a blob (shared by its readers)
        self.check("sigmoid_p", WithConstants(lambda s, y: y * torch.sigmoid(s.p) + torch.relu(s.full)),
                   randn(1, 3, 8, 8))
        self.check("exp_full", WithConstants(lambda s, y: y + s.full.exp() - s.full.abs()), randn(1, 3, 8, 8))
        self.check("both_constant", WithConstants(lambda s, y: y + (s.full * s.buf)), randn(1, 3, 8, 8))
        self.check("cat_constants",
                   WithConstants(lambda s, y: torch.cat([s.full, s.full], 1) * 2 + torch.cat([y, y], 1)),
                   randn(1, 3, 8, 8))

    def test_refused(self) -> None:
        # the constant would broadcast the activation to a bigger shape: refused at its line
        _, diags = self.compile_error("grow", WithConstants(lambda s, y: y.mean((2, 3), keepdim=True) + s.full),
                                      randn(1, 3, 8, 8))
        self.assertTrue(any("broadcasts the operand" in d[3] for d in diags), diags)


if __name__ == "__main__":
    import ptcctest
    ptcctest.main()
