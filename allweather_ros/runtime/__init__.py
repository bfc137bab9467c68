"""Inference runtimes of the per-frame graph: ONNX export and the backends that run it."""
