"""serve: code/requirements.txt from a private index (PIP_INDEX_URL with a token and PIP_TRUSTED_HOST,
as passed to the model, or CodeArtifact's CA_REPOSITORY_ARN), pip's cache in a warm pool's folder,
and a wrong token stopping the server with the index named and no token anywhere. The index is a
real one on the Docker bridge's gateway (smimages.testing.pip_index) holding a package no other
index has. The server is framework-free: once."""

import time

import pytest

from smimages.testing.harness import ServingContainer, write_tree
from smimages.testing.pip_index import PackageIndex

TOKEN = "tok-8d1e5b90-never-shown"
SCRIPT = """\
import onlyhere

def model_fn(model_dir):
    return onlyhere.VALUE

def transform_fn(model, body, content_type, accept):
    return f"{model}"
"""
WARM = "/opt/ml/warmpool"


@pytest.fixture
def index(tmp_path):
    server = PackageIndex.start(tmp_path / "index", {"onlyhere": "VALUE = 42\n"}, password=TOKEN)
    yield server
    server.stop()


def model(folder):
    return write_tree(folder, {"code/inference.py": SCRIPT, "code/requirements.txt": "onlyhere==0.1\n"})


def test_a_package_only_the_private_index_holds_installs_and_a_warm_pool_caches_it(one_image, tmp_path, index):
    env = {"PIP_INDEX_URL": index.url(TOKEN), "PIP_TRUSTED_HOST": index.netloc,
           "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY": WARM, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    warm = {str(tmp_path / "warm"): {"bind": WARM, "mode": "rw"}}
    logs = []
    for _ in range(2):  # the second container starts with nothing installed, the warm folder kept
        with ServingContainer(one_image, model(tmp_path / "model"), env=env, volumes=warm) as server:
            server.wait_ready(timeout_s=120)
            status, body, _ = server.request("POST", "/invocations", b"x", {"Content-Type": "text/plain"})
            assert (status, body) == (200, b"42")
            logs.append(server.logs())
    assert f"installing /opt/ml/model/code/requirements.txt from index http://***@{index.netloc}/simple/ " \
           "(PIP_INDEX_URL)" in logs[0]
    assert "pip:   Downloading onlyhere-0.1" in logs[0] and "pip:   Using cached onlyhere-0.1" in logs[1]
    assert index.downloads("onlyhere") == 1
    assert not any(TOKEN in text for text in logs)


@pytest.mark.expect_log_errors("the failure under test")
def test_a_wrong_token_stops_the_server_with_the_index_named_and_no_token(one_image, tmp_path, index):
    env = {"PIP_INDEX_URL": index.url("wrong-" + TOKEN), "PIP_TRUSTED_HOST": index.netloc}
    started = time.monotonic()
    with ServingContainer(one_image, model(tmp_path / "model"), env=env) as server:
        code = server.tracked.exit_code(timeout_s=120)
        logs = server.logs()
    assert code == 2 and time.monotonic() - started < 120
    assert (f"serve cannot start: installing /opt/ml/model/code/requirements.txt from index "
            f"http://***@{index.netloc}/simple/ (PIP_INDEX_URL) failed (pip exit 1): ERROR: Could not find a version "
            "that satisfies the requirement onlyhere==0.1 (from versions: none)") in logs
    assert ("/simple/onlyhere/", 401) in index.requests
    assert TOKEN not in logs


def test_codeartifact_repository_arn_installs_before_the_script_is_imported(one_image, tmp_path):
    """The index also answers CodeArtifact's GetAuthorizationToken and GetRepositoryEndpoint (moto has no CodeArtifact)."""
    index = PackageIndex.start(tmp_path / "ca", {"onlyhere": "VALUE = 42\n"}, password=TOKEN,
                               codeartifact=("my-domain", "111122223333", "my-repo"))
    env = {"CA_REPOSITORY_ARN": "arn:aws:codeartifact:us-west-2:111122223333:repository/my-domain/my-repo",
           "AWS_ENDPOINT_URL_CODEARTIFACT": index.endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "PIP_TRUSTED_HOST": index.netloc, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    try:
        with ServingContainer(one_image, model(tmp_path / "model"), env=env) as server:
            server.wait_ready(timeout_s=120)
            assert server.request("POST", "/invocations", b"x", {"Content-Type": "text/plain"})[:2] == (200, b"42")
            logs = server.logs()
    finally:
        index.stop()
    assert f"from index http://***@{index.netloc}/pypi/my-repo/simple/ (CA_REPOSITORY_ARN)" in logs
    assert TOKEN not in logs
