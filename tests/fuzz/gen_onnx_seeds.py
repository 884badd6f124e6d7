"""The first seeds of the ONNX target (fuzz_onnx.c): tests/onnx's bad models, test_onnx_ops.py's graphs
and the smallest families of test_onnx.py exported at opsets 11 and 13, into DIR.  Needs python3-onnx and
torch (Debian's /usr/bin/python3); the campaign's minimised corpus, tests/fuzz/corpus/onnx.tar.gz, is
what the fuzz build uses (its README says how to refresh it).

    PYTHONPATH=python:tests/lib /usr/bin/python3 tests/fuzz/gen_onnx_seeds.py DIR
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "onnx"), os.path.join(ROOT, "tests", "backend"),
                os.path.join(ROOT, "tests", "lib"), os.path.join(ROOT, "python")]
os.environ.setdefault("CI", "")


def main(out: str) -> None:
    import torch
    import bad_models
    import test_onnx
    import test_onnx_ops

    os.makedirs(out, exist_ok=True)
    for name, write, _, _ in bad_models.CASES:
        write(out)
    for case in test_onnx_ops.cases():
        with open(os.path.join(out, case.name + ".onnx"), "wb") as f:
            f.write(case.model_bytes())
    for fam in ("espcn", "cbam", "ssh", "vit", "convnext", "aspp", "yolov5"):
        for opset in (11, 13):
            model, shape = test_onnx.family(fam)
            torch.onnx.export(model, torch.randn(*shape), os.path.join(out, f"{fam}-{opset}.onnx"),
                              opset_version=opset, input_names=["x"])


if __name__ == "__main__":
    main(sys.argv[1])
