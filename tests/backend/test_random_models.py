"""Random-model differential testing (issue 7): a fixed set of seeded random models (tests/lib/randmodel.py)
is recorded, compiled at -O0, -O1 and -O2 for every target, and run in OpenCV dnn and, for targets caffe
and caffe-master, BVLC Caffe.  Each compilation is exact (every output within 1e-4 · max(1, max |ref|)
of PyTorch, or no further from a float64 run than PyTorch's float32 is) or refused with exit 1 and
located diagnostics; never exit 0 with a wrong output, a crash, or a net a runtime refuses.

The Regressions class holds the failures the generator found, each minimised to a small named model.

PTCC_RANDOM_SEEDS=N and PTCC_RANDOM_FIRST=S change the seeds; `make fuzz-models COUNT=N SEED=S` runs long
campaigns.  A failing seed keeps its files in $PTCC_TEST_OUT/random/seed-S (README.txt: the model and
how to reproduce it).
"""

from __future__ import annotations

import os
import random
import time
import unittest

import ptcctest
import parity

parity.require_tools()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from testmodules import Lambda  # noqa: E402

import randmodel  # noqa: E402

FIRST = int(os.environ.get("PTCC_RANDOM_FIRST") or 0)
COUNT = int(os.environ.get("PTCC_RANDOM_SEEDS") or 500)
BVLC = parity.require_bvlc()


class RandomModels(unittest.TestCase):
    def test_seeds(self) -> None:
        torch.set_num_threads(1)
        out = ptcctest.out_dir("random")
        start = time.perf_counter()
        results = [randmodel.run_seed(seed, out, BVLC) for seed in range(FIRST, FIRST + COUNT)]
        print(randmodel.summarise(results, time.perf_counter() - start))
        failed = [(seed, r) for seed, r in zip(range(FIRST, FIRST + COUNT), results) if r.failures]
        if failed:
            print("failure kinds: " + randmodel.failure_kinds([r for _, r in failed]))
            self.fail(f"{len(failed)} of {COUNT} random models failed:\n\n"
                      + "\n\n".join(randmodel.report(r, seed) for seed, r in failed))


class Oracle(unittest.TestCase):
    """The checks themselves can fail: a wrong reference, an unlocated refusal, a seed's determinism."""

    def test_wrong_reference_is_caught(self) -> None:
        model = Lambda(lambda s, x: F.relu(s.conv(x)), conv=nn.Conv2d(3, 4, 3))
        x = torch.randn(1, 3, 6, 6)
        directory = ptcctest.out_dir("random", "oracle")
        result = randmodel.check_model(model, [x], "oracle", directory, targets=("caffe",), levels=("-O1",),
                                       bvlc=BVLC)
        self.assertEqual(result.failures, [])
        (net,) = [randmodel.Net(os.path.join(directory, "caffe-O1.prototxt"), [("caffe", "-O1")])]
        with torch.no_grad():
            want = model(x).numpy()
        for wrong in (want * 1.001 + 1e-3, want[:, :3], want + 1e-3 * (want == want.max())):
            problems = randmodel.check_net(net, result.log, [x.numpy()], [wrong], [wrong.astype("float64")],
                                           BVLC, result)
            self.assertTrue(problems and all("[wrong-value]" in p for p in problems), problems)
            self.assertEqual(len(problems), 2 if BVLC else 1, problems)

    def test_unlocated_refusal_is_caught(self) -> None:
        import subprocess

        log = os.path.join(ptcctest.out_dir("random", "oracle"), "model.log")
        with open(log, "w") as f:
            f.write("ptcc-trace 1\n%1 = gelu(%0)\n")
        bare = subprocess.CompletedProcess([], 1, "", "ptcc: error: something\n")
        self.assertTrue(randmodel.check_refusal(log, bare, log + ".prototxt"))
        located = subprocess.CompletedProcess([], 1, "", f"{log}:2:6: error: gelu: no exact lowering\n")
        self.assertEqual(randmodel.check_refusal(log, located, log + ".prototxt"), [])
        elsewhere = subprocess.CompletedProcess([], 1, "", f"{log}:2:6: error: something else\n")
        self.assertTrue(randmodel.check_refusal(log, elsewhere, log + ".prototxt"))

    def test_seed_is_reproducible(self) -> None:
        a, xa = randmodel.generate(12345)
        b, xb = randmodel.generate(12345)
        self.assertEqual(a.describe(), b.describe())
        self.assertTrue(all(torch.equal(p, q) for p, q in zip(xa, xb)))
        self.assertTrue(all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values())))


# --- regressions: each failure the generator found, minimised ----------------------------------------

def calibrated_bn(c: int, rank: int = 4) -> nn.Module:
    return randmodel.calibrated_bn(c, rank, random.Random(1))


class Regressions(unittest.TestCase):
    """Every target and level, OpenCV and BVLC: exact, or refused with a located error."""

    def check(self, name: str, model: nn.Module, *inputs: torch.Tensor, exact: bool = False) -> None:
        torch.manual_seed(0)
        directory = ptcctest.out_dir("random", "regressions", name)
        result = randmodel.check_model(model, list(inputs), name, directory, bvlc=BVLC)
        if result.failures:
            self.fail("\n".join(result.failures))
        if exact:
            refused = {c: s for c, s in result.statuses.items() if s != "exact"}
            self.assertEqual(refused, {}, f"{name} must compile: {result.diagnostics[:1]}")

    def setUp(self) -> None:
        torch.manual_seed(0)

    def test_regression_unused_input(self) -> None:
        """F1 (seeds 9, 10, 65): an input that only dead code reads; OpenCV refused the net."""
        class Unused(nn.Module):
            def forward(self, x0, x1):
                return F.relu(x0)
        self.check("unused_input", Unused(), torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3))

    def test_regression_chunk_part_output(self) -> None:
        """F2 (seeds 1, 28): an output that is chunk part 1: OpenCV's forward(layer) gave part 0."""
        self.check("chunk_part_output", Lambda(lambda s, x: torch.chunk(F.relu(x), 2, dim=1)[1]),
                   torch.randn(1, 4, 3, 3))

    def test_regression_chunk_part_output_read_later(self) -> None:
        """F2 (seed 52): part 2 an output while parts 0 and 1 feed a layer: not reachable in OpenCV."""
        def f(s, x):
            a, b, c = torch.chunk(F.relu(x), 3, dim=1)
            return c, a * b
        self.check("chunk_part_read_later", Lambda(f), torch.randn(1, 6, 3, 3))

    def test_regression_eltwise_2d_batchnorm(self) -> None:
        """F3 (seed 20): Eltwise on (N, C) then BatchNorm: OpenCV's fusion got it wrong."""
        self.check("eltwise_2d_bn", Lambda(lambda s, x: s.bn(s.fc(x) + x), fc=nn.Linear(5, 5),
                                           bn=calibrated_bn(5, 2)), torch.randn(2, 5) * 3, exact=True)

    def test_regression_silu_2d_batchnorm(self) -> None:
        """F3: the same through silu's Eltwise PROD."""
        self.check("silu_2d_bn", Lambda(lambda s, x: s.bn(F.silu(x)), bn=calibrated_bn(5, 2)),
                   torch.randn(2, 5) * 3, exact=True)

    def test_regression_upsample_batchnorm(self) -> None:
        """F4 (seed 75): nearest upsampling (grouped Deconvolution) then BatchNorm: wrong in OpenCV."""
        self.check("upsample_bn", Lambda(lambda s, x: s.bn(F.interpolate(x, scale_factor=2)), bn=calibrated_bn(2)),
                   torch.randn(1, 2, 3, 8), exact=True)

    def test_regression_upsample_channel_mul(self) -> None:
        """F4: nearest upsampling then a per-channel parameter factor (a Scale)."""
        self.check("upsample_mul", Lambda(lambda s, x: F.interpolate(x, scale_factor=2) * s.p,
                                          p=nn.Parameter(torch.randn(1, 3, 1, 1) + 2)),
                   torch.randn(1, 3, 3, 4) * 3)

    def test_regression_reshape_top_in_place(self) -> None:
        """F5 (seed 340): BVLC's Reshape shares its bottom's memory; a ReLU made in place on the Reshape's
        top (-O1) rewrote the input that a Flatten also reads."""
        def f(s, x):
            return F.relu(x.view(1, 2, 6, 3)), x.flatten(1)
        self.check("reshape_top_in_place", Lambda(f), torch.randn(1, 4, 3, 3), exact=True)

    def test_regression_barrier_in_place_2d(self) -> None:
        """F5 (seed 350): the fusion barrier (a Reshape) after an Eltwise on (N, C), then a Scale made in
        place on it, rewrote the Eltwise's output, itself an output."""
        def f(s, x):
            y = s.fc(x) * x
            return y, y + s.p
        self.check("barrier_in_place_2d", Lambda(f, fc=nn.Linear(5, 5), p=nn.Parameter(torch.randn(1, 5))),
                   torch.randn(2, 5), exact=True)

    def test_regression_barrier_in_place_upsample(self) -> None:
        """F5 (seed 394): the barrier after a nearest upsampling, a Scale in place on it, and a Concat that
        reads the upsampling afterwards."""
        def f(s, x):
            u = F.interpolate(x, scale_factor=2)
            return torch.cat([u * s.p, u], 1)
        self.check("barrier_in_place_upsample", Lambda(f, p=nn.Parameter(torch.randn(1, 2, 1, 1))),
                   torch.randn(1, 2, 3, 3), exact=True)

    def test_regression_batch_norm_output_read_by_batch_norm(self) -> None:
        """F6 (seed 56): a BatchNorm's result, an output, read by another BatchNorm: garbage in OpenCV."""
        def f(s, x):
            y = s.bn1(x)
            return s.bn2(y), y
        self.check("bn_output_bn", Lambda(f, bn1=calibrated_bn(2), bn2=randmodel.calibrated_bn(2, 4, random.Random(2))),
                   torch.randn(1, 2, 8, 1) * 2, exact=True)

    def test_regression_batch_norm_output_read_by_scale(self) -> None:
        """F6: the same with a per-channel parameter factor (a one-bottom Scale) after the BatchNorm."""
        def f(s, x):
            y = s.bn(x)
            return y, y * s.p
        self.check("bn_output_scale", Lambda(f, bn=calibrated_bn(2), p=nn.Parameter(torch.randn(1, 2, 1, 1) + 2)),
                   torch.randn(1, 2, 8, 1) * 2, exact=True)

    def test_regression_softplus_threshold(self) -> None:
        """F7 (seed 1028): softplus(beta=1, threshold=2) was lowered as BNLL, which has no threshold:
        PyTorch returns x above it (0.13 off at x = 2)."""
        self.check("softplus_threshold", Lambda(lambda s, x: F.softplus(x, beta=1.0, threshold=2.0)),
                   torch.randn(1, 3, 4, 4) * 3)

    def test_regression_flatten_top_in_place(self) -> None:
        """F5 (seed 2124): a Power made in place on a Flatten top rewrote the input, which a mean then read
        (BVLC's Flatten shares its bottom's memory)."""
        def f(s, x):
            return torch.flatten(x, 2) * 0.25, torch.mean(x, dim=(-1, -2))
        self.check("flatten_top_in_place", Lambda(f), torch.randn(2, 3, 6, 7), exact=True)

    def test_regression_batch_norm_output_read_by_power(self) -> None:
        """F6 (seed 2540): a BatchNorm's result, an output, read by a Power: NaN in OpenCV."""
        self.check("bn_output_power", Lambda(lambda s, x: (lambda y: (y, y + 0.5))(s.bn(x)), bn=calibrated_bn(4)),
                   torch.randn(1, 4, 5, 5), exact=True)

    def test_regression_upsample_power_batchnorm(self) -> None:
        """F4 (seed 2131): a Power between the nearest upsampling and the BatchNorm did not stop OpenCV's
        fusion."""
        self.check("upsample_power_bn", Lambda(lambda s, x: s.bn(F.interpolate(x, scale_factor=3) - 0.25),
                                               bn=calibrated_bn(4)), torch.randn(1, 4, 5, 5), exact=True)

    def test_regression_pool_one_axis_padded(self) -> None:
        """F8 (13 of seeds 2000-2999): BVLC drops the last window of both axes when either is padded;
        ptcc and OpenCV only on the padded axis, so BVLC aborted on the crop Slice."""
        cases = [("max", lambda s, x: F.max_pool2d(x, (4, 1), (3, 2), (1, 0)), (1, 1, 11, 6)),
                 ("avg", lambda s, x: F.avg_pool2d(x, (2, 1), (1, 3), (1, 0)), (1, 2, 3, 3)),
                 ("avg_ceil_w", lambda s, x: F.avg_pool2d(x, (1, 4), (3, 1), (0, 2), ceil_mode=True), (2, 3, 3, 6))]
        for name, fn, shape in cases:
            with self.subTest(case=name):
                self.check(f"pool_one_axis_padded_{name}", Lambda(fn), torch.randn(*shape))

    def test_regression_detach_alias(self) -> None:
        """F9 (seed 2945): detach() shares its input's storage; the recorder did not see the alias and
        dropped an in-place write through it (the trace was wrong, so every net was)."""
        def write_base(s, x):
            a = s.conv(x)
            b = a.detach()
            a.mul_(0.5)
            return s.conv2(b)

        def write_alias(s, x):
            a = s.conv(x)
            b = a.detach()
            b.sub_(1.0)
            return s.conv2(a)
        for name, fn in (("write_base", write_base), ("write_alias", write_alias)):
            with self.subTest(case=name):
                self.check(f"detach_alias_{name}", Lambda(fn, conv=nn.Conv2d(3, 4, 1), conv2=nn.Conv2d(4, 2, 1)),
                           torch.randn(1, 3, 5, 5))

    def test_regression_dropout3d_view(self) -> None:
        """F10 (seed 5713): dropout3d of a 4-D tensor is a view of it (unbatched: unsqueeze, squeeze); an
        in-place ReLU of the input afterwards changed the dropout's result too."""
        def f(s, x):
            y = F.dropout3d(x, 0.5, training=False)
            x.relu_()
            return y + 1
        self.check("dropout3d_view", Lambda(f), torch.randn(1, 2, 4, 4))

    def test_regression_conv_power_output_read_by_relu(self) -> None:
        """F11 (seed 5545): conv, then a Power whose result is an output and is read by a ReLU: OpenCV
        fused both into the convolution and returned garbage for the Power's blob."""
        for name, fn in (("relu", lambda s, x: (lambda z: (F.relu(z), z))(s.conv(x) - 0.25)),
                         ("sigmoid", lambda s, x: (lambda z: (torch.sigmoid(z), z))(s.conv(x) * 2.0))):
            with self.subTest(case=name):
                self.check(f"conv_power_output_{name}", Lambda(fn, conv=nn.Conv2d(3, 4, 1)), torch.randn(1, 3, 5, 5),
                           exact=True)

    def test_regression_fused_output_read_by_concat(self) -> None:
        """F12 (seed 10813): the result of a chain OpenCV fuses (conv+ReLU, conv+Power, BatchNorm+Scale),
        an output that a Concat also reads: OpenCV's zero-copy Concat left the requested blob unwritten."""
        cases = (("conv_relu", lambda s, x: (lambda z: (torch.cat([z, s.conv(x)], 1), z))(F.relu(s.conv2(x)))),
                 ("conv_power", lambda s, x: (lambda z: (torch.cat([z, s.conv(x)], 1), z))(s.conv2(x) * 2.0)),
                 ("batch_norm", lambda s, x: (lambda z: (torch.cat([s.conv(x), z], 1), z))(s.bn(x))),
                 # seed 21873, target opencv: Convolution + BatchNorm + ReLU6 fused
                 ("conv_bn_relu6",
                  lambda s, x: (lambda z: (torch.cat([s.conv(x), z], 1), z))(F.relu6(s.bn(s.conv2(x))))))
        for name, fn in cases:
            with self.subTest(case=name):
                self.check(f"fused_output_concat_{name}", Lambda(fn, conv=nn.Conv2d(3, 2, 1), conv2=nn.Conv2d(3, 3, 1),
                                                                 bn=calibrated_bn(3)),
                           torch.randn(1, 3, 5, 5), exact=True)

    def test_regression_dropout_output_read_later(self) -> None:
        """F13 (seeds 30653, 31986): at -O0 a Dropout layer after a convolution, its result an output that
        another layer also reads: NaN in OpenCV."""
        for name, fn in (("power", lambda s, x: (lambda d: (d, d + 0.5))(s.drop(s.conv(x)))),
                         ("relu", lambda s, x: (lambda d: (d, F.relu(d)))(s.drop(s.conv(x))))):
            with self.subTest(case=name):
                self.check(f"dropout_output_{name}", Lambda(fn, conv=nn.Conv2d(3, 4, 1), drop=nn.Dropout(0.2)),
                           torch.randn(1, 3, 5, 5), exact=True)

    def test_regression_split_many_parts(self) -> None:
        """F14 (seed 32908): a split into 360 parts hit a parser limit whose message named no op."""
        self.check("split_many_parts", Lambda(lambda s, x: torch.split(x.view(2, -1), 1, dim=1)[7] * 2.0),
                   torch.randn(2, 4, 9, 10))

    def test_regression_param_operand(self) -> None:
        """Known before the generator ran: a parameter, buffer or constant as an arithmetic operand compiled
        silently wrong (its value id collided with the input's).  Per-channel and scalar operands must be
        exact; any other shape exact or refused."""
        class Operands(nn.Module):
            def __init__(self, shape: tuple, op: str) -> None:
                super().__init__()
                self.op = op
                self.p = nn.Parameter(torch.rand(shape) + 0.5)
                self.register_buffer("b", torch.rand(shape) + 0.5)

            def forward(self, x):
                y = F.relu(x)
                if self.op == "add":
                    return y + self.p
                if self.op == "rsub":
                    return self.b - y
                if self.op == "mul":
                    return self.b * y
                return y / self.p
        for shape, exact in (((1, 3, 1, 1), True), ((), True), ((3, 1, 1), True), ((1, 3, 4, 5), False),
                             ((1, 1, 4, 5), False)):
            for op in ("add", "rsub", "mul", "div"):
                with self.subTest(shape=shape, op=op):
                    self.check(f"operand_{op}_{'x'.join(map(str, shape)) or 'scalar'}", Operands(shape, op),
                               torch.randn(1, 3, 4, 5), exact=exact)

    def test_regression_cat_constant(self) -> None:
        """torch.cat([y, constant], 1): exact or refused, never wrong."""
        class CatConst(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("c", torch.randn(1, 2, 4, 5))

            def forward(self, x):
                return torch.cat([F.relu(x), self.c], 1)
        self.check("cat_constant", CatConst(), torch.randn(1, 3, 4, 5))

    def test_regression_avg_pool_exclude_pad_shared(self) -> None:
        """Known: avg_pool2d(count_include_pad=False) with padding lowers through a pooled mask; at -O1 an
        in-place layer on a blob with several readers broke BVLC Caffe."""
        def f(s, x):
            y = s.conv(x)
            return F.avg_pool2d(y, 3, 1, 1, count_include_pad=False) + y, F.relu(y)
        self.check("avg_exclude_pad_shared", Lambda(f, conv=nn.Conv2d(3, 4, 1)), torch.randn(1, 3, 6, 7),
                   exact=True)

    def test_regression_dropout3d_inplace(self) -> None:
        """Known: dropout3d(..., inplace=True) was refused; in eval mode it is the identity."""
        self.check("dropout3d_inplace", Lambda(lambda s, x: F.relu(F.dropout3d(s.conv(x), 0.5, training=False,
                                                                               inplace=True)), conv=nn.Conv2d(3, 4, 1)),
                   torch.randn(1, 3, 5, 5), exact=True)


    def test_regression_reduction_squeezed_by_flatten(self) -> None:
        """Issue 9 (seeds 20018, 20028, 20061): sum and amax over H, W without keepdim end in a Flatten, which
        their ops.def layers column lacked: an internal error instead of a net."""
        self.check("reduction_flatten", Lambda(lambda s, x: (torch.sum(x, dim=(2, 3)), torch.amax(x, (2, 3)),
                                                             torch.amin(x, (3, 2)), x.max(2)[0].max(2)[0])),
                   torch.randn(2, 3, 4, 5), exact=True)

    def test_regression_prelu_after_2d_eltwise(self) -> None:
        """Issue 9 (seed 910039): OpenCV folds a PReLU into an Eltwise with a 2-D top (the clamp chain's last
        layer) and gets it wrong (0.42 off); PReLU is now among the layers a barrier keeps apart."""
        prelu = nn.PReLU(5)
        with torch.no_grad():
            prelu.weight.uniform_(-2, 2)
        self.check("prelu_after_2d_eltwise", Lambda(lambda s, x: s.p(torch.clamp(s.fc(x), -0.61, 1.7)),
                                                    fc=nn.Linear(9, 5), p=prelu), torch.randn(1, 9), exact=True)

    def test_regression_layer_norm_tiny_variance_rows(self) -> None:
        """Issue 9 (seed 930051): layer_norm of rows that are nearly constant (there a padded conv's bias
        rows; here rows of 5 + 0.001·x): Caffe's AVE Pooling sums in order, and one pass of x - mean was 100x
        further from float64 than PyTorch; the norms now centre twice."""
        ln = nn.LayerNorm(170)
        with torch.no_grad():
            ln.weight.uniform_(-1.5, 1.5)
            ln.bias.uniform_(-1.5, 1.5)
        self.check("layer_norm_tiny_variance", Lambda(lambda s, x: s.ln(x * 0.001 + 5.0), ln=ln),
                   torch.randn(1, 2, 6, 170), exact=True)

    def test_regression_batch_norm_after_inner_product_on_a_later_axis(self) -> None:
        """Issue 9 (seed 80073): matmul by a parameter is an InnerProduct on axis 3; OpenCV folded the
        BatchNorm after it into it and got it wrong (up to 1e29 off); a barrier keeps them apart."""
        m = Lambda(lambda s, x: s.bn(torch.matmul(F.adaptive_avg_pool2d(F.softmax(x, 2), (15, 1)), s.w)),
                   bn=calibrated_bn(1))
        m.w = nn.Parameter(torch.tensor([[0.52, -0.372]]))
        self.check("inner_product_axis3_batch_norm", m, torch.randn(1, 1, 15, 15), exact=True)

    def test_regression_squeeze_to_no_axes(self) -> None:
        """Issue 9 (seed 177): squeeze of a (1, 1, 1, 1) mean has no axis left; the Reshape to no axes
        compiled, and OpenCV refused the net. Now refused at its line."""
        self.check("squeeze_to_no_axes", Lambda(lambda s, x: (x.mean((2, 3), keepdim=True).squeeze(), F.relu(x))),
                   torch.randn(1, 1, 3, 11))

if __name__ == "__main__":
    ptcctest.main()
