"""classifier on Triton's Python backend: ONNX Runtime (CPU) runs model.onnx, IMAGE FP32 [b,3,64,64] → SCORES [b,10]."""

import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "IMAGE").as_numpy() for r in requests]
        scores = self.session.run(["SCORES"], {"IMAGE": np.concatenate(images).astype(np.float32)})[0]
        out, start = [], 0
        for image in images:
            out.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("SCORES", scores[start:start + len(image)])]))
            start += len(image)
        return out
