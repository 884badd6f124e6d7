"""Small modules that exercise the recorder: in-place ops, views, several results, constants."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mixed(nn.Module):
    """Two inputs, two outputs; in-place ops, views, chunk, split, max with unused indices."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU(inplace=True)

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        x = self.act(self.bn(self.conv(a)))
        x += b.repeat(1, 2, 1, 1)
        x.mul_(0.5)
        y = x.view(1, 8, -1)
        p, q = torch.chunk(x, 2, dim=1)
        r, s = q.split([1, 3], dim=1)
        t = torch.cat([p, r], 1)
        m, _ = torch.max(y, 2)
        return t.flatten(1), 1 - m + s.mean()


class WithConstants(nn.Module):
    """Tensors made inside forward, and an unregistered tensor attribute, become constants."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = torch.full((1, 3, 1, 1), 0.25)  # a plain attribute, not a buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
        ramp = torch.arange(3, dtype=torch.float32).view(1, 3, 1, 1) * 0.5
        return x * scale + ramp + self.offset


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class Extended(Block):
    """A subclass whose forward calls its superclass's forward: one scope, not two."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


class Shared(nn.Module):
    """One module called twice; a dict output; an output that is an input."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Extended(2)
        self.seq = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor):
        y = self.block(self.block(x))
        return {"features": self.seq(y), "input": x}
