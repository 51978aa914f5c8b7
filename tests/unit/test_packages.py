"""pip's environment for requirements.txt (sm_entrypoint.packages): the warm pool's cache, private
indexes named without their secrets, and CodeArtifact's ARN, token and endpoint with boto3 stubbed
(botocore's Stubber: moto 5.2.5, the test lock's, has no CodeArtifact)."""

import logging

import boto3
import pytest
from botocore.stub import Stubber
from sm_entrypoint import packages, source
from sm_entrypoint.errors import JobError

ARN = "arn:aws:codeartifact:eu-west-1:111122223333:repository/my-domain/my-repo"
ENDPOINT = "https://my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com/pypi/my-repo/"
TOKEN = "eyJ2ZXIiOjEsImlzdSI6MTcwMH0.s3cr3t+/token="


def stubbed(token=TOKEN, endpoint=ENDPOINT, error=None):
    client = boto3.client("codeartifact", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    if error:
        stub.add_client_error("get_authorization_token", service_error_code=error, service_message="no way",
                              expected_params={"domain": "my-domain", "domainOwner": "111122223333"})
    else:
        stub.add_response("get_authorization_token", {"authorizationToken": token},
                          {"domain": "my-domain", "domainOwner": "111122223333"})
        stub.add_response("get_repository_endpoint", {"repositoryEndpoint": endpoint},
                          {"domain": "my-domain", "domainOwner": "111122223333", "repository": "my-repo",
                           "format": "pypi"})
    stub.activate()
    return client


def test_the_arn_names_region_account_domain_and_repository():
    assert packages.parse_repository_arn(ARN) == packages.Repository("eu-west-1", "111122223333", "my-domain", "my-repo")
    assert packages.parse_repository_arn(ARN.replace("arn:aws:", "arn:aws-cn:")).region == "eu-west-1"


@pytest.mark.parametrize("arn", [
    "my-repo", "arn:aws:s3:::bucket", "arn:aws:codeartifact:eu-west-1:111122223333:domain/my-domain",
    "arn:aws:codeartifact:eu-west-1:111122223333:repository/my-domain", "arn:aws:codeartifact::1:repository/d/r",
    "arn:aws:codeartifact:eu-west-1:111122223333:repository/d/r/extra"])
def test_a_malformed_arn_is_refused_with_the_shape_expected(arn):
    with pytest.raises(JobError, match=r"^CA_REPOSITORY_ARN=.* is not a CodeArtifact repository ARN \(arn:aws:"):
        packages.parse_repository_arn(arn)


def test_codeartifact_becomes_pips_index_with_the_token_as_password():
    url, token = packages.codeartifact_index(ARN, stubbed())
    assert token == TOKEN
    assert url == ("https://aws:eyJ2ZXIiOjEsImlzdSI6MTcwMH0.s3cr3t%2B%2Ftoken%3D@my-domain-111122223333.d."
                   "codeartifact.eu-west-1.amazonaws.com/pypi/my-repo/simple/")
    assert packages.index_url(ENDPOINT.rstrip("/"), "t") == packages.index_url(ENDPOINT, "t")


def test_codeartifact_sets_the_index_for_pip_only_and_never_shows_the_token(caplog):
    env = {"CA_REPOSITORY_ARN": ARN, "PIP_INDEX_URL": "https://mirror.example/simple/", "PATH": "/usr/bin"}
    with caplog.at_level(logging.INFO, logger="sm_entrypoint"):
        setup = packages.prepare(env, codeartifact_client=stubbed())
    assert setup.env["PIP_INDEX_URL"].startswith("https://aws:eyJ2") and env["PIP_INDEX_URL"] == "https://mirror.example/simple/"
    assert setup.where() == (" from index https://***@my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com"
                             "/pypi/my-repo/simple/ (CA_REPOSITORY_ARN)")
    assert "replaces PIP_INDEX_URL=https://mirror.example/simple/" in caplog.text
    assert setup.redact(f"token {TOKEN} in a message") == "token *** in a message"


def test_codeartifact_refusing_the_token_is_a_one_line_cause():
    with pytest.raises(JobError) as e:
        packages.prepare({"CA_REPOSITORY_ARN": ARN}, codeartifact_client=stubbed(error="AccessDeniedException"))
    assert e.value.cause.startswith(f"CA_REPOSITORY_ARN={ARN}: could not get a CodeArtifact token and pypi endpoint: "
                                    "An error occurred (AccessDeniedException) when calling the "
                                    "GetAuthorizationToken operation: no way")
    assert "\n" not in e.value.cause


def test_codeartifact_that_never_answers_is_bounded():
    class Hanging:
        def get_authorization_token(self, **_):
            import time
            time.sleep(30)

    with pytest.raises(JobError, match="could not get a CodeArtifact token and pypi endpoint within 0.5 s"):
        packages.codeartifact_index(ARN, Hanging(), deadline_s=0.5)


def test_indexes_pip_reads_itself_are_named_without_their_passwords():
    setup = packages.prepare({"PIP_INDEX_URL": "https://user:hunter2@pypi.corp.example/simple/",
                              "PIP_EXTRA_INDEX_URL": "https://tok@a.example/simple/ https://b.example/simple/",
                              "PIP_TRUSTED_HOST": "a.example"})
    assert setup.env["PIP_INDEX_URL"] == "https://user:hunter2@pypi.corp.example/simple/"  # pip reads it as given
    assert setup.where() == (" from index https://***@pypi.corp.example/simple/ (PIP_INDEX_URL), extra index "
                             "https://***@a.example/simple/ (PIP_EXTRA_INDEX_URL), extra index "
                             "https://b.example/simple/ (PIP_EXTRA_INDEX_URL)")
    assert packages.prepare({}).where() == ""


@pytest.mark.parametrize("text, expected", [
    ("Looking in indexes: https://aws:tok@h.example/simple/", "Looking in indexes: https://***@h.example/simple/"),
    ("'http://u:p%40ss@10.0.0.1:8080/simple/x/'", "'http://***@10.0.0.1:8080/simple/x/'"),
    ("no url here, user@example.com", "no url here, user@example.com"),
    ("https://h.example/simple/", "https://h.example/simple/"),
])
def test_redact(text, expected):
    assert packages.redact(text) == expected


def test_the_warm_pool_holds_pips_cache_unless_the_user_placed_it(tmp_path):
    warm = str(tmp_path / "warm")
    assert packages.prepare({"SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY": warm}).env["PIP_CACHE_DIR"] == f"{warm}/pip"
    assert packages.prepare({"SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY": warm,
                             "PIP_CACHE_DIR": "/mine"}).env["PIP_CACHE_DIR"] == "/mine"
    assert "PIP_CACHE_DIR" not in packages.prepare({}).env


# ---- through source.install_requirements (a shell script plays pip) ---------------------------

def fake_pip(tmp_path, monkeypatch, body):
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("SM_ENTRYPOINT_PYTHON", str(script))
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "requirements.txt").write_text("tinypkg\n")
    return tmp_path / "code"


def test_pip_runs_with_the_cache_and_the_index_and_its_failure_names_the_index(tmp_path, monkeypatch, caplog):
    code = fake_pip(tmp_path, monkeypatch, f"env > {tmp_path}/env\necho \"Looking in indexes: $PIP_INDEX_URL\"\n"
                                           "echo 'ERROR: Could not find a version that satisfies the requirement "
                                           "tinypkg'\nexit 1\n")
    monkeypatch.setenv("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", str(tmp_path / "warm"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://aws:sekrit@10.1.2.3:8080/simple/")
    with caplog.at_level(logging.INFO, logger="sm_entrypoint"), pytest.raises(JobError) as e:
        source.install_requirements(str(code))
    assert e.value.cause == (f"installing {code}/requirements.txt from index http://***@10.1.2.3:8080/simple/ "
                             "(PIP_INDEX_URL) failed (pip exit 1): ERROR: Could not find a version that satisfies "
                             "the requirement tinypkg")
    seen = (tmp_path / "env").read_text()
    assert f"PIP_CACHE_DIR={tmp_path}/warm/pip" in seen and "PIP_INDEX_URL=http://aws:sekrit@10.1.2.3:8080/simple/" in seen
    assert "sekrit" not in caplog.text + e.value.detail
    assert "pip: Looking in indexes: http://***@10.1.2.3:8080/simple/" in caplog.text


def test_a_bad_codeartifact_arn_stops_the_install_before_pip(tmp_path, monkeypatch):
    code = fake_pip(tmp_path, monkeypatch, f"touch {tmp_path}/ran\n")
    monkeypatch.setenv("CA_REPOSITORY_ARN", "my-repo")
    with pytest.raises(JobError, match=rf"^installing {code}/requirements.txt failed: CA_REPOSITORY_ARN='my-repo' is not"):
        source.install_requirements(str(code))
    assert not (tmp_path / "ran").exists()
