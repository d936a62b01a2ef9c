"""dali_preprocess on Triton's Python backend: a DALI CPU pipeline decodes JPEG bytes, resizes to 64×64 and
normalises to FP32 CHW (ImageNet mean/std), one DALI batch per execute() (every sample of every request)."""

import numpy as np
import triton_python_backend_utils as pb_utils
from nvidia.dali import fn, pipeline_def, types

SIZE = 64
MAX_BATCH = 8


@pipeline_def(batch_size=MAX_BATCH, num_threads=1, device_id=None, prefetch_queue_depth=1)
def preprocess():
    jpegs = fn.external_source(name="JPEG", dtype=types.UINT8, no_copy=False)
    images = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
    images = fn.resize(images, resize_x=SIZE, resize_y=SIZE)
    return fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW",
                                    mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
                                    std=[0.229 * 255, 0.224 * 255, 0.225 * 255])


class TritonPythonModel:
    def initialize(self, args):
        self.pipe = preprocess()
        self.pipe.build()

    def run(self, samples):
        out = []
        for start in range(0, len(samples), MAX_BATCH):
            self.pipe.feed_input("JPEG", samples[start:start + MAX_BATCH])
            (images,) = self.pipe.run()
            out.extend(np.array(images[i]) for i in range(len(images)))
        return out

    def execute(self, requests):
        batches = [pb_utils.get_input_tensor_by_name(r, "JPEG").as_numpy() for r in requests]
        images = self.run([np.ascontiguousarray(sample) for batch in batches for sample in batch])
        out, start = [], 0
        for batch in batches:
            out.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("IMAGE", np.stack(images[start:start + len(batch)]).astype(np.float32))]))
            start += len(batch)
        return out
