"""ptcc.convert(): record, compile and verify in one call.

    import ptcc
    result = ptcc.convert(model, torch.randn(1, 3, 224, 224), "net.prototxt")
    result.prototxt, result.caffemodel, result.report.outputs   # paths and verification figures

Records the model next to the prototxt (NET.log and NET.safetensors), compiles the trace with the ptcc
program (the `ptcc` argument, else $PTCC, else `ptcc` on PATH), and verifies the net against the model
in OpenCV dnn (and BVLC Caffe when its pycaffe imports).  Every failure raises ConvertError, carrying ptcc's
diagnostics or the verification report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

TARGETS = ("caffe", "caffe-master", "opencv")


class ConvertError(Exception):
    """The model could not be recorded, compiled or verified.  `diagnostics` holds ptcc's stderr (its
    `run.log:12:5: error: ...` lines) when compiling failed; `report` the verification when it failed."""

    def __init__(self, message: str, diagnostics: str = "", report: Any = None) -> None:
        super().__init__(message + (f"\n{diagnostics.rstrip()}" if diagnostics else ""))
        self.diagnostics = diagnostics
        self.report = report


@dataclass
class Converted:
    log: str
    weights: str
    prototxt: str
    caffemodel: str
    report: Any = None        # ptcc.verify.Report, when verified
    warnings: str = ""        # ptcc's stderr when it compiled with warnings or notes


def find_ptcc(ptcc: Optional[str] = None) -> str:
    """The ptcc program: the argument, $PTCC, or `ptcc` on PATH."""
    path = ptcc or os.environ.get("PTCC") or shutil.which("ptcc")
    if not path:
        raise ConvertError("ptcc is not on PATH: install it (make install), or pass ptcc= or set $PTCC")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ConvertError(f"{path}: not an executable ptcc")
    return path


def convert(model: Any, example_inputs: Union[Any, Sequence[Any]], prototxt: str, *, target: str = "caffe",
            opt: int = 1, verify: bool = True, layers: bool = False, runtime: str = "auto",
            tolerance: float = 1e-4, ptcc: Optional[str] = None) -> Converted:
    """Record `model` on `example_inputs`, compile it to `prototxt` and its caffemodel beside it, and (with
    `verify`) check the net against the model; `layers` also compares every layer (ptcc-verify --layers).
    Returns the paths and the verification report; raises ConvertError."""
    import torch

    from . import verify as verifier
    from .record import RecordError, record

    if target not in TARGETS:
        raise ConvertError(f"target {target!r}: expected one of {', '.join(TARGETS)}")
    if opt not in (0, 1, 2):
        raise ConvertError(f"opt {opt!r}: expected 0, 1 or 2")
    program = find_ptcc(ptcc)
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    stem = os.path.splitext(prototxt)[0]
    out = Converted(stem + ".log", stem + ".safetensors", prototxt, stem + ".caffemodel")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(prototxt)), exist_ok=True)
        record(model, inputs, out.log, origin=f"ptcc.convert({type(model).__name__})")
    except (RecordError, OSError) as e:
        raise ConvertError(f"recording {type(model).__name__}: {e}") from None
    r = subprocess.run([program, f"-O{opt}", f"--target={target}", "-o", out.prototxt, "-w", out.caffemodel,
                        out.log], capture_output=True, text=True)
    if r.returncode != 0:
        raise ConvertError(f"ptcc could not compile {out.log} (exit status {r.returncode}):", r.stderr)
    out.warnings = r.stderr
    if verify:
        if target == "opencv":
            runtime = "opencv"  # the layers only OpenCV computes are not BVLC's
        try:
            out.report = verifier.verify(model, inputs, out.prototxt, out.caffemodel, runtime_choice=runtime,
                                         layers=layers, tolerance=tolerance, trace=out.log)
        except verifier.UsageError as e:
            raise ConvertError(f"verifying {out.prototxt}: {e}") from None
        if not out.report.passed:
            import io

            text = io.StringIO()
            verifier.print_report(out.report, False, text)
            raise ConvertError(f"{out.prototxt} does not match the model:\n{text.getvalue().rstrip()}",
                               report=out.report)
    return out
