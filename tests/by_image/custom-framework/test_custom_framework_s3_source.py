"""custom-framework: `train` with sagemaker_submit_directory=s3://... on moto's real S3 API, reached
through S3_ENDPOINT_URL only (what SDK 3.x local mode and sagemaker-training use; boto3 ignores it by
itself), the same S3 client `serve` uses."""


import pytest

from smimages.testing.harness import MLJob, make_tarball, run_job

TRAIN = """
import os, sys
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write("trained from " + os.path.dirname(os.path.abspath(__file__)) + " with " + " ".join(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def bucket(moto, tmp_path_factory):
    moto.bucket("jobs")
    s3 = moto.client()
    tarball = make_tarball(tmp_path_factory.mktemp("src") / "sourcedir.tar.gz", {"train.py": TRAIN})
    s3.upload_file(str(tarball), "jobs", "source/sourcedir.tar.gz")
    return moto.url


def s3_job(tmp_path, url, key):
    """Only S3_ENDPOINT_URL names the endpoint: no AWS_ENDPOINT_URL* in the container."""
    return MLJob(tmp_path / "ml", hyperparameters={"sagemaker_program": "train.py", "epochs": "2",
                                                   "sagemaker_submit_directory": f"s3://jobs/{key}"},
                 env={"S3_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                      "AWS_DEFAULT_REGION": "us-west-2", "AWS_EC2_METADATA_DISABLED": "true"})


def test_an_s3_submit_directory_through_s3_endpoint_url_trains(image, bucket, tmp_path):
    [r] = run_job(image, s3_job(tmp_path, bucket, "source/sourcedir.tar.gz"))
    r.ok()
    assert (r.model / "model.txt").read_text() == "trained from /opt/ml/code with --epochs 2"
    assert f"downloading s3://jobs/source/sourcedir.tar.gz (endpoint {bucket} from S3_ENDPOINT_URL)" in r.logs


def test_a_missing_s3_key_fails_the_job_saying_so(image, bucket, tmp_path):
    [r] = run_job(image, s3_job(tmp_path, bucket, "source/missing.tar.gz"), timeout_s=90)
    assert r.cause() == ("could not download the submitted source: could not download s3://jobs/source/missing.tar.gz "
                         f"(endpoint {bucket} from S3_ENDPOINT_URL): NoSuchKey: The specified key does not exist.")
