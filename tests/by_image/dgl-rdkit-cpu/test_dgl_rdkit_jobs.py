"""The Tox21 workload's jobs on dgl-rdkit-cpu and, by inheritance, on dgl-rdkit-gpu (built FROM it;
run on CPU here: no GPU on these machines)."""

import pytest
from packaging.version import Version

from smimages.testing.harness import client, run_job, write_tree
from smimages.testing.images import CATALOG
from smimages.testing.tox21 import EXAMPLE, INVALID_SMILES, JOB_TIMEOUT_S, SAMPLE, TASKS, metrics, run_in, tox21_job


def test_torch_dgl_and_rdkit_import_together_at_their_locked_versions(image, image_name):
    out = run_in(image, "import dgl, rdkit, torch; print(torch.__version__, dgl.__version__, rdkit.__version__)")
    pins = CATALOG[image_name].pins()
    found = [Version(v.split("+")[0]) for v in out.split()[-3:]]
    assert found == [Version(pins["torch"]), Version(pins["dgl"]), Version(pins["rdkit"])]


def test_entrypoint_job_writes_the_model_and_12_roc_aucs(image, tmp_path):
    [r] = run_job(image, tox21_job(tmp_path, epochs="3"), timeout_s=JOB_TIMEOUT_S)
    found = metrics(r)
    per_task = found["roc_auc_per_task"]
    assert list(per_task) == TASKS
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in per_task.values()), per_task
    assert found["mean_roc_auc"] == pytest.approx(sum(per_task.values()) / 12)
    assert found["epochs_run"] == 3 and "epoch 3/3" in r.logs
    assert found["molecules"]["skipped_invalid_smiles"] == 0
    assert found["data"].startswith("the sample shipped with the example")
    assert found["device"] == "cpu" and "device: cpu (no CUDA device visible to torch)" in r.logs
    assert (r.model / "model.pt").stat().st_size > 10_000
    # The model is usable as saved: rebuilt from its config, it scores a molecule for all 12 tasks.
    probe = ("import torch, main; "
             "ckpt = torch.load('/model/model.pt'); c = ckpt['config']; "
             "m = main.Tox21GCN(c['hidden_size'], c['num_layers'], c['dropout']); "
             "m.load_state_dict(ckpt['state_dict']); m.eval(); "
             "from rdkit import Chem; g = main.mol_to_graph(Chem.MolFromSmiles('Oc1ccc(cc1)C(C)(C)c1ccc(O)cc1')); "
             "print('scores', torch.sigmoid(m(g)).shape[1])")
    out = client().containers.run(image, ["python", "-c", probe], remove=True, stderr=True,
                                  environment={"PYTHONPATH": "/code"}, volumes={
        str(r.model): {"bind": "/model", "mode": "ro"}, str(EXAMPLE): {"bind": "/code", "mode": "ro"}}).decode()
    assert "scores 12" in out


def test_training_stops_early_when_validation_stops_improving(image, tmp_path):
    """A learning rate too small to move any weight: no epoch beats the first, so `patience` 2 stops at 3."""
    [r] = run_job(image, tox21_job(tmp_path, epochs="20", patience="2", lr="1e-12"), timeout_s=JOB_TIMEOUT_S)
    found = metrics(r)
    assert (found["epochs_run"], found["best_epoch"]) == (3, 1)
    assert "early stop: no better validation ROC-AUC for 2 epochs (best epoch 1)" in r.logs


@pytest.mark.parametrize("entrypoint, cause", [
    ("missing.py", "entrypoint 'missing.py' was not found in /opt/ml/input/data/training-code"),
    ("../x.py", "entrypoint '../x.py' is refused: it points outside /opt/ml/input/data/training-code"),
])
def test_bad_entrypoint_fails_with_a_one_line_cause(image, tmp_path, entrypoint, cause):
    job = tox21_job(tmp_path, entrypoint=entrypoint)
    write_tree(job.tree("algo-1") / "input" / "data", {"x.py": "print('escaped!')"})
    [r] = run_job(image, job, timeout_s=JOB_TIMEOUT_S)
    assert r.cause() == cause
    assert "escaped!" not in r.logs


def test_csv_with_invalid_smiles_trains_and_counts_them(image, tmp_path):
    rows = SAMPLE.read_text().splitlines()
    empty = "," * len(TASKS)
    broken = [f"{s}{empty}" for s in INVALID_SMILES]
    csv = "\n".join(rows[:200] + broken + rows[200:]) + "\n"
    job = tox21_job(tmp_path, channels={"train": {"tox21.csv": csv}}, epochs="2")
    [r] = run_job(image, job, timeout_s=JOB_TIMEOUT_S)
    found = metrics(r)
    n = len(rows) - 1 + len(INVALID_SMILES)
    assert f"skipped 3 of {n} molecules whose SMILES RDKit cannot parse" in r.logs
    assert "'this-is-not-smiles'" in r.logs
    assert found["molecules"]["skipped_invalid_smiles"] == 3 and found["molecules"]["read"] == n
    assert found["data"] == "channel 'train' (1 file(s))"
    assert list(found["roc_auc_per_task"]) == TASKS


def test_csv_without_the_task_columns_fails_with_the_cause(image, tmp_path):
    job = tox21_job(tmp_path, channels={"train": {"mols.csv": "smiles,NR-AR\nCCO,1\n"}})
    [r] = run_job(image, job, timeout_s=JOB_TIMEOUT_S)
    assert r.cause().startswith("user script main.py exited with code 1: mols.csv lacks column(s) NR-AR-LBD, NR-AhR")


def test_unknown_hyperparameter_fails_with_the_cause(image, tmp_path):
    [r] = run_job(image, tox21_job(tmp_path, epoch="3"), timeout_s=JOB_TIMEOUT_S)
    assert "unknown hyperparameter(s) --epoch" in r.cause()
