"""MNIST with MXNet's Module API (LeNet), for the mxnet image.

Reads MNIST's own files from the `train` and `test` channels; hyperparameters learning-rate,
epochs and batch-size. Each epoch writes a checkpoint (symbol, params, optimizer state) to
/opt/ml/checkpoints when that folder exists (SageMaker syncs it with checkpoint_s3_uri), and a
restarted job (a Spot interruption) resumes from the newest complete one there. The finished model
goes to SM_MODEL_DIR as model-symbol.json, model-0000.params and model-shapes.json: the layout the
image's default model_fn and this folder's inference.py load.

On several hosts with the parameter server (the MXNet estimator's
distribution={"parameter_server": {"enabled": True}}, which sets the DMLC_* variables), each host
trains on its own shard with kvstore 'dist_sync', and the scheduler host alone saves the model
(sagemaker_mxnet_container.training_utils, as scripts for AWS's MXNet images do).
"""

import argparse
import glob
import json
import logging
import os
import re
import shutil
import tempfile

import mxnet as mx
import numpy as np
from sagemaker_mxnet_container.training_utils import scheduler_host

log = logging.getLogger("mnist")
PREFIX = "mnist"  # checkpoint files: mnist-symbol.json, mnist-NNNN.params, mnist-NNNN.states


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    ap.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    ap.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST", "/opt/ml/input/data/test"))
    ap.add_argument("--checkpoint-dir", default="/opt/ml/checkpoints")
    args, _ = ap.parse_known_args()
    if args.learning_rate <= 0 or args.epochs < 1 or args.batch_size < 1:
        ap.error("learning-rate must be positive, epochs and batch-size at least 1")
    return args


def read_idx(path):
    import gzip
    import struct

    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_channel(folder):
    """(images float32 (n, 784) 0..255, labels) from a channel holding MNIST's two files."""
    def one(kind):
        found = sorted(glob.glob(os.path.join(folder, f"*-{kind}-idx*-ubyte*")))
        if not found:
            raise SystemExit(f"no *-{kind}-idx*-ubyte[.gz] file in {folder}")
        return read_idx(found[0])
    images, labels = one("images"), one("labels")
    if len(images) != len(labels):
        raise SystemExit(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images.reshape(len(images), -1).astype(np.float32), labels.astype(np.float32)


def lenet():
    """LeNet; pixels 0..255 go in as they are (the scaling is part of the graph, so the saved
    model takes the raw values a CSV record holds)."""
    data = mx.sym.var("data")
    x = mx.sym.reshape(data / 255.0, shape=(-1, 1, 28, 28))
    x = mx.sym.Pooling(mx.sym.Activation(mx.sym.Convolution(x, kernel=(5, 5), num_filter=20), act_type="relu"),
                       pool_type="max", kernel=(2, 2), stride=(2, 2))
    x = mx.sym.Pooling(mx.sym.Activation(mx.sym.Convolution(x, kernel=(5, 5), num_filter=50), act_type="relu"),
                       pool_type="max", kernel=(2, 2), stride=(2, 2))
    x = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.flatten(x), num_hidden=500), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=10, name="logits"), name="softmax")


def newest_checkpoint(folder):
    """The newest epoch with a complete checkpoint (params and optimizer state), or 0."""
    epochs = [int(m.group(1)) for p in glob.glob(os.path.join(folder, f"{PREFIX}-*.params"))
              if (m := re.search(r"-(\d{4})\.params$", p)) and os.path.exists(p[:-len("params")] + "states")]
    return max(epochs, default=0) if os.path.exists(os.path.join(folder, f"{PREFIX}-symbol.json")) else 0


def save_checkpoint(module, folder, epoch):
    """Written beside, then moved into place: a job stopped mid-write leaves no torn checkpoint
    (params go last: their presence marks the checkpoint complete)."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-") as tmp:
        module.save_checkpoint(os.path.join(tmp, PREFIX), epoch, save_optimizer_states=True)
        for name in (f"{PREFIX}-symbol.json", f"{PREFIX}-{epoch:04d}.states", f"{PREFIX}-{epoch:04d}.params"):
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))


def accuracy(module, iterator):
    return dict(module.score(iterator, "acc"))["accuracy"]


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args()
    train_x, train_y = load_channel(args.train)
    test_x, test_y = load_channel(args.test)
    log.info("train: %d images, test: %d images", len(train_x), len(test_x))
    mx.random.seed(42)
    np.random.seed(42)
    kvstore = mx.kv.create("dist_sync" if "DMLC_ROLE" in os.environ else "local")
    if kvstore.num_workers > 1:  # this worker's shard, the same size on every worker (dist_sync steps together)
        shard = np.arange(len(train_x))[kvstore.rank::kvstore.num_workers][:len(train_x) // kvstore.num_workers]
        train_x, train_y = train_x[shard], train_y[shard]
        log.info("worker %d of %d: training on %d images", kvstore.rank, kvstore.num_workers, len(shard))
    train_iter = mx.io.NDArrayIter(train_x, train_y, args.batch_size, shuffle=True)
    test_iter = mx.io.NDArrayIter(test_x, test_y, args.batch_size)

    checkpoints = args.checkpoint_dir if os.path.isdir(args.checkpoint_dir) else None
    start = newest_checkpoint(checkpoints) if checkpoints else 0
    if start >= args.epochs:
        log.info("the checkpoint of epoch %d already covers all %d epochs", start, args.epochs)
    if start:
        log.info("resuming from epoch %d: checkpoint %s-%04d in %s, continuing at epoch %d of %d",
                 start, PREFIX, start, checkpoints, start + 1, args.epochs)
        module = mx.mod.Module.load(os.path.join(checkpoints, PREFIX), start, load_optimizer_states=True)
    else:
        module = mx.mod.Module(lenet(), context=mx.cpu())
    module.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
    if not start:
        module.init_params(initializer=mx.init.Xavier(magnitude=2.0))
    module.init_optimizer(kvstore=kvstore, optimizer="sgd",
                          optimizer_params={"learning_rate": args.learning_rate, "momentum": 0.9})

    for epoch in range(start + 1, args.epochs + 1):
        train_iter.reset()
        metric = mx.metric.Accuracy()
        for batch in train_iter:
            module.forward(batch, is_train=True)
            module.update_metric(metric, batch.label)
            module.backward()
            module.update()
        if checkpoints:
            save_checkpoint(module, checkpoints, epoch)
        log.info("epoch %d/%d done: train accuracy %.4f, test accuracy %.4f%s", epoch, args.epochs,
                 metric.get()[1], accuracy(module, test_iter),
                 f", checkpoint {PREFIX}-{epoch:04d} saved" if checkpoints else "")

    hosts = json.loads(os.environ.get("SM_HOSTS", '["algo-1"]'))
    if os.environ.get("SM_CURRENT_HOST", hosts[0]) != scheduler_host(hosts):
        log.info("test accuracy: %.4f; the scheduler host %s saves the model", accuracy(module, test_iter),
                 scheduler_host(hosts))
        return
    save_model(module, args.model_dir)
    log.info("test accuracy: %.4f; model saved to %s", accuracy(module, test_iter), args.model_dir)


def save_model(module, model_dir):
    """The inference graph (softmax probabilities, no label input), the params as epoch 0, and the
    input shape the default model_fn binds with."""
    os.makedirs(model_dir, exist_ok=True)
    probabilities = mx.sym.softmax(module.symbol.get_internals()["logits_output"], name="probabilities")
    arg_params, aux_params = module.get_params()
    mx.model.save_checkpoint(os.path.join(model_dir, "model"), 0, probabilities, arg_params, aux_params)
    with open(os.path.join(model_dir, "model-shapes.json"), "w") as f:
        json.dump([{"name": "data", "shape": [1, 784]}], f)
    code = os.path.join(model_dir, "code")
    os.makedirs(code, exist_ok=True)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference.py"), code)


if __name__ == "__main__":
    main()
