"""How the weights travel (issue 12's benchmark, issue 14's weights pass).

- The caffemodel is the same byte for byte whether the weights pass copies the float32 weights from the
  input files into holes the output leaves for them (the default) or ptcc writes them from the mapping as
  it frames them (PTCC_NO_COPY_PASS=1): a trace with its safetensors file (the data at an odd offset),
  float16 weights (converted, so never copied), -O2 (BatchNorm folded: computed weights beside copied
  ones), and an ONNX model whose initializers are raw_data, packed float_data and an external data file.
  --stats must say how many bytes the pass copied (the float32 arrays of 16 KiB or more); with
  PTCC_NO_COPY_PASS=1 it must say 0.
- The value check reads big tensors in 512 KiB pieces, on several threads when there are cores for them
  (the pass's threads, for a tensor the pass copies): a NaN in a late piece of a float32 tensor (copied)
  or a float16 tensor (checked alone) is found, counted and placed, with the warning's exact text, the
  first by index whichever thread found it first.

No torch here: the models are built with the standard library and python3-onnx.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import unittest

import ptcctest

PTCC = os.path.join(ptcctest.BUILDDIR, "src", "ptcc")
COPY_MIN = 16 << 10  # copypass.c: smaller arrays are read into ptcc's buffer as they come, not deferred


def ptcc(cwd: str, *args: str, copy: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PTCC_NO_COPY_PASS", None)
    if not copy:
        env["PTCC_NO_COPY_PASS"] = "1"
    return subprocess.run([PTCC, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def safetensors(path: str, tensors: list[tuple[str, str, list[int], bytes]], pad: int = 0) -> None:
    """tensors: (name, dtype, shape, data), in file order; pad: spaces after the JSON (the data's offset)."""
    header, at = {}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        at += len(data)
    text = json.dumps(header).encode() + b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, _, data in tensors:
            f.write(data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def floats(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(n)]


def f32(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def f16(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}e", *values)


def chain_trace(d: str, name: str, dims: list[tuple[str, int, int]]) -> str:
    """A chain of linear layers, weight k of dtype dims[k][0] and shape [rows, cols]."""
    lines = ["ptcc-trace 1", f'weights "{name}.safetensors"']
    lines += [f"param $w{k} : {dt}[{r},{c}]" for k, (dt, r, c) in enumerate(dims)]
    lines.append(f'input %0 "x" : f32[1,{dims[0][2]}]')
    for k, (_, r, _) in enumerate(dims):
        lines.append(f"%{k + 1} = linear(%{k}, $w{k}) : f32[1,{r}]")
    lines.append(f'output %{len(dims)} "y"')
    with open(os.path.join(d, name + ".log"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return name + ".log"


class Copies(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("weight-io", self._testMethodName)
        shutil.rmtree(self.dir)
        os.makedirs(self.dir)

    def both_ways(self, model: str, *args: str, copied: int) -> None:
        """Compile model both ways; the same bytes; --stats' count of the bytes the weights pass copied as
        it must be: `copied`, the float32 arrays of at least COPY_MIN bytes written as they lie in a file."""
        outs = {}
        for copy in (True, False):
            stem = "copy" if copy else "write"
            r = ptcc(self.dir, model, "-o", stem + ".prototxt", "--stats", *args, copy=copy)
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.search(r"^ptcc: stats: caffemodel (\d+) bytes, (\d+) copied by the weights pass$", r.stderr, re.M)
            self.assertIsNotNone(m, r.stderr)
            size, n = int(m[1]), int(m[2])
            outs[copy] = [read(os.path.join(self.dir, stem + ext)) for ext in (".prototxt", ".caffemodel")]
            self.assertEqual(size, len(outs[copy][1]))
            self.assertEqual(n, copied if copy else 0, "bytes the weights pass copied")
        self.assertEqual(outs[True][1], outs[False][1], "the caffemodels differ")
        self.assertEqual(outs[True][0].replace(b"copy.prototxt", b""),
                         outs[False][0].replace(b"write.prototxt", b""))

    def test_trace_f32_at_odd_offsets(self) -> None:
        # 256x256 floats (256 KiB, copied) and 8x256 (8 KiB, read), the data 8 + N bytes in with N odd
        dims = [("f32", 256, 256), ("f32", 8, 256), ("f32", 300, 8), ("f32", 256, 300)]
        data = [(f"w{k}", "F32", [r, c], f32(floats(r * c, k))) for k, (_, r, c) in enumerate(dims)]
        safetensors(os.path.join(self.dir, "chain.safetensors"), data, pad=3)
        self.both_ways(chain_trace(self.dir, "chain", dims), copied=(256 * 256 + 256 * 300) * 4)

    def test_trace_f16_converted(self) -> None:
        dims = [("f16", 256, 256), ("f32", 256, 256)]
        data = [("w0", "F16", [256, 256], f16(floats(256 * 256, 1))),
                ("w1", "F32", [256, 256], f32(floats(256 * 256, 2)))]
        safetensors(os.path.join(self.dir, "mixed.safetensors"), data)
        self.both_ways(chain_trace(self.dir, "mixed", dims), copied=256 * 256 * 4)
        data = [("w0", "F16", [256, 256], f16(floats(256 * 256, 1)))]
        safetensors(os.path.join(self.dir, "half.safetensors"), data)
        self.both_ways(chain_trace(self.dir, "half", dims[:1]), copied=0)

    def test_folded_beside_copied(self) -> None:
        # -O2: the convolution's weights are folded with the BatchNorm (computed), the linear's copied
        c = 64
        lines = ["ptcc-trace 1", 'weights "fold.safetensors"', f"param $cw : f32[{c},{c},3,3]",
                 f"param $m : f32[{c}]", f"param $v : f32[{c}]", f"param $lw : f32[256,{c * 16}]",
                 f'input %0 "x" : f32[1,{c},4,4]',
                 f"%1 = conv2d(%0, $cw, none, stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1)"
                 f" : f32[1,{c},4,4]",
                 "%2 = batch_norm(%1, $m, $v, none, none, training=false, momentum=0.1, eps=1e-05)",
                 f"%3 = flatten(%2, 1) : f32[1,{c * 16}]", "%4 = linear(%3, $lw) : f32[1,256]", 'output %4 "y"']
        with open(os.path.join(self.dir, "fold.log"), "w") as f:
            f.write("\n".join(lines) + "\n")
        var = [abs(v) + 0.5 for v in floats(c, 5)]
        safetensors(os.path.join(self.dir, "fold.safetensors"),
                    [("cw", "F32", [c, c, 3, 3], f32(floats(c * c * 9, 3))), ("m", "F32", [c], f32(floats(c, 4))),
                     ("v", "F32", [c], f32(var)), ("lw", "F32", [256, c * 16], f32(floats(256 * c * 16, 6)))])
        conv, lin = c * c * 9 * 4, 256 * c * 16 * 4
        for level, copied in (("-O1", conv + lin), ("-O2", lin)):
            with self.subTest(level=level):
                self.both_ways("fold.log", level, copied=copied)

    def test_onnx_raw_packed_external(self) -> None:
        try:
            import numpy as np
            from onnx import TensorProto, helper, numpy_helper, save
        except ImportError as e:
            self.fail(f"python3-onnx is missing ({e}); scripts/install-deps installs it")
        rng = np.random.default_rng(0)

        def init(name: str, shape: tuple[int, ...]) -> TensorProto:
            return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

        raw = init("raw", (256, 256))
        packed = helper.make_tensor("packed", TensorProto.FLOAT, [256, 256],
                                    rng.standard_normal(256 * 256).astype(np.float32).tolist())
        ext = init("ext", (256, 256))
        with open(os.path.join(self.dir, "ext.bin"), "wb") as f:
            f.write(b"\0" * 5 + ext.raw_data)  # at an odd offset in its file
        ext.data_location = TensorProto.EXTERNAL
        ext.ClearField("raw_data")
        for k, v in (("location", "ext.bin"), ("offset", "5"), ("length", str(256 * 256 * 4))):
            e = ext.external_data.add()
            e.key, e.value = k, v
        # Gemm with transB, as torch exports a Linear: the weight is InnerProduct's as it lies
        nodes = [helper.make_node("Gemm", ["x", w], [o], name=f"/{w}/Gemm", transB=1)
                 for w, o in (("raw", "a"), ("packed", "b"), ("ext", "y"))]
        nodes[1].input[0], nodes[2].input[0] = "a", "b"
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[raw, packed, ext])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="test_weight_io")
        m.ir_version = 7
        save(m, os.path.join(self.dir, "m.onnx"))
        self.both_ways("m.onnx", copied=3 * 256 * 256 * 4)
        # --emit=log writes the initializers as a safetensors file: the weights pass copies them too
        logs = {}
        for copy in (True, False):
            stem = "copy" if copy else "write"
            r = ptcc(self.dir, "m.onnx", "--emit=log", "-o", stem + ".log", "--stats", copy=copy)
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.search(r"^ptcc: stats: weights file (\d+) bytes, (\d+) copied by the weights pass$", r.stderr,
                          re.M)
            self.assertIsNotNone(m, r.stderr)
            weights = read(os.path.join(self.dir, stem + ".safetensors"))
            self.assertEqual(int(m[1]), len(weights))
            self.assertEqual(int(m[2]), 3 * 256 * 256 * 4 if copy else 0, "bytes the weights pass copied")
            logs[copy] = (read(os.path.join(self.dir, stem + ".log")).replace(stem.encode() + b".safetensors", b""),
                          weights)
        self.assertEqual(logs[True], logs[False], "--emit=log wrote other bytes through the weights pass")


class ValueCheck(unittest.TestCase):
    """NaN and infinities found in the pieces the weights pass reads (512 KiB each)."""

    def setUp(self) -> None:
        self.dir = ptcctest.out_dir("weight-io", self._testMethodName)
        shutil.rmtree(self.dir)
        os.makedirs(self.dir)

    def warnings(self, dtype: str, pack, bad: dict[int, float]) -> list[str]:
        rows, cols = 512, 1024
        values = [0.25] * (rows * cols)
        for i, v in bad.items():
            values[i] = v
        safetensors(os.path.join(self.dir, "big.safetensors"), [("w0", dtype, [rows, cols], pack(values))], pad=1)
        log = chain_trace(self.dir, "big", [(dtype.lower(), rows, cols)])
        r = ptcc(self.dir, log, "-o", "big.prototxt")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [line for line in r.stderr.splitlines() if ": warning: " in line]

    def test_f32_late_piece(self) -> None:
        # 131,072 floats a piece: index 300,000 is in the third, [292, 992]; the -inf in the fourth,
        # which another thread may read first
        got = self.warnings("F32", f32, {300000: float("nan"), 400000: float("-inf")})
        self.assertEqual(got, ["big.log:3:7: warning: $w0 has 2 non-finite values (the first: nan at [292,992])"])

    def test_f16_late_piece(self) -> None:
        # 262,144 halves a piece: index 300,000 is in the second, [292, 992]
        got = self.warnings("F16", f16, {300000: float("inf")})
        self.assertEqual(got, ["big.log:3:7: warning: $w0 has 1 non-finite value (the first: inf at [292,992])"])

    def test_clean(self) -> None:
        self.assertEqual(self.warnings("F32", f32, {}), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
