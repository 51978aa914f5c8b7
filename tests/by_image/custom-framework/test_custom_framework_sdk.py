"""The images under the real SageMaker Python SDKs' local modes: 2.x (docker-compose, `train`
command, 1 and 2 hosts) and 3.x (ModelTrainer with Mode.LOCAL_CONTAINER: no command, or its own
driver with SourceCode)."""

import json
import tarfile

import pytest

from smimages.testing.harness import write_tree
from smimages.testing.sdk import run_sdk

SCRIPT = """
import argparse, json, os, time
p = argparse.ArgumentParser()
p.add_argument("--hp1"); p.add_argument("--epochs", type=int)
args = p.parse_args()
env = json.loads(os.environ["SM_TRAINING_ENV"])
if env["current_host"] == sorted(env["hosts"])[0]:  # 3.x's own driver writes no master_hostname
    time.sleep(3)  # saves after the other host is done: local mode must not kill it first
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "result.json"), "w") as f:
        json.dump({"hp1": args.hp1, "epochs": args.epochs, "hosts": env["hosts"],
                   "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))}, f)
print("finished on", env["current_host"])
"""


@pytest.fixture
def workload(tmp_path):
    write_tree(tmp_path / "src", {"train.py": SCRIPT})
    write_tree(tmp_path / "data" / "train", {"rows.csv": "1,2,3\n"})
    return tmp_path


def model_result(model_tar):
    with tarfile.open(model_tar) as tar:
        return json.load(tar.extractfile("result.json"))


@pytest.mark.parametrize("shape, count", [("framework", 2)])  # 1 host, both shapes: seed 002
def test_sdk2_local_mode_trains(image, workload, shape, count):
    out = workload / "out"
    proc, outcome = run_sdk(2, ["--image", image, "--output", str(out), "--source-dir", str(workload / "src"),
                                "--entry-point", "train.py", "--instance-count", str(count),
                                "--hyperparameters", json.dumps({"hp1": "value1", "epochs": 3}),
                                "--inputs", json.dumps({"train": str(workload / "data" / "train")}),
                                *(["--framework"] if shape == "framework" else [])])
    assert outcome and outcome["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]
    result = model_result(f"{outcome['artifacts']}/model.tar.gz")
    assert result["hp1"] == "value1" and result["epochs"] == 3 and result["train"] == ["rows.csv"]
    assert len(result["hosts"]) == count
    with tarfile.open(f"{outcome['artifacts']}/output.tar.gz") as tar:
        members = [m.name.lstrip("./") for m in tar.getmembers()]
    assert "success" in members and "failure" not in members, members


def test_sdk2_generic_estimator_with_entrypoint_hyperparameter(image, workload):
    """The DGL workload's call shape: the script arrives in a `training-code` channel."""
    out = workload / "out"
    proc, outcome = run_sdk(2, ["--image", image, "--output", str(out),
                                "--hyperparameters", json.dumps({"entrypoint": "train.py", "hp1": "x"}),
                                "--inputs", json.dumps({"training-code": str(workload / "src"),
                                                        "train": str(workload / "data" / "train")})])
    assert outcome and outcome["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]
    assert model_result(f"{outcome['artifacts']}/model.tar.gz")["hp1"] == "x"


def test_sdk2_failure_reaches_the_sdk(image, workload):
    write_tree(workload / "src", {"train.py": "raise SystemExit('no data for you')"})
    proc, outcome = run_sdk(2, ["--image", image, "--output", str(workload / "out"),
                                "--source-dir", str(workload / "src"), "--entry-point", "train.py"])
    assert outcome and not outcome["ok"], proc.stdout[-4000:]
    with tarfile.open(f"{outcome['artifacts']}/output.tar.gz") as tar:
        failure = tar.extractfile("failure").read().decode()
        assert "success" not in [m.name.lstrip("./") for m in tar.getmembers()]
    assert failure.splitlines()[0] == "user script train.py exited with code 1: no data for you"
