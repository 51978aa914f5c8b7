"""Serving the MNIST model for batch transform: CSV records in (784 pixel values 0..255 a line),
one line of 10 class probabilities out per record, in order. train.py copies this file to
<model>/code/inference.py, where the model server finds it."""

import json
import os

import mxnet as mx
import numpy as np


def model_fn(model_dir):
    symbol, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(model_dir, "model"), 0)
    with open(os.path.join(model_dir, "model-shapes.json")) as f:
        shapes = [(d["name"], tuple(d["shape"])) for d in json.load(f)]
    module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
    module.bind(data_shapes=shapes, for_training=False)
    module.set_params(arg_params, aux_params, allow_missing=True)  # softmax_label: unused here
    return module


def transform_fn(model, body, content_type, accept):
    if content_type.split(";")[0].strip().lower() != "text/csv":
        raise ValueError(f"this model reads text/csv records, not {content_type}")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    pixels = np.array([[float(v) for v in line.split(",")] for line in body.splitlines() if line.strip()],
                      dtype=np.float32)
    if pixels.ndim != 2 or pixels.shape[1] != 784:
        raise ValueError(f"each record must hold 784 pixel values, got shape {pixels.shape}")
    model.forward(mx.io.DataBatch([mx.nd.array(pixels)]), is_train=False)
    probabilities = model.get_outputs()[0].asnumpy()
    lines = "\n".join(",".join(f"{p:.6f}" for p in row) for row in probabilities)
    return lines, "text/csv"
