"""The labels every image carries: where it came from (source, revision), what it is (title,
version, framework versions, accelerator, Python) and when (`created`: the commit's time, as
SOURCE_DATE_EPOCH gives it, so building one commit twice gives the same image ID)."""

import datetime
import os
import subprocess

from smimages.catalog import LABEL_PREFIX, PYTHON_VERSION, ROOT, tag


def git(*args):
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def revision():
    """The commit the image was built from, marked -dirty when the tree had uncommitted changes."""
    rev = git("rev-parse", "HEAD") or "unknown"
    return rev + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def source_url():
    return os.environ.get("SOURCE_URL") or git("remote", "get-url", "origin") or "unknown (no git remote)"


def created():
    """SOURCE_DATE_EPOCH when set, else the commit's time (never the clock: the ID would change)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or git("log", "-1", "--format=%ct") or "0"
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(image):
    frameworks = image.frameworks()
    return {
        "org.opencontainers.image.title": tag(image.name).rsplit(":", 1)[0],
        "org.opencontainers.image.description": f"SageMaker-compatible {image.name} image ({image.accelerator})",
        "org.opencontainers.image.source": source_url(),
        "org.opencontainers.image.revision": revision(),
        "org.opencontainers.image.version": image.version(),
        "org.opencontainers.image.created": created(),
        f"{LABEL_PREFIX}.frameworks": ",".join(f"{p}={v}" for p, v in frameworks.items()),
        f"{LABEL_PREFIX}.accelerator": image.accelerator,
        f"{LABEL_PREFIX}.python": PYTHON_VERSION,
    }
