"""Code that runs INSIDE the MLServer process (its own venv): the ONNX runtime and the Triton-API extension.

These modules may import only the standard library, `mlserver`, `onnxruntime`, `numpy` and (in
`openvino_runtime` only, loaded for OpenVINO variants) `openvino`. The launcher copies
this folder into the server's work directory as the top-level package `modelyzer_rt` and puts it on the
server's PYTHONPATH; `wire` and `stats` are pure standard library, so the project's tests import them too.
"""
