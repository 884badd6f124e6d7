"""Small module wrappers the back-end tests build their cases from (imported after torch is known to be
there: parity.require_tools())."""

from __future__ import annotations

import torch.nn as nn


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
