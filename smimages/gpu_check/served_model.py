"""What the serve check serves: a Linear(4, 2) with known weights (so the right answer is known
without torch in the parent), the request's input, and the inference script whose predict_fn says
where it ran and in which worker."""

WORKER_VAR = "GPU_CHECK_WORKER"  # the gunicorn worker's number (age - 1), set in the worker for the script
HOLD_S = 0.3  # each request holds its worker this long, so concurrent requests reach every worker

WEIGHT = [[1.0, 0.0, -1.0, 0.5], [0.25, 0.25, 0.25, 0.25]]
BIAS = [0.5, -1.0]
INPUT = [[1.0, 2.0, 3.0, 4.0]]

INFERENCE = f'''"""gpu-check's inference script: the image's default model_fn loads model.pt (onto
cuda:<gpu_id>); this predict_fn runs it and says where it ran, and in which worker."""
import json
import os
import time

import torch


def predict_fn(data, model, context):
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(data.to(device))
    time.sleep({HOLD_S})  # hold this worker: concurrent requests reach the others
    return {{"pid": os.getpid(), "worker": int(os.environ.get("{WORKER_VAR}", "-1")),
            "gpu_id": context.system_properties.get("gpu_id"),
            "devices": sorted({{str(p.device) for p in model.parameters()}}),
            "output_device": str(out.device), "output": out.cpu().tolist()}}


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
'''


def expected_output():
    return [[sum(w * x for w, x in zip(row, xs)) + b for row, b in zip(WEIGHT, BIAS)] for xs in INPUT]
