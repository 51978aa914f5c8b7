"""Running a job through a real SageMaker SDK: each SDK major version has its own virtual
environment (.venv-sdk2, .venv-sdk3: they cannot share one), so its scripts (sdk_scripts/) run
there as programs and report one `SDK_OUTCOME {...}` line."""

import json
import subprocess
from pathlib import Path

import pytest

from smimages.catalog import ROOT

SCRIPTS = Path(__file__).resolve().parent / "sdk_scripts"


def sdk_python(major):
    path = ROOT / f".venv-sdk{major}" / "bin" / "python"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make test-env` (installs SageMaker SDK {major}.x)")
    return str(path)


def run_sdk(major, args, timeout_s=600, script="job"):
    """Run sdk_scripts/sdk{major}_{script}.py under that SDK's own environment: (process, outcome)."""
    script = SCRIPTS / f"sdk{major}_{script}.py"
    try:
        proc = subprocess.run([sdk_python(major), str(script), *args], capture_output=True, text=True,
                              timeout=timeout_s, errors="replace", cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        said = (e.stdout or b"").decode(errors="replace")[-6000:]
        pytest.fail(f"{script.name} did not finish within {timeout_s} s; the end of what it printed:\n{said}")
    outcome = next((json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                    if line.startswith("SDK_OUTCOME ")), None)
    return proc, outcome
