"""Op-level tests of every lowering of the `caffe` target: each small module is recorded, compiled at -O0,
-O1 and -O2, validated (parity.validate) and run in OpenCV dnn and in BVLC Caffe (when pycaffe imports)
against PyTorch, max |Δ| ≤ 1e-4.

Also the fusion hazards: an in-place neuron, a BatchNorm fold or a removed Dropout must never change a
value that another layer still reads.  Inputs are 4-D (OpenCV takes a 3-D numpy array as an image).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

from optest import OpTestCase  # noqa: E402
from testmodules import Lambda, Seq, bn  # noqa: E402


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


class Conv(OpTestCase):
    def test_plain(self) -> None:
        self.check("plain", Seq(nn.Conv2d(4, 8, 3, padding=1)), randn(1, 4, 10, 10))

    def test_no_bias(self) -> None:
        self.check("no_bias", Seq(nn.Conv2d(4, 8, 3, bias=False)), randn(1, 4, 10, 10))

    def test_groups(self) -> None:
        self.check("groups", Seq(nn.Conv2d(8, 12, 3, groups=4, padding=1)), randn(1, 8, 9, 9))

    def test_depthwise_no_bias(self) -> None:
        self.check("depthwise", Seq(nn.Conv2d(8, 8, 3, groups=8, bias=False, stride=2, padding=1)),
                   randn(1, 8, 11, 11))

    def test_dilation(self) -> None:
        self.check("dilation", Seq(nn.Conv2d(4, 6, 3, dilation=2, padding=2)), randn(1, 4, 12, 12))

    def test_dilation_asymmetric(self) -> None:
        self.check("dilation_asym", Seq(nn.Conv2d(4, 6, 3, dilation=(1, 3), padding=(0, 2))),
                   randn(1, 4, 12, 13))

    def test_asymmetric_kernel_stride_padding(self) -> None:
        self.check("asym", Seq(nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), bias=False)),
                   randn(1, 4, 9, 13))

    def test_asymmetric_1x7(self) -> None:
        self.check("asym17", Seq(nn.Conv2d(3, 5, (1, 7), stride=(1, 2), padding=(0, 3))), randn(1, 3, 8, 17))

    def test_stride_larger_than_kernel(self) -> None:
        self.check("s3k1", Seq(nn.Conv2d(3, 5, 1, stride=3)), randn(1, 3, 10, 11))

    def test_batch_of_two(self) -> None:
        self.check("batch2", Seq(nn.Conv2d(3, 4, 3)), randn(2, 3, 7, 7))


class ConvTranspose(OpTestCase):
    """conv_transpose2d as a Deconvolution (PyTorch's weight layout), with Slice crops for
    output_padding (docs/runtime-facts.md S8)."""

    def test_plain(self) -> None:
        types = self.check("plain", Seq(nn.ConvTranspose2d(4, 6, 3)), randn(1, 4, 5, 5))
        self.assertEqual(types["-O0"], ["Input", "Deconvolution"])

    def test_unet_2x2_stride_2(self) -> None:
        self.check("unet", Seq(nn.ConvTranspose2d(8, 4, 2, stride=2)), randn(1, 8, 6, 7))

    def test_stride_padding(self) -> None:
        self.check("s2p1", Seq(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)), randn(1, 4, 5, 6))

    def test_output_padding(self) -> None:
        types = self.check("op1", Seq(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)),
                           randn(1, 4, 5, 6))
        self.assertIn("Slice", types["-O0"])

    def test_output_padding_one_axis(self) -> None:
        self.check("op_h", Seq(nn.ConvTranspose2d(4, 3, (3, 4), stride=(2, 3), padding=(1, 2),
                                                  output_padding=(1, 0))), randn(1, 4, 4, 5))

    def test_groups_no_bias_asymmetric(self) -> None:
        self.check("groups", Seq(nn.ConvTranspose2d(6, 4, (3, 2), stride=(2, 1), padding=(1, 0), groups=2,
                                                    bias=False)), randn(1, 6, 5, 4))

    def test_depthwise(self) -> None:
        self.check("depthwise", Seq(nn.ConvTranspose2d(5, 5, 4, stride=2, padding=1, groups=5)),
                   randn(1, 5, 4, 4))

    def test_then_batch_norm(self) -> None:
        """OpenCV folds a BatchNorm into the Deconvolution before it, wrongly (the barrier stops it)."""
        self.check("bn", Seq(nn.ConvTranspose2d(4, 6, 2, stride=2), bn(6), nn.ReLU()), randn(1, 4, 3, 3))

    def test_refusals(self) -> None:
        x = randn(1, 4, 5, 5)
        for name, module, want in (
                ("dilation", Seq(nn.ConvTranspose2d(4, 4, 3, dilation=2)), "ignores a Deconvolution's dilation"),
                ("op_over_pad", Seq(nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=1)),
                 "output_padding 1 is larger than padding 0")):
            with self.subTest(case=name):
                outcome = self.exact_or_error(name, module, x, op="conv_transpose2d")
                self.assertIn(want, outcome)


class NarrowSelect(OpTestCase):
    """narrow and select as a Slice (a copy: exact), select then a Reshape without the axis."""

    def test_narrow_channels(self) -> None:
        types = self.check("narrow_c", Lambda(lambda s, x: F.relu(torch.narrow(s.conv(x), 1, 2, 3)),
                                              conv=nn.Conv2d(3, 8, 1)), randn(1, 3, 5, 5))
        self.assertEqual(types["-O0"], ["Input", "Convolution", "Slice", "ReLU"])

    def test_narrow_spatial_ends(self) -> None:
        self.check("narrow_hw", Lambda(lambda s, x: (s.conv(x).narrow(2, 0, 3), s.conv(x).narrow(3, 2, 4),
                                                     s.conv(x).narrow(-1, -3, 2)), conv=nn.Conv2d(3, 4, 1)),
                   randn(1, 3, 5, 6))

    def test_narrow_whole(self) -> None:
        types = self.check("narrow_all", Lambda(lambda s, x: s.conv(x).narrow(1, 0, 4), conv=nn.Conv2d(3, 4, 1)),
                           randn(1, 3, 4, 4))
        self.assertEqual(types["-O0"], ["Input", "Convolution"])

    def test_select(self) -> None:
        self.check("select", Lambda(lambda s, x: (s.conv(x).select(1, 2), torch.select(s.conv(x), 3, -1)),
                                    conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 5, 6))


class GetItem(OpTestCase):
    """getitem: ranges as Slices, steps on the channel and spatial axes as one strided 1x1 Convolution
    (weight 1, or a one-hot channel pick: one product by 1), a Reshape for integers and None."""

    def test_focus(self) -> None:
        # YOLOv5's Focus: the four phases of a 2x2 space-to-depth, concatenated
        focus = Lambda(lambda s, x: s.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                                                      x[..., 1::2, 1::2]], 1)), conv=nn.Conv2d(12, 8, 3, padding=1))
        types = self.check("focus", focus, randn(1, 3, 8, 10))
        self.assertEqual(types["-O0"].count("Convolution"), 5)

    def test_odd_sizes_and_offsets(self) -> None:
        self.check("strided_odd", Lambda(lambda s, x: (s.conv(x)[:, :, 1::3, ::2], s.conv(x)[..., 2:7:2, -4:],
                                                       s.conv(x)[:, :, ::4]), conv=nn.Conv2d(3, 4, 1)),
                   randn(1, 3, 9, 7))

    def test_channels(self) -> None:
        self.check("channels", Lambda(lambda s, x: (s.conv(x)[:, 4:8], s.conv(x)[:, 1::3, ::2], s.conv(x)[:, -2:]),
                                      conv=nn.Conv2d(3, 10, 1)), randn(1, 3, 6, 6))

    def test_integers_and_none(self) -> None:
        self.check("int_none", Lambda(lambda s, x: (s.conv(x)[:, 2], s.conv(x)[0, :, None, 1:3],
                                                    s.conv(x)[:, :, 3, ::2]), conv=nn.Conv2d(3, 4, 1)),
                   randn(1, 3, 5, 6))

    def test_flat_and_3d(self) -> None:
        self.check("flat", Lambda(lambda s, x: (s.fc(x.flatten(1))[:, 1::2], s.conv(x).flatten(2)[:, :, ::3]),
                                  fc=nn.Linear(48, 9), conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 4, 4))

    def test_refusals(self) -> None:
        for name, module, want in [
            ("empty", Lambda(lambda s, x: s.conv(x)[:, 2:2]),
             "of getitem would have a dimension of size 0 (f32[3,0,4,4]); "
             "Caffe cannot hold an empty blob"),
            ("batch_step", Lambda(lambda s, x: s.conv(x)[::2]),
             "getitem: a step on axis 0 of a 4-D tensor"),
        ]:
            with self.subTest(case=name):
                module.conv = nn.Conv2d(3, 4, 1)
                outcome = self.exact_or_error(name, module, randn(3, 3, 4, 4), op="getitem")
                self.assertIn(want, outcome)


class Reductions(OpTestCase):
    """mean, sum, amax, amin and max(x, dim)[0] over the channel and spatial axes: Pooling (the channel
    axis reshaped under the window), amin as -max(-x), sum as the mean times the count."""

    def test_cbam(self) -> None:
        # CBAM's spatial attention: channel mean and channel max, concatenated, a 7x7 conv, a sigmoid gate
        def cbam(s, x):
            y = s.conv(x)
            pooled = torch.cat([torch.mean(y, dim=1, keepdim=True), torch.max(y, dim=1, keepdim=True)[0]], 1)
            return torch.sigmoid(s.gate(pooled))
        self.check("cbam", Lambda(cbam, conv=nn.Conv2d(3, 8, 3, padding=1), gate=nn.Conv2d(2, 1, 7, padding=3)),
                   randn(1, 3, 9, 9))

    def test_each_reduction_each_axis(self) -> None:
        fns = [lambda y: y.sum(1), lambda y: y.amax(dim=(2, 3), keepdim=True), lambda y: torch.amin(y, 1, True),
               lambda y: y.mean(-1), lambda y: y.sum((1, 2, 3)), lambda y: y.amin((1, 3)),
               lambda y: y.max(2)[0], lambda y: torch.max(y, -1, keepdim=True).values, lambda y: y.sum(2, True)]
        self.check("reductions", Lambda(lambda s, x: tuple(f(s.conv(x)) for f in fns), conv=nn.Conv2d(3, 6, 1)),
                   randn(1, 3, 5, 4))

    def test_low_ranks(self) -> None:
        self.check("reduce_low_rank", Lambda(lambda s, x: (s.fc(x.flatten(1)).sum(1, keepdim=True),
                                                           s.fc(x.flatten(1)).amax(-1),
                                                           s.conv(x).flatten(2).mean(2), s.conv(x).flatten(2).amin(1)),
                                             fc=nn.Linear(48, 7), conv=nn.Conv2d(3, 5, 1)), randn(1, 3, 4, 4))

    def test_refusals(self) -> None:
        for name, module, x, want in [
            ("batch", Lambda(lambda s, x: s.conv(x).sum(0)), randn(2, 3, 4, 4),
             "sum: a reduction over the batch axis: Caffe pools within one sample"),
            ("all", Lambda(lambda s, x: s.conv(x).amax()), randn(1, 3, 4, 4),
             "amax: the result has no axis"),
            ("indices", Lambda(lambda s, x: s.conv(x).max(1)), randn(1, 3, 4, 4),
             "max: the indices of max(x, dim) are used"),
        ]:
            with self.subTest(case=name):
                module.conv = nn.Conv2d(3, 4, 1)
                outcome = self.exact_or_error(name, module, x, op=want.split(":")[0])
                self.assertIn(want, outcome)


class PixelShuffle(OpTestCase):
    """pixel_shuffle as a grouped Deconvolution, pixel_unshuffle as a grouped Convolution, kernel = stride = r
    with one-hot weights (non-overlapping windows: one product by 1 per output)."""

    def test_shuffle_and_unshuffle(self) -> None:
        self.check("pixel_shuffle", Lambda(lambda s, x: (F.pixel_shuffle(s.conv(x), 2), s.ps3(s.conv9(x)),
                                                         F.pixel_unshuffle(s.conv(x), 2),
                                                         s.unshuffle(F.pixel_shuffle(s.conv(x), 2))),
                                           conv=nn.Conv2d(3, 8, 1), conv9=nn.Conv2d(3, 9, 1), ps3=nn.PixelShuffle(3),
                                           unshuffle=nn.PixelUnshuffle(2)),
                   randn(1, 3, 4, 6))

    def test_factor_one(self) -> None:
        types = self.check("pixel_shuffle_1", Lambda(lambda s, x: F.pixel_shuffle(s.conv(x), 1), conv=nn.Conv2d(3, 4, 1)),
                           randn(1, 3, 4, 4))
        self.assertEqual(types["-O0"], ["Input", "Convolution"])


def affine_norm(m: nn.Module) -> nn.Module:
    """A norm with non-trivial affine weights (PyTorch initialises them to 1 and 0)."""
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-1.5, 1.5)
    return m


class Norms(OpTestCase):
    """group_norm, instance_norm and layer_norm: (x - mean) * (var + eps)^-0.5 built from Pooling, weight-1
    Deconvolutions, Eltwise and Power (Caffe's MVN divides by sqrt(var) + eps instead), then a Scale."""

    def test_group_norm(self) -> None:
        self.check("group_norm", Lambda(lambda s, x: (s.gn(s.conv(x)), s.gn1(s.conv(x)), F.group_norm(s.conv(x), 3)),
                                        conv=nn.Conv2d(3, 6, 3), gn=affine_norm(nn.GroupNorm(2, 6)),
                                        gn1=affine_norm(nn.GroupNorm(1, 6, eps=1e-3))), randn(1, 3, 7, 6))

    def test_instance_norm(self) -> None:
        self.check("instance_norm", Lambda(lambda s, x: (s.inorm(s.conv(x)), s.plain(s.conv(x))),
                                           conv=nn.Conv2d(3, 4, 3), inorm=affine_norm(nn.InstanceNorm2d(4, affine=True)),
                                           plain=nn.InstanceNorm2d(4)), randn(1, 3, 6, 6))

    def test_small_variance(self) -> None:
        # var comparable to eps: where MVN's sqrt(var) + eps would be off by far more than rounding
        self.check("norm_small_var", Lambda(lambda s, x: (s.gn(s.conv(x) * 0.003), s.ln(s.conv(x) * 0.003)),
                                            conv=nn.Conv2d(3, 4, 1), gn=affine_norm(nn.GroupNorm(2, 4)),
                                            ln=affine_norm(nn.LayerNorm([5, 5]))), randn(1, 3, 5, 5))

    def test_layer_norm(self) -> None:
        # over the last axis of a token sequence (ViT), the last two of a map, the features of a vector
        def f(s, x):
            tokens = s.conv(x).flatten(2)
            return s.ln_tokens(tokens), s.ln_map(s.conv(x)), s.ln_vec(s.fc(x.flatten(1)))
        self.check("layer_norm", Lambda(f, conv=nn.Conv2d(3, 4, 1), ln_tokens=affine_norm(nn.LayerNorm(30)),
                                        ln_map=affine_norm(nn.LayerNorm([5, 6], eps=1e-6)),
                                        ln_vec=nn.LayerNorm(7, elementwise_affine=False), fc=nn.Linear(90, 7)),
                   randn(1, 3, 5, 6))

    def test_refusals(self) -> None:
        for name, module, want in [
            ("running", Lambda(lambda s, x: s.inorm(x)),
             "instance_norm: use_input_stats=false normalises with running statistics"),
            ("one_element", Lambda(lambda s, x: F.layer_norm(x, [1])),
             "layer_norm: the normalised axes hold one element"),
        ]:
            with self.subTest(case=name):
                module.inorm = nn.InstanceNorm2d(3, track_running_stats=True)
                outcome = self.exact_or_error(name, module, randn(1, 3, 4, 1), op=want.split(":")[0])
                self.assertIn(want, outcome)


class Vocabulary(OpTestCase):
    """Ops the recorder writes: lowered (softsign, mish, celu, gelu's tanh form, var, std, the float32 casts,
    shape-only constants), or refused with the reason (recurrent layers, products of two computed tensors,
    gelu's erf form)."""

    def test_activations(self) -> None:
        self.check("more_activations", Lambda(lambda s, x: (F.softsign(s.conv(x)), F.mish(s.conv(x)), F.celu(s.conv(x)),
                                                            F.celu(s.conv(x), 0.5), F.gelu(s.conv(x), approximate="tanh"),
                                                            nn.Mish()(s.conv(x) * 8), nn.Softsign()(s.conv(x) * 20)),
                                              conv=nn.Conv2d(3, 4, 3)), randn(1, 3, 6, 6))

    def test_gelu_erf(self) -> None:
        # runtime-facts S15: erf by Abramowitz-Stegun 7.1.26 (within 1.5e-7), over a wide range of inputs
        x = torch.linspace(-9, 9, 6 * 8 * 10).reshape(1, 6, 8, 10)
        self.check("gelu_erf", Lambda(lambda s, x: (F.gelu(x * 1.0), nn.GELU()(s.conv(x)), F.gelu(s.conv(x) * 0.01)),
                                      conv=nn.Conv2d(6, 4, 1)), x)

    def test_erf(self) -> None:
        # erf(x) = sign(x)·erf(|x|), the same Abramowitz-Stegun form (an ONNX export writes GELU as Erf)
        x = torch.cat([torch.linspace(-9, 9, 455), torch.tensor([0.0, 1e-30, -1e-30, 1e-20, -1e-20, 1e-8,
                                                                       -1e-8, 3e-4, -3e-4, 1e30, -1e30,
                                                                       0.47, -0.47, 2.5, -2.5, 5e-39,
                                                                       -5e-39, 1e-3, -1e-3, 0.1, -0.1,
                                                                       40.0, -40.0, 0.9, -0.9])
                       ]).reshape(1, 6, 8, 10)
        self.check("erf", Lambda(lambda s, x: (torch.erf(x * 1.0), torch.erf(s.conv(x))),
                                 conv=nn.Conv2d(6, 4, 1)), x)

    def test_power_then_scale(self) -> None:
        # OpenCV misfolds a unit Power after a Power with power != 1 and no shift (x ** 2 * -1 gave x ** 2):
        # a barrier keeps them apart (runtime-facts, OpenCV table)
        self.check("power_scale", Lambda(lambda s, x: (s.conv(x) ** 2 * -1, torch.sqrt(s.conv(x).abs()) + 0.5,
                                                       s.conv(x).pow(3) * 2 + 1), conv=nn.Conv2d(3, 4, 1)),
                   randn(1, 3, 4, 5))

    def test_var_std(self) -> None:
        self.check("var_std", Lambda(lambda s, x: (s.conv(x).var(1), s.conv(x).std((2, 3), keepdim=True),
                                                   torch.var(s.conv(x), 3, unbiased=False),
                                                   s.conv(x).flatten(2).std(2), s.conv(x).std(1, True, True)),
                                     conv=nn.Conv2d(3, 5, 1)), randn(1, 3, 4, 6))

    def test_casts_and_shape_constants(self) -> None:
        self.check("casts", Lambda(lambda s, x: (s.conv(x).float() + torch.zeros_like(x[:, :1]),
                                                         s.conv(x).to(torch.float32) * torch.ones_like(s.conv(x)),
                                                         s.conv(x).type_as(x) + torch.full_like(x[:, :1], 0.5)),
                                           conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 4, 4))

    def test_powers(self) -> None:
        self.check("powers", Lambda(lambda s, x: (torch.sqrt(s.conv(x).abs() + 0.5), torch.rsqrt(s.conv(x).abs() + 1),
                                                  torch.reciprocal(s.conv(x).abs() + 1), s.conv(x) ** 2,
                                                  torch.pow(s.conv(x).abs(), 1.5), s.conv(x).pow(3),
                                                  s.conv(x).clone().pow_(2)),
                                    conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 4, 5))

    def test_squeeze_unsqueeze_expand(self) -> None:
        def f(s, x):
            y = s.conv(x)
            g = y.mean((2, 3), keepdim=True)
            return (y.mean(2).unsqueeze(2), g.squeeze(-1).squeeze(-1), g.expand_as(y) * y, g.expand(1, 4, 5, 6),
                    y.sum(1, keepdim=True).expand(-1, 4, -1, -1), y.flatten(2).unflatten(2, (5, 6)), y.view_as(y) + 1,
                    y.flatten(1).reshape_as(y) * 2)
        self.check("squeeze_expand", Lambda(f, conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 5, 6))

    def test_refusals(self) -> None:
        lstm, gru = nn.LSTM(4, 3), nn.GRU(4, 3)
        for name, module, x, want in [
            ("lstm", Lambda(lambda s, x: s.m(x)[0], m=lstm), randn(5, 1, 4),
             "lstm: not lowered for any target: Caffe's LSTM layer computes it"),
            ("gru", Lambda(lambda s, x: s.m(x)[0], m=gru), randn(5, 1, 4), "gru: not lowered for any target: "
             "Caffe has no GRU layer"),
            ("std_one", Lambda(lambda s, x: x.std(1)), randn(1, 1, 4, 4),
             "std: an unbiased estimate from one element"),
            ("pow_tensor", Lambda(lambda s, x: torch.pow(2.0, x)), randn(1, 3, 4, 4),
             "pow: only a tensor raised to a number is lowered"),
        ]:
            with self.subTest(case=name):
                outcome = self.exact_or_error(name, module, x, op=want.split(":")[0])
                self.assertIn(want, outcome)


class Layouts(OpTestCase):
    """permute and transpose as swaps of adjacent axis blocks, each a Convolution or Deconvolution with one-hot
    weights (runtime-facts S12)."""

    def test_detection_head(self) -> None:
        # SSD/RetinaFace: permute(0, 2, 3, 1).contiguous().view(N, -1, k) per level, cat(dim=1), softmax(-1)
        def f(s, x):
            levels = [s.c1(x), s.c2(F.max_pool2d(x, 2))]
            flat = [y.permute(0, 2, 3, 1).contiguous().view(y.shape[0], -1, 3) for y in levels]
            return F.softmax(torch.cat(flat, 1), dim=-1)
        self.check("det_head", Lambda(f, c1=nn.Conv2d(3, 6, 3, padding=1), c2=nn.Conv2d(3, 6, 1)), randn(1, 3, 8, 6))

    def test_every_order_of_three_axes(self) -> None:
        orders = [(0, 1, 3, 2), (0, 2, 1, 3), (0, 2, 3, 1), (0, 3, 1, 2), (0, 3, 2, 1)]
        self.check("permute_4d", Lambda(lambda s, x: tuple(s.conv(x).permute(*o) for o in orders),
                                        conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 5, 6))

    def test_transposes(self) -> None:
        # ViT's tokens: flatten(2).transpose(1, 2); YOLOv5's detect: view(N, na, no, H, W).permute(0, 1, 3, 4, 2)
        self.check("transpose", Lambda(lambda s, x: (s.conv(x).flatten(2).transpose(1, 2), s.conv(x).transpose(2, 3),
                                                     s.conv(x).transpose(-1, 1),
                                                     s.conv(x).view(1, 2, 2, 5, 6).permute(0, 1, 3, 4, 2)),
                                       conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 5, 6))

    def test_batch_axis(self) -> None:
        # the first axis moves too: the whole tensor is then one sample of the swap
        self.check("permute_batch", Lambda(lambda s, x: (s.conv(x).permute(1, 0, 2, 3), s.conv(x).permute(3, 2, 1, 0),
                                                         s.conv(x).flatten(1).t()), conv=nn.Conv2d(3, 4, 1)),
                   randn(2, 3, 4, 5))


class MatMul(OpTestCase):
    """matmul, mm, bmm: by a 2-D parameter an InnerProduct; two computed tensors by forming every product
    (weight-1 repeats, Eltwise PROD) and summing over K (Pooling, Power) (runtime-facts S14)."""

    def test_attention(self) -> None:
        # a ViT block's scores and weighted sum: (N, heads, T, d) @ (N, heads, d, T), softmax, @ v
        def f(s, x):
            t = s.conv(x).flatten(2).transpose(1, 2)               # (1, T=12, C=8)
            q, k, v = s.qkv(t).reshape(1, 12, 3, 2, 4).permute(2, 0, 3, 1, 4)
            a = (q @ k.transpose(-2, -1) * 0.5).softmax(-1)
            return (a @ v).transpose(1, 2).reshape(1, 12, 8)
        self.check("attention", Lambda(f, conv=nn.Conv2d(3, 8, 2, 2), qkv=nn.Linear(8, 24)), randn(1, 3, 6, 8))

    def test_mm_bmm_and_parameters(self) -> None:
        def f(s, x):
            y = s.conv(x).flatten(2)                                 # (1, 4, 15)
            return (torch.bmm(y, y.transpose(1, 2)), torch.matmul(y, s.w), torch.mm(y[0], y[0].transpose(0, 1)),
                    y.transpose(1, 2) @ y)
        m = Lambda(f, conv=nn.Conv2d(3, 4, 1))
        m.w = nn.Parameter(torch.randn(15, 6))
        self.check("mm_bmm", m, randn(1, 3, 3, 5))

    def test_refusals(self) -> None:
        outcome = self.exact_or_error("matmul_vector", Lambda(lambda s, x: torch.matmul(x.flatten(1), x.flatten())),
                                      randn(1, 2, 2, 2), op="matmul")
        self.assertIn("matmul: a 1-D operand is not lowered", outcome)


class MoreShapes(OpTestCase):
    """maximum/minimum (Eltwise MAX, negations), channel_shuffle (the permutation Convolution), stack
    (Reshape, Concat) and pad: zeros by a padded weight-1 depthwise Convolution and crops, replicate and
    reflect by Slices of edge rows and a Concat."""

    def test_extremes(self) -> None:
        self.check("extremes", Lambda(lambda s, x: (torch.maximum(s.a(x), s.b(x)), torch.minimum(s.a(x), s.b(x)),
                                                    torch.max(s.a(x), s.b(x).amax(1, keepdim=True)),
                                                    torch.minimum(s.a(x), s.a(x).mean((2, 3), keepdim=True))),
                                      a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 3, padding=1)), randn(1, 3, 5, 6))

    def test_channel_shuffle_and_stack(self) -> None:
        self.check("shuffle_stack", Lambda(lambda s, x: (nn.ChannelShuffle(2)(s.conv(x)),
                                                         torch.stack([s.conv(x), s.conv(x) * 2], 1),
                                                         torch.stack([s.conv(x).mean(1), s.conv(x).amax(1)], -1)),
                                           conv=nn.Conv2d(3, 6, 1)), randn(1, 3, 4, 5))

    def test_pad(self) -> None:
        cases = [([1, 2], "constant"), ([2, 1, 0, 3], "constant"), ([-1, 2, 1, -2], "constant"), ([2, 2, 1, 1], "reflect"),
                 ([1, 3, 2, 0], "replicate"), ([3, 0, 0, 4], "reflect")]
        self.check("pad", Lambda(lambda s, x: tuple(F.pad(s.conv(x), p, mode=m) for p, m in cases),
                                 conv=nn.Conv2d(3, 2, 1)), randn(1, 3, 5, 6))
        self.check("conv_reflect", Seq(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")), randn(1, 3, 6, 6))

    def test_repeat_tile(self) -> None:
        self.check("repeat", Lambda(lambda s, x: (s.conv(x).repeat(1, 2, 1, 3), s.conv(x).tile((2, 1)),
                                                  s.conv(x).mean((2, 3)).repeat(1, 1, 4, 2)), conv=nn.Conv2d(3, 2, 1)),
                   randn(1, 3, 3, 4))

    def test_log_softmax_and_log(self) -> None:
        # a CTC head's log_softmax over classes, and over a spatial axis; log of a positive tensor
        self.check("log_softmax", Lambda(lambda s, x: (F.log_softmax(s.conv(x) * 30, 1), s.conv(x).log_softmax(-1),
                                                       F.log_softmax(s.fc(x.flatten(1)), dim=1),
                                                       torch.log(s.conv(x).abs() + 0.25)),
                                         conv=nn.Conv2d(3, 5, 1), fc=nn.Linear(36, 7)), randn(1, 3, 3, 4))

    def test_pad_refusals(self) -> None:
        outcome = self.exact_or_error("pad_value", Lambda(lambda s, x: F.pad(x, [1, 1], value=0.5)), randn(1, 3, 4, 4),
                                      op="pad")
        self.assertIn("pad: value=0.5: only zeros are padded exactly", outcome)


class Linear(OpTestCase):
    def test_after_flatten_module(self) -> None:
        self.check("flatten", Seq(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 5 * 5, 10)), randn(1, 2, 7, 7))

    def test_after_torch_flatten(self) -> None:
        self.check("torch_flatten", Lambda(lambda s, x: s.fc(torch.flatten(x, 1)), fc=nn.Linear(48, 7)),
                   randn(1, 3, 4, 4))

    def test_after_view(self) -> None:
        self.check("view", Lambda(lambda s, x: s.fc(x.view(x.size(0), -1)), fc=nn.Linear(48, 7)),
                   randn(1, 3, 4, 4))

    def test_after_reshape_batch2(self) -> None:
        self.check("reshape2", Lambda(lambda s, x: s.fc(x.reshape(2, -1)), fc=nn.Linear(48, 5, bias=False)),
                   randn(2, 3, 4, 4))

    def test_chain(self) -> None:
        # InnerProduct on an InnerProduct's 2-D output, then softmax over the classes
        self.check("chain", Lambda(lambda s, x: F.softmax(s.b(F.relu(s.a(x.flatten(1)))), dim=1),
                                   a=nn.Linear(16, 9), b=nn.Linear(9, 4)), randn(1, 1, 4, 4))

    def test_after_global_pool(self) -> None:
        self.check("gap_fc", Lambda(lambda s, x: s.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)),
                                    fc=nn.Linear(6, 3)), randn(1, 6, 5, 5))


class BatchNorm(OpTestCase):
    def test_affine(self) -> None:
        types = self.check("affine", Seq(bn(6)), randn(1, 6, 5, 5))
        self.assertIn("Scale", types["-O1"])

    def test_no_affine(self) -> None:
        self.check("no_affine", Seq(bn(6, affine=False)), randn(1, 6, 5, 5))

    def test_eps(self) -> None:
        m = bn(4)
        m.eps = 1e-3
        m.running_var.uniform_(0.0, 0.01)   # small variances make eps matter
        self.check("eps", Seq(m), randn(1, 4, 5, 5))

    def test_conv_bn_relu_fold(self) -> None:
        types = self.check("conv_bn", Seq(nn.Conv2d(3, 6, 3, bias=False), bn(6), nn.ReLU(inplace=True)),
                           randn(1, 3, 8, 8))
        self.assertNotIn("BatchNorm", types["-O2"], "-O2 folds BatchNorm into the convolution")
        self.assertIn("BatchNorm", types["-O1"])

    def test_conv_with_bias_bn_fold(self) -> None:
        self.check("conv_bias_bn", Seq(nn.Conv2d(3, 6, 3, bias=True), bn(6)), randn(1, 3, 8, 8))

    def test_grouped_conv_bn_fold(self) -> None:
        self.check("gconv_bn", Seq(nn.Conv2d(6, 6, 3, groups=3, bias=False), bn(6, affine=False)),
                   randn(1, 6, 8, 8))

    def test_affine_folds(self) -> None:
        # -O2 folds a linear Power (x * a + b of a scalar, a hardsigmoid's x + 3) and a per-channel Scale
        # (x * c of a constant) into the Convolution or InnerProduct before it, a bias made where there
        # was none (issue 14); in both runtimes, for both targets
        m = Lambda(lambda s, x: (s.conv(x) * 2 + 1, F.hardsigmoid(s.se(x.mean((2, 3), keepdim=True))),
                                 s.nobias(x) * s.c - 0.25, s.fc(x.flatten(1)) * 0.5 - 3),
                   conv=nn.Conv2d(3, 6, 3), se=nn.Conv2d(3, 6, 1), nobias=nn.Conv2d(3, 6, 3, bias=False),
                   fc=nn.Linear(48, 5))
        m.register_buffer("c", torch.rand(1, 6, 1, 1) + 0.5)
        types = self.check("affine_fold", m, randn(1, 3, 4, 4), targets=("caffe", "opencv"))
        for key in ("-O1", "opencv -O1"):
            self.assertEqual(types[key].count("Power"), types[key.replace("-O1", "-O2")].count("Power") + 6,
                             f"{key}: six Powers fold at -O2 (conv's two, se's +3, nobias's -0.25, fc's two)")
        self.assertIn("Scale", types["-O1"])
        self.assertNotIn("Scale", types["-O2"], "the per-channel Scale folds into the convolution")
        self.assertEqual(types["opencv -O2"].count("ReLU6"), 1, "hardsigmoid's clamp is OpenCV's ReLU6")

    def test_norm_and_scale_folds(self) -> None:
        # -O2 also folds (issue 14) a per-channel Scale and then a linear Power into the Scale before them
        # (a BatchNorm's, after a concatenation: no convolution to fold it into), and a BatchNorm (with its
        # Scale) that follows no convolution into the unpadded Convolution, grouped Convolution or
        # InnerProduct after it (4-D through a flatten, and 2-D); a padded Convolution keeps its BatchNorm
        def bn(c: int) -> nn.Module:
            m = nn.BatchNorm2d(c) if c > 0 else nn.BatchNorm1d(-c)
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            return m

        def fn(s, x):
            cat = torch.cat([x, x * 2], 1)
            return (s.bn1(cat) * s.c + 0.5, s.conv(s.bn2(cat)), s.gconv(s.bn3(cat)), s.pconv(s.bn4(cat)),
                    s.fc(s.bn5(cat).flatten(1)), s.fc2(s.bn6(x.mean((2, 3)))))

        m = Lambda(fn, bn1=bn(6), bn2=bn(6), bn3=bn(6), bn4=bn(6), bn5=bn(6), bn6=bn(-3),
                   conv=nn.Conv2d(6, 4, 3), gconv=nn.Conv2d(6, 4, 3, groups=2, bias=False),
                   pconv=nn.Conv2d(6, 4, 3, padding=1), fc=nn.Linear(6 * 16, 5), fc2=nn.Linear(3, 2))
        m.register_buffer("c", torch.rand(1, 6, 1, 1) + 0.5)
        types = self.check("norm_scale_fold", m, randn(1, 3, 4, 4), targets=("caffe", "opencv"))
        for key in ("", "opencv "):
            o1, o2 = types[key + "-O1"], types[key + "-O2"]
            self.assertEqual((o1.count("BatchNorm"), o1.count("Scale")), (6, 7), key)
            self.assertEqual((o2.count("BatchNorm"), o2.count("Scale")), (2, 2),
                             f"{key}-O2: bn1 (an output) and bn4 (before padding) stay, the mul by c folds")
            self.assertEqual(o1.count("Power") - o2.count("Power"), 1, f"{key}-O2: the + 0.5 folds")

    def test_affine_not_folded(self) -> None:
        # no fold where the convolution's output is also read elsewhere or is an output, nor of x ** 2
        def fn(s, x):
            y, z = s.conv(x), s.conv3(x)
            return y * 2 + 1, y, s.conv2(x) ** 2 * 3, z + z * 2

        m = Lambda(fn, conv=nn.Conv2d(3, 4, 1), conv2=nn.Conv2d(3, 4, 1), conv3=nn.Conv2d(3, 4, 1))
        types = self.check("affine_not_fold", m, randn(1, 3, 4, 4))
        self.assertEqual(types["-O1"].count("Power"), types["-O2"].count("Power"))

    def test_bn_after_linear_is_not_2d(self) -> None:
        # batch_norm on (N, C) after an InnerProduct: BatchNorm1d, folded into it at -O2 (issue 14)
        m = nn.BatchNorm1d(5)
        m.running_mean.uniform_(-1, 1)
        m.running_var.uniform_(0.5, 2)
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.uniform_(-0.5, 0.5)
        types = self.check("bn1d", Lambda(lambda s, x: s.bn(s.fc(x.flatten(1))), fc=nn.Linear(16, 5), bn=m),
                           randn(1, 1, 4, 4), targets=("caffe", "opencv"))
        self.assertIn("BatchNorm", types["-O1"])
        self.assertEqual(types["-O2"], ["Input", "InnerProduct"], "the BatchNorm1d folds into the Linear")


class Activations(OpTestCase):
    def act(self, name: str, fn) -> dict:
        # a convolution first, so that in-place fusion has a producer to fuse into
        return self.check(name, Lambda(lambda s, x: fn(s.conv(x)), conv=nn.Conv2d(3, 4, 3)),
                          randn(1, 3, 7, 7) * 4)

    def test_relu(self) -> None:
        types = self.act("relu", F.relu)
        self.assertIn("ReLU", types["-O1"])

    def test_relu_method_inplace(self) -> None:
        self.act("relu_", lambda x: x.relu_())

    def test_relu_module_inplace(self) -> None:
        self.act("relu_inplace", nn.ReLU(inplace=True))

    def test_relu_on_input(self) -> None:
        self.check("relu_input", Lambda(lambda s, x: F.relu(x)), randn(1, 3, 5, 5))

    def test_leaky_relu(self) -> None:
        self.act("leaky", lambda x: F.leaky_relu(x, 0.1))

    def test_leaky_relu_default(self) -> None:
        self.act("leaky_default", nn.LeakyReLU())

    def test_leaky_relu_inplace(self) -> None:
        self.act("leaky_inplace", lambda x: F.leaky_relu_(x, 0.3))

    def test_relu6_module(self) -> None:
        self.act("relu6", nn.ReLU6(inplace=True))

    def test_relu6_functional(self) -> None:
        self.act("relu6_f", F.relu6)

    def test_hardtanh_default(self) -> None:
        self.act("hardtanh", F.hardtanh)

    def test_hardtanh_0_6(self) -> None:
        self.act("hardtanh06", lambda x: F.hardtanh(x, 0.0, 6.0))

    def test_hardtanh_general(self) -> None:
        self.act("hardtanh_general", lambda x: F.hardtanh(x, -0.5, 2.5))

    def test_selu(self) -> None:
        types = self.act("selu", F.selu)
        self.assertEqual(types["-O0"], ["Input", "Convolution", "ELU", "Power"])

    def test_selu_in_place(self) -> None:
        self.act("selu_", nn.SELU(inplace=True))

    def test_clamp_both(self) -> None:
        self.act("clamp", lambda x: torch.clamp(x, -0.5, 0.25))

    def test_clamp_min_only(self) -> None:
        types = self.act("clamp_min", lambda x: x.clamp(min=0.5))
        self.assertEqual(types["-O0"], ["Input", "Convolution", "Power", "ReLU", "Eltwise"])

    def test_clamp_max_only(self) -> None:
        self.act("clamp_max", lambda x: torch.clamp(x, max=-0.25))

    def test_clamp_min_zero(self) -> None:
        types = self.act("clamp_min0", lambda x: x.clamp(min=0))
        self.assertEqual(types["-O0"], ["Input", "Convolution", "ReLU"])

    def test_clamp_infinite_bound(self) -> None:
        """An infinite bound leaves its side open: min=-inf alone clamps nothing (the identity)."""
        types = self.act("clamp_inf", lambda x: F.relu(x.clamp(min=float("-inf"))))
        self.assertEqual(types["-O0"], ["Input", "Convolution", "ReLU"])
        self.act("clamp_inf_max", lambda x: x.clamp(min=-0.5, max=float("inf")))

    def test_clamp_in_place(self) -> None:
        self.act("clamp_", lambda x: F.relu(x.clamp_(-1.0, 1.5)))

    def test_clip(self) -> None:
        self.act("clip", lambda x: torch.clip(x, min=-2.0, max=3.0))

    def prelu(self, name: str, m: nn.PReLU) -> dict:
        # the module is an attribute, so that its weight is a parameter of the recorded model
        return self.check(name, Lambda(lambda s, x: s.act(s.conv(x)), conv=nn.Conv2d(3, 4, 3), act=m),
                          randn(1, 3, 7, 7) * 4)

    def test_prelu_per_channel(self) -> None:
        m = nn.PReLU(4)
        m.weight.data.uniform_(-0.5, 0.5)
        types = self.prelu("prelu_c", m)
        self.assertIn("PReLU", types["-O1"])

    def test_prelu_shared(self) -> None:
        m = nn.PReLU()
        m.weight.data.fill_(0.3)
        self.prelu("prelu_1", m)

    def test_prelu_2d(self) -> None:
        m = nn.PReLU(6)
        m.weight.data.uniform_(0.1, 0.9)
        self.check("prelu_2d", Lambda(lambda s, x: s.act(s.fc(x.flatten(1))), fc=nn.Linear(48, 6), act=m),
                   randn(1, 3, 4, 4))

    def test_small_values(self) -> None:
        """Activations of 1e-6 (deep nets with random weights have them: mobilenet_v2's last blocks) keep
        their precision: each lowering must be exact to float32 rounding *relative to the value*, not just
        to 1e-4 absolute.  A ReLU6 built as 6 - relu(6 - relu(x)) rounds every x < 2.4e-7 to 0."""
        x = randn(1, 3, 5, 5) * 1e-6
        for name, fn in [("relu6", F.relu6), ("relu6_m", nn.ReLU6()), ("hardtanh", F.hardtanh),
                         ("hardtanh_general", lambda t: F.hardtanh(t, -0.5, 2.5)), ("relu", F.relu),
                         ("clamp_min", lambda t: t.clamp(min=-1e-6)), ("clamp_max", lambda t: t.clamp(max=1e-6)),
                         ("leaky", lambda t: F.leaky_relu(t, 0.1)), ("tanh", torch.tanh)]:
            self.check("small_" + name, Lambda(lambda s, t, fn=fn: fn(t)), x, rel_tol=1e-5)

    def test_large_values(self) -> None:
        x = randn(1, 3, 5, 5) * 100
        for name, fn in [("relu6", F.relu6), ("hardtanh", F.hardtanh), ("hardtanh_general", lambda t: F.hardtanh(t, -0.5, 2.5))]:
            self.check("large_" + name, Lambda(lambda s, t, fn=fn: fn(t)), x, rel_tol=1e-6)

    def test_sigmoid(self) -> None:
        self.act("sigmoid", torch.sigmoid)

    def test_sigmoid_module(self) -> None:
        self.act("sigmoid_m", nn.Sigmoid())

    def test_tanh(self) -> None:
        self.act("tanh", torch.tanh)

    def test_neg(self) -> None:
        types = self.act("neg", lambda x: -x)  # recorded as neg (Tensor.__neg__)
        self.assertEqual(types["-O0"], ["Input", "Convolution", "Power"])

    def test_neg_in_place(self) -> None:
        # the in-place twin (ops.def's INPLACE(neg_)); the relu after it reads the written tensor
        types = self.act("neg_", lambda x: F.relu(x.neg_()))
        self.assertEqual(types["-O0"], ["Input", "Convolution", "Power", "ReLU"])

    def test_softmax_channels(self) -> None:
        self.act("softmax1", lambda x: F.softmax(x, dim=1))

    def test_softmax_last(self) -> None:
        self.act("softmax_last", lambda x: F.softmax(x, dim=-1))

    def test_softmax_dim2(self) -> None:
        self.act("softmax2", lambda x: torch.softmax(x, 2))

    def test_softmax_after_linear(self) -> None:
        self.check("softmax_fc", Lambda(lambda s, x: s.fc(x.flatten(1)).softmax(-1), fc=nn.Linear(12, 5)),
                   randn(1, 3, 2, 2))


class Pool(OpTestCase):
    def test_max(self) -> None:
        self.check("max", Seq(nn.MaxPool2d(3, 2, 1)), randn(1, 3, 112, 112))   # resnet's stem: 56, not 57

    def test_max_ceil(self) -> None:
        self.check("max_ceil", Seq(nn.MaxPool2d(3, 2, ceil_mode=True)), randn(1, 3, 14, 14))

    def test_avg(self) -> None:
        self.check("avg", Seq(nn.AvgPool2d(2, 2)), randn(1, 3, 9, 9))

    def test_avg_pad_ceil(self) -> None:
        self.check("avg_pad_ceil", Seq(nn.AvgPool2d(3, 2, 1, ceil_mode=True)), randn(1, 3, 10, 10))

    def test_asymmetric(self) -> None:
        self.check("asym_max", Seq(nn.MaxPool2d((3, 2), (2, 1), (1, 0))), randn(1, 2, 9, 10))
        self.check("asym_avg", Seq(nn.AvgPool2d((2, 3), (1, 2), (1, 1), ceil_mode=True)), randn(1, 2, 9, 10))

    def test_nonsquare_input(self) -> None:
        self.check("nonsquare", Seq(nn.MaxPool2d(3, 2, 1, ceil_mode=True)), randn(1, 2, 7, 12))

    def test_adaptive_avg_global(self) -> None:
        self.check("aavg1", Seq(nn.AdaptiveAvgPool2d(1)), randn(1, 4, 7, 5))

    def test_adaptive_avg_global_tuple(self) -> None:
        self.check("aavg11", Seq(nn.AdaptiveAvgPool2d((1, 1))), randn(1, 4, 6, 6))

    def test_adaptive_avg_divisible(self) -> None:
        self.check("aavg2", Seq(nn.AdaptiveAvgPool2d(2)), randn(1, 4, 8, 8))
        self.check("aavg3x2", Seq(nn.AdaptiveAvgPool2d((3, 2))), randn(1, 4, 9, 8))

    def test_adaptive_avg_identity(self) -> None:
        self.check("aavg_id", Lambda(lambda s, x: F.adaptive_avg_pool2d(s.conv(x), 4), conv=nn.Conv2d(2, 2, 1)),
                   randn(1, 2, 4, 4))

    def test_adaptive_max_global(self) -> None:
        self.check("amax1", Seq(nn.AdaptiveMaxPool2d(1)), randn(1, 4, 7, 5))

    def test_adaptive_max_divisible(self) -> None:
        self.check("amax2", Seq(nn.AdaptiveMaxPool2d((2, 4))), randn(1, 4, 8, 8))

    def test_adaptive_not_divisible_is_an_error(self) -> None:
        log, diags = self.compile_error("aavg_uneven", Seq(nn.AdaptiveAvgPool2d(3)), randn(1, 4, 10, 10))
        (line,) = self.log_line(log, "adaptive_avg_pool2d(")
        self.assertEqual(diags[0][1], line)
        self.assertIn("adaptive_avg_pool2d", diags[0][3])

    def test_mean_spatial(self) -> None:
        self.check("mean_keep", Lambda(lambda s, x: x.mean((2, 3), keepdim=True)), randn(1, 5, 6, 7))
        self.check("mean_nokeep", Lambda(lambda s, x: x.mean([2, 3])), randn(1, 5, 6, 7))
        self.check("mean_neg", Lambda(lambda s, x: torch.mean(x, dim=(-2, -1), keepdim=False)), randn(2, 5, 6, 7))

    def test_mean_then_linear(self) -> None:
        self.check("mean_fc", Lambda(lambda s, x: s.fc(x.mean([2, 3])), fc=nn.Linear(5, 3)), randn(1, 5, 6, 7))


class Shapes(OpTestCase):
    def conv_then(self, name: str, fn, shape=(1, 3, 6, 6)) -> None:
        self.check(name, Lambda(lambda s, x: fn(s.conv(x)), conv=nn.Conv2d(3, 4, 1)), randn(*shape))

    def test_flatten(self) -> None:
        self.conv_then("flatten", lambda x: torch.flatten(x, 1))

    def test_flatten_all(self) -> None:
        self.conv_then("flatten0", lambda x: x.flatten())

    def test_flatten_middle(self) -> None:
        self.conv_then("flatten_mid", lambda x: x.flatten(2))

    def test_view(self) -> None:
        self.conv_then("view", lambda x: x.view(1, -1))

    def test_view_4d(self) -> None:
        self.conv_then("view4d", lambda x: x.view(1, 2, 8, 9))

    def test_reshape(self) -> None:
        self.conv_then("reshape", lambda x: x.reshape(1, 4, 36))

    def test_view_then_conv(self) -> None:
        self.check("view_conv", Lambda(lambda s, x: s.conv(x.view(1, 3, 12, 3)), conv=nn.Conv2d(3, 2, 3)),
                   randn(1, 3, 6, 6))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision's ShuffleNet channel shuffle."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class ChannelShuffle(OpTestCase):
    """view(N, g, C/g, H, W), transpose(1, 2), view(N, C, H, W): one permutation Convolution, exact."""

    def test_groups(self) -> None:
        for groups, channels in ((2, 8), (3, 6), (4, 12), (6, 6)):
            with self.subTest(groups=groups):
                self.check(f"shuffle{groups}", Lambda(lambda s, x, g=groups: F.relu(channel_shuffle(s.conv(x), g)),
                                                      conv=nn.Conv2d(3, channels, 1)), randn(1, 3, 5, 7))

    def test_shuffle_of_an_input_without_contiguous(self) -> None:
        self.check("shuffle_in", Lambda(lambda s, x: torch.transpose(x.view(1, 2, 3, 4, 4), 2, 1).reshape(1, 6, 4, 4)),
                   randn(1, 6, 4, 4))


class Interpolate(OpTestCase):
    """Nearest and bilinear upsampling by integer factors (grouped Deconvolutions), any other sizes and
    align_corners=True by interpolation matrices (InnerProduct), checked against PyTorch; bicubic is refused."""

    def test_size_integer_factors(self) -> None:
        """size= that is an integer multiple of the input: the same lowering as scale_factor."""
        self.check("size_nearest", Lambda(lambda s, x: F.interpolate(s.conv(x), size=(10, 12)),
                                          conv=nn.Conv2d(3, 2, 1)), randn(1, 3, 5, 6))
        self.check("size_bilinear", Lambda(lambda s, x: F.interpolate(s.conv(x), size=(10, 12), mode="bilinear",
                                                                      align_corners=False),
                                           conv=nn.Conv2d(3, 2, 1)), randn(1, 3, 5, 6))

    def test_broadcast_from_1x1(self) -> None:
        """DeepLab's image pooling: a 1×1 map resized to H×W (every output is the one value)."""
        for mode in ("nearest", "bilinear"):
            kw = {} if mode == "nearest" else {"align_corners": False}
            self.check(f"b1x1_{mode}", Lambda(lambda s, x, m=mode, kw=kw: F.interpolate(
                F.adaptive_avg_pool2d(s.conv(x), 1), size=(7, 9), mode=m, **kw), conv=nn.Conv2d(3, 2, 1)),
                randn(1, 3, 7, 9))

    def test_factors(self) -> None:
        for factor in (2, 3, 4, 7):
            with self.subTest(factor=factor):
                self.check(f"nearest{factor}", Lambda(lambda s, x, f=factor: F.interpolate(s.conv(x), scale_factor=f),
                                                      conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 5, 6))

    def test_upsample_module_size_and_exact(self) -> None:
        self.check("upsample23", Seq(nn.Conv2d(3, 4, 1), nn.Upsample(scale_factor=(2, 3))), randn(1, 3, 4, 5))
        self.check("nearest_size", Lambda(lambda s, x: F.interpolate(s.conv(x), size=(12, 10)), conv=nn.Conv2d(3, 2, 1)),
                   randn(1, 3, 4, 5))
        self.check("nearest_exact", Lambda(lambda s, x: F.interpolate(s.conv(x), scale_factor=3, mode="nearest-exact"),
                                           conv=nn.Conv2d(3, 2, 1)), randn(1, 3, 4, 4))

    def test_bilinear(self) -> None:
        """runtime-facts S8: replicate pad, tent-weight Deconvolution, crop; also 1-pixel-wide inputs."""
        for factor in (2, 3, (2, 3), 4):
            for shape in ((1, 3, 5, 6), (1, 3, 1, 4), (1, 3, 2, 1)):
                with self.subTest(factor=factor, shape=shape):
                    name = f"bilinear{factor}_{shape[2]}x{shape[3]}".replace(" ", "")
                    self.check(name, Lambda(lambda s, x, f=factor: F.interpolate(
                        s.conv(x), scale_factor=f, mode="bilinear", align_corners=False),
                        conv=nn.Conv2d(3, 2, 1)), randn(*shape), rel_tol=1e-5)

    def test_any_size_by_matrix(self) -> None:
        """runtime-facts S13: align_corners=True, fractional factors and sizes, down-sampling, nearest whose
        float index rule is not a repeat: InnerProducts with PyTorch's interpolation matrices."""
        cases = [
            ("corners2", dict(scale_factor=2, mode="bilinear", align_corners=True)),
            ("corners_size", dict(size=(13, 7), mode="bilinear", align_corners=True)),
            ("bilinear_frac", dict(size=(9, 11), mode="bilinear", align_corners=False)),
            ("bilinear_factor_frac", dict(scale_factor=1.5, mode="bilinear", align_corners=False)),
            ("bilinear_down", dict(size=(4, 3), mode="bilinear", align_corners=False)),
            ("nearest_frac", dict(size=(9, 9))),
            ("nearest_down", dict(scale_factor=0.5)),
            ("nearest_exact_frac", dict(size=(10, 4), mode="nearest-exact")),
            ("one_axis", dict(size=(6, 9), mode="bilinear", align_corners=True)),
        ]
        for name, kw in cases:
            with self.subTest(case=name):
                self.check(name, Lambda(lambda s, x, kw=kw: F.interpolate(s.conv(x), **kw), conv=nn.Conv2d(3, 2, 1)),
                           randn(1, 3, 6, 6))

    def test_refusals(self) -> None:
        x = randn(1, 3, 6, 6)
        module = Lambda(lambda s, x: F.interpolate(s.conv(x), scale_factor=2, mode="bicubic", align_corners=False),
                        conv=nn.Conv2d(3, 2, 1))
        outcome = self.exact_or_error("bicubic", module, x, op="interpolate")
        self.assertIn('interpolate: mode="bicubic": only nearest and bilinear are exact in Caffe layers', outcome)


class Add(OpTestCase):
    def test_add(self) -> None:
        self.check("add", Lambda(lambda s, x: s.a(x) + s.b(x), a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 3, padding=1)),
                   randn(1, 3, 6, 6))

    def test_torch_add(self) -> None:
        self.check("torch_add", Lambda(lambda s, x: torch.add(s.a(x), s.b(x)), a=nn.Conv2d(3, 4, 1),
                                       b=nn.Conv2d(3, 4, 1)), randn(1, 3, 6, 6))

    def test_add_inplace(self) -> None:
        def f(s, x):
            y = s.a(x)
            y.add_(s.b(x))
            return y
        self.check("add_", Lambda(f, a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 1)), randn(1, 3, 6, 6))

    def test_iadd(self) -> None:
        def f(s, x):
            y = s.a(x)
            y += x
            return F.relu(y)
        self.check("iadd", Lambda(f, a=nn.Conv2d(3, 3, 3, padding=1)), randn(1, 3, 6, 6))

    def test_three_way(self) -> None:
        self.check("add3", Lambda(lambda s, x: s.a(x) + s.b(x) + x, a=nn.Conv2d(3, 3, 1), b=nn.Conv2d(3, 3, 1)),
                   randn(1, 3, 6, 6))

    def test_residual_block(self) -> None:
        # resnet's shape: out = relu(bn(conv(x))); out = bn(conv(out)); out += x; relu
        def f(s, x):
            out = F.relu(s.bn1(s.conv1(x)))
            out = s.bn2(s.conv2(out))
            out += x
            return F.relu(out)
        self.check("residual", Lambda(f, conv1=nn.Conv2d(4, 4, 3, padding=1, bias=False), bn1=bn(4),
                                      conv2=nn.Conv2d(4, 4, 3, padding=1, bias=False), bn2=bn(4)),
                   randn(1, 4, 6, 6))

    def test_broadcast_computed(self) -> None:
        # a channel gate (N, 1, H, W) over (N, C, H, W) as CBAM's, a pooled (N, C, 1, 1) added back, a row
        # (N, C, 1, W) and a column (N, C, H, 1); each operand repeated by a weight-1 Convolution or Deconvolution
        def f(s, x):
            y = s.conv(x)
            gate = torch.sigmoid(y.amax(1, keepdim=True))
            return (y * gate, y + F.adaptive_avg_pool2d(y, 1), y.mean(2, keepdim=True) - y,
                    y.amax(3, keepdim=True) / (y.amin(2, keepdim=True).abs() + 1), gate + y.mean((2, 3), keepdim=True))
        self.check("broadcast", Lambda(f, conv=nn.Conv2d(3, 5, 3, padding=1)), randn(1, 3, 6, 7))

    def test_broadcast_low_rank(self) -> None:
        self.check("broadcast_2d3d", Lambda(lambda s, x: (s.fc(x.flatten(1)) * s.fc(x.flatten(1)).amax(1, keepdim=True),
                                                          s.conv(x).flatten(2) + s.conv(x).flatten(2).mean(2, True)),
                                            fc=nn.Linear(48, 6), conv=nn.Conv2d(3, 4, 1)), randn(1, 3, 4, 4))


class Cat(OpTestCase):
    def test_cat_channels(self) -> None:
        self.check("cat", Lambda(lambda s, x: torch.cat([s.a(x), s.b(x)], 1), a=nn.Conv2d(3, 2, 1),
                                 b=nn.Conv2d(3, 5, 1)), randn(1, 3, 4, 4))

    def test_cat_three_with_input(self) -> None:
        self.check("cat3", Lambda(lambda s, x: torch.cat((x, s.a(x), s.b(x)), dim=1), a=nn.Conv2d(3, 2, 1),
                                  b=nn.Conv2d(3, 1, 1)), randn(1, 3, 4, 4))

    def test_cat_height(self) -> None:
        self.check("cat_h", Lambda(lambda s, x: torch.cat([s.a(x), x], 2), a=nn.Conv2d(3, 3, 3, padding=1)),
                   randn(1, 3, 4, 5))

    def test_cat_negative_dim(self) -> None:
        self.check("cat_neg", Lambda(lambda s, x: torch.cat([s.a(x), x], -1), a=nn.Conv2d(3, 3, 1)),
                   randn(1, 3, 4, 5))


class Dropout(OpTestCase):
    def test_dropout_module(self) -> None:
        types = self.check("dropout", Seq(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.ReLU()), randn(1, 3, 6, 6))
        self.assertNotIn("Dropout", types["-O1"])
        self.assertNotIn("Dropout", types["-O2"])

    def test_dropout_functional_before_linear(self) -> None:
        self.check("dropout_fc", Lambda(lambda s, x: s.fc(F.dropout(x.flatten(1), 0.2, training=False)),
                                        fc=nn.Linear(27, 4)), randn(1, 3, 3, 3))

    def test_dropout_inplace(self) -> None:
        self.check("dropout_inplace", Seq(nn.Conv2d(3, 4, 3), nn.Dropout(inplace=True)), randn(1, 3, 6, 6))


class FusionHazards(OpTestCase):
    """An optimisation must never change a value that another layer reads afterwards."""

    def test_relu_of_a_value_used_later(self) -> None:
        # in-place ReLU on conv's top would change what the Eltwise reads
        self.check("relu_shared", Lambda(lambda s, x: (lambda a: a + F.relu(a))(s.conv(x)), conv=nn.Conv2d(3, 3, 1)),
                   randn(1, 3, 5, 5))

    def test_relu_used_before_and_after(self) -> None:
        def f(s, x):
            a = s.conv(x)
            b = torch.cat([a, F.relu(a)], 1)
            return b + torch.cat([a, a], 1)
        self.check("relu_shared2", Lambda(f, conv=nn.Conv2d(3, 3, 1)), randn(1, 3, 5, 5))

    def test_two_neurons_on_one_value(self) -> None:
        self.check("two_neurons", Lambda(lambda s, x: (lambda a: torch.cat([torch.sigmoid(a), torch.tanh(a)], 1))(
            s.conv(x)), conv=nn.Conv2d(3, 3, 1)), randn(1, 3, 5, 5))

    def test_bn_of_a_value_used_later(self) -> None:
        # -O2 must not fold the BatchNorm into a conv whose raw output is read elsewhere
        self.check("bn_shared", Lambda(lambda s, x: (lambda a: a + s.bn(a))(s.conv(x)), conv=nn.Conv2d(3, 3, 1),
                                       bn=bn(3)), randn(1, 3, 5, 5))

    def test_relu_of_input_used_later(self) -> None:
        self.check("relu_input_shared", Lambda(lambda s, x: F.relu(x) + x), randn(1, 3, 5, 5))

    def test_inplace_after_other_use(self) -> None:
        def f(s, x):
            a = s.conv(x)
            y = a + x    # reads a before the in-place relu_
            a.relu_()
            return torch.cat([y, a], 1)
        self.check("inplace_after_use", Lambda(f, conv=nn.Conv2d(3, 3, 1)), randn(1, 3, 5, 5))

    def test_dropout_between_shared(self) -> None:
        self.check("dropout_shared", Lambda(lambda s, x: (lambda a: F.relu(s.drop(a)) + a)(s.conv(x)),
                                            conv=nn.Conv2d(3, 3, 1), drop=nn.Dropout()), randn(1, 3, 5, 5))

    def test_many_outputs_from_one_value(self) -> None:
        self.check("fanout", Lambda(lambda s, x: (lambda a: (F.relu(a), torch.sigmoid(a), s.bn(a)))(s.conv(x)),
                                    conv=nn.Conv2d(3, 3, 1), bn=bn(3)), randn(1, 3, 5, 5))


class Borderline(OpTestCase):
    """Variants next to the supported set: each is lowered exactly or refused at its line by name."""

    def probe(self, name: str, module, *inputs, op: str) -> None:
        outcome = self.exact_or_error(name, module, *inputs, op=op)
        print(f"  {name}: {outcome}")

    def test_variants(self) -> None:
        x = randn(1, 4, 8, 8)
        cases = [
            ("conv_same", Seq(nn.Conv2d(4, 4, 3, padding="same")), "conv2d"),
            ("conv_same_even", Seq(nn.Conv2d(4, 4, 4, padding="same")), "conv2d"),
            ("conv_reflect", Seq(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")), "pad"),
            ("add_alpha", Lambda(lambda s, x: torch.add(s.a(x), x, alpha=2.0), a=nn.Conv2d(4, 4, 1)), "add"),
            ("add_scalar", Lambda(lambda s, x: s.a(x) + 1.0, a=nn.Conv2d(4, 4, 1)), "add"),
            ("add_broadcast", Lambda(lambda s, x: x + F.adaptive_avg_pool2d(x, 1)), "add"),
            ("mul", Lambda(lambda s, x: s.a(x) * x, a=nn.Conv2d(4, 4, 1)), "mul"),
            ("avg_divisor", Lambda(lambda s, x: F.avg_pool2d(x, 2, divisor_override=3)), "avg_pool2d"),
            ("max_dilation", Seq(nn.MaxPool2d(3, 1, dilation=2)), "max_pool2d"),
            ("max_indices", Lambda(lambda s, x: F.max_pool2d(x, 2, return_indices=True)[0]), "max_pool2d"),
            ("mean_channels", Lambda(lambda s, x: x.mean(1, keepdim=True)), "mean"),
            ("mean_h", Lambda(lambda s, x: x.mean(2)), "mean"),
            ("mean_all", Lambda(lambda s, x: x.mean((1, 2, 3))), "mean"),
            ("softmax_dtype", Lambda(lambda s, x: F.softmax(x, 1, dtype=torch.float32)), "softmax"),
            ("linear_3d", Lambda(lambda s, x: s.fc(x.view(1, 4, 64)), fc=nn.Linear(64, 5)), "linear"),
            ("linear_4d", Lambda(lambda s, x: s.fc(x), fc=nn.Linear(8, 3)), "linear"),
            ("amax_uneven", Seq(nn.AdaptiveMaxPool2d(3)), "adaptive_max_pool2d"),
            ("leaky_neg_slope", Lambda(lambda s, x: F.leaky_relu(x, -0.5)), "leaky_relu"),
            ("hardtanh_inverted", Lambda(lambda s, x: F.hardtanh(x, 0.5, 0.5)), "hardtanh"),
            ("cat_batch", Lambda(lambda s, x: torch.cat([s.a(x), x], 0), a=nn.Conv2d(4, 4, 1)), "cat"),
            ("view_batch", Lambda(lambda s, x: s.a(x).view(2, 2, 8, 8), a=nn.Conv2d(4, 4, 1)), "view"),
        ]
        for name, module, op in cases:
            with self.subTest(case=name):
                self.probe(name, module, x, op=op)


class Names(OpTestCase):
    def test_module_called_twice(self) -> None:
        # one module, two calls: two layers with unique names, each with the shared weights
        self.check("twice", Lambda(lambda s, x: s.conv(F.relu(s.conv(x))), conv=nn.Conv2d(3, 3, 3, padding=1)),
                   randn(1, 3, 6, 6))
        layers = parity.prototxt_layers(self.dir + "/twice-O1.prototxt")
        names = [l.name for l in layers if l.type == "Convolution"]
        self.assertEqual(len(set(names)), 2, names)

    def test_shared_parameter(self) -> None:
        class Shared(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a = nn.Conv2d(3, 3, 1)
                self.b = nn.Conv2d(3, 3, 1)
                self.b.weight = self.a.weight

            def forward(self, x):
                return self.b(self.a(x))
        self.check("shared", Shared(), randn(1, 3, 4, 4))

    def test_input_named_like_a_module(self) -> None:
        # the input blob `conv` and the layer `conv`'s top must not collide (two producers of one blob)
        class Clash(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 3, 1)
                self.relu = nn.ReLU()

            def forward(self, conv):
                return self.relu(self.conv(conv)) + conv
        self.check("clash", Clash(), randn(1, 3, 4, 4), input_names=["conv"])

    def test_scope_names_with_odd_characters(self) -> None:
        # ModuleDict keys may hold characters a PATH token cannot (spaces, quotes): names still unique
        class Odd(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.d = nn.ModuleDict({"a b": nn.Conv2d(3, 3, 1), 'q"uote': nn.Conv2d(3, 3, 1)})

            def forward(self, x):
                return self.d['q"uote'](self.d["a b"](x))
        self.check("odd", Odd(), randn(1, 3, 4, 4))

    def test_names_are_stable(self) -> None:
        m = Seq(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
        self.check("stable", m, randn(1, 3, 6, 6), levels=("-O1",))
        layers = parity.prototxt_layers(self.dir + "/stable-O1.prototxt")
        self.assertEqual([(l.name, l.type) for l in layers],
                         [("x", "Input"), ("body.0", "Convolution"), ("body.1", "BatchNorm"),
                          ("body.1.scale", "Scale"), ("body.2", "ReLU"), ("body.4", "InnerProduct")])

    def test_output_names(self) -> None:
        # a dict's keys and a tuple's positions name the output blobs and the layers that write them (BVLC
        # reads a blob by name, OpenCV a layer); a value returned twice gets a blob per name; at -O2 the
        # BatchNorm folded into the convolution leaves the name on the convolution
        class Heads(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3)
                self.bn = bn(4)

            def forward(self, x):
                y = self.bn(self.conv(x))
                return {"out": F.relu(y), "aux": torch.sigmoid(y), "features": y, "again": y}

        self.check("dict_outputs", Heads(), randn(1, 3, 6, 6))
        self.check("tuple_outputs", Lambda(lambda s, x: (s.conv(x), F.relu(s.conv(x)), x), conv=nn.Conv2d(3, 2, 1)),
                   randn(1, 3, 4, 4))
        for name, want in (("dict_outputs", ["out", "aux", "features", "again"]),
                           ("tuple_outputs", ["output0", "output1", "output2"])):
            for level in ("-O0", "-O1", "-O2"):
                prototxt = f"{self.dir}/{name}{level}.prototxt"
                self.assertEqual(parity.declared_outputs(prototxt), want, prototxt)
                writers = {l.top[0]: l.name for l in parity.prototxt_layers(prototxt) if l.top}
                self.assertEqual([writers.get(b) for b in want], want, prototxt)

    def test_output_name_clashes(self) -> None:
        # a name that is an input's, or an earlier output's, would give two blobs one name
        out = self.dir + "/clash.prototxt"
        for text, msg in (('output %1 "x"\n', 'output: "x" is an input\'s name; a Caffe blob has one name'),
                          ('output %1 "a"\noutput %1 "a"\n', 'output: the name "a" is taken by output 0')):
            log = self.dir + "/clash.log"
            with open(log, "w") as f:
                f.write('ptcc-trace 1\nweights "clash.safetensors"\ninput %0 "x" : f32[1,2,3,3]\n'
                        '%1 = relu(%0, inplace=false) : f32[1,2,3,3]\n' + text)
            r = parity.compile_log(log, out, "--no-weights")
            self.assertEqual(r.returncode, 1, r.stderr)
            line = text.count("\n") + 4
            self.assertEqual(r.stderr.splitlines()[0], f"{log}:{line}:8: error: {msg}")


class Inputs(OpTestCase):
    def test_two_named_inputs(self) -> None:
        class Two(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a = nn.Conv2d(3, 4, 1)
                self.b = nn.Conv2d(2, 4, 1)

            def forward(self, image, extra):
                return self.a(image) + self.b(extra)
        self.check("two", Two(), randn(1, 3, 5, 5), randn(1, 2, 5, 5), input_names=["image", "extra"])

    def test_unnamed_inputs(self) -> None:
        class Star(nn.Module):
            def forward(self, *xs):
                return torch.cat(xs, 1)
        self.check("star", Star(), randn(1, 2, 3, 3), randn(1, 1, 3, 3), input_names=["input0", "input1"])

    def test_input_returned(self) -> None:
        # an output that is an input (here through a Dropout, which -O1 drops) gets a Reshape of its own
        types = self.check("returned", Lambda(lambda s, x: (s.a(x), s.d(x)), a=nn.Conv2d(3, 4, 1),
                                              d=nn.Dropout(0.3, inplace=True)), randn(1, 3, 5, 5))
        self.assertIn("Reshape", types["-O1"])

    def test_unread_input_left_out(self) -> None:
        class Unread(nn.Module):
            def forward(self, x, unused):
                return F.relu(x)
        types = self.check("unread", Unread(), randn(1, 2, 3, 3), randn(1, 2, 3, 3), input_names=["x"])
        self.assertEqual(types["-O1"].count("Input"), 1)

    def test_lenet(self) -> None:
        import importlib.util, os
        spec = importlib.util.spec_from_file_location("lenet", os.path.join(ptcctest.SRCDIR, "examples/lenet/lenet.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        self.check("lenet", mod.LeNet(), randn(1, 1, 28, 28), input_names=["x"])


if __name__ == "__main__":
    ptcctest.main()
