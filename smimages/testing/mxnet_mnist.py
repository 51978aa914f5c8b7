"""The MNIST workload of the mxnet tests (examples/mxnet-mnist): MNIST-format data and the job that
trains it, as SageMaker runs it. The fixtures are in tests/by_image/mxnet/conftest.py."""

import shutil

from smimages.catalog import ROOT
from smimages.datasets.mnist_digits import read_idx, write_mnist
from smimages.testing.harness import MLJob

EXAMPLE = ROOT / "examples" / "mxnet-mnist"
TRAIN_EPOCHS = 3


def make_mnist(folder, test_size=1000):
    """(folder with train/ and test/ channels, held-out images (n, 784), labels)."""
    write_mnist(folder, test_size=test_size)
    images = read_idx(str(folder / "test" / "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(str(folder / "test" / "t10k-labels-idx1-ubyte.gz"))
    return folder, images.reshape(len(images), -1), labels


def mnist_job(root, mnist_folder, checkpoints=None, **hyperparameters):
    """The example as SageMaker runs it: the code folder as submit directory, two channels, and
    optionally a host folder as /opt/ml/checkpoints."""
    job = MLJob(root, hyperparameters={"sagemaker_program": "train.py",
                                       "sagemaker_submit_directory": "/opt/ml/code", **hyperparameters},
                channels={"train": {p.name: p for p in (mnist_folder / "train").iterdir()},
                          "test": {p.name: p for p in (mnist_folder / "test").iterdir()}},
                checkpoint_dir=checkpoints)
    shutil.copytree(EXAMPLE, job.tree("algo-1") / "code")
    return job

