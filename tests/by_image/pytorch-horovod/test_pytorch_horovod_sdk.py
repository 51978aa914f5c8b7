"""pytorch-horovod under the real SageMaker Python SDKs: 2.x local mode with the PyTorch estimator
and its `distribution` option (1 and 2 hosts), 3.x's ModelTrainer. The SDK's side of the contract is
the same for both variants (the entrypoint is one): these run once, on the first variant under test."""

import json
import tarfile

import pytest

from smimages.testing.pytorch_mnist import EXAMPLES, make_mnist
from smimages.testing.sdk import run_sdk

HPS = {"epochs": 1, "lr": 0.05, "batch-size": 32}
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


@pytest.mark.parametrize("count, example, distribution", [  # 2 hosts over MPI, then deploy(): seed 003
    (1, "pytorch-mnist-ddp", None),
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
