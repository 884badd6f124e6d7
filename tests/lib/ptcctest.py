"""Shared helpers for ptcc's Python tests: paths, the zoo, and running things.

A test that needs torch fails when torch is missing and CI=true; outside CI it is skipped (exit 77, the
Automake convention), so that a developer without torch can still run the C tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unittest

SRCDIR = os.environ.get("PTCC_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("PTCC_BUILDDIR") or SRCDIR
OUT = os.environ.get("PTCC_TEST_OUT") or os.path.join(BUILDDIR, "tests", "out")
PYTHON = os.environ.get("PYTHON") or sys.executable
EXIT_SKIP = 77

# torchvision models recorded by the zoo test (weights=None), with their input shapes.
ZOO: dict[str, tuple[int, ...]] = {
    "alexnet": (1, 3, 224, 224),
    "vgg11_bn": (1, 3, 224, 224),
    "resnet18": (1, 3, 224, 224),
    "resnet50": (1, 3, 224, 224),
    "squeezenet1_0": (1, 3, 224, 224),
    "googlenet": (1, 3, 224, 224),
    "inception_v3": (1, 3, 299, 299),
    "densenet121": (1, 3, 224, 224),
    "mobilenet_v2": (1, 3, 224, 224),
    "mobilenet_v3_small": (1, 3, 224, 224),
    "shufflenet_v2_x1_0": (1, 3, 224, 224),
    "efficientnet_b0": (1, 3, 224, 224),
    "mnasnet0_5": (1, 3, 224, 224),
    "regnet_x_400mf": (1, 3, 224, 224),
}

# Constructor arguments: the Inception nets without their auxiliary heads (those only run in training).
ZOO_KWARGS: dict[str, dict] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def require_torch() -> None:
    """Exit the test process unless torch imports: fail in CI, skip elsewhere."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"torch is not importable by {sys.executable}; install python3-torch "
              "or configure with PYTHON=/path/to/python", file=sys.stderr)
        sys.exit(1 if os.environ.get("CI") == "true" else EXIT_SKIP)


def out_dir(*parts: str) -> str:
    path = os.path.join(OUT, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def zoo_model(name: str):
    """The torchvision model in eval mode, its BatchNorm statistics calibrated (see calibrate)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **ZOO_KWARGS.get(name, {}))
    return calibrate(model, ZOO[name])


def record_zoo(name: str):
    """Record one zoo model the way every test expects it: zoo/NAME.log and NAME.safetensors, plus
    NAME.io.safetensors with the input and PyTorch's output.  Returns (what record() returned, PyTorch's
    output, seconds spent in record())."""
    import time

    import torch
    from ptcc import safetensors
    from ptcc.record import record

    out = out_dir("zoo")
    model = zoo_model(name)
    x = torch.randn(*ZOO[name], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x.clone())
    start = time.perf_counter()
    got = record(model, x, os.path.join(out, name + ".log"), origin=f"torchvision.models:{name}")
    seconds = time.perf_counter() - start
    with open(os.path.join(out, name + ".io.safetensors"), "wb") as f:
        safetensors.write(f, [("input", x), ("output", expected.contiguous())])
    return got, expected, seconds


def calibrate(model, shape: tuple[int, ...]):
    """Give every BatchNorm the statistics of real activations, from one training-mode pass on random
    data (cumulative averages, batch of 4), and random affine parameters.

    Freshly built models have running mean 0 and variance 1, which makes BatchNorm nearly the identity (a
    lowering that swapped mean and variance would still pass) and lets activations shrink layer by layer
    until the logits are all but zero (googlenet's: below 1e-10), where any comparison passes.  After this,
    activations stay of order one through the whole network."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        generator = torch.Generator().manual_seed(2)
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            if m.affine:
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5, generator=generator)
                    m.bias.uniform_(-0.2, 0.2, generator=generator)
        model.train()
        with torch.no_grad():
            model(torch.randn(4, *shape[1:], generator=generator))
    return model.eval()


def run_recorder(*args: str, cwd: str = SRCDIR, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(SRCDIR, "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.run([PYTHON, "-m", "ptcc", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def main() -> None:
    """Run the calling module's unittest cases; exit status is what Automake's harness reads."""
    result = unittest.main(module="__main__", exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
