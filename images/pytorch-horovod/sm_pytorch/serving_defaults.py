"""PyTorch's defaults for the shared model server (SAGEMAKER_DEFAULT_HANDLERS points here), as
AWS's PyTorch inference images behave: a TorchScript `model.pt` serves with no script at all;
input becomes a tensor and predictions run under no_grad on the GPU when there is one; the shared
codecs turn the answer (a tensor too) into JSON, CSV or .npy. An inference script's own hooks take precedence."""

import logging
import os

import numpy as np
import torch
from sm_entrypoint.serving import codecs
from sm_entrypoint.serving.errors import BadRequest

log = logging.getLogger("sm_entrypoint")
MODEL_FILE = "model.pt"  # the name AWS's default model_fn loads first
MODEL_SUFFIXES = (".pt", ".pth")  # else the only file with one of these, as AWS's does


def device(gpu_id=None):
    """The worker's GPU (the server spreads workers over the GPUs), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda" if gpu_id is None else f"cuda:{gpu_id}")


def model_file(model_dir):
    """model.pt, else the one .pt or .pth file in the model's folder (AWS's default model_fn)."""
    path = os.path.join(model_dir, MODEL_FILE)
    if os.path.isfile(path):
        return path
    found = sorted(f for f in os.listdir(model_dir) if f.endswith(MODEL_SUFFIXES)) if os.path.isdir(model_dir) else []
    if len(found) != 1:
        raise ValueError(f"Exactly one .pth or .pt file is required for PyTorch models: {found} in {model_dir} "
                         "(a TorchScript file saved with torch.jit.save), or define model_fn in the inference script")
    return os.path.join(model_dir, found[0])


def model_fn(model_dir, context=None):
    path = model_file(model_dir)
    target = device(context.system_properties.get("gpu_id") if context is not None else None)
    model = torch.jit.load(path, map_location=target)
    model.eval()
    log.info("loaded TorchScript %s on %s", path, target)
    return model


def input_fn(body, content_type):
    """A float32 tensor from CSV or JSON; an .npy array keeps its dtype."""
    array = codecs.decode(body, content_type)
    if codecs.media_type(content_type) != codecs.NPY:
        if not isinstance(array, np.ndarray) or array.dtype == object:
            raise BadRequest("the default input_fn takes an array of numbers: define input_fn "
                             f"for anything else (got {type(array).__name__})")
        array = array.astype(np.float32)
    try:
        return torch.from_numpy(np.ascontiguousarray(array))
    except TypeError as e:  # an .npy of strings or objects
        raise BadRequest(f"the array cannot be a tensor: {e}") from None


def predict_fn(data, model):
    """model(data) on the model's device, without building a graph."""
    target = next((p.device for p in model.parameters()), device()) if hasattr(model, "parameters") else device()
    with torch.no_grad():
        if isinstance(data, torch.Tensor):
            data = data.to(target)
        return model(data)
