"""What the recorder refuses, with the exact message, and that a refusal writes nothing."""

from __future__ import annotations

import os
import unittest

import ptcctest

ptcctest.require_torch()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ptcc.record import RecordError, record  # noqa: E402

# Source positions are relative to the working directory: run from the top of the source tree, as a user
# running ptcc-record there would, so that they read the same in-tree and in a VPATH build.
os.chdir(ptcctest.SRCDIR)
HERE = "tests/recorder/test_refusals.py"


def at(snippet: str) -> str:
    """`file:line` of the line of this file that holds snippet."""
    with open(HERE) as f:
        for number, line in enumerate(f, 1):
            if snippet in line and "at(" not in line:
                return f"{HERE}:{number}"
    raise AssertionError(snippet)


class Untraceable(torch.nn.Module):
    def forward(self, x):
        return x + torch.from_numpy(np.ones(3, dtype=np.float32))


class HiddenList(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = [torch.ones(3)]  # neither a buffer nor a tensor attribute: invisible to the recorder

    def forward(self, x):
        return x * self.table[0]


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


class ReadsItem(torch.nn.Module):
    def forward(self, x):
        return x * x.max().item()


class WritesParameter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        with torch.no_grad():
            self.w.add_(1)
        return x * self.w


class ReturnsNumber(torch.nn.Module):
    def forward(self, x):
        return x.shape[0]


class ReturnsMixed(torch.nn.Module):
    def forward(self, x):
        return x * 2, 3


class ReturnsNested(torch.nn.Module):
    def forward(self, x):
        return [x * 2, (x, x)]


class ComplexResult(torch.nn.Module):
    def forward(self, x):
        return torch.view_as_complex(x)


def scaled(x: torch.Tensor, options: dict) -> torch.Tensor:
    """A user function that takes part in __torch_function__, called with a dict."""
    if torch.overrides.has_torch_function((x,)):
        return torch.overrides.handle_torch_function(scaled, (x,), x, options)
    return x * options["k"]


class DictArgument(torch.nn.Module):
    def forward(self, x):
        return scaled(x, {"k": 2})


class RefusalTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("refusals", self.id().rsplit(".", 1)[-1])
        self.log = os.path.join(self.dir, "run.log")
        self.weights = os.path.join(self.dir, "run.safetensors")
        # an older trace that a failed recording must leave untouched
        with open(self.log, "w") as f:
            f.write("old log\n")
        with open(self.weights, "w") as f:
            f.write("old weights\n")

    def refuse(self, model: torch.nn.Module, x: torch.Tensor, message: str) -> None:
        with self.assertRaises(RecordError) as ctx:
            record(model.eval(), x, self.log)
        self.assertEqual(str(ctx.exception), message)
        with open(self.log) as f:
            self.assertEqual(f.read(), "old log\n")
        with open(self.weights) as f:
            self.assertEqual(f.read(), "old weights\n")
        self.assertEqual(sorted(os.listdir(self.dir)), ["run.log", "run.safetensors"])

    def test_tensor_from_outside_torch(self) -> None:
        self.refuse(Untraceable(), torch.ones(3),
                    f"{at('x + torch.from_numpy')}: add: an argument is a tensor that is not an input, parameter, buffer, constant or "
                    "earlier result (was it made outside torch, e.g. with torch.from_numpy, or before recording?)")

    def test_tensor_hidden_in_a_list_attribute(self) -> None:
        self.refuse(HiddenList(), torch.ones(3),
                    f"{at('x * self.table[0]')}: mul: an argument is a tensor that is not an input, parameter, buffer, constant or "
                    "earlier result (was it made outside torch, e.g. with torch.from_numpy, or before recording?)")

    def test_data_dependent_control_flow(self) -> None:
        self.refuse(DataDependent(), torch.ones(3),
                    f"{at('if x.sum() > 0:')}: __bool__ reads the values of a tensor computed from the inputs; a trace cannot "
                    "follow data-dependent Python values or control flow")

    def test_item(self) -> None:
        self.refuse(ReadsItem(), torch.ones(3),
                    f"{at('x.max().item()')}: item reads the values of a tensor computed from the inputs; a trace cannot "
                    "follow data-dependent Python values or control flow")

    def test_write_into_parameter(self) -> None:
        self.refuse(WritesParameter(), torch.ones(3), f"{at('self.w.add_(1)')}: add_ writes into parameter w")

    def test_output_not_tensors(self) -> None:
        message = ("the model's output is a {}; a trace needs a tensor, a tuple or list of tensors, or a dict "
                   "of tensors with string keys")
        self.refuse(ReturnsNumber(), torch.ones(3), message.format("int"))
        self.refuse(ReturnsMixed(), torch.ones(3), message.format("tuple"))
        self.refuse(ReturnsNested(), torch.ones(3), message.format("list"))

    def test_unrepresentable_dtype(self) -> None:
        self.refuse(ComplexResult(), torch.ones(3, 2),
                    f"{at('torch.view_as_complex(x)')}: view_as_complex: tensors of dtype torch.complex64 cannot be written to a trace")

    def test_dict_argument(self) -> None:
        self.refuse(DictArgument(), torch.ones(3),
                    f"{at('handle_torch_function(scaled')}: scaled: a dict argument cannot be written to a trace")

    def test_non_tensor_input(self) -> None:
        with self.assertRaises(RecordError) as ctx:
            record(torch.nn.Identity(), [3], self.log)
        self.assertEqual(str(ctx.exception), "every example input must be a tensor")


if __name__ == "__main__":
    ptcctest.main()
