"""MNIST with MXNet's Module API, in the seed notebook's shape: one script that trains (run as a
script by the training container) and serves (its model_fn and transform_fn, imported by the
serving container for batch transform).

Training reads MNIST's own files from the `train` and `test` channels, fits a small multilayer
perceptron with `Module.fit` and saves its checkpoint to SM_MODEL_DIR. Serving takes CSV records
(784 pixel values 0..255 a line) and answers one predicted digit a line, in order.
"""

import argparse
import glob
import gzip
import json
import logging
import os
import struct

import mxnet as mx
import numpy as np

PIXELS = 28 * 28


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_data(folder):
    """(images float32 (n, 784) 0..1, labels) from a channel holding MNIST's two files."""
    images = read_idx(sorted(glob.glob(os.path.join(folder, "*-images-idx3-ubyte*")))[0])
    labels = read_idx(sorted(glob.glob(os.path.join(folder, "*-labels-idx1-ubyte*")))[0])
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels.astype(np.float32)


def build_graph():
    data = mx.sym.var("data")
    x = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128), act_type="relu")
    x = mx.sym.Activation(mx.sym.FullyConnected(x, num_hidden=64), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=10, name="logits"), name="softmax")


def train(args):
    train_x, train_y = load_data(args.train)
    test_x, test_y = load_data(args.test)
    mx.random.seed(42)
    np.random.seed(42)
    train_iter = mx.io.NDArrayIter(train_x, train_y, args.batch_size, shuffle=True)
    val_iter = mx.io.NDArrayIter(test_x, test_y, args.batch_size)
    module = mx.mod.Module(build_graph(), context=mx.cpu())
    module.fit(train_iter, eval_data=val_iter, optimizer="sgd",
               optimizer_params={"learning_rate": args.learning_rate, "momentum": 0.9},
               initializer=mx.init.Xavier(magnitude=2.0), eval_metric="acc", num_epoch=args.epochs,
               batch_end_callback=mx.callback.Speedometer(args.batch_size, 100))
    logging.info("validation accuracy: %.4f", dict(module.score(val_iter, "acc"))["accuracy"])
    os.makedirs(args.model_dir, exist_ok=True)
    module.save_checkpoint(os.path.join(args.model_dir, "model"), 0)
    with open(os.path.join(args.model_dir, "model-shapes.json"), "w") as f:
        json.dump([{"name": "data", "shape": [1, PIXELS]}], f)


# Hosting: the same script, imported by the serving container.

def model_fn(model_dir):
    symbol, arg_params, aux_params = mx.model.load_checkpoint(os.path.join(model_dir, "model"), 0)
    logits = symbol.get_internals()["logits_output"]  # the trained graph without its label input
    module = mx.mod.Module(logits, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[("data", (1, PIXELS))], for_training=False)
    module.set_params(arg_params, aux_params)
    return module


def transform_fn(module, data, input_content_type, output_content_type):
    """CSV records in, one predicted digit a line out (batch transform sends many lines at once)."""
    if input_content_type.split(";")[0].strip().lower() != "text/csv":
        raise ValueError(f"this model takes text/csv, not {input_content_type}")
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    rows = [line for line in text.splitlines() if line.strip()]
    pixels = np.array([[float(v) for v in line.split(",")] for line in rows], dtype=np.float32) / 255.0
    if pixels.ndim != 2 or pixels.shape[1] != PIXELS:
        raise ValueError(f"each record must hold {PIXELS} pixel values: got shape {pixels.shape}")
    module.forward(mx.io.DataBatch([mx.nd.array(pixels)]), is_train=False)
    predictions = module.get_outputs()[0].asnumpy().argmax(axis=1)
    return "\n".join(str(int(p)) for p in predictions), "text/csv"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST"))
    train(parser.parse_args())
