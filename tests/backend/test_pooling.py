"""The pooling matrix (issue 4): max_pool2d and avg_pool2d against PyTorch in OpenCV dnn and in BVLC Caffe
(when pycaffe imports: parity.require_bvlc), for H×H inputs with H from 4 to 40, kernel 1-3, stride 1-3,
padding 0..kernel//2, ceil_mode off and on:
37 × 15 × 2 × 2 = 2220 configurations with count_include_pad=True (and MAX), plus every AVE configuration
again with count_include_pad=False (1110), which must be exact or, where padding is counted (p > 0), a
precise error at each such op's log line.

Fast by construction: for each H, all configurations are branches of ONE module (one record, one compile
per level, one forward per runtime with many outputs).  Outputs come back in the net's order, which is the
trace's; each is also checked for PyTorch's exact shape, which is where Caffe's ceil rule differs
(docs/runtime-facts.md S2).  PTCC_POOL_LEVELS="-O1" restricts the levels (default: -O0 -O1 -O2).
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn

import ptcctest
import parity

parity.require_tools()
parity.require_bvlc()

from optest import OpTestCase, diagnostics  # noqa: E402

HS = range(4, 41)
KPS = [(k, p) for k in (1, 2, 3) for p in range(0, k // 2 + 1)]
STRIDES = (1, 2, 3)
CEILS = (False, True)
LEVELS = os.environ.get("PTCC_POOL_LEVELS", "-O0 -O1 -O2").split()
# target caffe at each level; target opencv, whose ceil_mode: false pools with PyTorch's floor rounding
# (no Slice crop), at -O1 in OpenCV (issue 14)
RUNS = [(level, "caffe") for level in LEVELS] + [("-O1", "opencv")]


def label(kind: str, h: int, k: int, s: int, p: int, ceil: bool) -> str:
    return f"{kind} H={h} k={k} s={s} p={p} ceil={'on' if ceil else 'off'}"


class Branches(nn.Module):
    def __init__(self, pools: list[nn.Module]) -> None:
        super().__init__()
        self.pools = nn.ModuleList(pools)

    def forward(self, x):
        return [p(x) for p in self.pools]


class PoolingMatrix(OpTestCase):
    group = "pooling"

    def run_matrix(self, kind: str, make, configs) -> tuple[int, list[str]]:
        """Returns (output comparisons, failures): each configuration at each level in each runtime."""
        failures: list[str] = []
        n = 0
        for h in HS:
            cfgs = list(configs(h))
            module = Branches([make(*c) for c in cfgs])
            x = torch.randn(1, 2, h, h)
            log, want = self.record(f"{kind}-H{h}", module, x)
            compared: dict[str, set[str]] = {}  # parity.net_key -> runtimes that ran it (optest.check's rule)
            for level, target in RUNS:
                prototxt = os.path.join(self.dir, f"{kind}-H{h}{level}-{target}.prototxt")
                try:
                    parity.compile_ok(log, prototxt, level, f"--target={target}")
                except AssertionError as e:
                    failures.append(f"{kind} H={h} {level} {target}: {str(e)[:600]}")
                    continue
                bad = len(failures)
                done = compared.setdefault(parity.net_key(prototxt), set())
                for runtime in parity.runtimes(target):
                    if runtime in done:  # the same net as an earlier level's: its comparisons stand
                        n += len(cfgs)
                        self.shared += len(cfgs)
                        continue
                    done.add(runtime)
                    labels = [f"{label(kind, h, *c)} {level} {target}" for c in cfgs]
                    n += self.compare_branches(f"{kind} H={h} {level}", runtime, prototxt, x, labels, want,
                                               failures)[0]
                if len(failures) == bad:
                    for p in (prototxt, parity.caffemodel_of(prototxt)):
                        os.unlink(p)
        return n, failures

    def compare_branches(self, what: str, runtime: str, prototxt: str, x: torch.Tensor, labels: list[str],
                         want: list, failures: list[str]) -> tuple[int, int]:
        """Run the net in `runtime`, compare output i with want[i] (failures named labels[i] and the
        runtime); returns (outputs compared, outputs exact)."""
        try:
            names, outs = parity.run_named(runtime, prototxt, parity.caffemodel_of(prototxt), [x.numpy()], ["x"])
        except Exception as e:  # noqa: BLE001 (cv2.error, parity.CaffeRefused: this module's failure)
            failures.append(f"{what} {runtime}: whole module failed: {type(e).__name__}: {str(e)[:600]}")
            return 0, 0
        if len(outs) != len(want):
            failures.append(f"{what} {runtime}: {len(outs)} outputs, want {len(want)}")
            return 0, 0
        exact = 0
        for lab, name, o, w in zip(labels, names, outs, want):
            bad = parity.shape_error(o, w, runtime)
            err = parity.error(o, w) if bad is None else float("inf")
            if bad is not None or err > parity.TOLERANCE:
                failures.append(f"{lab} {runtime} ({name}): " + (bad or f"max |Δ| {err:.3e}"))
            else:
                exact += 1
        return len(outs), exact

    shared = 0  # comparisons a byte-identical net of an earlier level had already made

    def report(self, what: str, n: int, failures: list[str]) -> None:
        print(f"\n{what}: {n} output comparisons ({len(LEVELS)} levels; {', '.join(parity.runtimes())}; "
              f"target opencv at -O1; {self.shared} of them by a byte-identical net run once), "
              f"{len(failures)} failures")
        for f in failures[:40]:
            print("  " + f)
        if len(failures) > 40:
            print(f"  ... and {len(failures) - 40} more")
        with open(os.path.join(ptcctest.OUT, f"pooling-{what.split()[0]}.txt"), "w") as out:
            out.write(f"{what}: {n} comparisons, {len(failures)} failures\n" + "".join(f + "\n" for f in failures))
        self.assertEqual(failures, [], f"{len(failures)} failing pooling configurations; first: {failures[:1]}")

    def setUp(self) -> None:
        super().setUp()
        self.shared = 0

    def test_max(self) -> None:
        def configs(h):
            return [(k, s, p, c) for k, p in KPS for s in STRIDES for c in CEILS]
        n, failures = self.run_matrix("max", lambda k, s, p, c: nn.MaxPool2d(k, s, p, ceil_mode=c), configs)
        per_run = len(HS) * len(KPS) * len(STRIDES) * len(CEILS)
        self.assertEqual(n, per_run * (len(LEVELS) * len(parity.runtimes()) + len(parity.runtimes("opencv"))))
        self.report("max pooling", n, failures)

    def test_avg_count_include_pad(self) -> None:
        def configs(h):
            return [(k, s, p, c) for k, p in KPS for s in STRIDES for c in CEILS]
        n, failures = self.run_matrix(
            "avg", lambda k, s, p, c: nn.AvgPool2d(k, s, p, ceil_mode=c, count_include_pad=True), configs)
        self.report("avg pooling count_include_pad=True", n, failures)

    def test_avg_exclude_pad_unpadded(self) -> None:
        # with p = 0 no padding is counted either way: must compile and be exact
        def configs(h):
            return [(k, s, p, c) for k, p in KPS if p == 0 for s in STRIDES for c in CEILS]
        n, failures = self.run_matrix(
            "avgx0", lambda k, s, p, c: nn.AvgPool2d(k, s, p, ceil_mode=c, count_include_pad=False), configs)
        self.report("avgx0 pooling count_include_pad=False p=0", n, failures)

    def test_avg_exclude_pad_padded(self) -> None:
        """p > 0: exact (docs/runtime-facts.md S3 has the recipe) or an error at every such op's line."""
        cfgs = [(k, s, p, c) for k, p in KPS if p > 0 for s in STRIDES for c in CEILS]
        failures: list[str] = []
        exact = refused = 0
        example = ""
        for h in HS:
            module = Branches([nn.AvgPool2d(k, s, p, ceil_mode=c, count_include_pad=False) for k, s, p, c in cfgs])
            x = torch.randn(1, 2, h, h)
            log, want = self.record(f"avgx-H{h}", module, x)
            prototxt = os.path.join(self.dir, f"avgx-H{h}.prototxt")
            r = parity.compile_log(log, prototxt, "-O1", "--max-errors=0")
            if r.returncode == 0:
                for target in ("caffe", "opencv"):  # opencv: floor rounding, its ones-blob pooled alike
                    prototxt = os.path.join(self.dir, f"avgx-H{h}-{target}.prototxt")
                    parity.compile_ok(log, prototxt, "-O1", f"--target={target}")
                    labels = [f"{label('avg exclude-pad', h, *c)} {target}" for c in cfgs]
                    for runtime in parity.runtimes(target):
                        exact += self.compare_branches(f"avgx H={h} {target}", runtime, prototxt, x, labels, want,
                                                       failures)[1]
                continue
            if r.returncode != 1:
                failures.append(f"avgx H={h}: exit {r.returncode}: {r.stderr[:300]}")
                continue
            if os.path.exists(prototxt):
                failures.append(f"avgx H={h}: exit 1 but {prototxt} was written")
            lines = self.log_line(log, "avg_pool2d(")
            diags = diagnostics(r.stderr)
            got_lines = [d[1] for d in diags]
            if got_lines != lines:
                failures.append(f"avgx H={h}: errors at lines {got_lines}, avg_pool2d ops at {lines}")
            for d in diags:
                if "avg_pool2d" not in d[3] or "count_include_pad" not in d[3]:
                    failures.append(f"avgx H={h}: imprecise message {d}")
            refused += len(diags)
            example = example or r.stderr.splitlines()[0]
        print(f"\navg_pool2d count_include_pad=False, p > 0: {len(HS) * len(cfgs)} configurations; "
              f"{exact} exact comparisons ({', '.join(parity.runtimes())}), {refused} refused with an error; "
              f"{len(failures)} failures")
        if example:
            print("  e.g. " + example)
        for f in failures[:40]:
            print("  " + f)
        self.assertEqual(failures, [])


if __name__ == "__main__":
    ptcctest.main()
