"""ptcc-record: record a model's run as a ptcc trace.

    ptcc-record SPEC [--input 1x3x224x224]... [--arg name=value]... [-o run.log] [--seed N]
                     [--via=calls|autograd] [--cross-check]

SPEC is `package.module:NAME` or `path/to/file.py:NAME`.  NAME is an nn.Module class, or a function that
returns a module or a `(module, example_inputs)` pair, called with the `--arg` keyword arguments.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import sys
from typing import Any, Optional, Sequence

from . import __version__

EXIT_INPUT = 1  # the model or its run cannot be recorded, or the two recorders disagree
EXIT_USAGE = 2  # bad command line, missing file, I/O error


class UsageError(Exception):
    pass


class BuildError(Exception):
    """SPEC raised while building the model."""


def parse_shape(text: str) -> list[int]:
    """`1x3x224x224` -> [1, 3, 224, 224]."""
    try:
        dims = [int(d) for d in text.lower().split("x")]
    except ValueError:
        raise UsageError(f"--input {text!r}: expected a shape such as 1x3x224x224") from None
    if not dims or any(d < 0 for d in dims):
        raise UsageError(f"--input {text!r}: dimensions must be non-negative integers")
    return dims


def load_object(spec: str) -> Any:
    """Import `package.module:NAME` or `path/to/file.py:NAME` and return NAME."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise UsageError(f"{spec!r}: expected package.module:NAME or path/to/file.py:NAME")
    if module_part.endswith(".py") or os.sep in module_part:
        if not os.path.isfile(module_part):
            raise UsageError(f"{module_part}: no such file")
        directory = os.path.dirname(os.path.abspath(module_part))
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = os.path.splitext(os.path.basename(module_part))[0]
        loader_spec = importlib.util.spec_from_file_location(name, module_part)
        assert loader_spec is not None and loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as e:
            raise UsageError(f"cannot import {module_part}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{module_part} has no attribute {attr!r}") from None


def parse_arg(text: str) -> tuple[str, Any]:
    """--arg name=value: a keyword argument for SPEC, its value a Python literal."""
    name, eq, value = text.partition("=")
    if not eq or not name.isidentifier():
        raise UsageError(f"--arg {text!r}: expected name=value, such as num_classes=4")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise UsageError(f"--arg {text!r}: {value!r} is not a Python literal (a number, string, None, "
                         "True, False, or a tuple, list or dict of them)") from None


def is_download_failure(e: BaseException) -> bool:
    """Whether an exception (or one it came from) is a failed network access."""
    import socket
    import urllib.error

    while e is not None:
        if isinstance(e, (urllib.error.URLError, socket.gaierror, socket.timeout, ConnectionError)):
            return True
        e = e.__cause__ or e.__context__
    return False


def build(obj: Any, spec: str, kwargs: dict[str, Any]) -> tuple[Any, Optional[tuple]]:
    """Make the module (and maybe its example inputs) that SPEC names."""
    import torch

    try:
        made = obj(**kwargs)
    except Exception as e:  # the model's own code: report it as building SPEC failed, and why
        hint = ""
        if is_download_failure(e):
            hint = ("; it tried to download something, and nothing can be downloaded here: build it without "
                    "pretrained weights (for torchvision, --arg weights=None --arg weights_backbone=None)")
        raise BuildError(f"building {spec} raised {type(e).__name__}: {e}{hint}") from None
    if isinstance(made, torch.nn.Module):
        return made, None
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
        inputs = made[1]
        return made[0], (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    raise UsageError(f"{spec} gave a {type(made).__name__}, not an nn.Module or (module, example_inputs)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptcc-record",
        description="Run a PyTorch model once and write its trace (NAME.log) and weights "
                    "(NAME.safetensors) for ptcc.",
        epilog="Example: ptcc-record torchvision.models:resnet18 --input 1x3x224x224 -o resnet18.log")
    parser.add_argument("spec", metavar="SPEC",
                        help="package.module:NAME or path/to/file.py:NAME; NAME is an nn.Module class or a "
                             "function returning a module or (module, example_inputs)")
    parser.add_argument("--input", action="append", default=[], metavar="SHAPE",
                        help="an input shape such as 1x3x224x224 (repeat for several inputs); inputs are "
                             "seeded standard-normal float32 tensors")
    parser.add_argument("-o", "--output", metavar="FILE", help="the log to write (default: NAME.log)")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                        help="a keyword argument for NAME (a Python literal, e.g. --arg num_classes=4 --arg "
                             "weights=None); repeat for several")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and inputs (default 0)")
    parser.add_argument("--via", choices=("calls", "autograd"), default="calls",
                        help="calls (default): watch the Python calls, with module scopes and source "
                             "positions; autograd: read the graph autograd kept (an independent witness)")
    parser.add_argument("--cross-check", action="store_true",
                        help="record both ways (FILE and FILE's name with .autograd.log) and compare the "
                             "traces after ptcc --emit=log; exit 1 at the first op where they differ")
    parser.add_argument("--ptcc", metavar="PROGRAM",
                        help="the ptcc program --cross-check runs (default: $PTCC, else ptcc on PATH)")
    parser.add_argument("--version", action="version", version=f"ptcc-record {__version__}")
    return parser


def prepare(spec: str, shapes: Sequence[Sequence[int]], kwargs: dict[str, Any], seed: int) -> tuple[Any, tuple]:
    """The model SPEC names, in eval mode, and its example inputs, made exactly as ptcc-record makes them:
    the seed is set before the model is built (its weights) and seeds the inputs' generator, so that
    ptcc-verify, given the same arguments, rebuilds the run that was recorded.  Raises BuildError and
    UsageError."""
    import torch

    torch.manual_seed(seed)
    obj = load_object(spec)
    model, example = build(obj, spec, kwargs)
    model.eval()  # a freshly built module is in training mode; a trace is always of eval mode
    if shapes:
        generator = torch.Generator().manual_seed(seed)
        example = tuple(torch.randn(*s, generator=generator) for s in shapes)
    if example is None:
        raise UsageError(f"{spec} gives no example inputs: pass --input SHAPE")
    return model, example


def run(argv: Sequence[str]) -> int:
    args = make_parser().parse_args(argv)
    shapes = [parse_shape(s) for s in args.input]
    kwargs = dict(parse_arg(a) for a in args.arg)
    from .record import RecordError, record

    try:
        model, example = prepare(args.spec, shapes, kwargs, args.seed)
    except BuildError as e:
        print(f"ptcc-record: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    output = args.output or args.spec.rpartition(":")[2] + ".log"
    if args.cross_check:
        return cross_check(model, example, output, args)
    try:
        record(model, example, output, origin=args.spec, via=args.via)
    except RecordError as e:
        print(f"ptcc-record: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    return 0


def cross_check(model: Any, example: tuple, output: str, args: argparse.Namespace) -> int:
    """Record `model` both ways and compare the traces (crosscheck.py)."""
    from .api import ConvertError, find_ptcc
    from .crosscheck import CrossCheckError, compare
    from .record import RecordError, record

    try:
        ptcc = find_ptcc(args.ptcc)
    except ConvertError as e:
        raise UsageError(f"--cross-check: {e}") from None
    other = os.path.splitext(output)[0] + ".autograd.log"
    for path, via in ((output, "calls"), (other, "autograd")):
        try:
            record(model, example, path, origin=args.spec, via=via)
        except RecordError as e:
            print(f"ptcc-record: error: {'--via=autograd: ' if via == 'autograd' else ''}{e}", file=sys.stderr)
            return EXIT_INPUT
    try:
        difference, ops, _ = compare(output, other, ptcc)
    except CrossCheckError as e:
        print(f"ptcc-record: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if difference is None:
        print(f"ptcc-record: cross-check: {output} and {other} agree ({ops} ops after canonicalisation)")
        return 0
    print(f"ptcc-record: cross-check: {output} and {other} differ: {difference.why}", file=sys.stderr)
    for label, line in (("calls", difference.calls), ("autograd", difference.autograd)):
        if line is not None:
            print(f"  {label + ':':9} {line.text}", file=sys.stderr)
    return EXIT_INPUT


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        print(f"ptcc-record: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"ptcc-record: error: {e}", file=sys.stderr)
        return EXIT_USAGE
