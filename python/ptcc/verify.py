"""ptcc-verify: run a model in PyTorch and its compiled Caffe net in OpenCV dnn and BVLC Caffe on the same
seeded input, compare every output, and with --layers find the first layer that differs.

    ptcc-verify SPEC --input 1x3x224x224 [--arg NAME=VALUE]... [--seed N] NET.prototxt [-w NET.caffemodel]
                [--runtime auto|opencv|caffe] [--layers] [--tolerance T]

SPEC, --input, --arg and --seed are those given to ptcc-record: the model and its input are rebuilt exactly
as the recorder built them.  Outputs pair by name: a dict's keys and a tuple's positions (output0, ...) are
the Caffe blobs' names.  An output passes when max |Δ| ≤ T · max(1, max |ref|) (T = 1e-4); an output whose
reference is vanishing or constant proves nothing and does not pass.  Exit status 0 pass, 1 mismatch (or
nothing proven), 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from . import __version__, runtime
from .cli import UsageError
from .record import RecordError
from .runtime import NetLayer, NetText, RuntimeFailure

TOLERANCE = 1e-4
EXIT_MISMATCH = 1
EXIT_USAGE = 2
# An output is "vanishing" when even a net that writes zeros would be within this many tolerances of it.
VANISHING = 100
# A layer is wrong when its error is over the tolerance and this many times what its inputs brought.
GROWTH = 10


@dataclass
class OutputCheck:
    runtime: str
    name: str
    shape: tuple
    max_abs: float = float("nan")   # max |Caffe - PyTorch|
    max_ref: float = float("nan")   # max |PyTorch|
    verdict: str = "ok"             # ok, MISMATCH, INCONCLUSIVE
    why: str = ""

    @property
    def relative(self) -> float:
        return self.max_abs / max(1.0, self.max_ref)


@dataclass
class LayerCheck:
    layer: NetLayer
    top: str
    handle: int
    line: int
    relative: float
    problem: str = ""               # a shape that does not fit
    over: bool = False              # over the tolerance
    differs: bool = False           # over it by more than its bottoms' error carried (_mark_divergences)


@dataclass
class Report:
    outputs: list[OutputCheck] = field(default_factory=list)
    layers: dict[str, list[LayerCheck]] = field(default_factory=dict)      # by runtime
    divergence: dict[str, Optional[LayerCheck]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)                      # runtimes that could not run the net
    notes: list[str] = field(default_factory=list)
    trace_lines: list[str] = field(default_factory=list)                   # the re-recorded trace, for --layers
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return (not self.failures and bool(self.outputs) and all(o.verdict == "ok" for o in self.outputs)
                and not any(self.divergence.values()))


def named_outputs(result: Any) -> list[tuple[str, np.ndarray]]:
    """The model's outputs with the names the recorder gives them: "" for a lone tensor, a tuple's
    positions output0, output1, ..., a dict's keys."""
    import torch

    if isinstance(result, torch.Tensor):
        return [("", result.detach().numpy())]
    if isinstance(result, dict):
        return [(str(k), v.detach().numpy()) for k, v in result.items()]
    return [(f"output{i}", v.detach().numpy()) for i, v in enumerate(result)]


def pair_outputs(want: list[tuple[str, np.ndarray]], declared: list[str], notes: list[str]) -> list[str]:
    """The Caffe blob of each PyTorch output: by name when the net has it, else by position."""
    if len(want) != len(declared):
        raise RuntimeFailure(f"the net has {len(declared)} outputs ({', '.join(declared)}), the model "
                             f"{len(want)}")
    blobs = []
    for i, (name, _) in enumerate(want):
        if name in declared:
            blobs.append(name)
        else:
            if name:
                notes.append(f"output {name!r} has no blob of that name (a trace recorded before ptcc kept "
                             f"names?): compared with {declared[i]!r}, the net's output {i}")
            blobs.append(declared[i])
    return blobs


def check_output(rt: str, name: str, got: np.ndarray, want: np.ndarray, tol: float) -> OutputCheck:
    c = OutputCheck(rt, name, tuple(want.shape))
    if got.size != want.size:
        c.verdict, c.why = "MISMATCH", f"the net's output has shape {tuple(got.shape)}"
        return c
    got = got.reshape(want.shape).astype(np.float64)
    ref = want.astype(np.float64)
    c.max_abs = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    c.max_ref = float(np.max(np.abs(ref))) if ref.size else 0.0
    bound = tol * max(1.0, c.max_ref)
    if not np.all(np.isfinite(got)):
        c.verdict, c.why = "MISMATCH", "the net's output is not finite"
    elif c.max_abs > bound:
        c.verdict, c.why = "MISMATCH", f"max |Δ| over {tol:g} · max(1, max |ref|)"
    elif c.max_ref < VANISHING * bound:
        c.verdict = "INCONCLUSIVE"
        c.why = (f"the reference is vanishing (max |ref| {c.max_ref:.3g} < {VANISHING} × the tolerance): "
                 "a net that outputs zeros would pass; give the model calibrated weights")
    elif ref.size > 1 and float(np.ptp(ref)) <= bound:
        c.verdict = "INCONCLUSIVE"
        c.why = "the reference is constant (every value within the tolerance of the others): a net that " \
                "ignores its input would pass"
    return c


def available_runtimes(choice: str, notes: list[str]) -> list[str]:
    """opencv, caffe or both (auto: OpenCV, and BVLC Caffe when its pycaffe imports)."""
    wanted = ["opencv", "caffe"] if choice == "auto" else [choice]
    found = []
    for rt in wanted:
        why = runtime.opencv_available() if rt == "opencv" else runtime.bvlc_available()
        if why is None:
            found.append(rt)
        elif choice == "auto" and rt == "caffe":
            notes.append(f"BVLC Caffe not run: {why}")
        else:
            raise UsageError(f"--runtime {rt}: {why}")
    return found


def verify(model: Any, inputs: Sequence[Any], prototxt: str, caffemodel: Optional[str] = None, *,
           runtime_choice: str = "auto", layers: bool = False, tolerance: float = TOLERANCE,
           trace: Optional[str] = None) -> Report:
    """Compare the net with the model on `inputs` (tensors).  With `layers`, also every layer's top that
    holds a trace value, against that value in a fresh recording of the model."""
    import torch

    report = Report(tolerance=tolerance)
    caffemodel = caffemodel or os.path.splitext(prototxt)[0] + ".caffemodel"
    for path in (prototxt, caffemodel):
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such file")
    try:
        net = runtime.read_net(prototxt)
    except UnicodeDecodeError:
        raise UsageError(f"{prototxt}: not a text prototxt (is it the caffemodel?)") from None
    if not net.declared:
        report.notes.append(f"{prototxt} has no '# outputs:' line: its outputs are taken to be the blobs no "
                            f"layer reads ({', '.join(net.outputs)})")
    rts = available_runtimes(runtime_choice, report.notes)
    if len(net.inputs) != len(inputs):
        raise UsageError(f"{prototxt} has {len(net.inputs)} inputs ({', '.join(net.inputs)}); "
                         f"{len(inputs)} --input shapes were given")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = named_outputs(model(*inputs))
    except Exception as e:  # the model's own code
        report.failures.append(f"the model raised {type(e).__name__}: {e}")
        return report
    finally:
        model.train(was_training)
    xs = [t.detach().numpy() for t in inputs]
    try:
        blobs = pair_outputs(want, net.outputs, report.notes)
    except RuntimeFailure as e:
        report.failures.append(str(e))
        return report
    try:
        values = _recorded_values(model, inputs, net, trace, prototxt, report) if layers else {}
    except RecordError as e:
        report.failures.append(f"--layers: the model cannot be recorded again: {e}")
        return report
    for rt in rts:
        tops = _layer_tops(rt, net, values) if layers else []
        try:  # one forward pass gives the outputs and the layers
            got = _run(rt, prototxt, caffemodel, net, xs, blobs, tops)
        except RuntimeFailure as e:
            report.failures.append(str(e))
            continue
        for (name, w), blob, g in zip(want, blobs, got):
            report.outputs.append(check_output(rt, blob, g, w, tolerance))
        if layers:
            _check_layers(rt, net, tops, got[len(blobs):], values, report)
    return report


def _run(rt: str, prototxt: str, caffemodel: str, net: NetText, xs: list, blobs: list[str],
         tops: list[tuple[NetLayer, int]]) -> list[np.ndarray]:
    """The output blobs, then the layer tops, after one forward pass."""
    if rt == "caffe":
        names = blobs + [layer.tops[k] for layer, k in tops]
    else:
        writer = {}
        for layer in net.layers:  # OpenCV reads an output through the layer whose first top it is
            if layer.tops and layer.tops[0] not in writer:
                writer[layer.tops[0]] = layer.name
        missing = [b for b in blobs if b not in writer]
        if missing:
            raise RuntimeFailure(f"OpenCV cannot read {', '.join(missing)}: not the first top of any layer")
        names = [writer[b] for b in blobs] + [layer.name for layer, _ in tops]
    unique = list(dict.fromkeys(names))
    run = runtime.run_caffe if rt == "caffe" else runtime.run_opencv
    got = dict(zip(unique, run(prototxt, caffemodel, net, xs, unique)))
    return [got[n] for n in names]


def _recorded_values(model: Any, inputs: Sequence[Any], net: NetText, trace: Optional[str], prototxt: str,
                     report: Report) -> dict:
    """Record the model again, keeping every value; note when the trace the net came from differs."""
    from .record import record

    values: dict = {}
    with tempfile.TemporaryDirectory(prefix="ptcc-verify-") as d:
        log = os.path.join(d, "run.log")
        record(model, tuple(inputs), log, values=values)
        with open(log, encoding="utf-8") as f:
            report.trace_lines = f.read().splitlines()
    names = {l.trace for l in net.layers if l.trace}
    if not names:
        report.notes.append(f"{prototxt} has no layer notes (`# run.log:57: %41 = conv2d`, which ptcc writes "
                            "above each layer): --layers has nothing to compare")
    original = trace or _find_trace(names, prototxt)
    if original is None:
        if names:
            report.notes.append(f"the trace {', '.join(sorted(names))} was not found (--trace): the layer map "
                                "is read against a fresh recording")
    else:
        with open(original, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if _body(lines) != _body(report.trace_lines):
            report.notes.append(f"{original} differs from a fresh recording of the model (edited by hand?): "
                                "values are matched by line and handle, and may not fit")
        report.trace_lines = lines
    return values


def _body(lines: list[str]) -> list[str]:
    return [l for l in lines if not l.startswith("#") and not l.startswith("weights ")]


def _find_trace(names: set, prototxt: str) -> Optional[str]:
    if len(names) != 1:
        return None
    name = next(iter(names))
    for d in (os.path.dirname(os.path.abspath(prototxt)), os.getcwd()):
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


def _layer_tops(rt: str, net: NetText, values: dict) -> list[tuple[NetLayer, int]]:
    """The (layer, top index) to compare: each top that holds a trace value.  OpenCV gives each layer's own
    first top (in place or not); BVLC gives each blob as its last writer left it, so there a top is
    compared only at the layer that writes it last."""
    wanted: list[tuple[NetLayer, int]] = []
    for layer in net.layers:
        for k, held in enumerate(layer.holds):
            if held is None or (held.line, held.handle) not in values:
                continue
            if rt == "opencv" and k == 0 and layer.type != "Input":
                wanted.append((layer, k))
            elif rt == "caffe" and net.writer_of(layer.tops[k]) is layer:
                wanted.append((layer, k))
    return wanted


def _check_layers(rt: str, net: NetText, wanted: list[tuple[NetLayer, int]], got: list[np.ndarray],
                  values: dict, report: Report) -> None:
    """Compare each layer top with the value of the handle it holds; mark the ones that differ."""
    checks = []
    for (layer, k), g in zip(wanted, got):
        held = layer.holds[k]
        ref = values[(held.line, held.handle)].detach().numpy().astype(np.float64)
        check = LayerCheck(layer, layer.tops[k], held.handle, held.line, float("nan"))
        if g.size != ref.size:
            check.problem = f"shape {tuple(g.shape)}, PyTorch {tuple(ref.shape)}"
            check.relative = float("inf")
        else:
            diff = np.abs(g.reshape(ref.shape).astype(np.float64) - ref)
            scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
            check.relative = float(np.max(diff)) / scale if ref.size else 0.0
            if not np.isfinite(check.relative):
                check.relative = float("inf")
        checks.append(check)
    _mark_divergences(net, checks, report.tolerance)
    report.layers[rt] = checks
    report.divergence[rt] = next((c for c in checks if c.differs), None)


def _mark_divergences(net: NetText, checks: list[LayerCheck], tol: float) -> None:
    """A layer differs when its top is off by more than the tolerance and by more than GROWTH times the
    error its bottoms arrived with: it adds the error rather than carrying it.  Deep nets in float32
    carry round-off a little past the tolerance through their last layers (resnet50's layer4: 1.01e-4),
    and that is not a wrong layer; a wrong one adds orders of magnitude at once.  A blob no check reads
    (an intermediate, or a top overwritten in place) is taken to carry its bottoms' error."""
    by_top = {(id(c.layer), c.top): c for c in checks}
    error: dict[str, float] = {}
    for layer in net.layers:
        carried = max((error.get(b, 0.0) for b in layer.bottoms), default=0.0)
        for top in layer.tops:
            c = by_top.get((id(layer), top))
            if c is None:
                error[top] = carried
                continue
            c.over = not c.relative <= tol
            c.differs = c.over and not c.relative <= GROWTH * carried
            error[top] = c.relative


# --- the command --------------------------------------------------------------------------------------------


def trace_line_text(report: Report, line: int) -> str:
    """The trace line, its argument list shortened: `%41 = conv2d(...)`."""
    if not 1 <= line <= len(report.trace_lines):
        return "?"
    text = report.trace_lines[line - 1].strip()
    m = re.match(r"^(.*?= *[\w.]+)\(", text)
    return m[1] + "(...)" if m else text


def describe_divergence(report: Report, c: LayerCheck) -> str:
    where = f"{c.layer.trace}:{c.line}: {trace_line_text(report, c.line)}"
    if c.layer.source:
        where += f", {c.layer.source}"
    error = c.problem or f"max rel error {c.relative:.3g}"
    return f'layer "{c.layer.name}" ({where}): {error}'


def print_report(report: Report, verbose: bool, out=sys.stdout) -> None:
    for note in report.notes:
        print(f"note: {note}", file=out)
    for failure in report.failures:
        print(f"error: {failure}", file=out)
    for o in report.outputs:
        figures = (f"max |Δ| {o.max_abs:.3g}, max |ref| {o.max_ref:.3g}, "
                   f"max |Δ| / max(1, max |ref|) {o.relative:.3g}")
        verdict = o.verdict + (f" ({o.why})" if o.why else "")
        print(f'{o.runtime}: output "{o.name}" {o.shape}: {figures}: {verdict}', file=out)
    for rt, checks in report.layers.items():
        bad = sum(1 for c in checks if c.differs)
        drift = sum(1 for c in checks if c.over and not c.differs)
        print(f"{rt}: {len(checks)} layers compared with their trace values, {bad} differ" +
              (f"; {drift} more over it only by the error their inputs carry" if drift else ""),
              file=out)
        if verbose:
            for c in checks:
                state = "DIFFERS" if c.differs else "drift" if c.over else "ok"
                print(f"  {state:7} {c.layer.name} (%{c.handle}, {c.layer.trace}:{c.line}) "
                      f"{c.problem or f'{c.relative:.3g}'}", file=out)
        d = report.divergence.get(rt)
        if d is not None:
            print(f"{rt}: first divergence: {describe_divergence(report, d)}", file=out)
    print(f"verdict: {'pass' if report.passed else 'FAIL'} (tolerance {report.tolerance:g})", file=out)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ptcc-verify",
        description="Run a model in PyTorch and its Caffe net in OpenCV dnn and BVLC Caffe on the same seeded "
                    "input, and compare every output (with --layers, every layer).",
        epilog="Example: ptcc-verify torchvision.models:resnet18 --input 1x3x224x224 resnet18.prototxt --layers")
    p.add_argument("spec", metavar="SPEC", help="the model, as given to ptcc-record")
    p.add_argument("prototxt", metavar="NET.prototxt")
    p.add_argument("-w", "--weights", metavar="NET.caffemodel",
                   help="the caffemodel (default: the prototxt's name with .caffemodel)")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE",
                   help="an input shape, as given to ptcc-record (repeat for several inputs)")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help="a keyword argument for SPEC, as given to ptcc-record")
    p.add_argument("--seed", type=int, default=0, help="the seed given to ptcc-record (default 0)")
    p.add_argument("--runtime", choices=("auto", "opencv", "caffe"), default="auto",
                   help="auto (default): OpenCV dnn, and BVLC Caffe when its pycaffe imports ($BVLC_CAFFE/python, "
                        f"default {runtime.BVLC_DEFAULT}/python)")
    p.add_argument("--layers", action="store_true",
                   help="compare every layer whose top holds a trace value, and name the first that differs")
    p.add_argument("--trace", metavar="RUN.log", help="the trace the net was compiled from (default: found "
                                                      "beside the prototxt by the name its layer notes give)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"T in max |Δ| ≤ T · max(1, max |ref|) "
                                                                     f"(default {TOLERANCE:g})")
    p.add_argument("-v", "--verbose", action="store_true", help="with --layers, list every layer compared")
    p.add_argument("--version", action="version", version=f"ptcc-verify {__version__}")
    return p


def run(argv: Sequence[str]) -> int:
    args = make_parser().parse_args(argv)
    from . import cli

    try:
        shapes = [cli.parse_shape(s) for s in args.input]
        kwargs = dict(cli.parse_arg(a) for a in args.arg)
        if not args.tolerance > 0:
            raise UsageError(f"--tolerance {args.tolerance}: must be positive")
        for path in (args.prototxt, args.weights):
            if path and not os.path.isfile(path):
                raise UsageError(f"{path}: no such file")
        model, example = cli.prepare(args.spec, shapes, kwargs, args.seed)
        report = verify(model, example, args.prototxt, args.weights, runtime_choice=args.runtime,
                        layers=args.layers, tolerance=args.tolerance, trace=args.trace)
    except (UsageError, OSError) as e:
        print(f"ptcc-verify: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except cli.BuildError as e:
        print(f"ptcc-verify: error: {e}", file=sys.stderr)
        return EXIT_MISMATCH
    print_report(report, args.verbose)
    return 0 if report.passed else EXIT_MISMATCH


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
