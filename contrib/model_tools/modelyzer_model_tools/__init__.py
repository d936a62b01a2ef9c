"""modelyzer's model tools: `inspect` and `convert` commands over Polygraphy, ONNX Runtime and OpenVINO, and the
`--shape` values `profile` gives perf_analyzer for an ONNX model's dynamic dimensions."""
