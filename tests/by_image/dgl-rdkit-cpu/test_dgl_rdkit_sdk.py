"""The DGL + RDKit images under SDK 2.x local mode, in the Tox21 workload's own call shape: a generic
Estimator with the image, hyperparameters={'entrypoint': 'main.py'}, fit({'training-code': ...})."""

import json
import tarfile

from smimages.testing.sdk import run_sdk
from smimages.testing.tox21 import EXAMPLE


def test_sdk2_generic_estimator_trains_tox21_from_the_training_code_channel(one_image, tmp_path):
    proc, outcome = run_sdk(2, ["--image", one_image, "--output", str(tmp_path / "out"),
                                "--hyperparameters", json.dumps({"entrypoint": "main.py", "epochs": 3}),
                                "--inputs", json.dumps({"training-code": str(EXAMPLE)})])
    assert outcome and outcome["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]
    with tarfile.open(f"{outcome['artifacts']}/model.tar.gz") as tar:
        names = [m.name.lstrip("./") for m in tar.getmembers()]
        metrics = json.load(tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("metrics.json"))))
    assert "model.pt" in names
    assert len(metrics["roc_auc_per_task"]) == 12 and metrics["epochs_run"] == 3
    assert all(v is not None for v in metrics["roc_auc_per_task"].values())
