"""The `job` fixture: a training job's /opt/ml tree under tmp_path, and `train` run on it as
SageMaker runs it: a process of its own (sagemaker-training reads SAGEMAKER_BASE_DIR when it is
imported), with the exit code, the files in output/ and what the user script received to look at
afterwards.

    def test_exit_code(job):
        assert job.program("import sys; sys.exit(3)").run().cause(3) == "user script train.py exited with code 3"
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smimages.testing.harness import HostResult, MLJob, write_tree

TRAIN = "from sm_entrypoint import cli; cli.train()"

# What a user script sees, written where the test can read it: its argv, working folder, SM_HPS.
ECHO_ARGS = """
import json, os, sys
with open(os.path.join(os.environ["SM_MODEL_DIR"], "argv.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "hps": json.loads(os.environ["SM_HPS"])}, f)
"""


class Finished(HostResult):
    """The harness's own result (ok(), cause(), failure), and what the user script received."""

    def cause(self, code=1):
        return super().cause(code)

    @property
    def received(self):
        return json.loads((self.model / "argv.json").read_text())


class Job:
    """One host's /opt/ml (the first of `hosts`) laid out by the harness's MLJob under `root`."""

    ECHO_ARGS = ECHO_ARGS

    def __init__(self, root):
        self.root = Path(root)
        self.base = self.root / "algo-1"

    def lay_out(self, hyperparameters=None, channels=None, hosts=("algo-1",), config_override=None, code=None):
        """hyperparameters: as SageMaker writes them (every value a string); channels: name ->
        {relative path: text}; code: {relative path: text} written to base/code; config_override:
        file name -> raw text, or None to leave the file out."""
        laid = MLJob(self.root, hyperparameters=hyperparameters or {}, channels=channels or {}, hosts=tuple(hosts),
                     config_override=config_override or {})
        self.base = laid.tree(hosts[0])
        if code:
            write_tree(self.base / "code", code)
        return self

    def program(self, script, **hyperparameters):
        """A job that runs `script` as train.py from base/code (sagemaker_program with
        sagemaker_submit_directory), other hyperparameters as given."""
        return self.lay_out(hyperparameters={"sagemaker_program": "train.py",
                                             "sagemaker_submit_directory": str(self.base / "code"),
                                             **hyperparameters}, code={"train.py": script})

    write_tree = staticmethod(write_tree)

    def run(self, env=None, timeout_s=60):
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SM_", "SAGEMAKER_")) and k not in ("PYTHONPATH",)}
        clean.update({"SAGEMAKER_BASE_DIR": str(self.base), "SM_ENTRYPOINT_PYTHON": sys.executable, **(env or {})})
        proc = subprocess.run([sys.executable, "-c", TRAIN], env=clean, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s)
        return Finished("algo-1", proc.returncode, proc.stdout + proc.stderr, self.base, self.base / "model")


@pytest.fixture
def job(tmp_path):
    return Job(tmp_path / "ml")

