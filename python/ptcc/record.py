"""Record one run of a model as a ptcc trace (docs/trace-format.md).

Two hooks observe the run:

- `sys.settrace` sees the call and return of every module `forward` frame: the scopes.
- a `torch.overrides.TorchFunctionMode` sees every torch call made by Python code: the ops.  Since the
  mode is switched off while it runs an op, only the outermost call of each op reaches it (`F.relu` is
  seen, the `torch.relu` inside it is not).  Calls that make no tensor (`size`, `dim`) are queries: their
  results may appear later as plain numbers, and they are not ops.

Everything is kept in memory as events; the log is written once the run is over, after removing ops whose
results nothing uses.  Both files are written to temporary names and renamed into place only when the
whole recording succeeded, so a failure leaves nothing behind and an older log untouched.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import tempfile
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
from torch.overrides import TorchFunctionMode

from . import TRACE_VERSION, oplist, safetensors, textlog
from .textlog import Ref, Unrepresentable

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_PTCC_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class RecordError(Exception):
    """The model did something the trace cannot represent.  The message names the op and the user's
    source line."""


# --- what the run is made of ---------------------------------------------------------------------------


class Slot:
    """One tensor object of the run: an input or an op result.  Its handle number is given when the log is
    written, so that handles are dense and in order of appearance.

    A slot does not keep its tensor alive (that would stop PyTorch from reusing activation memory and slow
    the run down); the session forgets the tensor's id when the tensor dies, so that a new tensor at the
    same address gets a new slot."""

    __slots__ = ("type", "number", "alias", "members", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.type = textlog.tensor_type(tensor.dtype, tensor.shape)
        self.number = -1
        self.alias: Slot = self  # union-find over tensors that share storage (views)
        self.members = 1  # on a group's root: how many slots share its storage

    def join(self, base: "Slot") -> None:
        root = base.group()
        self.alias = root
        root.members += 1

    def group(self) -> "Slot":
        root = self
        while root.alias is not root:
            root = root.alias
        return root


@dataclass(eq=False)
class Value:
    """One definition of a slot (an SSA value); an in-place op defines a new value of the same slot."""

    slot: Slot
    op: Optional["OpEvent"] = None  # None for an input
    tensor: Optional[torch.Tensor] = None  # its value, when the session keeps values


@dataclass(eq=False)
class Stored:
    """A tensor that goes to the weights file: a parameter or buffer, or a constant."""

    tensor: torch.Tensor
    name: str  # the qualified name of a parameter; "" for a constant until the log is written
    const: bool
    original: Optional[torch.Tensor] = None  # a constant's tensor object, kept alive so its id stays unique


@dataclass(eq=False)
class OpEvent:
    name: str
    args: list
    kwargs: list[tuple[str, Any]]
    results: list[Value]
    types: list[str]
    where: str
    uses: list[Union[Value, Stored]] = field(default_factory=list)
    writes_alias: bool = False  # an in-place write into a tensor that shares storage with another
    live: bool = False


@dataclass
class ScopeEvent:
    call: bool
    name: str
    cls: str = ""


Event = Union[OpEvent, ScopeEvent]


# --- the recording session --------------------------------------------------------------------------------


class _Session(TorchFunctionMode):
    """All state of one recording.  It is the torch function mode, and owns the settrace hook."""

    def __init__(self, model: torch.nn.Module, keep_values: bool = False) -> None:
        super().__init__()
        self.keep_values = keep_values  # copy every result (ptcc-verify --layers compares them)
        self.events: list[Event] = []
        self.slots: dict[int, Slot] = {}  # id(tensor) -> slot, while the tensor lives (a finalizer pops it)
        self.values: dict[int, Value] = {}  # id(slot) -> current value
        self.stored: dict[int, Stored] = {}  # id(tensor) -> parameter, buffer or constant
        self.attributes: dict[int, torch.Tensor] = {}  # unregistered tensor attributes of modules
        self.module_names: dict[int, str] = {}
        self.forward_codes: set = set()
        self.scope_stack: list[torch.nn.Module] = []
        self.depth = 0
        self.where_cache: dict[str, Optional[str]] = {}
        self._scan(model)

    def _scan(self, model: torch.nn.Module) -> None:
        for name, module in model.named_modules(remove_duplicate=True):
            self.module_names[id(module)] = name
            forward = getattr(type(module), "forward", None)
            code = getattr(forward, "__code__", None)
            if code is not None:
                self.forward_codes.add(code)
            registered = set(module._parameters) | set(module._buffers)
            for key, attr in vars(module).items():
                if isinstance(attr, torch.Tensor) and key not in registered:
                    self.attributes[id(attr)] = attr
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            self.stored.setdefault(id(tensor), Stored(tensor, name, const=False))

    # -- scopes, from sys.settrace --

    def tracer(self, frame, event: str, arg) -> Optional[Callable]:
        if event != "call" or frame.f_code not in self.forward_codes:
            return None
        code = frame.f_code  # the module is forward's first parameter, whatever its name
        module = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
        name = self.module_names.get(id(module))
        if name is None or (self.scope_stack and self.scope_stack[-1] is module):
            return None  # not one of ours, or super().forward() of the module already open
        self.scope_stack.append(module)
        self.events.append(ScopeEvent(True, name, type(module).__name__))
        frame.f_trace_lines = False

        def on_return(frame, event: str, arg) -> Optional[Callable]:
            if event == "return":
                self.scope_stack.pop()
                self.events.append(ScopeEvent(False, name))
            return on_return

        return on_return

    # -- ops, from the torch function mode --

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.depth:
            return func(*args, **kwargs)
        self.depth += 1
        try:
            result = func(*args, **kwargs)
        finally:
            self.depth -= 1
        self._observe(func, list(args), kwargs, result)
        return result

    def _observe(self, func, args: list, kwargs: dict, result: Any) -> None:
        raw = _func_name(func)
        if raw in oplist.IGNORED:
            return
        if raw in oplist.DATA_READS:
            if args and isinstance(args[0], torch.Tensor) and id(args[0]) in self.slots:
                raise RecordError(self._where_msg(
                    f"{raw} reads the values of a tensor computed from the inputs; a trace cannot follow "
                    "data-dependent Python values or control flow"))
            return
        if raw == "__setitem__":
            result = args[0]  # the one mutator that returns None: it writes its first argument
        outs = _result_tensors(result)
        if outs is None:
            raise RecordError(self._where_msg(f"{raw} returned {type(result).__name__} mixing tensors and other values"))
        if not outs:
            return  # a query: size, dim, shape, ...
        name, args, kwargs_list = oplist.normalise(raw, args, kwargs)
        tensors_in = list(_tensors_in([args, kwargs_list]))
        if name in oplist.FROM_SHAPE or all(self._is_constant(t) for t in tensors_in):
            for t in outs:  # made from nothing but constants: fold into a constant
                self._fold(t)
            return
        where = self._where()
        event = OpEvent(name, [], [], [], [], where)
        try:
            event.args = [self._resolve(a, event) for a in args]
            event.kwargs = [(k, self._resolve(v, event)) for k, v in kwargs_list]
            event.types = [textlog.tensor_type(t.dtype, t.shape) for t in outs]
        except (Unrepresentable, RecordError) as e:
            raise RecordError(f"{where}: {name}: {e}") from None
        for t in outs:
            event.results.append(self._define(t, event, tensors_in))
            if self.keep_values:  # a copy: a later in-place op changes the tensor
                event.results[-1].tensor = t.detach().clone()
        self.events.append(event)

    def _fold(self, t: torch.Tensor) -> None:
        """Record `t` as a constant as it is now.  The value is copied, so that a later in-place change to
        the tensor defines a new constant instead of changing what earlier ops read."""
        if id(t) in self.slots:
            raise RecordError(self._where_msg("an op on constants writes into a traced tensor"))
        stored = self.stored.get(id(t))
        if stored is not None and not stored.const:
            raise RecordError(self._where_msg(f"an op on constants writes into parameter {stored.name}"))
        self.stored[id(t)] = Stored(t.detach().clone(), "", const=True, original=t)

    def _is_constant(self, t: torch.Tensor) -> bool:
        stored = self.stored.get(id(t))
        if stored is not None:
            return stored.const
        return id(t) not in self.slots and id(t) in self.attributes

    def _resolve(self, v: Any, event: OpEvent) -> Any:
        """Replace tensors by references, recursively through lists."""
        if isinstance(v, torch.Tensor):
            slot = self.slots.get(id(v))
            if slot is not None:
                value = self.values[id(slot)]
                event.uses.append(value)
                return value
            stored = self.stored.get(id(v))
            if stored is None and id(v) in self.attributes:
                self._fold(v)
                stored = self.stored[id(v)]
            if stored is None:
                raise RecordError(
                    "an argument is a tensor that is not an input, parameter, buffer, constant or earlier "
                    "result (was it made outside torch, e.g. with torch.from_numpy, or before recording?)")
            event.uses.append(stored)
            return stored
        if isinstance(v, (list, tuple)):
            return [self._resolve(x, event) for x in v]
        if isinstance(v, dict):
            raise Unrepresentable("a dict argument cannot be written to a trace")
        return v

    def _define(self, t: torch.Tensor, event: OpEvent, tensors_in: list) -> Value:
        stored = self.stored.get(id(t))
        if stored is not None and not stored.const and (event.name.endswith("_") or event.name == "setitem"):
            raise RecordError(self._where_msg(f"{event.name} writes into parameter {stored.name}"))
        slot = self.slots.get(id(t))
        if slot is None:
            slot = self._new_slot(t)
            base = getattr(t, "_base", None)
            if base is None:
                base = _storage_sharer(t, tensors_in)
            if base is not None and id(base) in self.slots:
                slot.join(self.slots[id(base)])
        elif slot.group().members > 1:
            event.writes_alias = True
        value = Value(slot, event)
        self.values[id(slot)] = value
        return value

    def _new_slot(self, t: torch.Tensor) -> Slot:
        slot = self.slots[id(t)] = Slot(t)
        weakref.finalize(t, self.slots.pop, id(t), None)
        return slot

    def define_input(self, t: torch.Tensor) -> Value:
        slot = self._new_slot(t)
        value = self.values[id(slot)] = Value(slot, tensor=t.detach().clone() if self.keep_values else None)
        return value

    # -- source positions --

    def _where(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename not in self.where_cache:
                self.where_cache[filename] = _display_path(filename)
            shown = self.where_cache[filename]
            if shown is not None:
                return f"{shown}:{frame.f_lineno}"
            frame = frame.f_back
        return "?"

    def _where_msg(self, message: str) -> str:
        return f"{self._where()}: {message}"


def _user_frame(tb) -> str:
    """`file:line` of the innermost frame of a traceback that is outside torch and ptcc."""
    where = "?"
    while tb is not None:
        shown = _display_path(tb.tb_frame.f_code.co_filename)
        if shown is not None:
            where = f"{shown}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _func_name(func) -> str:
    name = getattr(func, "__name__", None)
    if name == "__get__":  # a Tensor property such as .T or .data
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", name)
    return name or type(func).__name__


def _result_tensors(result: Any) -> Optional[list[torch.Tensor]]:
    """The tensors an op returned, in order: [] for no tensor, None when tensors mix with other values."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (list, tuple)):
        tensors = [r for r in result if isinstance(r, torch.Tensor)]
        if tensors and len(tensors) != len(result):
            return None
        return tensors
    return []


def _tensors_in(v: Any) -> Iterator[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _tensors_in(x)


def _display_path(filename: str) -> Optional[str]:
    """How a source file is named in `@` positions; None for torch's and ptcc's own files."""
    path = os.path.abspath(filename)
    if path.startswith(_TORCH_DIR) or path.startswith(_PTCC_DIR):
        return None
    if filename.startswith("<"):
        return filename
    cwd = os.getcwd() + os.sep
    if path.startswith(cwd):
        return os.path.relpath(path, cwd)
    best = ""
    for entry in sys.path:
        entry = os.path.abspath(entry or ".") + os.sep
        if path.startswith(entry) and len(entry) > len(best):
            best = entry
    return os.path.relpath(path, best) if best else os.path.basename(path)


def _storage_ptr(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()  # torch 2.x
    except AttributeError:
        return t.storage().data_ptr()  # torch 1.13


def _storage_sharer(t: torch.Tensor, tensors_in: list) -> Optional[torch.Tensor]:
    """The input of the op whose storage t shares although t is no view of it (`detach()` returns such a
    tensor, with `_base` None): an in-place write to either changes the other."""
    ptr = _storage_ptr(t)
    if ptr == 0:
        return None
    for x in tensors_in:
        if x is not t and _storage_ptr(x) == ptr:
            return x
    return None


# --- after the run: dead ops, names, text --------------------------------------------------------------


def _mark_live(events: list[Event], outputs: list[Union[Value, Stored]]) -> None:
    """Backward liveness: an op is live if a live value is among its results, or if it writes in place
    into a tensor that shares storage with another (a write through a view is never dropped)."""
    live_values = {id(v) for v in outputs if isinstance(v, Value)}
    for event in reversed(events):
        if not isinstance(event, OpEvent):
            continue
        if event.writes_alias or any(id(r) in live_values for r in event.results):
            event.live = True
            live_values.update(id(u) for u in event.uses if isinstance(u, Value))


class _Writer:
    """Turns the live events into the text of the log, numbering handles and naming constants."""

    def __init__(self, session: _Session, inputs: list[tuple[Value, str]]) -> None:
        self.session = session
        self.inputs = inputs
        self.next_handle = 0
        self.declared: list[Stored] = []
        self.declared_ids: set[int] = set()
        self.taken = {s.name for s in session.stored.values() if not s.const}
        self.next_const = 0
        self.used: set[int] = set()  # ids of values some live line reads
        self.op_lines: list[tuple[int, OpEvent]] = []  # (index in the body, event) of each op line
        self.input_lines: list[int] = []  # line number of each input line, set by text()
        self.body_start = 0  # line number of the body's first line, set by text()

    def handle(self, value: Value) -> str:
        if value.slot.number < 0:
            value.slot.number = self.next_handle
            self.next_handle += 1
        return "%" + str(value.slot.number)

    def declare(self, stored: Stored) -> str:
        if id(stored) not in self.declared_ids:
            self.declared_ids.add(id(stored))
            self.declared.append(stored)
            if stored.const and not stored.name:
                stored.name, self.next_const = textlog.const_name(self.taken, self.next_const)
        return "$" + textlog.name(stored.name)

    def ref(self, v: Any) -> Any:
        if isinstance(v, Value):
            return Ref(self.handle(v))
        if isinstance(v, Stored):
            return Ref(self.declare(v))
        if isinstance(v, list):
            return [self.ref(x) for x in v]
        return v

    def op_line(self, event: OpEvent) -> str:
        args = [textlog.value(self.ref(a)) for a in event.args]
        args += [f"{k}={textlog.value(self.ref(v))}" for k, v in event.kwargs]
        results = ", ".join(self.handle(r) if id(r) in self.used or event.writes_alias else "_"
                            for r in event.results)
        text = f"{results} = {event.name}({', '.join(args)})"
        return f"{text} : {', '.join(event.types)} @ {textlog.string(event.where)}"

    def body(self, events: list[Event], outputs: list[tuple[Union[Value, Stored], str]]) -> list[str]:
        for event in events:
            if isinstance(event, OpEvent) and event.live:
                self.used.update(id(u) for u in event.uses if isinstance(u, Value))
        self.used.update(id(v) for v, _ in outputs if isinstance(v, Value))
        for value, _ in self.inputs:
            self.handle(value)
        lines = []
        depth = 0
        for event in events:
            if isinstance(event, ScopeEvent):
                if not event.call:
                    depth -= 1
                keyword = "call" if event.call else "return"
                scope = textlog.name(event.name) if event.name else '""'
                cls = f" {textlog.name(event.cls)}" if event.call else ""
                lines.append(f"{'  ' * depth}{keyword} {scope}{cls}")
                if event.call:
                    depth += 1
            elif event.live:
                self.op_lines.append((len(lines), event))
                lines.append("  " * depth + self.op_line(event))
        for value, label in outputs:
            ref = textlog.value(self.ref(value))
            lines.append(f"output {ref}" + (f" {textlog.string(label)}" if label else ""))
        return lines

    def text(self, events: list[Event], outputs: list[tuple[Union[Value, Stored], str]],
             weights_name: str, origin: str) -> str:
        body = self.body(events, outputs)
        head = [f"ptcc-trace {TRACE_VERSION}", f"# {origin}", f"weights {textlog.string(weights_name)}"]
        for stored in self.declared:
            keyword = "const" if stored.const else "param"
            t = stored.tensor
            head.append(f"{keyword} ${textlog.name(stored.name)} : {textlog.tensor_type(t.dtype, t.shape)}")
        for value, label in self.inputs:
            named = f" {textlog.string(label)}" if label else ""
            self.input_lines.append(len(head) + 1)
            head.append(f"input {self.handle(value)}{named} : {value.slot.type}")
        self.body_start = len(head) + 1  # the first body line's number
        return "\n".join(head + body) + "\n"

    def values(self) -> dict[tuple[int, int], torch.Tensor]:
        """{(line, handle): value} of every input and every named op result, after text()."""
        found = {}
        for line, (value, _) in zip(self.input_lines, self.inputs):
            found[(line, value.slot.number)] = value.tensor
        for index, event in self.op_lines:
            for r in event.results:
                if r.tensor is not None and r.slot.number >= 0:
                    found[(self.body_start + index, r.slot.number)] = r.tensor
        return found


# --- the public API ------------------------------------------------------------------------------------


def _input_names(model: torch.nn.Module, count: int) -> list[str]:
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return [""] * count
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(names) < count and any(p.kind == p.VAR_POSITIONAL for p in params):
        return names + [""] * (count - len(names))
    return (names + [""] * count)[:count]


def _flatten_outputs(result: Any) -> list[tuple[torch.Tensor, str]]:
    if isinstance(result, torch.Tensor):
        return [(result, "")]
    if isinstance(result, (list, tuple)) and result and all(isinstance(r, torch.Tensor) for r in result):
        return [(r, f"output{i}") for i, r in enumerate(result)]  # the Caffe blobs' names
    if isinstance(result, dict) and result and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in result.items()):
        return [(v, k) for k, v in result.items()]
    raise RecordError(
        f"the model's output is a {type(result).__name__}; a trace needs a tensor, a tuple or list of "
        "tensors, or a dict of tensors with string keys")


def _output_ref(session: _Session, t: torch.Tensor) -> Union[Value, Stored]:
    slot = session.slots.get(id(t))
    if slot is not None:
        return session.values[id(slot)]
    stored = session.stored.get(id(t))
    if stored is not None:
        return stored
    raise RecordError("an output tensor was not made by a traced op, and is not an input or a parameter")


def _write_atomically(log_path: str, weights_path: str, text: str,
                      tensors: list[tuple[str, torch.Tensor]]) -> None:
    """Write both files under temporary names in their directory, then rename them into place."""
    directory = os.path.dirname(os.path.abspath(log_path))
    temporaries: list[str] = []
    try:
        fd, tmp_weights = tempfile.mkstemp(prefix=".ptcc-", suffix=".safetensors.tmp", dir=directory)
        temporaries.append(tmp_weights)
        with os.fdopen(fd, "wb") as out:
            safetensors.write(out, tensors)
        fd, tmp_log = tempfile.mkstemp(prefix=".ptcc-", suffix=".log.tmp", dir=directory)
        temporaries.append(tmp_log)
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
        for tmp in temporaries:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp_weights, weights_path)
        os.replace(tmp_log, log_path)
    except BaseException:
        for tmp in temporaries:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _indexing_seen() -> Iterator[None]:
    """Make torch show every indexing to the function mode.  torch 1.13 indexes by a lone int, slice,
    None or ... (`qkv[0]`, `x[1:]`) on a fast path that skips the mode, so the result would be an
    untraced tensor; the same index as a one-element tuple (same meaning) takes the path the mode sees.
    Undone when the recording ends."""
    getitem, setitem = torch.Tensor.__getitem__, torch.Tensor.__setitem__

    def as_tuple(index: Any) -> Any:
        return index if isinstance(index, tuple) else (index,)

    # named as the methods they stand for: the mode is handed them as `func`
    def __getitem__(self: torch.Tensor, index: Any) -> Any:
        return getitem(self, as_tuple(index))

    def __setitem__(self: torch.Tensor, index: Any, value: Any) -> None:
        setitem(self, as_tuple(index), value)

    torch.Tensor.__getitem__ = __getitem__  # type: ignore[method-assign]
    torch.Tensor.__setitem__ = __setitem__  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.__getitem__ = getitem  # type: ignore[method-assign]
        torch.Tensor.__setitem__ = setitem  # type: ignore[method-assign]


VIAS = ("calls", "autograd")


def record(model: torch.nn.Module, example_inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
           path: str, *, origin: str = "", values: Optional[dict[tuple[int, int], torch.Tensor]] = None,
           via: str = "calls") -> Any:
    """Run `model` once on `example_inputs` and write the trace to `path` and its weights beside it
    (`path` with the extension `.safetensors`).  Returns the model's outputs.  With a dict as `values`, also
    fills it with {(trace line, handle): value} for every input and every op result the trace names (a copy
    of each, as the run computed it).

    The model runs in eval mode under no_grad; a model in training mode is switched to eval for the run
    (with a warning on stderr) and switched back afterwards.  Raises RecordError, writing nothing, when
    the run cannot be represented as a trace.

    `via` chooses the recorder: "calls" (this module: the Python calls, with module scopes and source
    positions) or "autograd" (autograd.py: the graph autograd kept, an independent witness; no `values`).
    """
    if via not in VIAS:
        raise RecordError(f"via={via!r}: expected one of {', '.join(VIAS)}")
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    if not all(isinstance(t, torch.Tensor) for t in inputs):
        raise RecordError("every example input must be a tensor")
    if len({id(t) for t in inputs}) != len(inputs):
        raise RecordError("the same tensor is passed as two inputs")
    if via == "autograd":
        if values is not None:
            raise RecordError("via=autograd records no intermediate values (ptcc-verify --layers needs "
                              "via=calls)")
        from .autograd import record_autograd

        return record_autograd(model, inputs, path, origin=origin)
    weights_path = os.path.splitext(path)[0] + ".safetensors"
    was_training = model.training
    if was_training:
        print(f"ptcc-record: warning: {type(model).__name__} was in training mode; recording in eval mode",
              file=sys.stderr)
        model.eval()
    session = _Session(model, keep_values=values is not None)
    try:
        input_values = [(session.define_input(t), n) for t, n in zip(inputs, _input_names(model, len(inputs)))]
    except Unrepresentable as e:
        raise RecordError(f"input: {e}") from None
    previous = sys.gettrace()
    try:
        with torch.no_grad(), session, _indexing_seen():
            sys.settrace(session.tracer)
            try:
                result = model(*inputs)
            except RecordError:
                raise
            except Exception as e:
                raise RecordError(f"{_user_frame(e.__traceback__)}: the model raised {type(e).__name__}: {e}") from e
            finally:
                sys.settrace(previous)
    finally:
        if was_training:
            model.train()
    outputs = [(_output_ref(session, t), label) for t, label in _flatten_outputs(result)]
    _mark_live(session.events, [v for v, _ in outputs])
    writer = _Writer(session, input_values)
    text = writer.text(session.events, outputs, os.path.basename(weights_path),
                       f"recorded by ptcc-record{' from ' + origin if origin else ''} with torch {torch.__version__}")
    _write_atomically(path, weights_path, text, [(s.name, s.tensor) for s in writer.declared])
    if values is not None:
        values.update(writer.values())
    return result
