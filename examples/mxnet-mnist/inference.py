"""Serving the MNIST model for batch transform: CSV records in (784 pixel values 0..255 a line),
one line of 10 class probabilities out per record, in order. train.py copies this file to
<model>/code/inference.py, where the model server finds it.

The decoding and encoding are the image's shared codecs: an unsupported type answers 415 and a
body that is not CSV (or JSON, or .npy) answers 400, each with the reason."""

import json
import os

import mxnet as mx
import numpy as np
from sm_entrypoint.serving import codecs
from sm_entrypoint.serving.errors import BadRequest

PIXELS = 28 * 28


def model_fn(model_dir):
    symbol, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(model_dir, "model"), 0)
    with open(os.path.join(model_dir, "model-shapes.json")) as f:
        shapes = [(d["name"], tuple(d["shape"])) for d in json.load(f)]
    module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
    module.bind(data_shapes=shapes, for_training=False)
    module.set_params(arg_params, aux_params)
    return module


def transform_fn(model, body, content_type, accept):
    pixels = codecs.decode(body, content_type)
    shape = np.shape(pixels)
    if len(shape) != 2 or shape[1] != PIXELS:
        raise BadRequest(f"each record must hold {PIXELS} pixel values: got an array of shape {shape}")
    model.forward(mx.io.DataBatch([mx.nd.array(pixels)]), is_train=False)
    probabilities = model.get_outputs()[0].asnumpy()
    return codecs.encode(probabilities, codecs.choose_accept(accept, codecs.media_type(content_type)))
