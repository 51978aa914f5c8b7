"""MXNet's defaults for the shared model server (SAGEMAKER_DEFAULT_HANDLERS points here): a model
saved as MXNet saves one (`<prefix>-symbol.json` + `<prefix>-NNNN.params`, by Module's
save_checkpoint or a HybridBlock's export) loads and predicts with no inference script at all.
An inference script's own model_fn / predict_fn take precedence."""

import glob
import json
import logging
import os

import mxnet as mx
from sm_entrypoint.serving.errors import BadRequest

log = logging.getLogger("sm_entrypoint")


def find_checkpoint(model_dir):
    """(prefix, epoch) of the saved model; the newest params file when there are several."""
    symbols = sorted(glob.glob(os.path.join(model_dir, "*-symbol.json")))
    if not symbols:
        raise FileNotFoundError(f"no <prefix>-symbol.json in {model_dir}: save the model with "
                                "Module.save_checkpoint or HybridBlock.export, or define model_fn")
    prefix = symbols[0][: -len("-symbol.json")]
    epochs = sorted(int(p[len(prefix) + 1: -len(".params")]) for p in glob.glob(f"{prefix}-[0-9][0-9][0-9][0-9].params"))
    if not epochs:
        raise FileNotFoundError(f"no {os.path.basename(prefix)}-NNNN.params beside {symbols[0]}")
    return prefix, epochs[-1]


def data_shapes(model_dir, symbol):
    """From model-shapes.json ([{"name": "data", "shape": [1, 784]}]) as AWS's MXNet images read
    it, else one input named after the symbol's first argument, batch 1, shape learned at bind."""
    path = os.path.join(model_dir, "model-shapes.json")
    if os.path.isfile(path):
        with open(path) as f:
            return [(d["name"], tuple(d["shape"])) for d in json.load(f)]
    raise FileNotFoundError(f"{path} is missing: the default model_fn needs the input shape "
                            f"of {symbol.list_arguments()[0]!r}, or define model_fn")


def model_fn(model_dir):
    prefix, epoch = find_checkpoint(model_dir)
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, epoch)
    shapes = data_shapes(model_dir, symbol)
    module = mx.mod.Module(symbol, data_names=[n for n, _ in shapes], label_names=None, context=mx.cpu())
    module.bind(data_shapes=shapes, for_training=False)
    module.set_params(arg_params, aux_params, allow_missing=True)
    log.info("loaded %s-%04d.params (input %s)", prefix, epoch, shapes)
    return module


def predict_fn(data, model):
    """A batch (numpy or NDArray) through a bound Module; any batch size (the Module reshapes)."""
    batch = data if isinstance(data, mx.nd.NDArray) else mx.nd.array(data)
    expected = model.data_shapes[0].shape[1:]
    if tuple(batch.shape[1:]) != tuple(expected):
        raise BadRequest(f"each record must have shape {expected}, got {tuple(batch.shape[1:])}")
    model.forward(mx.io.DataBatch([batch]), is_train=False)
    return model.get_outputs()[0].asnumpy()
