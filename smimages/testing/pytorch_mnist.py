"""Helpers of the pytorch-horovod tests (both variants): MNIST-format data, code, log parsing."""

import re
import shutil

from smimages.catalog import ROOT
from smimages.datasets import mnist_digits

EXAMPLES = ROOT / "examples"
DIGEST = re.compile(r"rank (\d+)/(\d+) weights sha256 ([0-9a-f]{64})")
ACCURACY = re.compile(r"test_accuracy=([0-9.]+)")


def make_mnist(root, train_limit=600):
    """{"train": folder, "test": folder} of MNIST-format digits: few, so 2 cores train in seconds."""
    mnist_digits.write_mnist(root, test_size=300, train_limit=train_limit)
    return {name: root / name for name in ("train", "test")}


def held_out(mnist):
    """(images as (n, 784) uint8, labels) of the test channel, as the example reads them."""
    read = mnist_digits.read_idx
    images = read(str(next(mnist["test"].glob("*images*"))))
    return images.reshape(len(images), -1), read(str(next(mnist["test"].glob("*labels*"))))


def channels(mnist):
    return {name: {p.name: p for p in folder.iterdir()} for name, folder in mnist.items()}


def put_code(job, example, extra=None):
    """The example's folder at /opt/ml/code on every host (as SDK 2.x local mode mounts it)."""
    for host in job.hosts:
        code = job.tree(host) / "code"
        shutil.copytree(EXAMPLES / example, code, dirs_exist_ok=True)
        for name, text in (extra or {}).items():
            (code / name).write_text(text)


def digests(logs):
    """{rank: sha256 of its final weights} from the examples' log lines."""
    return {int(rank): digest for rank, _, digest in DIGEST.findall(logs)}
