"""The DGL + RDKit images' jobs, shared by tests/by_image/dgl-rdkit-cpu and dgl-rdkit-gpu: each of
those modules defines the `image_name` fixture and imports these tests (the GPU image runs on CPU
here: no GPU on these machines). The workload: examples/dgl-tox21/main.py in the `training-code`
channel, named by the `entrypoint` hyperparameter."""

import json
from pathlib import Path

import pytest
from harness import MLJob, client, run_command, run_job, write_tree

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "dgl-tox21"
SAMPLE = EXAMPLE / "data" / "tox21_sample.csv"
TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
         "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
JOB_TIMEOUT_S = 240
INVALID_SMILES = ["this-is-not-smiles", "C1CC(", "c1ccccc1X"]


@pytest.fixture
def image(image_of, image_name):
    return image_of(image_name)


def example_code():
    """The example folder as the user uploads it to `training-code`: main.py and its sample data."""
    return {p.relative_to(EXAMPLE).as_posix(): p for p in EXAMPLE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def tox21_job(tmp_path, channels=None, **hps):
    return MLJob(tmp_path / "ml", hyperparameters={"entrypoint": "main.py", **hps},
                 channels={"training-code": example_code(), **(channels or {})})


def succeeded(result):
    result.assert_succeeded()
    return json.loads((result.model / "metrics.json").read_text())


def run_in(image, code):
    """`python -c code` inside the image (tini passes the command on); its output."""
    exit_code, logs = run_command(image, ["python", "-c", code])
    assert exit_code == 0, logs
    return logs


def test_torch_dgl_and_rdkit_import_together(image):
    out = run_in(image, "import dgl, rdkit, torch; print(torch.__version__, dgl.__version__, rdkit.__version__)")
    torch_version, dgl_version, rdkit_version = out.split()[-3:]
    assert torch_version.split("+")[0] == "2.2.1"
    assert dgl_version.split("+")[0] == "2.1.0"
    assert rdkit_version[0].isdigit()


def test_entrypoint_job_writes_the_model_and_12_roc_aucs(image, tmp_path):
    [r] = run_job(image, tox21_job(tmp_path, epochs="3"), timeout_s=JOB_TIMEOUT_S)
    metrics = succeeded(r)
    per_task = metrics["roc_auc_per_task"]
    assert list(per_task) == TASKS
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in per_task.values()), per_task
    assert metrics["mean_roc_auc"] == pytest.approx(sum(per_task.values()) / 12)
    assert metrics["epochs_run"] == 3 and "epoch 3/3" in r.logs
    assert metrics["molecules"]["skipped_invalid_smiles"] == 0
    assert metrics["data"].startswith("the sample shipped with the example")
    assert metrics["device"] == "cpu" and "device: cpu (no CUDA device visible to torch)" in r.logs
    assert (r.model / "model.pt").stat().st_size > 10_000
    # The model is usable as saved: rebuilt from its config, it scores a molecule for all 12 tasks.
    probe = ("import sys, torch; sys.path.insert(0, '/code'); import main; "
             "ckpt = torch.load('/model/model.pt'); c = ckpt['config']; "
             "m = main.Tox21GCN(c['hidden_size'], c['num_layers'], c['dropout']); "
             "m.load_state_dict(ckpt['state_dict']); m.eval(); "
             "from rdkit import Chem; g = main.mol_to_graph(Chem.MolFromSmiles('Oc1ccc(cc1)C(C)(C)c1ccc(O)cc1')); "
             "print('scores', torch.sigmoid(m(g)).shape[1])")
    out = client().containers.run(image, ["python", "-c", probe], remove=True, stderr=True, volumes={
        str(r.model): {"bind": "/model", "mode": "ro"}, str(EXAMPLE): {"bind": "/code", "mode": "ro"}}).decode()
    assert "scores 12" in out


def test_training_stops_early_when_validation_stops_improving(image, tmp_path):
    """A learning rate too small to move any weight: no epoch beats the first, so `patience` 2 stops at 3."""
    [r] = run_job(image, tox21_job(tmp_path, epochs="20", patience="2", lr="1e-12"), timeout_s=JOB_TIMEOUT_S)
    metrics = succeeded(r)
    assert (metrics["epochs_run"], metrics["best_epoch"]) == (3, 1)
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
    metrics = succeeded(r)
    n = len(rows) - 1 + len(INVALID_SMILES)
    assert f"skipped 3 of {n} molecules whose SMILES RDKit cannot parse" in r.logs
    assert "'this-is-not-smiles'" in r.logs
    assert metrics["molecules"]["skipped_invalid_smiles"] == 3 and metrics["molecules"]["read"] == n
    assert metrics["data"] == "channel 'train' (1 file(s))"
    assert list(metrics["roc_auc_per_task"]) == TASKS


def test_csv_without_the_task_columns_fails_with_the_cause(image, tmp_path):
    job = tox21_job(tmp_path, channels={"train": {"mols.csv": "smiles,NR-AR\nCCO,1\n"}})
    [r] = run_job(image, job, timeout_s=JOB_TIMEOUT_S)
    assert r.cause().startswith("user script main.py exited with code 1: mols.csv lacks column(s) NR-AR-LBD, NR-AhR")


def test_unknown_hyperparameter_fails_with_the_cause(image, tmp_path):
    [r] = run_job(image, tox21_job(tmp_path, epoch="3"), timeout_s=JOB_TIMEOUT_S)
    assert "unknown hyperparameter(s) --epoch" in r.cause()
