"""pytorch-horovod under the real SageMaker Python SDKs: 2.x local mode with the PyTorch estimator
and its `distribution` option (1 and 2 hosts), 3.x's ModelTrainer. The SDK's side of the contract is
the same for both variants (the entrypoint is one): these run once, on the first variant under test."""

import json
import tarfile

import numpy as np
import pytest

from smimages.testing.ports import free_port
from smimages.testing.pytorch_mnist import EXAMPLES, held_out, make_mnist
from smimages.testing.sdk import run_sdk

HPS = {"epochs": 1, "lr": 0.05, "batch-size": 32}
SERVABLE = {"epochs": 5, "lr": 0.02, "momentum": 0.9, "batch-size": 64}  # >= 90% on held-out digits
MPI = {"mpi": {"enabled": True, "processes_per_host": 1, "custom_mpi_options": "-x NCCL_DEBUG=WARN"}}
TORCH_DISTRIBUTED = {"torch_distributed": {"enabled": True}}


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    return make_mnist(tmp_path_factory.mktemp("mnist"))


def members(tarball):
    with tarfile.open(tarball) as tar:
        return {m.name.lstrip("./") for m in tar.getmembers()}


def metrics(tarball):
    with tarfile.open(tarball) as tar:
        return json.load(tar.extractfile("metrics.json"))


@pytest.mark.parametrize("count, example, distribution", [
    (1, "pytorch-mnist-ddp", None),
    (2, "pytorch-mnist-horovod", MPI),
    (1, "pytorch-mnist-horovod", MPI),
    (2, "pytorch-mnist-ddp", TORCH_DISTRIBUTED),
])
def test_sdk2_pytorch_estimator_trains(one_image, mnist, tmp_path, count, example, distribution):
    args = ["--image", one_image, "--output", str(tmp_path / "out"), "--framework",
            "--source-dir", str(EXAMPLES / example), "--entry-point", "mnist.py",
            "--instance-count", str(count), "--hyperparameters", json.dumps(HPS),
            "--inputs", json.dumps({k: str(v) for k, v in mnist.items()})]
    if distribution:
        args += ["--distribution", json.dumps(distribution)]
    proc, outcome = run_sdk(2, args)
    assert outcome and outcome["ok"], proc.stdout[-6000:] + proc.stderr[-3000:]
    model = f"{outcome['artifacts']}/model.tar.gz"
    assert {"model.pth", "metrics.json"} <= members(model)
    assert metrics(model)["world_size"] == count
    assert "failure" not in members(f"{outcome['artifacts']}/output.tar.gz")


def test_sdk3_model_trainer_trains(one_image, mnist, tmp_path):
    proc, outcome = run_sdk(3, ["--image", one_image, "--root", str(tmp_path / "root"),
                                "--source-dir", str(EXAMPLES / "pytorch-mnist-ddp"), "--entry-script", "mnist.py",
                                "--hyperparameters", json.dumps(HPS),
                                "--inputs", json.dumps({k: str(v) for k, v in mnist.items()})])
    assert outcome and outcome["ok"], proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "model.pth" in members(f"{outcome['artifacts']}/model.tar.gz"), proc.stdout[-3000:]


def test_sdk2_estimator_deploys_what_it_trained_and_the_endpoint_predicts(one_image, tmp_path):
    """fit(), then deploy() to a local endpoint running `serve` with mnist.py as the inference
    script, and predict() held-out digits as CSV: the answers are right at least 90% of the time."""
    mnist = make_mnist(tmp_path / "mnist", train_limit=None)
    images, labels = held_out(mnist)
    np.save(tmp_path / "records.npy", images)
    proc, outcome = run_sdk(2, ["--image", one_image, "--output", str(tmp_path / "out"),
                                "--framework", "--source-dir", str(EXAMPLES / "pytorch-mnist-ddp"),
                                "--entry-point", "mnist.py", "--hyperparameters", json.dumps(SERVABLE),
                                "--inputs", json.dumps({k: str(v) for k, v in mnist.items()}),
                                "--deploy", str(tmp_path / "records.npy"), "--port", str(free_port())])
    assert outcome and outcome["ok"], proc.stdout[-6000:] + proc.stderr[-3000:]
    probabilities = np.array(outcome["predictions"])
    assert probabilities.shape == (len(labels), 10)
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.9
