"""The DGL + RDKit images' workload: examples/dgl-tox21/main.py in the `training-code` channel,
named by the `entrypoint` hyperparameter, as the Tox21 notebook submits it."""

import json

from smimages.catalog import ROOT
from smimages.testing.harness import MLJob, run_command

EXAMPLE = ROOT / "examples" / "dgl-tox21"
SAMPLE = EXAMPLE / "data" / "tox21_sample.csv"
TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
         "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
JOB_TIMEOUT_S = 240
INVALID_SMILES = ["this-is-not-smiles", "C1CC(", "c1ccccc1X"]


def example_code():
    """The example folder as the user uploads it to `training-code`: main.py and its sample data."""
    return {p.relative_to(EXAMPLE).as_posix(): p for p in EXAMPLE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def tox21_job(tmp_path, channels=None, **hps):
    return MLJob(tmp_path / "ml", hyperparameters={"entrypoint": "main.py", **hps},
                 channels={"training-code": example_code(), **(channels or {})})


def metrics(result):
    """The job's metrics.json, once it succeeded."""
    result.ok()
    return json.loads((result.model / "metrics.json").read_text())


def run_in(image, code):
    """`python -c code` inside the image (tini passes the command on); its output."""
    exit_code, logs = run_command(image, ["python", "-c", code])
    assert exit_code == 0, logs
    return logs
