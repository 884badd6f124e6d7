#!/usr/bin/env python3
"""Record the traces of tests/traces/lower-*.log: small models that together reach every row of the
lowering table (src/ops.def's lowering column) and every branch of the layer builders, so that the
torch-free golden test (tests/front/test_lower_golden.sh) covers the back end where neither torch nor a
runtime is installed.

Run by hand when a lowering is added (the traces and weights are committed; the test never runs this):
    /usr/bin/python3 tests/traces/record_lowerings.py        (from the source tree, with python/ on the path)
then `PTCC_UPDATE_GOLDEN=1 tests/front/test_lower_golden.sh` and review `git diff tests/traces`.
Numerical parity of the same lowerings is proven by tests/backend/test_ops.py in both runtimes.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from ptcc.record import record  # noqa: E402
from testmodules import Lambda, bn  # noqa: E402


class Fn(Lambda):
    """tests/lib/testmodules.Lambda under the name the traces' root scope (and nets) carry."""


def conv(self, x):
    a = self.plain(x)
    b = self.strided(x)
    c = self.grouped(a)
    d = self.same(x)
    e = self.bn_off(self.bn(torch.cat([c, d], 1)))
    y = self.fc(e.flatten(1))
    z = self.fc3(e.reshape(1, 8, 16))
    return y, z, b


def activations(self, x):
    y = [F.relu(x), torch.relu_(x.clone()), F.leaky_relu(x, 0.2), F.leaky_relu_(x.clone(), 0.1),
         F.relu6(x), F.hardtanh(x, -0.5, 2.0), F.hardtanh_(x.clone()), torch.sigmoid(x),
         x.clone().sigmoid_(), torch.tanh(x), x.clone().tanh_(), x.abs(), x.exp(), F.elu(x, 0.5),
         F.elu_(x.clone()), F.softplus(x), F.silu(x), F.silu(x.clone(), inplace=True), F.hardsigmoid(x),
         F.hardsigmoid(x.clone(), inplace=True), F.hardswish(x), F.hardswish(x.clone(), inplace=True),
         F.softmax(x, 1), F.softmax(x, -1), F.relu(x.clone(), inplace=True)]
    return torch.cat(y, 1)


def pooling(self, x):
    return (F.max_pool2d(x, 3, 2, 1, ceil_mode=True), F.max_pool2d(x, (3, 2), (2, 1)),
            F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), F.avg_pool2d(x, 2, ceil_mode=True),
            F.avg_pool2d(x, (3, 3), (2, 2), (0, 1), ceil_mode=True), F.adaptive_avg_pool2d(x, 1),
            F.adaptive_max_pool2d(x, (3, 3)), F.adaptive_avg_pool2d(x, (3, 1)), x.mean((2, 3)),
            x.mean((-1, -2), keepdim=True))


def resampling(self, x):
    return (F.interpolate(x, scale_factor=2), F.interpolate(x, scale_factor=(2, 3), mode="nearest"),
            F.interpolate(x, size=(12, 6), mode="nearest-exact"),
            F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
            F.interpolate(x, scale_factor=3, mode="bilinear", align_corners=False), nn.Upsample(scale_factor=2)(x),
            F.interpolate(x, scale_factor=1))


def identities(self, x):
    y = self.drop(x)
    y = F.dropout2d(y, 0.3, training=False)
    y = F.dropout3d(y, 0.3, training=False)
    y = F.alpha_dropout(y, 0.3, training=False)
    y = F.feature_alpha_dropout(y, 0.3, training=False)
    y = y.clone().detach().contiguous()
    y = F.dropout(y, 0.2, training=False, inplace=True)
    return y + 1, x


def shapes(self, x):
    a, b = x.chunk(2, 1)
    c, d, e = torch.split(x, [1, 2, 1], 1)
    n, ch, h, w = x.shape
    s = x.view(n, 2, ch // 2, h, w).transpose(1, 2).contiguous().view(n, ch, h, w)
    f = torch.cat([a, b, d], 2)
    g = torch.cat([a], 1)
    return (f.flatten(1), f.view(1, -1, 4), f.reshape(2, -1), g.flatten(2, 3), b, torch.flatten(x, 0),
            torch.cat([c, e, s], 1))


def arithmetic(self, x):
    y = self.conv(x)
    se = torch.sigmoid(F.adaptive_avg_pool2d(y, 1))
    z = y * se
    z = z + y - x * 2
    z = 3 - z
    z = 2 / (z * z + 1)
    z = torch.rsub(z, y, alpha=0.5)
    z = z / 4 + 1.5
    z = z * self.scale + self.shift
    z = z - self.full
    z = self.shift / (z * z + 1)
    z = torch.add(z, y, alpha=2)
    w = y.clone()
    w.add_(z)
    w.mul_(0.5)
    w.sub_(self.scale)
    w.div_(2.0)
    return z, w, torch.cat([w, self.full], 1)


class Arith(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.register_buffer("scale", torch.rand(1, 4, 1, 1) + 0.5)
        self.register_buffer("shift", torch.rand(4, 1, 1) - 0.5)
        self.register_buffer("full", torch.rand(1, 4, 5, 5))

    def forward(self, x):
        return arithmetic(self, x)


def models() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    return {
        "lower-conv": (Fn(conv, plain=nn.Conv2d(3, 4, 3, padding=1), strided=nn.Conv2d(3, 4, (3, 1), (2, 1), (1, 0),
                                                                                   dilation=(1, 2), bias=False),
                          grouped=nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2),
                          same=nn.Conv2d(3, 4, 3, padding="same"), bn=bn(8), bn_off=bn(8, False, 1e-3),
                          fc=nn.Linear(128, 5), fc3=nn.Linear(16, 3)), torch.randn(1, 3, 4, 4)),
        "lower-activations": (Fn(activations), torch.randn(1, 2, 3, 4)),
        "lower-pooling": (Fn(pooling), torch.randn(1, 2, 9, 9)),
        "lower-resampling": (Fn(resampling), torch.randn(1, 2, 4, 3)),
        "lower-identities": (Fn(identities, drop=nn.Dropout(0.4)), torch.randn(1, 3, 4, 4)),
        "lower-shapes": (Fn(shapes), torch.randn(1, 4, 2, 2)),
        "lower-arithmetic": (Arith(), torch.randn(1, 4, 5, 5)),
    }


def later_models() -> "dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]]":
    """Traces added after the first set, each built from its own seed (crc32 of its name) so that
    adding one changes no other."""
    return {
        "lower-clamp-prelu": lambda: (Fn(clamps, conv=nn.Conv2d(2, 4, 1), prelu=nn.PReLU(4),
                                         prelu1=nn.PReLU()), torch.randn(1, 2, 3, 3)),
        "lower-deconv": lambda: (Fn(deconvs, up=nn.ConvTranspose2d(2, 3, 2, stride=2),
                                    op=nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
                                    grouped=nn.ConvTranspose2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0),
                                                               groups=2, bias=False)),
                                 torch.randn(1, 2, 3, 4)),
        "lower-narrow-select": lambda: (Fn(ranges, conv=nn.Conv2d(2, 6, 1)), torch.randn(1, 2, 4, 5)),
        "lower-getitem": lambda: (Fn(items, conv=nn.Conv2d(2, 6, 1)), torch.randn(1, 2, 6, 4)),
        "lower-reductions": lambda: (Fn(reductions, conv=nn.Conv2d(2, 5, 1)), torch.randn(1, 2, 4, 3)),
        "lower-pixel-shuffle": lambda: (Fn(pixel_shuffles, conv=nn.Conv2d(2, 8, 1)), torch.randn(1, 2, 2, 4)),
        "lower-broadcast": lambda: (Fn(broadcasts, conv=nn.Conv2d(2, 3, 1)), torch.randn(1, 2, 3, 4)),
        "lower-norms": lambda: (Fn(norms, conv=nn.Conv2d(2, 4, 1), gn=nn.GroupNorm(2, 4), inorm=nn.InstanceNorm2d(4),
                                   ln=nn.LayerNorm([3, 3], eps=1e-6)), torch.randn(1, 2, 3, 3)),
        "lower-vocabulary": lambda: (Fn(vocabulary, conv=nn.Conv2d(2, 3, 1)), torch.randn(1, 2, 3, 4)),
        "lower-powers-views": lambda: (Fn(powers_views, conv=nn.Conv2d(2, 3, 1)), torch.randn(1, 2, 3, 4)),
        "lower-layouts": lambda: (Fn(layouts, conv=nn.Conv2d(2, 4, 1)), torch.randn(1, 2, 3, 5)),
        "lower-resize": lambda: (Fn(resizes, conv=nn.Conv2d(2, 2, 1)), torch.randn(1, 2, 3, 4)),
        "lower-matmul": lambda: (Fn(products, conv=nn.Conv2d(2, 3, 1)), torch.randn(1, 2, 2, 3)),
        "lower-more-shapes": lambda: (Fn(more_shapes, conv=nn.Conv2d(2, 4, 1)), torch.randn(1, 2, 3, 4)),
        "lower-log-repeat": lambda: (Fn(log_repeat, conv=nn.Conv2d(2, 3, 1)), torch.randn(1, 2, 2, 3)),
    }


def main() -> None:
    import zlib

    torch.manual_seed(7)
    os.chdir(HERE)
    built = [(name, model_and_input) for name, model_and_input in models().items()]
    for name, factory in later_models().items():
        built.append((name, None))
    for name, model_and_input in built:
        if model_and_input is None:  # a later model: its own seed, built now
            torch.manual_seed(zlib.crc32(name.encode()))
            model_and_input = later_models()[name]()
        model, x = model_and_input
        for p in model.parameters():
            p.data.uniform_(-1, 1)
        record(model.eval(), x, name + ".log")
        print(name + ".log")


def clamps(self, x):
    y = self.conv(x)
    return (torch.clamp(y, -0.5, 0.25), y.clamp(min=0.5), torch.clamp(y, max=-0.25), y.clamp(min=0),
            torch.clip(y, 0, 6), y.clone().clamp_(-1.0, 1.5), self.prelu(y), self.prelu1(y))


def deconvs(self, x):
    return self.up(x), self.op(x), self.grouped(x)


def ranges(self, x):
    y = self.conv(x)
    return y.narrow(1, 1, 3), y.narrow(2, 0, 2), y.narrow(3, 3, 2), y.narrow(1, 0, 6), y.select(1, 4)



def items(self, x):
    y = self.conv(x)
    return (torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2]], 1), y[:, 1::2, 1:], y[0, 2:4, None],
            y[:, -1, ::3], y[:1])



def reductions(self, x):
    y = self.conv(x)
    return (y.sum(1), y.amax((2, 3), keepdim=True), y.amin(1, True), y.mean(-1), y.max(2)[0],
            y.flatten(2).sum(2), y.sum((1, 2, 3)))



def pixel_shuffles(self, x):
    y = self.conv(x)
    return F.pixel_shuffle(y, 2), F.pixel_unshuffle(y, 2), F.pixel_shuffle(y, 1)



def broadcasts(self, x):
    y = self.conv(x)
    return (y * y.amax(1, keepdim=True), y + y.mean((2, 3), keepdim=True), y.mean(2, True) - y,
            y.flatten(2) / y.flatten(2).amax(1, True))



def norms(self, x):
    y = self.conv(x)
    return self.gn(y), self.inorm(y), self.ln(y), F.layer_norm(y.flatten(2), [9])



def vocabulary(self, x):
    y = self.conv(x)
    return (F.softsign(y), F.mish(y), F.celu(y, 0.5), F.gelu(y, approximate="tanh"), y.var(1), y.std((2, 3)),
            y.float(), y.to(torch.float32) + 1)



def powers_views(self, x):
    y = self.conv(x)
    g = y.mean((2, 3), keepdim=True)
    return (torch.sqrt(y.abs()), torch.rsqrt(y.abs() + 1), 1 / (y ** 2 + 1), y.pow(3), g.squeeze(3).unsqueeze(0),
            g.expand_as(y), y.flatten(2).unflatten(2, (3, 4)))



def layouts(self, x):
    y = self.conv(x)
    return (y.permute(0, 2, 3, 1).contiguous().view(1, -1, 2), y.permute(0, 3, 1, 2), y.transpose(2, 3),
            y.flatten(2).transpose(1, 2), y.view(1, 2, 2, 3, 5).permute(0, 1, 3, 4, 2))



def resizes(self, x):
    y = self.conv(x)
    return (F.interpolate(y, size=(5, 7), mode="bilinear", align_corners=True),
            F.interpolate(y, scale_factor=1.5, mode="bilinear", align_corners=False), F.interpolate(y, size=(2, 4)))



def products(self, x):
    y = self.conv(x).flatten(2)
    a, b, c = y.unbind(1)
    return y @ y.transpose(1, 2), torch.bmm(y.transpose(1, 2), y), a.t(), b * c



def more_shapes(self, x):
    y = self.conv(x)
    return (torch.maximum(y, y.mean(1, keepdim=True)), torch.minimum(y, y * 2), torch.stack([y, y], 2),
            nn.ChannelShuffle(2)(y),
            F.pad(y, [1, 2, 0, 1]), F.pad(y, [2, 1, 1, 1], mode="reflect"), F.pad(y, [1, 1, 2, 0], mode="replicate"))



def log_repeat(self, x):
    y = self.conv(x)
    return F.log_softmax(y, 1), torch.log(y.abs() + 1), y.repeat(1, 2, 1, 2), y.tile((3, 1))


if __name__ == "__main__":
    main()
