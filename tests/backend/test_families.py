"""The networks people deploy (issue 9): small, randomly initialised models of each family, with calibrated
BatchNorm statistics and non-trivial affine weights, compiled at -O0, -O1 and -O2 for every target and run in
OpenCV dnn and BVLC Caffe (target opencv: OpenCV alone) against PyTorch (optest.OpTestCase.check: max |Δ| ≤ 1e-4 · max(1, max |ref|), healthy outputs
only).  A family with no exact Caffe form yet is refused at the op that has none, with the reason: that is
asserted too, so a change in either direction shows (CRNN's LSTM).  Plus torchvision's deeplabv3_mobilenet_v3_large and
ssdlite320_mobilenet_v3_large's backbone and head outputs (not its post-processing).
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
from testmodules import C3, SPPF, conv_bn  # noqa: E402


def calibrate(model: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Random affine weights for every norm, BatchNorm running statistics measured on random batches (as
    training would leave them), and the model back in eval mode."""
    torch.manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm,
                                                          nn.LayerNorm, nn.InstanceNorm2d))]
    with torch.no_grad():
        for m in norms:
            if getattr(m, "weight", None) is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
        model.train()
        for _ in range(4):
            model(torch.randn(4, *shape[1:]))
    return model.eval()


# --- YOLOv5: Focus, Conv-BN-SiLU, C3, SPPF (testmodules), nearest upsampling, concat, detect convs -------

class Focus(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = conv_bn(cin * 4, cout, 3)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class YoloV5(nn.Module):
    def __init__(self, nc: int = 3, na: int = 3) -> None:
        super().__init__()
        self.focus = Focus(3, 8)
        self.down1, self.c3_1 = conv_bn(8, 16, 3, 2), C3(16, 16)
        self.down2, self.c3_2 = conv_bn(16, 32, 3, 2), C3(32, 32)
        self.sppf = SPPF(32, 32)
        self.lat, self.up = conv_bn(32, 16), nn.Upsample(scale_factor=2, mode="nearest")
        self.c3_3 = C3(32, 16, shortcut=False)
        self.detect = nn.ModuleList([nn.Conv2d(16, na * (nc + 5), 1), nn.Conv2d(16, na * (nc + 5), 1)])
        self.na = na

    def forward(self, x):
        p3 = self.c3_1(self.down1(self.focus(x)))
        p4 = self.sppf(self.c3_2(self.down2(p3)))
        lat = self.lat(p4)
        head = self.c3_3(torch.cat([self.up(lat), p3], 1))
        outs = []
        for conv, f in zip(self.detect, (head, lat)):  # Detect's layout: (N, anchors, H, W, classes + 5)
            y = conv(f)
            n, _, h, w = y.shape
            outs.append(torch.sigmoid(y.view(n, self.na, -1, h, w).permute(0, 1, 3, 4, 2).contiguous()))
        return outs


# --- UNet with transposed convolutions ------------------------------------------------------------------

class UNet(nn.Module):
    def __init__(self, c: int = 8, classes: int = 2) -> None:
        super().__init__()
        relu = nn.ReLU

        def double(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv_bn(cin, cout, 3, act=relu()), conv_bn(cout, cout, 3, act=relu()))
        self.enc1, self.enc2, self.mid = double(3, c), double(c, 2 * c), double(2 * c, 4 * c)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), double(4 * c, 2 * c)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * c, c, 2, 2), double(2 * c, c)
        self.out = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        return self.out(self.dec1(torch.cat([self.up1(d2), e1], 1)))


# --- ESPCN super-resolution -----------------------------------------------------------------------------

class ESPCN(nn.Module):
    def __init__(self, r: int = 3) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 16, 5, padding=2), nn.Conv2d(16, 8, 3, padding=1), nn.Conv2d(
            8, r * r, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x):
        return self.shuffle(self.c3(torch.tanh(self.c2(torch.tanh(self.c1(x))))))


# --- MobileFaceNet: PReLU, depthwise bottlenecks, a global depthwise conv, BatchNorm1d --------------------

class FaceBottleneck(nn.Module):
    def __init__(self, c: int, expand: int = 2) -> None:
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(conv_bn(c, h, act=nn.PReLU(h)), conv_bn(h, h, 3, groups=h, act=nn.PReLU(h)),
                                  nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


class MobileFaceNet(nn.Module):
    def __init__(self, emb: int = 16) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, act=nn.PReLU(16))
        self.dw = conv_bn(16, 16, 3, groups=16, act=nn.PReLU())
        self.blocks = nn.Sequential(FaceBottleneck(16), FaceBottleneck(16))
        self.gdc = nn.Sequential(nn.Conv2d(16, 16, 8, groups=16, bias=False), nn.BatchNorm2d(16))
        self.fc, self.bn = nn.Linear(16, emb, bias=False), nn.BatchNorm1d(emb)

    def forward(self, x):
        return self.bn(self.fc(self.gdc(self.blocks(self.dw(self.stem(x)))).flatten(1)))


# --- CBAM: channel attention (SE over avg and max pooling), spatial attention (channel mean and max) -----

class CBAM(nn.Module):
    def __init__(self, c: int = 16, r: int = 4) -> None:
        super().__init__()
        self.stem = conv_bn(3, c, 3, act=nn.ReLU())
        self.mlp = nn.Sequential(nn.Conv2d(c, c // r, 1), nn.ReLU(), nn.Conv2d(c // r, c, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        x = self.stem(x)
        x = x * torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1)))
        pooled = torch.cat([x.mean(1, keepdim=True), torch.max(x, 1, keepdim=True)[0]], 1)
        return x * torch.sigmoid(self.spatial(pooled))


# --- DeepLab's ASPP head --------------------------------------------------------------------------------

class ASPP(nn.Module):
    def __init__(self, c: int = 16, out: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, c, 3, 2, act=nn.ReLU()), conv_bn(c, c, 3, 2, act=nn.ReLU()))
        self.branches = nn.ModuleList([conv_bn(c, out, act=nn.ReLU())] +
                                      [conv_bn(c, out, 3, dilation=d, act=nn.ReLU()) for d in (2, 3, 4)])
        self.pool = conv_bn(c, out, act=nn.ReLU())
        self.project = conv_bn(5 * out, out, act=nn.ReLU())
        self.cls = nn.Conv2d(out, classes, 1)

    def forward(self, x):
        f = self.stem(x)
        size = f.shape[-2:]
        image = F.interpolate(self.pool(F.adaptive_avg_pool2d(f, 1)), size=size, mode="bilinear", align_corners=False)
        y = self.project(torch.cat([b(f) for b in self.branches] + [image], 1))
        return F.interpolate(self.cls(y), scale_factor=4, mode="bilinear", align_corners=False)


# --- SSH face-detector head: context module, class and box convs ----------------------------------------

class SSH(nn.Module):
    def __init__(self, c: int = 16, anchors: int = 2, permute: bool = False) -> None:
        super().__init__()
        self.stem = conv_bn(3, c, 3, 2, act=nn.ReLU())
        self.c3 = conv_bn(c, c // 2, 3, act=nn.Identity())
        self.c5_1, self.c5_2 = conv_bn(c, c // 4, 3, act=nn.LeakyReLU(0.1)), conv_bn(c // 4, c // 4, 3, act=nn.Identity())
        self.c7_2, self.c7_3 = conv_bn(c // 4, c // 4, 3, act=nn.LeakyReLU(0.1)), conv_bn(c // 4, c // 4, 3,
                                                                                          act=nn.Identity())
        self.cls, self.box = nn.Conv2d(c, anchors * 2, 1), nn.Conv2d(c, anchors * 4, 1)
        self.permute = permute

    def forward(self, x):
        f = self.stem(x)
        t = self.c5_1(f)
        y = F.relu(torch.cat([self.c3(f), self.c5_2(t), self.c7_3(self.c7_2(t))], 1))
        cls, box = self.cls(y), self.box(y)
        if self.permute:  # RetinaFace's layout: (N, H·W·anchors, 2), softmax over the classes
            n = cls.shape[0]
            return F.softmax(cls.permute(0, 2, 3, 1).contiguous().view(n, -1, 2), dim=-1), box
        return F.softmax(cls.view(cls.shape[0], -1, 2, cls.shape[2], cls.shape[3]), dim=2), box


# --- CRNN (its LSTM is refused), ConvNeXt, ViT ----------------------------------------------------------

class CRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn = nn.Sequential(conv_bn(1, 8, 3, act=nn.ReLU()), nn.MaxPool2d(2), conv_bn(8, 16, 3, act=nn.ReLU()),
                                 nn.MaxPool2d((4, 1)))
        self.rnn = nn.LSTM(16, 8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        f = self.cnn(x).squeeze(2)          # (N, C, W)
        seq, _ = self.rnn(f.permute(2, 0, 1))  # (W, N, C)
        return self.fc(seq)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block as its code writes it: a 7x7 depthwise conv, permute to channels-last, LayerNorm over
    C, Linear 4C, GELU, Linear C, the layer scale, permute back, the residual; and the channels-first
    LayerNorm of its downsampling layers (mean, pow, sqrt over dim 1)."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.w, self.b = nn.Parameter(torch.rand(c) + 0.5), nn.Parameter(torch.rand(c) - 0.5)
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pw1, self.act, self.pw2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.rand(c) + 0.5)

    def forward(self, x):
        x = self.stem(x)
        u = x.mean(1, keepdim=True)                     # the channels-first LayerNorm
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + 1e-6)
        x = self.w[:, None, None] * x + self.b[:, None, None]
        y = self.dw(x).permute(0, 2, 3, 1)             # (N, H, W, C)
        y = self.gamma * self.pw2(self.act(self.pw1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ViTBlock(nn.Module):
    def __init__(self, c: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, c, 4, 4)
        self.ln = nn.LayerNorm(c)
        self.qkv, self.heads, self.proj = nn.Linear(c, 3 * c), heads, nn.Linear(c, c)
        self.mlp = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))

    def forward(self, x):
        t = self.ln(self.patch(x).flatten(2).transpose(1, 2))  # (N, T, C)
        n, tokens, c = t.shape
        qkv = self.qkv(t).reshape(n, tokens, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]   # lone indices: recorded since issue 9
        a = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(-1)
        t = t + self.proj((a @ v).transpose(1, 2).reshape(n, tokens, c))
        return t + self.mlp(t)


TARGETS = ("caffe", "caffe-master", "opencv")  # opencv: its ReLU6, Swish, HardSwish (in OpenCV alone)


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


class FamilyCase(OpTestCase):
    group = "families"

    def family(self, name: str, model: nn.Module, shape: tuple[int, ...]) -> None:
        """Calibrated, then exact at every level on every target."""
        model = calibrate(model, shape)
        torch.manual_seed(1)
        self.check(name, model, randn(*shape), targets=TARGETS)


class Families(FamilyCase):

    def test_yolov5(self) -> None:
        self.family("yolov5", YoloV5(), (1, 3, 32, 32))

    def test_unet(self) -> None:
        self.family("unet", UNet(), (1, 3, 16, 20))

    def test_espcn(self) -> None:
        self.family("espcn", ESPCN(), (1, 1, 12, 10))

    def test_mobilefacenet(self) -> None:
        self.family("mobilefacenet", MobileFaceNet(), (1, 3, 16, 16))

    def test_cbam(self) -> None:
        self.family("cbam", CBAM(), (1, 3, 12, 14))

    def test_aspp(self) -> None:
        self.family("aspp", ASPP(), (1, 3, 32, 24))

    def test_ssh(self) -> None:
        self.family("ssh", SSH(), (1, 3, 16, 16))

    def test_ssh_permuted(self) -> None:
        self.family("ssh_permuted", SSH(permute=True), (1, 3, 16, 16))

    def test_vit_block(self) -> None:
        self.family("vit", ViTBlock(), (1, 3, 16, 16))

    def test_convnext_block(self) -> None:
        self.family("convnext", ConvNeXtBlock(), (1, 3, 10, 10))

    def test_refused_with_reason(self) -> None:
        for name, model, shape, op, want in [
            ("crnn", CRNN(), (1, 1, 8, 12), "lstm",
             "lstm: not lowered for any target: Caffe's LSTM layer computes it"),
        ]:
            with self.subTest(case=name):
                model = calibrate(model, shape)
                log, _ = self.record(name, model, randn(*shape))
                r = parity.compile_log(log, self.dir + f"/{name}.prototxt", "-O1")
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(want, r.stderr)
                self.assertIn(f"= {op}(", open(log, encoding="utf-8").read())


class Torchvision(FamilyCase):

    def test_deeplabv3_mobilenet_v3_large(self) -> None:
        import torchvision
        model = torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                           num_classes=4)
        self.family("deeplabv3_mnv3", model, (1, 3, 64, 64))

    def test_ssdlite320_backbone_and_head(self) -> None:
        import torchvision
        ssd = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                        num_classes=5)

        class BackboneHead(nn.Module):
            """Each feature map's raw class and box convs: what runs before SSD's (Python) post-processing."""

            def __init__(self) -> None:
                super().__init__()
                self.backbone, self.cls, self.box = (ssd.backbone, ssd.head.classification_head.module_list,
                                                     ssd.head.regression_head.module_list)

            def forward(self, x):
                feats = list(self.backbone(x).values())
                return [c(f) for c, f in zip(self.cls, feats)] + [b(f) for b, f in zip(self.box, feats)]

        self.family("ssdlite320", BackboneHead(), (1, 3, 320, 320))


if __name__ == "__main__":
    ptcctest.main()
