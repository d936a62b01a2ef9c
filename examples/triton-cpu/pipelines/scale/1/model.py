"""scale on Triton's Python backend: OUTPUT = 2 × INPUT (FP32, [batch, 16]); the first step of the pipelines."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(
                "OUTPUT", (2.0 * pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy()).astype(np.float32))])
            for r in requests
        ]
