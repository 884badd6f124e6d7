#!/usr/bin/env python3
"""Regenerate the bad traces of this directory: NAME.log (and NAME.safetensors where the case is about
the weights file).  The expected first diagnostic of each, NAME.err, is reviewed by hand and committed;
tests/front/test_bad.sh compares it exactly.  Usage: cd tests/bad && ./make_bad.py"""
import json
import struct

HEAD = 'ptcc-trace 1\nweights "{w}.safetensors"\n'
P = "param $w : f32[4,3,3,3]\n"
INP = 'input %0 "x" : f32[1,3,8,8]\n'
CONV = "%1 = conv2d(%0, $w, none, stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1) : f32[1,4,8,8]\n"
OUT = "output %1\n"


def good(name, body=None, params=P, inputs=INP, out=OUT):
    """A small valid trace with one line swapped for the broken one."""
    return HEAD.format(w=name) + params + inputs + (CONV if body is None else body) + out


RESIZE = ('%{i} = interpolate(%{x}, size={size}, scale_factor=none, mode="nearest", align_corners=none, '
          'recompute_scale_factor=none, antialias=false)\n')

CASES = {
    # lexical
    "lex-stray-char": good("lex-stray-char", "%1 = relu(%0) ;\n"),
    "lex-bad-utf8": good("lex-bad-utf8", "%1 = relu(%0) \xff\n"),
    "lex-lone-cr": good("lex-lone-cr", "%1 = relu(%0)\r %2\n"),
    "lex-unterminated-string": 'ptcc-trace 1\nweights "unterminated.safetensors\n' + P + INP + CONV + OUT,
    "lex-bad-escape": good("lex-bad-escape", '%1 = relu(%0) @ "a\\qb"\n'),
    "lex-short-hex-escape": good("lex-short-hex-escape", '%1 = relu(%0) @ "a\\x4"\n'),
    "lex-surrogate": good("lex-surrogate", '%1 = relu(%0) @ "\\ud800"\n'),
    "lex-nul-escape": good("lex-nul-escape", '%1 = relu(%0) @ "a\\x00"\n'),
    "lex-tab-in-string": good("lex-tab-in-string", '%1 = relu(%0) @ "a\tb"\n'),
    "lex-int-overflow": good("lex-int-overflow", CONV.replace("groups=1", "groups=9223372036854775808")),
    "lex-handle-too-long": good("lex-handle-too-long", "%1 = relu(%1234567890)\n"),
    "lex-deep-nesting": good("lex-deep-nesting", "%1 = getitem(%0, " + "[" * 100 + "]" * 100 + ")\n"),
    "lex-dollar-alone": good("lex-dollar-alone", "%1 = relu($ )\n"),
    # syntax
    "syn-empty-file": "",
    "syn-missing-header": 'weights "x.safetensors"\n' + INP + "%1 = relu(%0)\n" + OUT,
    "syn-wrong-version": good("syn-wrong-version").replace("ptcc-trace 1", "ptcc-trace 2"),
    "syn-missing-paren": good("syn-missing-paren", "%1 = relu(%0 : f32[1,3,8,8]\n"),
    "syn-trailing-comma": good("syn-trailing-comma", CONV.replace("stride=[1, 1]", "stride=[1, 1,]")),
    "syn-bad-result": good("syn-bad-result", "1 = relu(%0)\n"),
    "syn-type-no-dims": good("syn-type-no-dims", "%1 = relu(%0) : f32\n"),
    "syn-unknown-dtype": good("syn-unknown-dtype", "%1 = relu(%0) : f33[1,3,8,8]\n"),
    "syn-negative-dim": good("syn-negative-dim", "%1 = relu(%0) : f32[1,-3,8,8]\n"),
    "syn-too-many-dims": good("syn-too-many-dims", "%1 = relu(%0) : f32[" + ",".join(["1"] * 65) + "]\n"),
    "syn-size-overflow": good("syn-size-overflow", inputs='input %0 : f32[4611686018427387904,4]\n', body="%1 = relu(%0)\n"),
    "syn-second-weights": good("syn-second-weights").replace(P, P + 'weights "y.safetensors"\n'),
    "syn-weights-after-param": 'ptcc-trace 1\n' + P + 'weights "w.safetensors"\n' + INP + CONV + OUT,
    "syn-param-after-input": good("syn-param-after-input", params="", inputs=INP + P),
    "syn-input-after-op": good("syn-input-after-op", inputs="", body=INP + "%1 = relu(%0)\n" + 'input %5 : f32[1]\n'),
    "syn-op-after-output": good("syn-op-after-output", out="output %1\n%2 = relu(%1)\n"),
    "syn-return-mismatch": good("syn-return-mismatch", "call conv Conv2d\n" + CONV + "return conv2\n"),
    "syn-return-without-call": good("syn-return-without-call", CONV + "return conv\n"),
    "syn-unclosed-call": good("syn-unclosed-call", "call conv Conv2d\n" + CONV, out=""),
    "syn-output-before-return": good("syn-output-before-return", "call conv Conv2d\n" + CONV),
    "syn-no-weights-line": "ptcc-trace 1\n" + INP + "%1 = relu(%0)\n" + OUT,
    "syn-unknown-op": good("syn-unknown-op", CONV.replace("conv2d", "conv2e")),
    "syn-unknown-kwarg": good("syn-unknown-kwarg", CONV.replace("stride=", "strides=")),
    "syn-positional-after-kw": good("syn-positional-after-kw", CONV.replace("groups=1", "1")),
    "syn-arg-twice": good("syn-arg-twice", CONV.replace("groups=1", "groups=1, stride=2")),
    "syn-missing-arg": good("syn-missing-arg", "%1 = conv2d(%0, stride=2)\n"),
    "syn-arg-type": good("syn-arg-type", CONV.replace("stride=[1, 1]", 'stride="two"')),
    "syn-too-many-args": good("syn-too-many-args", "%1 = relu(%0, false, 3)\n"),
    "syn-types-count": good("syn-types-count", "%1 = relu(%0) : f32[1,3,8,8], f32[1]\n"),
    "syn-param-twice": good("syn-param-twice", params=P + P),
    "syn-keyword-statement": good("syn-keyword-statement", "frobnicate %1\n"),
    # resolve
    "res-undefined-handle": good("res-undefined-handle", "%1 = relu(%7)\n"),
    "res-undeclared-param": good("res-undeclared-param", CONV.replace("$w", "$v")),
    "res-input-twice": good("res-input-twice", inputs=INP + INP),
    "res-inplace-result": good("res-inplace-result", "%1 = relu_(%0)\n"),
    "res-inplace-kwarg-result": good("res-inplace-kwarg-result", "%1 = relu(%0, inplace=true)\n"),
    "res-duplicate-results": good("res-duplicate-results", "%1, %1 = chunk(%0, 2, dim=2)\n"),
    "res-write-to-view": good("res-write-to-view", "%1 = view(%0, [1, 192])\n%0 = relu_(%0)\n%2 = add(%1, 1.0)\n", out="output %2\noutput %0\n"),
    "res-inplace-param": good("res-inplace-param", "%1 = relu_($w)\n"),
    "res-undefined-output": good("res-undefined-output", out="output %9\n"),
    # shape
    "shape-annotation": good("shape-annotation", CONV.replace(": f32[1,4,8,8]", ": f32[1,4,9,8]")),
    "shape-annotation-dtype": good("shape-annotation-dtype", "%1 = relu(%0) : f16[1,3,8,8]\n"),
    "shape-conv-channels": good("shape-conv-channels", params="param $w : f32[4,5,3,3]\n"),
    "shape-conv-bias": good("shape-conv-bias", CONV.replace("none", "$b"), params=P + "param $b : f32[5]\n"),
    "shape-conv-stride-zero": good("shape-conv-stride-zero", CONV.replace("stride=[1, 1]", "stride=[1, 0]")),
    "shape-bn-channels": good("shape-bn-channels", "%1 = batch_norm(%0, $m, $v, training=false, momentum=0.1, eps=1e-05)\n",
                              params="param $m : f32[3]\nparam $v : f32[4]\n"),
    "shape-linear-features": good("shape-linear-features", "%1 = linear(%0, $w)\n", params="param $w : f32[10,7]\n",
                                  inputs='input %0 : f32[1,8]\n'),
    "shape-view-numel": good("shape-view-numel", "%1 = view(%0, [1, 100])\n"),
    "shape-view-infer": good("shape-view-infer", "%1 = view(%0, [-1, 5])\n"),
    "shape-cat-mismatch": good("shape-cat-mismatch", "%1 = max_pool2d(%0, 2)\n%2 = cat([%0, %1], dim=1)\n", out="output %2\n"),
    "shape-chunk-results": good("shape-chunk-results", "%1, %2, %3 = chunk(%0, 2, dim=2)\n", out="output %1\noutput %2\noutput %3\n"),
    "shape-dim-range": good("shape-dim-range", "%1 = flatten(%0, 5)\n"),
    "shape-broadcast": good("shape-broadcast", "%1 = max_pool2d(%0, 2)\n%2 = add(%0, %1)\n", out="output %2\n"),
    "shape-pool-padding": good("shape-pool-padding", "%1 = max_pool2d(%0, 3, stride=2, padding=2)\n"),
    "shape-window-too-large": good("shape-window-too-large", "%1 = max_pool2d(%0, 11)\n"),
    "shape-overflow": good("shape-overflow", CONV.replace("padding=[1, 1]", "padding=[4611686018427387904, 1]")),
    "shape-split-sizes": good("shape-split-sizes", "%1, %2 = split(%0, [3, 4], dim=2)\n", out="output %1\noutput %2\n"),
    "shape-getitem-range": good("shape-getitem-range", "%1 = getitem(%0, [0, 5])\n"),
    "shape-permute-repeat": good("shape-permute-repeat", "%1 = permute(%0, [0, 1, 1, 2])\n"),
    "shape-unknown-symbol-dtype": good("shape-unknown-symbol-dtype", "%1 = softmax(%0, dim=1, dtype=float33)\n"),
    "shape-bad-padding-string": good("shape-bad-padding-string", CONV.replace("padding=[1, 1]", 'padding="full"')),
    # huge numbers: no signed overflow on the way to a located error
    "shape-pool-ceil-stride-overflow": good("shape-pool-ceil-stride-overflow", "%1 = max_pool2d(%0, 2, stride=9223372036854775807, ceil_mode=true)\n"),
    "shape-pool-stride-overflow": good("shape-pool-stride-overflow", "%1 = max_pool2d(%0, 2, stride=9223372036854775807)\n"),
    "shape-slice-step-overflow": good("shape-slice-step-overflow", "%1 = getitem(%0, [slice(none, none, none), slice(none, none, none), slice(1, none, 9223372036854775807)])\n%2 = getitem(%1, [0, 0, 1])\n", out="output %2\n"),
    "shape-chunk-overflow": good("shape-chunk-overflow", "%1 = chunk(%0, 9223372036854775807, dim=1)\n"),
    "shape-expand-bytes": good("shape-expand-bytes", "%1 = expand(%0, [4611686018427387904, 3, 8, 8])\n"),
    "shape-repeat-bytes": good("shape-repeat-bytes", "%1 = repeat(%0, [1, 1, 576460752303423488, 1])\n"),
    "shape-convt-padding-overflow": good("shape-convt-padding-overflow", "%1 = conv_transpose2d(%0, $w, none, stride=1, padding=[4611686018427387904, 1], output_padding=0, groups=1, dilation=1)\n", params="param $w : f32[3,4,3,3]\n"),
    "low-repeat-axis-overflow": good("low-repeat-axis-overflow", "%1 = repeat(%0, [1, 1, 4294967296, 1])\n"),
    "low-pixel-unshuffle-weight-overflow": good("low-pixel-unshuffle-weight-overflow", "%1 = pixel_unshuffle(%0, 256)\n", inputs='input %0 "x" : f32[1,1,256,256]\n'),
    # the first type with no dimensions and the first list empty: the parser's vectors are still
    # NULL there (UBSan's pointer-overflow check on NULL + 0; scripts/check-sanitizers runs these)
    "syn-empty-first-dims": good("syn-empty-first-dims", "%1 = relu(%0)\n", params="", inputs='input %0 "x" : f32[]\n'),
    "syn-empty-first-list": good("syn-empty-first-list", "%1 = permute(%0, [])\n", params=""),
    # Caffe's limits: a blob of at most INT32_MAX elements, a caffemodel of at most 2 GiB
    "low-input-too-large": good("low-input-too-large", "%1 = relu(%0)\n", inputs='input %0 "x" : f32[1,1,65536,65536]\n'),
    "low-result-too-large": good("low-result-too-large", "%1 = repeat(%0, [1, 1, 20000, 20000])\n"),
    "low-resize-matrix-too-large": good("low-resize-matrix-too-large", RESIZE.format(i=1, x=0, size="[1, 50000]"), inputs='input %0 "x" : f32[1,1,1,60000]\n'),
    "low-permutation-too-large": good("low-permutation-too-large", "%1 = channel_shuffle(%0, groups=2)\n", inputs='input %0 "x" : f32[1,100000,1,1]\n'),
    "low-constants-over-2gib": good("low-constants-over-2gib", RESIZE.format(i=1, x=0, size="[1, 19000]") + RESIZE.format(i=2, x=1, size="[1, 20000]"), inputs='input %0 "x" : f32[1,1,1,20000]\n', out="output %2\n"),
    # empty tensors: Caffe has no empty blob
    "shape-zero-dim-input": good("shape-zero-dim-input", inputs='input %0 "x" : f32[0,3,8,8]\n'),
    "shape-zero-dim-param": good("shape-zero-dim-param", params="param $w : f32[0,3,3,3]\n"),
    "shape-zero-dim-annotated": good("shape-zero-dim-annotated", "%1 = getitem(%0, [slice(none, none, none), slice(3, 3, none)]) : f32[1,0,8,8]\n"),
    "shape-zero-dim-result": good("shape-zero-dim-result", "%1 = getitem(%0, [slice(0, none, none), slice(3, none, none)])\n"),
}

W = {"dtype": "F32", "shape": [4, 3, 3, 3], "data_offsets": [0, 432]}


def st(header, data, hlen=None, raw=None):
    text = raw if raw is not None else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if hlen is None else hlen) + text + data


WEIGHTS = {
    "w-truncated": b"\x10\x00\x00",
    "w-header-too-long": st({"w": W}, bytes(432), hlen=100000),
    "w-bad-json": st(None, bytes(432), raw=b'{"w": {"dtype": "F32", '),
    "w-not-object": st(None, bytes(432), raw=b'[1, 2, 3]'),
    "w-duplicate-key": st(None, bytes(432), raw=b'{"w": {"dtype": "F32", "shape": [4,3,3,3], "data_offsets": [0, 432]}, "w": {}}'),
    "w-offsets-out-of-range": st({"w": dict(W, data_offsets=[0, 864])}, bytes(432)),
    "w-byte-length": st({"w": dict(W, data_offsets=[0, 400])}, bytes(400)),
    "w-unknown-dtype": st({"w": dict(W, dtype="F8")}, bytes(432)),
    "w-wrong-dtype": st({"w": {"dtype": "F16", "shape": [4, 3, 3, 3], "data_offsets": [0, 216]}}, bytes(216)),
    "w-wrong-shape": st({"w": {"dtype": "F32", "shape": [4, 3, 3, 2], "data_offsets": [0, 288]}}, bytes(288)),
    "w-name-missing": st({"v": W}, bytes(432)),
    "w-overlap": st({"w": W, "z": {"dtype": "F32", "shape": [2], "data_offsets": [428, 436]}}, bytes(436)),
    "w-gap": st({"w": dict(W, data_offsets=[8, 440])}, bytes(440)),
    "w-trailing-bytes": st({"w": W}, bytes(440)),
    "w-bad-shape": st({"w": dict(W, shape=[4, -3, 3, 3])}, bytes(432)),
    "w-count-overflow": st({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 432]}}, bytes(432)),
    "w-bad-metadata": st({"__metadata__": {"format": 1}, "w": W}, bytes(432)),
    "w-bytes-overflow": st({"w": {"dtype": "F32", "shape": [1152921504606846976, 2], "data_offsets": [0, 432]}}, bytes(432)),
    # warnings (exit status 0): values Caffe would compute NaN from
    "w-non-finite": st({"w": W}, struct.pack("<108f", *([0.0] * 9 + [float("nan")] + [0.0] * 50 + [float("-inf")] + [0.0] * 47))),
}

# CASES whose error comes from the lowering, which --check reaches only with the weights read
CASES_WITH_WEIGHTS = ["shape-pool-ceil-stride-overflow", "shape-pool-stride-overflow", "low-repeat-axis-overflow",
                      "low-pixel-unshuffle-weight-overflow", "low-input-too-large", "low-result-too-large",
                      "low-resize-matrix-too-large", "low-constants-over-2gib", "syn-empty-first-dims",
                      "syn-empty-first-list", "low-permutation-too-large"]

BN = "%1 = batch_norm(%0, $m, $v, none, none, training=false, momentum=0.1, eps=1e-05)\n"
# traces of their own with their weights: (trace, {name: (shape, floats)})
WEIGHT_CASES = {
    "w-negative-var": (good("w-negative-var", BN, params="param $m : f32[3]\nparam $v : f32[3]\n"),
                       {"m": ([3], [0.0, 0.0, 0.0]), "v": ([3], [1.0, -0.5, -2.0])}),
}


def f32_file(tensors):
    header, data = {}, b""
    for name, (shape, values) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * len(values)]}
        data += struct.pack("<%df" % len(values), *values)
    return st(header, data)


def main():
    for name, text in CASES.items():
        with open(name + ".log", "w", encoding="utf-8", newline="", errors="surrogateescape") as f:
            f.write(text)
        if name == "lex-bad-utf8":
            with open(name + ".log", "wb") as f:
                f.write(text.replace("\xff", "").encode().replace(b"relu(%0) ", b"relu(%0) \xff"))
    for name, data in WEIGHTS.items():
        with open(name + ".log", "w") as f:
            f.write(good(name))
        with open(name + ".safetensors", "wb") as f:
            f.write(data)
    for name in CASES_WITH_WEIGHTS:
        with open(name + ".safetensors", "wb") as f:
            f.write(st({"w": W}, bytes(432)))
    for name, (text, tensors) in WEIGHT_CASES.items():
        with open(name + ".log", "w") as f:
            f.write(text)
        with open(name + ".safetensors", "wb") as f:
            f.write(f32_file(tensors))
    with open("w-missing-file.log", "w") as f:
        f.write(good("w-missing-file"))


if __name__ == "__main__":
    main()
