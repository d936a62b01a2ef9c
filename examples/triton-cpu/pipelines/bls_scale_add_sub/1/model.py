"""A BLS pipeline on Triton's Python backend: scale(INPUT0), then add_sub(scaled, INPUT1), by in-server requests."""

import triton_python_backend_utils as pb_utils


def _call(model, inputs, outputs):
    response = pb_utils.InferenceRequest(model_name=model, requested_output_names=outputs, inputs=inputs).exec()
    if response.has_error():
        raise pb_utils.TritonModelException(f"{model}: {response.error().message()}")
    return [pb_utils.get_output_tensor_by_name(response, name) for name in outputs]


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0")
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1")
            [scaled] = _call("scale", [pb_utils.Tensor("INPUT", a.as_numpy())], ["OUTPUT"])
            out0, out1 = _call("add_sub", [pb_utils.Tensor("INPUT0", scaled.as_numpy()), b], ["OUTPUT0", "OUTPUT1"])
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses
