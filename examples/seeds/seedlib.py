"""What every seed replay shares, and all that differs from the notebooks: what local mode forces.

- `instance_type="local"` (in each seed), and a local session whose S3 is the server `make seeds`
  starts on this machine (`SEED_S3_ENDPOINT`), with `local_code` off, so code travels through S3
  as it does on SageMaker;
- a fake role ARN: local mode never assumes it;
- our image URIs (`sm-images/<name>:latest`, or `SEED_IMAGE_<NAME>` to try a pushed one);
- data made offline (nothing can be downloaded here).
"""

import json
import os

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
BUCKET = os.environ.get("SEED_BUCKET", "sagemaker-us-west-2-111111111111")
TELEMETRY_OFF = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def image(name):
    """Our image for `name` (e.g. "pytorch-horovod-cpu")."""
    return os.environ.get("SEED_IMAGE_" + name.upper().replace("-", "_"), f"sm-images/{name}:latest")


def s3_endpoint():
    return os.environ["SEED_S3_ENDPOINT"]


def local_session():
    """SDK 2.x's LocalSession on the S3 server, code through S3, and its own endpoint port (several
    replays may serve at once; SEED_SERVING_PORT)."""
    import boto3
    from sagemaker.local import LocalSession

    # boto_session must be given with s3_endpoint_url: SDK 2.x's LocalSession reads the argument,
    # not the session it would make, and fails on None.
    # TelemetryOptOut: the SDK would report each call to an AWS address that cannot be reached here.
    session = LocalSession(boto_session=boto3.Session(), s3_endpoint_url=s3_endpoint(), disable_local_code=True,
                           default_bucket=BUCKET, sagemaker_config=TELEMETRY_OFF)
    session.config = {**(session.config or {}), "local": {**(session.config or {}).get("local", {}),
                      "local_code": False, "serving_port": int(os.environ.get("SEED_SERVING_PORT", "8080"))}}
    return session


def workdir():
    """A folder of this replay's own for the data and code it writes (SEED_WORKDIR)."""
    path = os.environ.get("SEED_WORKDIR") or os.path.join(os.getcwd(), "out", "seeds")
    os.makedirs(path, exist_ok=True)
    return path


def report(**outcome):
    """The replay's result, one line that `make seeds` and the tests read."""
    print("SEED_OUTCOME " + json.dumps(outcome, default=str), flush=True)


def mnist(folder, test_size=1000, train_limit=None, torchvision=False):
    """MNIST's files under `folder` (`train/` and `test/`, or torchvision's `MNIST/raw/`), made
    offline from scikit-learn's handwritten digits (smimages.datasets.mnist_digits, run by the
    repository's own environment, which has scikit-learn and the smimages package) -> the held-out test (images (n, 28, 28)
    uint8, labels), which stay out of `folder`. `train_limit` keeps the first N training images."""
    import subprocess

    import numpy as np

    python = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv", "bin", "python")
    subprocess.run([python, "-m", "smimages.datasets.mnist_digits", folder, "--test-size", str(test_size),
                    *(["--train-limit", str(train_limit)] if train_limit else []),
                    *(["--torchvision"] if torchvision else [])], check=True)
    held_out = os.path.join(folder, "held_out.npz")
    with np.load(held_out) as test:
        images, labels = test["images"], test["labels"]
    os.remove(held_out)  # a folder uploaded whole as a channel holds the training data only
    return images, labels
