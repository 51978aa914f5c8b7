"""The main job, as a new user first runs it: the custom-framework image trains the example in
examples/custom-framework on a generated data set, laid out under out/sample/ml as SageMaker lays
out /opt/ml, with the script submitted as a sourcedir.tar.gz the way the SDK sends it."""

import json
import subprocess
import sys
from pathlib import Path

from smimages.catalog import ROOT as REPO
from smimages.catalog import tag
from smimages.testing.harness import MLJob, make_tarball, run_job

IMAGE = tag("custom-framework")
EXAMPLE = REPO / "examples" / "custom-framework"


def example_job(root, train_rows=200, epochs=40):
    """The example's job laid out under `root`: generated train/validation data and train.py in a
    sourcedir.tar.gz, as the SDK submits it (also what the tests and the bench run)."""
    root = Path(root)
    subprocess.run([sys.executable, str(EXAMPLE / "make_data.py"), str(root / "data"), str(train_rows)], check=True)
    tarball = make_tarball(root / "sourcedir.tar.gz", {"train.py": (EXAMPLE / "train.py").read_text()})
    return MLJob(root / "ml", hyperparameters={
        "sagemaker_program": "train.py", "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz",
        "epochs": str(epochs), "learning-rate": "0.5"}, channels={
        "code": {"sourcedir.tar.gz": tarball},
        "train": {"data.csv": root / "data" / "train" / "data.csv"},
        "validation": {"data.csv": root / "data" / "validation" / "data.csv"}})


def main():
    out = REPO / "out" / "sample"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    job = example_job(out)
    print(f"==> running {IMAGE} with /opt/ml at {job.tree('algo-1')}", flush=True)
    [result] = run_job(IMAGE, job, timeout_s=300)
    print(result.logs)
    if result.exit_code != 0:
        print(f"==> the job failed (exit {result.exit_code}): {result.failure_first_line}")
        return result.exit_code
    metrics = json.loads((result.model / "metrics.json").read_text())
    print(f"==> job finished: model in {result.model}, validation loss {metrics['validation_loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
