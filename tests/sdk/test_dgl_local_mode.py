"""The DGL + RDKit images under SDK 2.x local mode, in the Tox21 workload's own call shape: a generic
Estimator with the image, hyperparameters={'entrypoint': 'main.py'}, fit({'training-code': ...})."""

import json
import tarfile
from pathlib import Path

import pytest
from conftest import images_under_test, run_sdk

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dgl-tox21"
DGL_IMAGES = [n for n in images_under_test() if n.startswith("dgl-rdkit-")]


@pytest.mark.parametrize("name", DGL_IMAGES)
def test_sdk2_generic_estimator_trains_tox21_from_the_training_code_channel(image_of, tmp_path, name):
    proc, outcome = run_sdk(2, ["--image", image_of(name), "--output", str(tmp_path / "out"),
                                "--hyperparameters", json.dumps({"entrypoint": "main.py", "epochs": 3}),
                                "--inputs", json.dumps({"training-code": str(EXAMPLE)})])
    assert outcome and outcome["ok"], proc.stdout[-4000:] + proc.stderr[-4000:]
    with tarfile.open(f"{outcome['artifacts']}/model.tar.gz") as tar:
        names = [m.name.lstrip("./") for m in tar.getmembers()]
        metrics = json.load(tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("metrics.json"))))
    assert "model.pt" in names
    assert len(metrics["roc_auc_per_task"]) == 12 and metrics["epochs_run"] == 3
    assert all(v is not None for v in metrics["roc_auc_per_task"].values())
