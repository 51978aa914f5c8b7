"""The mxnet tests' shared fixtures: MNIST digits, and one model trained by a real job for the
serving tests (made once per test process)."""

import pytest

from smimages.testing.harness import run_job
from smimages.testing.mxnet_mnist import TRAIN_EPOCHS, make_mnist, mnist_job


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """(folder with train/ and test/ channels, held-out images (n, 784), labels)."""
    return make_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def trained(image, mnist, tmp_path_factory):
    """(HostResult, model folder) of one finished training job."""
    [result] = run_job(image, mnist_job(tmp_path_factory.mktemp("train"), mnist[0], epochs=TRAIN_EPOCHS), timeout_s=300)
    result.ok()
    return result, result.model
