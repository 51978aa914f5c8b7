"""pytorch-horovod under the real SageMaker Python SDKs: 2.x local mode with the PyTorch estimator
and its `distribution` option (1 and 2 hosts, each variant), 3.x's ModelTrainer."""

import json
import tarfile

import numpy as np
import pytest
from conftest import free_port, run_sdk
from mnist_jobs import EXAMPLES, held_out, make_mnist

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


@pytest.mark.parametrize("variant, count, example, distribution", [
    ("cpu", 1, "pytorch-mnist-ddp", None),
    ("cpu", 2, "pytorch-mnist-horovod", MPI),
    ("gpu", 1, "pytorch-mnist-horovod", MPI),
    ("gpu", 2, "pytorch-mnist-ddp", TORCH_DISTRIBUTED),
])
def test_sdk2_pytorch_estimator_trains(image_of, mnist, tmp_path, variant, count, example, distribution):
    image = image_of(f"pytorch-horovod-{variant}")
    args = ["--image", image, "--output", str(tmp_path / "out"), "--framework",
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


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_sdk3_model_trainer_trains(image_of, mnist, tmp_path, variant):
    proc, outcome = run_sdk(3, ["--image", image_of(f"pytorch-horovod-{variant}"), "--root", str(tmp_path / "root"),
                                "--source-dir", str(EXAMPLES / "pytorch-mnist-ddp"), "--entry-script", "mnist.py",
                                "--hyperparameters", json.dumps(HPS),
                                "--inputs", json.dumps({k: str(v) for k, v in mnist.items()})])
    assert outcome and outcome["ok"], proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "model.pth" in members(f"{outcome['artifacts']}/model.tar.gz"), proc.stdout[-3000:]


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_sdk2_estimator_deploys_what_it_trained_and_the_endpoint_predicts(image_of, tmp_path, variant):
    """fit(), then deploy() to a local endpoint running `serve` with mnist.py as the inference
    script, and predict() held-out digits as CSV: the answers are right at least 90% of the time."""
    mnist = make_mnist(tmp_path / "mnist", train_limit=None)
    images, labels = held_out(mnist)
    np.save(tmp_path / "records.npy", images)
    proc, outcome = run_sdk(2, ["--image", image_of(f"pytorch-horovod-{variant}"), "--output", str(tmp_path / "out"),
                                "--framework", "--source-dir", str(EXAMPLES / "pytorch-mnist-ddp"),
                                "--entry-point", "mnist.py", "--hyperparameters", json.dumps(SERVABLE),
                                "--inputs", json.dumps({k: str(v) for k, v in mnist.items()}),
                                "--deploy", str(tmp_path / "records.npy"), "--port", str(free_port())])
    assert outcome and outcome["ok"], proc.stdout[-6000:] + proc.stderr[-3000:]
    probabilities = np.array(outcome["predictions"])
    assert probabilities.shape == (len(labels), 10)
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.9
