"""The tiny Llama streaming tokens from Triton's Python backend (decoupled): greedy decoding with a KV cache,
one response per generated token through the request's response sender, then the final flag.

Inputs as Triton's generate endpoint maps them from the JSON body: ``text_input`` (the prompt), optional
``max_tokens`` and ``stream``. As in Triton's vLLM backend, only ``"stream": true`` streams (genai-perf sends it,
modelyzer's AIPerf payload template too); without it the whole text is one response, as ``/generate`` needs.
Output: ``text_output``, the text each token adds (decoded from all tokens so far, so multi-byte characters are
sent whole).

torch and transformers are not installed in Triton's own venv: the ``site_packages`` parameter names a directory
that has them (default: the repository's ``.venv-llm``), appended to ``sys.path`` so Triton's numpy stays first.
``model_dir`` names the weights and tokenizer (default: the tiny Llama ``examples/llm/make_model.py`` saves).
A relative path is looked up from this file's directory upwards (the first directory that has it), so the model
works from the repository and from a copy deployed next to it; anywhere else set absolute paths.
"""

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

DEFAULTS = {
    "site_packages": ".venv-llm/lib/python3.11/site-packages",
    "model_dir": "examples/llm/model_repository/tiny_llama",
    "default_max_tokens": "64",
    "stop_at_eos": "false",
}


def _path(key, value, wanted):
    """The parameter's path: absolute, or the first ``<dir>/<value>`` from this file's directory upwards."""
    path = Path(value).expanduser()
    here = Path(__file__).resolve().parent
    found = path if path.is_absolute() else next((d / path for d in (here, *here.parents) if (d / path).exists()), None)
    if found is None or not (found / wanted).exists():
        where = str(found) if found is not None else f"{value!r} (looked up from {here} upwards)"
        raise pb_utils.TritonModelException(
            f"{key}: no {wanted} in {where}; run `bash .ci/setup.d/llm-target.sh` or set the {key} parameter "
            "of config.pbtxt to an absolute path")
    return found


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: (config.get("parameters", {}).get(key) or {}).get("string_value") or default
                  for key, default in DEFAULTS.items()}
        site = _path("site_packages", params["site_packages"], "transformers")
        if str(site) not in sys.path:
            sys.path.append(str(site))
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = _path("model_dir", params["model_dir"], "config.json")
        torch.set_num_threads(1)  # a tiny model: one thread decodes fastest, and leaves the other cores alone
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
        self.default_max_tokens = int(params["default_max_tokens"])
        self.stop_at_eos = params["stop_at_eos"].lower() in ("1", "true", "yes")
        self.eos = self.tokenizer.eos_token_id

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._generate(request, sender)
            except Exception as exc:  # the client gets the error, the model stays up
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tiny_llama_stream: {exc}")),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None

    def _generate(self, request, sender):
        prompt = _scalar(request, "text_input")
        if prompt is None:
            raise ValueError("text_input is required")
        prompt = prompt.decode("utf-8", errors="replace") if isinstance(prompt, bytes) else str(prompt)
        max_tokens = _scalar(request, "max_tokens")
        max_tokens = self.default_max_tokens if max_tokens is None else int(max_tokens)
        stream = _scalar(request, "stream")
        stream = bool(stream) if stream is not None else False

        torch = self.torch
        ids = self.tokenizer(prompt, return_tensors="pt").input_ids
        generated, sent, past = [], "", None
        with torch.inference_mode():
            for _ in range(max(0, max_tokens)):
                out = self.model(input_ids=ids, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = int(out.logits[0, -1].argmax())
                if self.stop_at_eos and token == self.eos:
                    break
                generated.append(token)
                ids = torch.tensor([[token]])
                if stream:
                    text = self.tokenizer.decode(generated, skip_special_tokens=True)
                    if text.endswith("\ufffd"):
                        continue  # an incomplete multi-byte character: send it with the next token
                    sender.send(_response(text[len(sent):]))
                    sent = text
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        if not stream:
            sender.send(_response(text), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        elif text != sent:
            sender.send(_response(text[len(sent):]), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        else:
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


def _scalar(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    values = tensor.as_numpy().reshape(-1)
    return values[0] if values.size else None


def _response(text):
    return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("text_output", np.array([text], dtype=object))])
