"""The mxnet image under the real SageMaker Python SDK 2.x local mode: an Estimator trains the
MNIST example, then a Model's transformer runs a local batch transform of held-out digits."""

import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from smimages.catalog import ROOT as REPO
from smimages.datasets.mnist_digits import read_idx, write_mnist
from smimages.testing.harness import write_tree
from smimages.testing.ports import free_port
from smimages.testing.sdk import run_sdk

RECORDS = 1000
RANKS = """
import json, os
import mxnet as mx
import horovod.mxnet as hvd

hvd.init()
total = hvd.allreduce(mx.nd.full((3,), hvd.rank() + 1), op=hvd.Sum, name="ranks").asnumpy().tolist()
with open(os.path.join(os.environ["SM_MODEL_DIR"], f"rank-{hvd.rank()}.json"), "w") as f:
    json.dump({"rank": hvd.rank(), "size": hvd.size(), "local_size": hvd.local_size(),
               "mpi": hvd.mpi_enabled(), "allreduce": total}, f)
"""


@pytest.fixture(scope="module")
def trained(image, tmp_path_factory):
    """(model.tar.gz trained by SDK 2.x local mode, held-out images, labels)."""
    root = tmp_path_factory.mktemp("sdk2-mxnet")
    write_mnist(root / "data", test_size=RECORDS)
    proc, outcome = run_sdk(2, ["--image", image, "--output", str(root / "out"),
                                "--source-dir", str(REPO / "examples" / "mxnet-mnist"), "--entry-point", "train.py",
                                "--hyperparameters", json.dumps({"epochs": 3, "learning-rate": 0.05}),
                                "--inputs", json.dumps({"train": str(root / "data" / "train"),
                                                        "test": str(root / "data" / "test")})])
    assert outcome and outcome["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]
    model = Path(outcome["artifacts"]) / "model.tar.gz"
    with tarfile.open(model) as tar:
        names = {m.name.lstrip("./") for m in tar.getmembers()}
    assert {"model-symbol.json", "model-0000.params", "code/inference.py"} <= names
    images = read_idx(str(root / "data" / "test" / "t10k-images-idx3-ubyte.gz")).reshape(RECORDS, -1)
    labels = read_idx(str(root / "data" / "test" / "t10k-labels-idx1-ubyte.gz"))
    return model, images, labels


# SDK 2.x local mode runs `docker info` and `docker context inspect` before every request (its
# get_docker_host): about 110 ms a request here, so SingleRecord sends 200 records, not 1,000 (the
# 1,000-record SingleRecord case runs over plain HTTP in tests/by_image/mxnet/test_mxnet_serving.py).
@pytest.mark.parametrize("strategy, records", [("SingleRecord", 200)])  # MultiRecord from S3: seed 004
def test_sdk2_local_batch_transform_answers_every_record_in_order(trained, image, strategy, records, tmp_path):
    model, images, labels = trained
    images, labels = images[:records], labels[:records]
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "digits.csv").write_text("".join(",".join(map(str, row)) + "\n" for row in images))
    proc, outcome = run_sdk(2, ["--image", image, "--model-data", str(model), "--input", str(tmp_path / "input"),
                                "--output", str(tmp_path / "output"), "--strategy", strategy, "--port", str(free_port())],
                       script="transform")
    assert outcome and outcome["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = (tmp_path / "output" / "digits.csv.out").read_text().splitlines()
    assert len(lines) == records
    probabilities = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert probabilities.shape == (records, 10)
    assert float((probabilities.argmax(axis=1) == labels).mean()) >= 0.9


def test_sdk2_mxnet_estimator_trains_the_example_on_two_hosts_with_the_parameter_server(image, tmp_path):
    """MXNet(distribution={'parameter_server': {'enabled': True}}, instance_count=2): each host a
    worker on its shard with dist_sync; the scheduler host alone saves the model."""
    write_mnist(tmp_path / "data", test_size=200)
    proc, outcome = run_sdk(2, ["--image", image, "--output", str(tmp_path / "out"), "--framework", "mxnet",
                                "--instance-count", "2",
                                "--distribution", json.dumps({"parameter_server": {"enabled": True}}),
                                "--source-dir", str(REPO / "examples" / "mxnet-mnist"), "--entry-point", "train.py",
                                "--hyperparameters", json.dumps({"epochs": 1, "learning-rate": 0.05}),
                                "--inputs", json.dumps({"train": str(tmp_path / "data" / "train"),
                                                        "test": str(tmp_path / "data" / "test")})])
    said = proc.stdout + proc.stderr
    assert outcome and outcome["ok"], said[-6000:]
    assert "distribution: parameter_server, a scheduler on algo-1" in said
    assert "worker 0 of 2: training on" in said and "worker 1 of 2: training on" in said
    assert said.count("model saved to /opt/ml/model") == 1
    assert re.search(r"the scheduler host algo-1\S* saves the model", said)  # local mode's host names: algo-1-xxxxx
    with tarfile.open(Path(outcome["artifacts"]) / "model.tar.gz") as tar:
        names = sorted(m.name.lstrip("./") for m in tar.getmembers() if m.isfile())
    assert {"model-symbol.json", "model-0000.params", "model-shapes.json"} <= set(names)


def test_sdk2_mxnet_estimator_runs_horovod_over_mpi_on_two_hosts(image, tmp_path):
    """MXNet(distribution={'mpi': {'enabled': True, 'processes_per_host': 2}}, instance_count=2):
    four Horovod ranks over mpirun from the first host, each reporting into the model."""
    write_tree(tmp_path / "code", {"ranks.py": RANKS})
    proc, outcome = run_sdk(2, ["--image", image, "--output", str(tmp_path / "out"), "--framework", "mxnet",
                                "--instance-count", "2", "--source-dir", str(tmp_path / "code"),
                                "--entry-point", "ranks.py",
                                "--distribution", json.dumps({"mpi": {"enabled": True, "processes_per_host": 2}})])
    assert outcome and outcome["ok"], (proc.stdout + proc.stderr)[-6000:]
    with tarfile.open(Path(outcome["artifacts"]) / "model.tar.gz") as tar:
        reports = [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.lstrip("./").startswith("rank-")]
    assert sorted(r["rank"] for r in reports) == [0, 1, 2, 3]
    assert {(r["size"], r["local_size"], r["mpi"]) for r in reports} == {(4, 2, True)}
    assert {r["allreduce"][0] for r in reports} == {10.0}
