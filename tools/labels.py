"""The OCI labels every image carries: where it came from (source, revision), what it is (title,
version, framework versions, accelerator, Python) and when it was built (created)."""

import datetime
import os
import subprocess

from catalog import PYTHON_VERSION, ROOT


def git(*args):
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def revision():
    """The commit the image was built from, marked -dirty when the tree had uncommitted changes."""
    rev = git("rev-parse", "HEAD") or "unknown"
    return rev + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def source_url():
    return os.environ.get("SOURCE_URL") or git("remote", "get-url", "origin") or "unknown (no git remote)"


def version(image):
    """The image's version: its main framework package's version from the lock."""
    frameworks = image.frameworks()
    return next(iter(frameworks.values()), "0")


def labels(image):
    frameworks = image.frameworks()
    return {
        "org.opencontainers.image.title": f"sm-images/{image.name}",
        "org.opencontainers.image.source": source_url(),
        "org.opencontainers.image.revision": revision(),
        "org.opencontainers.image.version": version(image),
        "org.opencontainers.image.created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.description": f"SageMaker-compatible {image.name} image ({image.accelerator})",
        "com.sm-images.frameworks": ",".join(f"{p}={v}" for p, v in frameworks.items()),
        "com.sm-images.accelerator": image.accelerator,
        "com.sm-images.python": PYTHON_VERSION,
    }
