"""Shared fixtures: the Docker client shim, which images are under test, and the SDK runners."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tools")]
from catalog import discover  # noqa: E402  (tools/catalog.py: the one list of images)
from docker_shim import folder as docker_shim  # noqa: E402

# Unit tests import sagemaker_training, which creates /opt/ml on import unless told where to look.
os.environ.setdefault("SAGEMAKER_BASE_DIR", str(REPO / "build" / "unit-opt-ml"))

os.environ["PATH"] = f"{docker_shim()}:{os.environ['PATH']}"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")

IMAGES = discover()


def image_ref(name):
    return IMAGES[name].tag if name in IMAGES else f"sm-images/{name}:latest"


def built(name):
    return subprocess.run(["/usr/bin/docker", "image", "inspect", image_ref(name)], capture_output=True).returncode == 0


def images_under_test():
    """Every image but base, or those named in IMAGES (space-separated)."""
    return os.environ.get("IMAGES", "").split() or [n for n in IMAGES if n != "base"]


@pytest.fixture(scope="session")
def image_of():
    """image_of(name) -> the local tag; fails (never skips) when the image was not built."""

    def get(name):
        if not built(name):
            pytest.fail(f"{image_ref(name)} is not built: run `make build IMAGE={name}`")
        return image_ref(name)

    return get


def sdk_python(major):
    path = REPO / f".venv-sdk{major}" / "bin" / "python"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make test-env` (installs SageMaker SDK {major}.x)")
    return str(path)


def free_port():
    """A port nothing listens on now, for a local endpoint: tests run side by side, and SDK 2.x
    local mode would otherwise publish every endpoint on 8080."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sdk(major, args, timeout_s=600, script="job"):
    """Run tests/sdk/sdk{major}_{script}.py under that SDK's own virtual environment."""
    return run_sdk_script(major, REPO / "tests" / "sdk" / f"sdk{major}_{script}.py", args, timeout_s)


def run_sdk_script(major, script, args, timeout_s=600):
    """Run a script under SDK {major}.x's own virtual environment; read its SDK_OUTCOME line."""
    try:
        proc = subprocess.run([sdk_python(major), str(script), *args], capture_output=True, text=True,
                              timeout=timeout_s, errors="replace", cwd=REPO)
    except subprocess.TimeoutExpired as e:
        said = (e.stdout or b"").decode(errors="replace")[-6000:]
        pytest.fail(f"{script.name} did not finish within {timeout_s} s; the end of what it printed:\n{said}")
    outcome = next((json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                    if line.startswith("SDK_OUTCOME ")), None)
    return proc, outcome
