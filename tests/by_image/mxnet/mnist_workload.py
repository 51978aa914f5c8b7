"""The MNIST workload for the mxnet tests: data written by the shared generator, one trained
model for the serving tests (trained once per session, by a real training job).

Not a conftest.py: tests/sdk import tests/conftest.py as `conftest`, which a second conftest
module would shadow. Test modules import these fixtures by name; the results are cached here, so
each is made once per session whichever module asks first."""

import shutil
import sys
from pathlib import Path

import pytest
from harness import MLJob, run_job

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "mxnet-mnist"
sys.path.insert(0, str(REPO / "examples" / "data"))
from mnist_digits import read_idx, write_mnist  # noqa: E402

TRAIN_EPOCHS = 3
_ONCE = {}  # fixture name -> its value, shared by every test module that imports the fixture


@pytest.fixture(scope="session")
def image(image_of):
    return image_of("mxnet")


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """(folder with train/ and test/ channels, held-out images (n, 784), labels)."""
    if "mnist" not in _ONCE:
        folder = tmp_path_factory.mktemp("mnist")
        write_mnist(folder, test_size=1000)
        images = read_idx(str(folder / "test" / "t10k-images-idx3-ubyte.gz"))
        labels = read_idx(str(folder / "test" / "t10k-labels-idx1-ubyte.gz"))
        _ONCE["mnist"] = folder, images.reshape(len(images), -1), labels
    return _ONCE["mnist"]


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


@pytest.fixture(scope="session")
def trained(image, mnist, tmp_path_factory):
    """(HostResult, model folder) of one finished training job."""
    if "trained" not in _ONCE:
        job = mnist_job(tmp_path_factory.mktemp("train"), mnist[0], epochs=TRAIN_EPOCHS)
        [result] = run_job(image, job, timeout_s=300)
        assert result.exit_code == 0, result.logs
        _ONCE["trained"] = result, result.model
    return _ONCE["trained"]
