"""ptcc's recorder: runs a PyTorch model once and writes a trace log plus a safetensors weights file.

    from ptcc.record import record
    record(model, example_inputs, "run.log")   # writes run.log and run.safetensors

The log's format is specified in docs/trace-format.md; `ptcc` compiles it to Caffe.
"""

__version__ = "0.1.0"
TRACE_VERSION = 1
