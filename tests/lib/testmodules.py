"""Small module wrappers the back-end tests build their cases from (imported after torch is known to be
there: parity.require_tools())."""

from __future__ import annotations

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
