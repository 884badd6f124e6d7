"""Spelling of tokens, the safetensors writer, op normalisation, and that the checker catches bad logs."""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import unittest

import ptcctest

ptcctest.require_torch()

import torch  # noqa: E402

import tracecheck  # noqa: E402
from ptcc import oplist, safetensors, textlog  # noqa: E402


class SpellingTest(unittest.TestCase):
    def test_floats_round_trip_exactly(self) -> None:
        cases = [1.0, -0.0, 0.1, 1e-45, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                 0.30000000000000004, 1 / 3, 123456789.12345679, 1e16, -2.5e-7]
        for x in cases:
            with self.subTest(x=x):
                text = textlog.number(x)
                self.assertTrue("." in text or "e" in text, text)  # never mistaken for an INT
                value = tracecheck._Parser(tracecheck.tokenize(text, 1), 1).value()
                self.assertEqual(struct.pack("<d", value), struct.pack("<d", x))
        self.assertEqual(textlog.number(-0.0), "-0.0")
        self.assertEqual(textlog.number(1e-45), "1e-45")
        self.assertEqual(textlog.number(math.inf), "inf")
        self.assertEqual(textlog.number(-math.inf), "-inf")
        self.assertEqual(textlog.number(math.nan), "nan")

    def test_values(self) -> None:
        self.assertEqual(textlog.value([1, -2, (3, True)]), "[1, -2, [3, true]]")
        self.assertEqual(textlog.value(torch.Size([1, 3])), "[1, 3]")
        self.assertEqual(textlog.value(slice(None, 4, 2)), "slice(none, 4, 2)")
        self.assertEqual(textlog.value(Ellipsis), "...")
        self.assertEqual(textlog.value(torch.bfloat16), "bf16")
        self.assertEqual(textlog.value(torch.channels_last), "channels_last")
        self.assertEqual(textlog.value(torch.device("cpu")), '"cpu"')
        self.assertEqual(textlog.value("bi\"line\"\n\x01é"), '"bi\\"line\\"\\n\\x01é"')
        with self.assertRaises(textlog.Unrepresentable):
            textlog.value(object())
        with self.assertRaises(textlog.Unrepresentable):
            textlog.value("nul\0")

    def test_names(self) -> None:
        self.assertEqual(textlog.name("layer1.0.conv1"), "layer1.0.conv1")
        self.assertEqual(textlog.name("blöck-2"), "blöck-2")
        self.assertEqual(textlog.name("has space"), '"has space"')
        self.assertEqual(textlog.name("a#b"), '"a#b"')
        self.assertEqual(textlog.name(""), '""')


class SafetensorsTest(unittest.TestCase):
    def test_every_dtype_round_trips(self) -> None:
        tensors = [
            ("f16", torch.tensor([1.5, -2.0], dtype=torch.float16)),
            ("bf16", torch.tensor([1.5, -2.0], dtype=torch.bfloat16)),
            ("f32", torch.arange(6, dtype=torch.float32).reshape(2, 3).t()),  # not contiguous
            ("f64", torch.tensor(math.pi, dtype=torch.float64)),  # 0-d
            ("i8", torch.tensor([-1], dtype=torch.int8)),
            ("i16", torch.tensor([-300], dtype=torch.int16)),
            ("i32", torch.tensor([1 << 20], dtype=torch.int32)),
            ("i64", torch.tensor([-(1 << 40)], dtype=torch.int64)),
            ("u8", torch.tensor([255], dtype=torch.uint8)),
            ("bool", torch.tensor([True, False])),
            ("empty", torch.zeros(0, 4)),
            ("naïve name", torch.ones(1)),
        ]
        path = os.path.join(ptcctest.out_dir("format"), "all.safetensors")
        with open(path, "wb") as f:
            safetensors.write(f, tensors)
        with open(path, "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        self.assertEqual(n % 8, 0)
        entries = tracecheck.read_safetensors(path)
        self.assertEqual(list(entries), [name for name, _ in tensors])
        offset = 8 + n
        for name, t in tensors:
            dtype, shape, nbytes = entries[name]
            self.assertEqual(shape, list(t.shape))
            expected = t.contiguous().view(torch.int16) if t.dtype == torch.bfloat16 else t.contiguous()
            self.assertEqual(data[offset:offset + nbytes], expected.numpy().tobytes(), name)
            offset += nbytes
        self.assertEqual(offset, len(data))


class NormaliseTest(unittest.TestCase):
    def test_positional_arguments_become_keywords(self) -> None:
        a = oplist.normalise("conv2d", ["x", "w", None, 2, 3], {})
        b = oplist.normalise("conv2d", ["x", "w", None], {"stride": 2, "padding": 3})
        self.assertEqual(a, b)
        self.assertEqual(a, ("conv2d", ["x", "w", None], [("stride", 2), ("padding", 3)]))

    def test_operators_and_size_varargs(self) -> None:
        self.assertEqual(oplist.normalise("__rsub__", ["x", 1], {}), ("sub", [1, "x"], []))
        self.assertEqual(oplist.normalise("__iadd__", ["x", "y"], {}), ("add_", ["x", "y"], []))
        self.assertEqual(oplist.normalise("view", ["x", 1, -1], {}), ("view", ["x", [1, -1]], []))
        self.assertEqual(oplist.normalise("softmax", ["x", 1], {"_stacklevel": 5, "dtype": None}),
                         ("softmax", ["x"], [("dim", 1), ("dtype", None)]))

    def test_keywords_for_leading_parameters_become_positional(self) -> None:
        self.assertEqual(oplist.normalise("batch_norm", ["x", "m", "v"], {"weight": "w", "bias": "b", "eps": 0.1}),
                         ("batch_norm", ["x", "m", "v", "w", "b"], [("eps", 0.1)]))
        self.assertEqual(oplist.normalise("batch_norm", ["x", "m", "v"], {"bias": "b"}),
                         ("batch_norm", ["x", "m", "v"], [("bias", "b")]))

    def test_unknown_or_overloaded_ops_are_kept_as_called(self) -> None:
        self.assertEqual(oplist.normalise("max", ["x", 1], {}), ("max", ["x", 1], []))
        self.assertEqual(oplist.normalise("my_op", ["x", 1], {"k": 2}), ("my_op", ["x", 1], [("k", 2)]))


class SpecTest(unittest.TestCase):
    def test_spec_op_table_is_the_recorders(self) -> None:
        """The recorder's vocabulary (oplist.KNOWN, read from the generated optable.py) is the spec's
        §4.2 table, row for row: the positional count, the parameters and the view mark."""
        with open(os.path.join(ptcctest.SRCDIR, "docs", "trace-format.md"), encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("### 4.2"):text.index("\n## 5")]
        spec = {}
        for row in re.findall(r"^\| `(\w+)` \| (.*) \| (view)? \|$", section, re.M):
            params = [p.strip("`") for p in row[1].split(", ")]
            positional = sum(1 for p in params if not p.endswith("="))
            spec[row[0]] = oplist.OpSpec(positional, tuple(p.rstrip("=") for p in params), row[2] == "view")
        self.assertGreater(len(spec), 100)
        self.assertEqual(spec, oplist.KNOWN)
        self.assertNotIn("max", oplist.KNOWN)  # overloaded: recorded as called


class CheckerTest(unittest.TestCase):
    """The checker must be able to fail: each mutation of a valid log is caught."""

    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("format", "checker")
        src = os.path.join(ptcctest.SRCDIR, "examples", "lenet")
        shutil.copy(os.path.join(src, "lenet.safetensors"), self.dir)
        with open(os.path.join(src, "lenet.log")) as f:
            self.text = f.read()

    def check(self, text: str) -> list[str]:
        path = os.path.join(self.dir, "lenet.log")
        with open(path, "w") as f:
            f.write(text)
        return tracecheck.check(path)

    def test_mutations_are_caught(self) -> None:
        self.assertEqual(self.check(self.text), [])
        mutations = {
            "use before definition": ("%2 = relu(%1", "%2 = relu(%7"),
            "undeclared parameter": ("param $fc3.bias : f32[10]\n", ""),
            "wrong parameter shape": ("$fc3.bias : f32[10]", "$fc3.bias : f32[11]"),
            "missing type": (") : f32[1,6,24,24] @", ") @"),
            "unused result": ("output %12", "output %11"),
            "unbalanced scope": ("  return conv1\n", ""),
            "bad version": ("ptcc-trace 1", "ptcc-trace 2"),
            "syntax": ("stride=[1, 1]", "stride=[1, 1"),
        }
        for what, (old, new) in mutations.items():
            with self.subTest(what):
                self.assertIn(old, self.text)
                self.assertNotEqual(self.check(self.text.replace(old, new, 1)), [])


if __name__ == "__main__":
    ptcctest.main()
