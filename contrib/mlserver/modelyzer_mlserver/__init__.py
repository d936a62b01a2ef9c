"""modelyzer's `mlserver` launcher plugin: a real MLServer (CPU) serving Triton-layout ONNX model variants."""
