"""custom-framework: a job's requirements.txt from a private index (PIP_INDEX_URL with a token,
PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, as passed to the job), a bad index or token failing with
the index named and no secret anywhere, CodeArtifact's CA_REPOSITORY_ARN, and a warm pool's pip
cache serving the second job. The index is a real one on the Docker bridge's gateway
(smimages.testing.pip_index) holding packages no other index has; it also answers the two
CodeArtifact calls the entrypoint makes through boto3 (moto has no CodeArtifact; the ARN and URL
building are unit-tested with botocore's Stubber in tests/unit/test_packages.py)."""

import re
import socket
import time
from datetime import datetime

import pytest

from smimages.testing.harness import program_job, run_job, write_tree
from smimages.testing.pip_index import PackageIndex
from smimages.testing.s3_server import bridge_gateway

TOKEN = "tok-3f9c2a7e-never-shown"
USES_BOTH = """
import os, onlyhere, extrapkg
open(os.path.join(os.environ["SM_MODEL_DIR"], "answer"), "w").write(f"{onlyhere.VALUE} {extrapkg.VALUE}")
"""
USES_ONE = "import onlyhere\nprint('onlyhere', onlyhere.VALUE)\n"
WARM = "/opt/ml/sagemaker/warmpoolcache"  # where SageMaker mounts a warm pool's folder


@pytest.fixture
def index(tmp_path):
    """A token-protected index holding onlyhere (about 5 MB, so that a download shows)."""
    server = PackageIndex.start(tmp_path / "index", {"onlyhere": "VALUE = 42\n"}, password=TOKEN,
                                payload_bytes=5 * 1024 * 1024)
    yield server
    server.stop()


@pytest.fixture
def extra(tmp_path):
    """A second index, no auth: PIP_EXTRA_INDEX_URL."""
    server = PackageIndex.start(tmp_path / "extra", {"extrapkg": "VALUE = 7\n"})
    yield server
    server.stop()


def job_with(tmp_path, script, requirements, env):
    job = program_job(tmp_path, script, env={"SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS": "120", **env})
    write_tree(job.tree("algo-1") / "code", {"requirements.txt": requirements})
    return job


def assert_no_secret(result):
    assert TOKEN not in result.logs and TOKEN not in (result.failure or "")


def test_packages_only_private_indexes_hold_install_with_the_token_never_shown(image, tmp_path, index, extra):
    env = {"PIP_INDEX_URL": index.url(TOKEN), "PIP_EXTRA_INDEX_URL": extra.url(),
           "PIP_TRUSTED_HOST": f"{index.netloc} {extra.netloc}"}  # plain http: pip needs them trusted
    [r] = run_job(image, job_with(tmp_path, USES_BOTH, "onlyhere==0.1\nextrapkg==0.1\n", env))
    r.ok()
    assert (r.model / "answer").read_text() == "42 7"
    assert f"installing /opt/ml/code/requirements.txt from index http://***@{index.netloc}/simple/ (PIP_INDEX_URL), " \
           f"extra index http://{extra.netloc}/simple/ (PIP_EXTRA_INDEX_URL)" in r.logs
    assert_no_secret(r)


def test_an_untrusted_plain_http_index_is_refused_by_pip(image, tmp_path, index):
    """PIP_TRUSTED_HOST is what lets pip use it: without it pip ignores the index."""
    [r] = run_job(image, job_with(tmp_path, USES_ONE, "onlyhere==0.1\n", {"PIP_INDEX_URL": index.url(TOKEN)}))
    assert r.cause(1).startswith(f"installing /opt/ml/code/requirements.txt from index http://***@{index.netloc}/simple/ "
                                 "(PIP_INDEX_URL) failed (pip exit 1): ERROR: Could not find a version")
    assert "is not a trusted or secure host and is being ignored" in r.logs
    assert_no_secret(r)


def test_a_wrong_token_fails_with_the_index_named_and_no_token(image, tmp_path, index):
    wrong = "wrong-" + TOKEN
    env = {"PIP_INDEX_URL": index.url(wrong), "PIP_TRUSTED_HOST": index.netloc}
    [r] = run_job(image, job_with(tmp_path, USES_ONE, "onlyhere==0.1\n", env))
    assert r.cause(1) == (f"installing /opt/ml/code/requirements.txt from index http://***@{index.netloc}/simple/ "
                          "(PIP_INDEX_URL) failed (pip exit 1): ERROR: Could not find a version that satisfies the "
                          "requirement onlyhere==0.1 (from versions: none)")
    assert ("/simple/onlyhere/", 401) in index.requests  # it was asked, and refused the token
    assert TOKEN not in r.logs and TOKEN not in r.failure  # neither token: the wrong one contains the right one


def test_an_index_that_never_answers_fails_within_the_pip_bound(image, tmp_path):
    silent = socket.create_server((bridge_gateway(), 0))  # connections queue, nothing ever answers
    try:
        netloc = f"{bridge_gateway()}:{silent.getsockname()[1]}"
        env = {"PIP_INDEX_URL": f"http://aws:{TOKEN}@{netloc}/simple/", "PIP_TRUSTED_HOST": netloc}
        job = job_with(tmp_path, USES_ONE, "onlyhere==0.1\n", env)
        job.env["SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS"] = "10"
        started = time.monotonic()
        [r] = run_job(image, job)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert r.cause(1) == (f"installing /opt/ml/code/requirements.txt from index http://***@{netloc}/simple/ "
                          "(PIP_INDEX_URL) took over 10 s (SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS) and was stopped")
    assert took < 40
    assert_no_secret(r)


def pip_seconds(logs):
    """From the entrypoint's `installing` line to its `installed` line."""
    stamps = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f")
              for m in re.findall(r"^(\S+ \S+) \[sm-entrypoint\] INFO install(?:ing|ed) /opt/ml/code", logs, re.M)]
    assert len(stamps) == 2, logs[-3000:]
    return (stamps[1] - stamps[0]).total_seconds()


def test_the_second_job_on_a_warm_pool_installs_from_its_cache(image, tmp_path, index):
    env = {"PIP_INDEX_URL": index.url(TOKEN), "PIP_TRUSTED_HOST": index.netloc,
           "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY": WARM}
    job = job_with(tmp_path, USES_ONE, "onlyhere==0.1\n", env)  # its /opt/ml, the warm folder in it, outlive each container
    [first] = run_job(image, job)
    first.ok()
    [second] = run_job(image, job)  # a fresh container: nothing installed, the cache kept
    second.ok()
    assert f"pip's cache: {WARM}/pip (SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY" in second.logs
    assert "pip:   Using cached onlyhere-0.1" in second.logs and "pip:   Downloading onlyhere-0.1" in first.logs
    assert index.downloads("onlyhere") == 1  # the wheel left the index once
    assert (job.tree("algo-1") / "sagemaker" / "warmpoolcache" / "pip" / "http-v2").is_dir()
    print(f"\nwarm pool: first install {pip_seconds(first.logs):.2f} s (downloaded), "
          f"second {pip_seconds(second.logs):.2f} s (from the cache)")


ARN = "arn:aws:codeartifact:us-west-2:111122223333:repository/my-domain/my-repo"
SEES_NO_INDEX = USES_ONE + "import os\nassert 'PIP_INDEX_URL' not in os.environ, 'the token reached the script'\n"


def codeartifact_env(index, arn=ARN):
    return {"CA_REPOSITORY_ARN": arn, "AWS_ENDPOINT_URL_CODEARTIFACT": index.endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PIP_TRUSTED_HOST": index.netloc}


@pytest.fixture
def codeartifact(tmp_path):
    """An index whose token CodeArtifact's GetAuthorizationToken hands out for my-domain/my-repo."""
    server = PackageIndex.start(tmp_path / "ca", {"onlyhere": "VALUE = 42\n"}, password=TOKEN,
                                codeartifact=("my-domain", "111122223333", "my-repo"))
    yield server
    server.stop()


def test_codeartifact_repository_arn_installs_with_a_token_only_pip_sees(image, tmp_path, codeartifact):
    [r] = run_job(image, job_with(tmp_path, SEES_NO_INDEX, "onlyhere==0.1\n", codeartifact_env(codeartifact)))
    r.ok()
    assert "onlyhere 42" in r.logs
    assert (f"installing /opt/ml/code/requirements.txt from index http://***@{codeartifact.netloc}/pypi/my-repo/simple/ "
            "(CA_REPOSITORY_ARN)") in r.logs
    assert [p for p, _ in codeartifact.requests][:2] == [
        "/v1/authorization-token?domain=my-domain&domain-owner=111122223333",
        "/v1/repository/endpoint?domain=my-domain&domain-owner=111122223333&repository=my-repo&format=pypi"]
    assert_no_secret(r)


def test_a_codeartifact_repository_that_is_not_there_fails_before_pip(image, tmp_path, codeartifact):
    arn = ARN.replace("my-domain", "other-domain")
    [r] = run_job(image, job_with(tmp_path, USES_ONE, "onlyhere==0.1\n", codeartifact_env(codeartifact, arn)))
    assert r.cause(1) == (f"installing /opt/ml/code/requirements.txt failed: CA_REPOSITORY_ARN={arn}: could not get a "
                          "CodeArtifact token and pypi endpoint: An error occurred (ResourceNotFoundException) when "
                          "calling the GetAuthorizationToken operation: no such domain or repository: "
                          "{'domain': 'other-domain', 'domain-owner': '111122223333'}")
    assert "pip:" not in r.logs
