"""ptcc's Python side: the recorder, which runs a PyTorch model once and writes a trace log plus a
safetensors weights file, the verifier, and the one-call conversion.

    from ptcc.record import record
    record(model, example_inputs, "run.log")   # writes run.log and run.safetensors

    import ptcc
    ptcc.convert(model, example_inputs, "net.prototxt")   # records, compiles with ptcc, verifies

The log's format is specified in docs/trace-format.md; `ptcc` compiles it to Caffe.
"""

from .api import ConvertError, Converted, convert  # noqa: F401

__version__ = "0.1.0"
TRACE_VERSION = 1
