"""custom-framework: every S3 failure a user can cause for a training job's submitted source
(`sagemaker_submit_directory=s3://...`) ends the job within a bounded time, with the cause first in
/opt/ml/output/failure. moto's server on the Docker bridge (tools/s3_server.py) is the S3 API; the
missing key is covered in test_custom_framework_s3_source.py."""

import socket
import time

import pytest

from smimages.testing.harness import MLJob, make_tarball, run_job
from smimages.testing.ports import free_port
from smimages.testing.s3_server import CREDENTIALS, bridge_gateway

BUCKET = "jobs"
KEY = "source/sourcedir.tar.gz"
TRAIN = "print('never runs')\n"
BOUND_S = 60  # each failure must end the job well within this


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    moto.bucket(BUCKET)
    tarball = make_tarball(tmp_path_factory.mktemp("src") / "sourcedir.tar.gz", {"train.py": TRAIN})
    moto.client().upload_file(str(tarball), BUCKET, KEY)
    return moto


def s3_job(tmp_path, url, endpoint, credentials=True, **env):
    """The source at `url`, the endpoint named by AWS_ENDPOINT_URL_S3 (what SDK 2.x local mode sets)."""
    return MLJob(tmp_path / "ml", hyperparameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": url},
                 env={"AWS_ENDPOINT_URL_S3": endpoint, "AWS_DEFAULT_REGION": "us-west-2",
                      **(CREDENTIALS if credentials else {}), "SM_ENTRYPOINT_DOWNLOAD_TIMEOUT_SECONDS": "10", **env})


def failed(image, job, bound_s=BOUND_S):
    """(the failure's first line, seconds the job took), once it failed within bound_s."""
    started = time.monotonic()
    [r] = run_job(image, job, timeout_s=bound_s + 10)
    seconds = time.monotonic() - started
    cause = r.cause()
    assert seconds < bound_s, f"the job took {seconds:.0f} s to fail: {cause}"
    return cause, seconds


def test_the_source_in_s3_trains(image, server, tmp_path):
    """The control: the same job with everything right runs the script."""
    [r] = run_job(image, s3_job(tmp_path, f"s3://{BUCKET}/{KEY}", server.url), timeout_s=BOUND_S)
    r.ok()
    assert "never runs" in r.logs


def test_no_such_bucket(image, server, tmp_path):
    cause, _ = failed(image, s3_job(tmp_path, f"s3://no-such-bucket/{KEY}", server.url))
    assert cause == ("could not download the submitted source: could not download s3://no-such-bucket/"
                     f"{KEY} (endpoint {server.url} from AWS_ENDPOINT_URL_S3): NoSuchBucket: "
                     "The specified bucket does not exist")


def test_no_credentials(image, server, tmp_path):
    # No AWS_* credentials, and no instance metadata service to fall back to (the container's attempt
    # to reach one must not hang the job either).
    cause, _ = failed(image, s3_job(tmp_path, f"s3://{BUCKET}/{KEY}", server.url, credentials=False))
    assert cause == (f"could not download the submitted source: could not download s3://{BUCKET}/{KEY} "
                     f"(endpoint {server.url} from AWS_ENDPOINT_URL_S3): NoCredentialsError: "
                     "Unable to locate credentials")


def test_an_endpoint_that_refuses_connections(image, tmp_path):
    endpoint = f"http://{bridge_gateway()}:{free_port(bridge_gateway())}"  # nothing listens there
    cause, _ = failed(image, s3_job(tmp_path, f"s3://{BUCKET}/{KEY}", endpoint))
    assert cause.startswith(f"could not download the submitted source: could not download s3://{BUCKET}/{KEY} "
                            f"(endpoint {endpoint} from AWS_ENDPOINT_URL_S3): EndpointConnectionError: "
                            f'Could not connect to the endpoint URL: "{endpoint}/{BUCKET}/')


@pytest.fixture
def silent_endpoint():
    """A port on the bridge that accepts connections (the kernel does, from the backlog) and never
    answers a byte: an S3 endpoint that hangs."""
    host = bridge_gateway()
    with socket.socket() as listener:
        listener.bind((host, 0))
        listener.listen(16)
        yield f"http://{host}:{listener.getsockname()[1]}"


def test_an_endpoint_that_never_answers_fails_within_the_download_deadline(image, silent_endpoint, tmp_path):
    # deadline 10 s (s3_job): the job must end well within 30 s
    cause, seconds = failed(image, s3_job(tmp_path, f"s3://{BUCKET}/{KEY}", silent_endpoint), bound_s=30)
    assert cause.startswith(f"could not download the submitted source: could not download s3://{BUCKET}/{KEY} "
                            f"(endpoint {silent_endpoint} from AWS_ENDPOINT_URL_S3): "), cause
