"""Small module wrappers the back-end tests build their cases from (imported after torch is known to be
there: parity.require_tools()), and the YOLOv5 blocks that test_families' detector and bench/net_speed.py's
YOLOv5s-style net share."""

from __future__ import annotations

import torch
import torch.nn as nn


def bn(c: int, affine: bool = True, eps: float = 1e-5) -> nn.BatchNorm2d:
    """BatchNorm2d with calibrated-looking statistics and non-trivial affine weights."""
    m = nn.BatchNorm2d(c, affine=affine, eps=eps)
    m.running_mean.uniform_(-1, 1)
    m.running_var.uniform_(0.5, 2)
    if affine:
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.uniform_(-0.5, 0.5)
    return m


class Seq(nn.Module):
    """nn.Sequential whose forward's input is named x (Sequential's is `input`)."""

    def __init__(self, *mods: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class Lambda(nn.Module):
    """forward(x) is fn(self, x); the keyword modules become attributes (so they are traced as scopes)."""

    def __init__(self, fn, **mods: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


# --- YOLOv5's blocks: Conv-BN-SiLU, the C3 bottleneck stack, SPPF ---------------------------------------

def conv_bn(cin: int, cout: int, k: int = 1, s: int = 1, act: nn.Module | None = None, groups: int = 1,
            dilation: int = 1, p: int | None = None) -> nn.Sequential:
    """Convolution (padding dilation·k//2 unless p is given), BatchNorm, then act (SiLU by default)."""
    pad = dilation * (k // 2) if p is None else p
    layers = [nn.Conv2d(cin, cout, k, s, pad, groups=groups, dilation=dilation, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act if act is not None else nn.SiLU())


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = conv_bn(c, c), conv_bn(c, c, 3), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        h = cout // 2
        self.cv1, self.cv2, self.cv3 = conv_bn(cin, h), conv_bn(cin, h), conv_bn(2 * h, cout)
        self.m = nn.Sequential(*[Bottleneck(h, shortcut) for _ in range(n)])

    def forward(self, x):
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))


class SPPF(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.cv1, self.cv2, self.m = conv_bn(cin, cin // 2), conv_bn(cin * 2, cout), nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))
