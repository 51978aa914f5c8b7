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
from dataclasses import dataclass
from pathlib import Path

import pytest

TRAIN = "from sm_entrypoint import cli; cli.train()"

# What a user script sees, written where the test can read it: its argv, working folder, SM_HPS.
ECHO_ARGS = """
import json, os, sys
with open(os.path.join(os.environ["SM_MODEL_DIR"], "argv.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "hps": json.loads(os.environ["SM_HPS"])}, f)
"""


@dataclass
class Finished:
    exit_code: int
    logs: str  # stdout and stderr together
    base: Path

    @property
    def failure(self):
        path = self.base / "output" / "failure"
        return path.read_text() if path.exists() else None

    @property
    def succeeded_marker(self):
        return (self.base / "output" / "success").exists()

    def cause(self, code=1):
        """The failure file's first line, after checking the exit code and that only it is left."""
        assert self.exit_code == code, self.logs
        assert self.failure is not None and not self.succeeded_marker, self.logs
        return self.failure.splitlines()[0]

    def ok(self):
        assert self.exit_code == 0, self.logs
        assert self.succeeded_marker and self.failure is None, self.logs

    @property
    def received(self):
        return json.loads((self.base / "model" / "argv.json").read_text())


class Job:
    """One host's /opt/ml (algo-1 of `hosts`) under `base`: config files, channels, code."""

    ECHO_ARGS = ECHO_ARGS

    def __init__(self, base):
        self.base = Path(base)

    def lay_out(self, hyperparameters=None, channels=None, hosts=("algo-1",), config_override=None, code=None):
        """hyperparameters: as SageMaker writes them (every value a string); channels: name ->
        {relative path: text}; code: {relative path: text} written to base/code; config_override:
        file name -> raw text, or None to leave the file out."""
        config = self.base / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        for folder in ("output", "model"):
            (self.base / folder).mkdir(exist_ok=True)
        files = {
            "hyperparameters.json": json.dumps(hyperparameters or {}),
            "inputdataconfig.json": json.dumps({c: {"TrainingInputMode": "File"} for c in channels or {}}),
            "resourceconfig.json": json.dumps({"current_host": hosts[0], "hosts": list(hosts),
                                               "network_interface_name": "eth0"}),
        }
        files.update(config_override or {})
        for name, text in files.items():
            if text is not None:
                (config / name).write_text(text)
        for channel, content in (channels or {}).items():
            write_tree(self.base / "input" / "data" / channel, content)
        if code:
            write_tree(self.base / "code", code)
        return self

    def program(self, script, **hyperparameters):
        """A job that runs `script` as train.py from base/code (sagemaker_program with
        sagemaker_submit_directory), other hyperparameters as given."""
        return self.lay_out(hyperparameters={"sagemaker_program": "train.py",
                                             "sagemaker_submit_directory": str(self.base / "code"),
                                             **hyperparameters}, code={"train.py": script})

    write_tree = staticmethod(lambda folder, content: write_tree(folder, content))

    def run(self, env=None, timeout_s=60):
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SM_", "SAGEMAKER_")) and k not in ("PYTHONPATH",)}
        clean.update({"SAGEMAKER_BASE_DIR": str(self.base), "SM_ENTRYPOINT_PYTHON": sys.executable, **(env or {})})
        proc = subprocess.run([sys.executable, "-c", TRAIN], env=clean, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s)
        return Finished(proc.returncode, proc.stdout + proc.stderr, self.base)


@pytest.fixture
def job(tmp_path):
    return Job(tmp_path / "ml")


def write_tree(folder, content):
    """Write {relative path: text or bytes} under `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in content.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
