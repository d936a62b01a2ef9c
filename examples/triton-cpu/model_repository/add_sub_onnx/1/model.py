"""The quick start's add_sub ONNX model, executed by onnxruntime inside a Triton Python-backend model.

This wheel's Triton has only the Python backend; the model file is `model.onnx` beside this file (the same file as
examples/quick-start's), run on the CPU by onnxruntime from the server's venv (.venv-triton).
"""

import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        here = os.path.dirname(os.path.abspath(__file__))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(here, "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])

    def execute(self, requests):
        responses = []
        for request in requests:
            feeds = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy().astype(np.float32)
                     for name in ("INPUT0", "INPUT1")}
            out0, out1 = self.session.run(["OUTPUT0", "OUTPUT1"], feeds)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", out0), pb_utils.Tensor("OUTPUT1", out1),
            ]))
        return responses
