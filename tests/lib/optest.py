"""Record a small module, compile it at each level, run it in OpenCV dnn and in BVLC Caffe (when pycaffe
imports: parity.require_bvlc()) and compare with PyTorch.

Used by tests/backend/test_ops.py and test_pooling.py.  Everything runs in one Python process (torch and
cv2 are imported once); only ptcc is a subprocess, and parity's one BVLC worker.
"""

from __future__ import annotations

import os
import re
import shutil
import unittest
from typing import Sequence

import numpy as np

import parity
import ptcctest

LEVELS = ("-O0", "-O1", "-O2")

_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$", re.M)


def diagnostics(stderr: str) -> list[tuple[str, int, int, str]]:
    """The `file:line:col: error: message` lines of ptcc's stderr."""
    return [(m["file"], int(m["line"]), int(m["col"]), m["msg"]) for m in _DIAG.finditer(stderr)]


def as_list(result) -> list:
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return list(result.values())
    return list(result)


class OpTestCase(unittest.TestCase):
    """check(): record `module` on `inputs`, compile at LEVELS, compare every output in OpenCV and BVLC."""

    group = "ops"
    via = "calls"  # the recorder record() uses: "autograd" in tests/backend/test_autograd.py

    def setUp(self) -> None:
        import torch

        torch.manual_seed(0)
        self.dir = ptcctest.out_dir(self.group, self.id().rsplit(".", 1)[-1])

    def tearDown(self) -> None:
        if os.environ.get("PTCC_KEEP_OUTPUTS") != "1" and not self._outcome_failed():
            shutil.rmtree(self.dir, ignore_errors=True)

    def _outcome_failed(self) -> bool:
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        errors = getattr(outcome, "errors", None)   # Python ≤ 3.10
        if errors is not None:
            return any(exc is not None for _, exc in errors)
        result = getattr(outcome, "result", None)
        return bool(result and (result.failures or result.errors))

    def record(self, name: str, module, *inputs) -> tuple[str, list]:
        from ptcc.record import record

        log = os.path.join(self.dir, name + ".log")
        got = record(module.eval(), inputs, log, via=self.via)
        return log, [t.detach().numpy().copy() for t in as_list(got)]

    def check(self, name: str, module, *inputs, levels: Sequence[str] = LEVELS, input_names=None,
              tol: float = parity.TOLERANCE, rel_tol: float | None = None,
              targets: Sequence[str] = ("caffe",)) -> dict[str, list]:
        """Returns {level: [layer types]} (target caffe; "TARGET LEVEL" for the others) for structural
        assertions by the caller.  Target opencv runs in OpenCV alone (its own layers are not BVLC's)."""
        log, want = self.record(name, module, *inputs)
        xs = [t.numpy() for t in inputs]
        types = {}
        compared: dict[str, set[str]] = {}  # parity.net_key -> runtimes that ran that very net
        validated: dict[str, str] = {}  # parity.net_key -> the target it was validated for
        for target in targets:
            for level in levels:
                key = level if target == "caffe" else f"{target} {level}"
                suffix = level if target == "caffe" else f"-{target}{level}"
                with self.subTest(case=name, level=level, target=target):
                    prototxt = os.path.join(self.dir, f"{name}{suffix}.prototxt")
                    parity.compile_ok(log, prototxt, level, f"--target={target}", check=False)
                    net = parity.net_key(prototxt)
                    if net not in validated or (validated[net] == "opencv" and target != "opencv"):
                        parity.validate_ok(prototxt, f"--target={target}")  # else: validated already
                        validated[net] = target
                    layers = parity.prototxt_layers(prototxt)
                    types[key] = [l.type for l in layers]
                    in_names = [l.top[0] for l in layers if l.type == "Input"]
                    if input_names is not None:
                        self.assertEqual(in_names, list(input_names), "Input layer tops")
                    # one Input layer per input, but for an input no op reads (left out, with a warning)
                    trace_names = parity.trace_inputs(log)
                    self.assertEqual(len(trace_names), len(xs), "one trace input per input")
                    self.assertTrue(set(in_names) <= set(trace_names), f"Input layers {in_names} of {trace_names}")
                    feed = [xs[trace_names.index(n)] for n in in_names]
                    # a level or target that wrote the same net as an earlier one (caffe-master is
                    # caffe's; -O2 is -O1's where nothing folds) ran already: byte-equal nets run alike
                    done = compared.setdefault(net, set())
                    for runtime in parity.runtimes(target):
                        if runtime in done:
                            continue
                        done.add(runtime)
                        with self.subTest(runtime=runtime):
                            self.compare(f"{name} {key} {runtime}", runtime, prototxt, feed, in_names, want, tol,
                                         rel_tol)
        return types

    def compare(self, what: str, runtime: str, prototxt: str, xs: list, in_names: list, want: list,
                tol: float, rel_tol: float | None) -> None:
        """Run the net in `runtime` (parity.RUNTIMES) and compare every output with PyTorch's."""
        try:
            names, outs = parity.run_outputs(runtime, prototxt, parity.caffemodel_of(prototxt), xs, in_names)
        except parity.CaffeRefused as e:
            self.fail(f"{what}: BVLC Caffe refused the net: {e}")
        self.assertEqual(len(outs), len(want), f"{what}: {len(outs)} outputs {names}, PyTorch has {len(want)}")
        for i, (o, w) in enumerate(zip(outs, want)):
            bad = parity.shape_error(o, w, runtime)
            self.assertIsNone(bad, f"{what} output {i} ({names[i]}): {bad}")
            err = parity.error(o, w)
            self.assertLessEqual(err, tol, f"{what} output {i} ({names[i]}): max |Δ| {err:.3e}")
            if rel_tol is not None:
                rel = parity.relative_error(o, w)
                self.assertLessEqual(rel, rel_tol, f"{what} output {i} ({names[i]}): max |Δ| / max |ref| {rel:.3e}")

    def exact_or_error(self, name: str, module, *inputs, op: str) -> str:
        """ptcc either lowers `module` exactly (checked at every level) or refuses it with exit 1 and
        diagnostics at lines of the log that call `op`, each naming it.  Never a wrong result, a crash
        or another exit status.  Returns "exact" or the first diagnostic line."""
        log, _ = self.record(name, module, *inputs)
        prototxt = os.path.join(self.dir, f"{name}-probe.prototxt")
        r = parity.compile_log(log, prototxt, "-O1")
        if r.returncode == 0:
            self.check(name, module, *inputs)
            return "exact"
        self.assertEqual(r.returncode, 1, f"{name}: ptcc exit {r.returncode}:\n{r.stderr}")
        self.assertFalse(os.path.exists(prototxt), "a prototxt was written despite the error")
        diags = diagnostics(r.stderr)
        self.assertTrue(diags, f"no diagnostic:\n{r.stderr}")
        lines = self.log_line(log, f" = {op}")
        for d in diags:
            self.assertIn(d[1], lines, f"{name}: diagnostic not at a line of {op}: {d}; {op} at {lines}")
            self.assertIn(op, d[3], f"{name}: the message does not name {op}: {d}")
        return r.stderr.splitlines()[0]

    def compile_error(self, name: str, module, *inputs, level: str = "-O1") -> tuple[str, list]:
        """Record and compile, expecting exit 1 and no output files; returns (log, diagnostics)."""
        log, _ = self.record(name, module, *inputs)
        prototxt = os.path.join(self.dir, f"{name}.prototxt")
        r = parity.compile_log(log, prototxt, level)
        self.assertEqual(r.returncode, 1, f"ptcc exit {r.returncode}; stderr:\n{r.stderr}")
        self.assertFalse(os.path.exists(prototxt), "a prototxt was written despite the error")
        self.assertFalse(os.path.exists(parity.caffemodel_of(prototxt)), "a caffemodel was written")
        diags = diagnostics(r.stderr)
        self.assertTrue(diags, f"no GCC-style diagnostic in:\n{r.stderr}")
        return log, diags

    def log_line(self, log: str, pattern: str) -> list[int]:
        """1-based numbers of the log's lines that contain `pattern`."""
        with open(log, encoding="utf-8") as f:
            return [i for i, line in enumerate(f, 1) if pattern in line]
