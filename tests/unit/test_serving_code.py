"""Where `serve` finds the inference code (code/, the model folder's root, SAGEMAKER_SUBMIT_DIRECTORY
as a folder, a tarball or an s3:// tarball), the shared S3 client (endpoint precedence, bounded
timeouts, one-line errors) and requirements.txt (streamed, bounded): plain Python, no Docker."""

import logging
import time
from pathlib import Path

import pytest
from sm_entrypoint import s3, source
from sm_entrypoint.errors import JobError
from sm_entrypoint.serving import user_script
from sm_entrypoint.serving.errors import ConfigError
from sm_entrypoint.serving.settings import ServingSettings

from smimages.testing.harness import tarball_bytes
from smimages.testing.s3_server import S3Server

SCRIPT = "def model_fn(d):\n    return 'from {where}'\n"
S3_ENV_KEYS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")


def settings(model, **env):
    return ServingSettings.from_env({"SM_MODEL_DIR": str(model), **env})


def put(folder, name="inference.py"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(SCRIPT.format(where=folder.name))
    return str(folder / name)


@pytest.fixture
def no_endpoint(monkeypatch):
    for key in S3_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


# ---- the order of lookup ----------------------------------------------------------------------

@pytest.mark.parametrize("present, expected", [
    (["code", "root", "submit"], "code"),
    (["root", "submit"], "root"),
    (["submit"], "submit"),
    (["code", "submit"], "code"),
])
def test_code_folder_then_model_root_then_submit_directory(tmp_path, present, expected):
    model, submit = tmp_path / "model", tmp_path / "submit"
    model.mkdir()
    submit.mkdir()
    places = {"code": model / "code", "root": model, "submit": submit}
    for name in present:
        put(places[name])
    path = user_script.script_path(settings(model, SAGEMAKER_SUBMIT_DIRECTORY=str(submit)))
    assert path == str(places[expected] / "inference.py")


def test_a_script_at_the_model_root_is_found_and_imported(tmp_path):
    path = user_script.script_path(settings(put(tmp_path / "model") and tmp_path / "model"))
    assert path == str(tmp_path / "model" / "inference.py")
    assert user_script.load(path).model_fn("/m") == "from model"


def test_code_folder_wins_over_an_explicit_submit_directory_and_says_so(tmp_path, caplog):
    model = tmp_path / "model"
    put(model / "code", "serve_me.py")
    put(tmp_path / "submit", "serve_me.py")
    with caplog.at_level(logging.INFO, logger="sm_entrypoint"):
        path = user_script.script_path(settings(model, SAGEMAKER_PROGRAM="serve_me.py",
                                                SAGEMAKER_SUBMIT_DIRECTORY=str(tmp_path / "submit")))
    assert path == str(model / "code" / "serve_me.py")
    assert f"SAGEMAKER_SUBMIT_DIRECTORY={tmp_path / 'submit'} is not used" in caplog.text


def test_an_s3_submit_directory_is_not_fetched_when_the_model_has_the_script(tmp_path, monkeypatch):
    def no_download(*_):
        raise AssertionError("downloaded although code/ has the script")

    monkeypatch.setattr(source, "_download_s3", no_download)
    model = tmp_path / "model"
    put(model / "code")
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/source/sourcedir.tar.gz", "SAGEMAKER_PROGRAM": "inference.py"}
    assert user_script.script_path(settings(model, **env)) == str(model / "code" / "inference.py")


def test_a_named_script_must_exist_somewhere(tmp_path):
    (tmp_path / "model").mkdir()
    model = tmp_path / "model"
    with pytest.raises(ConfigError) as e:
        user_script.script_path(settings(model, SAGEMAKER_PROGRAM="inference.py"))
    assert str(e.value) == (f"the inference script {model}/code/inference.py does not exist, nor {model}/inference.py "
                            "(SAGEMAKER_SUBMIT_DIRECTORY is not set)")
    put(tmp_path / "submit", "other.py")
    with pytest.raises(ConfigError, match=r"the inference script inference.py is not in "
                                          r"SAGEMAKER_SUBMIT_DIRECTORY=.*/submit, nor at"):
        user_script.script_path(settings(model, SAGEMAKER_SUBMIT_DIRECTORY=str(tmp_path / "submit")))
    assert user_script.script_path(settings(model)) is None  # nothing named: the image's defaults may serve


def test_a_tarball_submit_directory_is_extracted_into_a_fresh_folder_not_the_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "src.tar.gz").write_bytes(tarball_bytes({"inference.py": SCRIPT.format(where="tar")}))
    for value in (str(tmp_path / "src.tar.gz"), f"file://{tmp_path / 'src.tar.gz'}"):
        path = user_script.script_path(settings(model, SAGEMAKER_SUBMIT_DIRECTORY=value))
        assert Path(path).read_text() == SCRIPT.format(where="tar")
        assert not Path(path).is_relative_to(model) and not Path(path).is_relative_to(tmp_path)
    assert list(model.iterdir()) == []


# ---- an s3:// submit directory, on moto's real S3 API ----------------------------------------

@pytest.fixture(scope="module")
def moto():
    """moto's real S3 API on loopback."""
    server = S3Server.start("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture
def bucket(moto, monkeypatch, no_endpoint):
    """A bucket on moto, reached through S3_ENDPOINT_URL only (which boto3 ignores by itself)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-west-2", "S3_ENDPOINT_URL": moto.url}.items():
        monkeypatch.setenv(key, value)
    moto.bucket("models")
    return moto.client()


def test_an_s3_submit_directory_is_fetched_when_the_model_has_no_code(tmp_path, bucket):
    bucket.put_object(Bucket="models", Key="source/sourcedir.tar.gz",
                      Body=tarball_bytes({"serve_me.py": SCRIPT.format(where="s3"), "requirements.txt": ""}))
    model = tmp_path / "model"
    model.mkdir()
    path = user_script.script_path(settings(model, SAGEMAKER_PROGRAM="serve_me.py",
                                            SAGEMAKER_SUBMIT_DIRECTORY="s3://models/source/sourcedir.tar.gz"))
    assert user_script.load(path).model_fn("/m") == "from s3"
    assert list(model.iterdir()) == []


def test_a_missing_key_is_one_line_with_the_url_the_endpoint_and_the_cause(tmp_path, bucket):
    (tmp_path / "model").mkdir()
    url = s3.endpoint()[0]
    with pytest.raises(ConfigError) as e:
        user_script.script_path(settings(tmp_path / "model", SAGEMAKER_SUBMIT_DIRECTORY="s3://models/nope.tar.gz"))
    assert str(e.value) == (f"could not download the submitted source: could not download s3://models/nope.tar.gz "
                            f"(endpoint {url} from S3_ENDPOINT_URL): NoSuchKey: The specified key does not exist.")


def test_an_s3_tarball_with_an_escaping_member_is_refused_before_extraction(tmp_path, bucket):
    bucket.put_object(Bucket="models", Key="evil.tar.gz",
                      Body=tarball_bytes({"inference.py": SCRIPT, "../../escaped.py": "x = 1\n"}))
    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match=r"^submitted tarball refused: member '../../escaped.py' would be written outside "
                                          r"the code folder \(in s3://models/evil.tar.gz\)$"):
        user_script.script_path(settings(tmp_path / "model", SAGEMAKER_SUBMIT_DIRECTORY="s3://models/evil.tar.gz"))


def test_train_downloads_through_s3_endpoint_url_too(tmp_path, bucket):
    bucket.put_object(Bucket="models", Key="src.tar.gz", Body=tarball_bytes({"train.py": "print(1)\n"}))
    folder = source.stage("s3://models/src.tar.gz", str(tmp_path / "ml"))
    assert (Path(folder) / "train.py").read_text() == "print(1)\n"
    with pytest.raises(JobError, match=r"^could not download the submitted source: could not download s3://models/gone.tar.gz "
                                       r"\(endpoint http://127.0.0.1:\d+ from S3_ENDPOINT_URL\): NoSuchKey"):
        source.stage("s3://models/gone.tar.gz", str(tmp_path / "ml"))


# ---- the shared S3 client -------------------------------------------------------------------

@pytest.mark.parametrize("env, expected", [
    ({"AWS_ENDPOINT_URL_S3": "http://a", "AWS_ENDPOINT_URL": "http://b", "S3_ENDPOINT_URL": "http://c"},
     ("http://a", "AWS_ENDPOINT_URL_S3")),
    ({"AWS_ENDPOINT_URL": "http://b", "S3_ENDPOINT_URL": "http://c"}, ("http://b", "AWS_ENDPOINT_URL")),
    ({"S3_ENDPOINT_URL": "http://c"}, ("http://c", "S3_ENDPOINT_URL")),
    ({"S3_ENDPOINT_URL": "  ", "AWS_ENDPOINT_URL": ""}, (None, None)),
    ({}, (None, None)),
])
def test_endpoint_precedence(env, expected):
    assert s3.endpoint(env) == expected
    if expected[0]:
        assert s3.client({**env, "AWS_DEFAULT_REGION": "us-east-1"}).meta.endpoint_url == expected[0]


def test_the_client_has_bounded_timeouts_and_retries():
    config = s3.client({"AWS_DEFAULT_REGION": "us-east-1", "S3_ENDPOINT_URL": "http://127.0.0.1:9"}).meta.config
    assert (config.connect_timeout, config.read_timeout) == (s3.CONNECT_TIMEOUT_S, s3.READ_TIMEOUT_S)
    assert config.retries["total_max_attempts"] == s3.MAX_ATTEMPTS


def test_an_unreachable_endpoint_fails_quickly_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = {"S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1"}  # nothing listens on 9
    started = time.monotonic()
    with pytest.raises(s3.S3Error) as e:
        s3.download("s3://b/k.tar.gz", str(tmp_path / "k"), env=env)
    assert time.monotonic() - started < 30
    assert str(e.value).startswith("could not download s3://b/k.tar.gz (endpoint http://127.0.0.1:9 from "
                                   "S3_ENDPOINT_URL): EndpointConnectionError: Could not connect")
    assert "\n" not in str(e.value)


class SlowBody:
    def read(self, _n):
        time.sleep(0.2)
        return b"x"


class SlowS3:
    def get_object(self, **_):
        return {"Body": SlowBody()}


def test_a_download_past_its_deadline_is_stopped(tmp_path):
    with pytest.raises(s3.S3Error, match=r"could not download s3://b/k \(AWS's default endpoint\): it took over "
                                         r"0.5 s \(SM_ENTRYPOINT_DOWNLOAD_TIMEOUT_SECONDS\) and was stopped"):
        s3.download("s3://b/k", str(tmp_path / "k"), env={}, s3=SlowS3(),
                    deadline=s3.deadline_s({"SM_ENTRYPOINT_DOWNLOAD_TIMEOUT_SECONDS": "0.5"}))


class SilentS3:
    """An endpoint that accepts and never answers: get_object itself waits (botocore bounds only
    each call, with retries)."""

    def get_object(self, **_):
        time.sleep(60)


def test_a_silent_endpoint_is_bounded_by_the_download_deadline(tmp_path):
    started = time.monotonic()
    with pytest.raises(s3.S3Error, match=r"it took over 0.5 s \(SM_ENTRYPOINT_DOWNLOAD_TIMEOUT_SECONDS\)"):
        s3.download("s3://b/k", str(tmp_path / "k"), env={}, s3=SilentS3(), deadline=0.5)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("url", ["s3://bucket", "s3:///key", "https://bucket/key"])
def test_a_url_that_is_not_bucket_and_key_is_refused(url, tmp_path):
    with pytest.raises(s3.S3Error, match="is not an s3://bucket/key URL"):
        s3.download(url, str(tmp_path / "k"), env={})


# ---- requirements.txt -----------------------------------------------------------------------

def fake_pip(tmp_path, monkeypatch, body):
    """SM_ENTRYPOINT_PYTHON pointing at a shell script that plays pip (the venv stays untouched)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("SM_ENTRYPOINT_PYTHON", str(script))
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "requirements.txt").write_text("extra_pkg\n")
    return tmp_path / "code"


def test_pip_output_is_logged_as_it_comes(tmp_path, monkeypatch, caplog):
    code = fake_pip(tmp_path, monkeypatch, "echo Collecting extra_pkg\nsleep 1\necho Successfully installed extra_pkg\n")
    with caplog.at_level(logging.INFO, logger="sm_entrypoint"):
        source.install_requirements(str(code))
    times = {r.getMessage(): r.created for r in caplog.records if r.getMessage().startswith("pip: ")}
    assert list(times) == ["pip: Collecting extra_pkg", "pip: Successfully installed extra_pkg"]
    assert times["pip: Successfully installed extra_pkg"] - times["pip: Collecting extra_pkg"] > 0.7  # not at the end


def test_a_failing_install_names_pips_error(tmp_path, monkeypatch):
    code = fake_pip(tmp_path, monkeypatch, "echo 'ERROR: Could not find a version that satisfies the requirement "
                                           "extra_pkg'\necho 'ERROR: No matching distribution found for extra_pkg'\nexit 1\n")
    with pytest.raises(JobError) as e:
        source.install_requirements(str(code))
    assert e.value.cause == (f"installing {code}/requirements.txt failed (pip exit 1): ERROR: Could not find a version "
                             "that satisfies the requirement extra_pkg")


def test_an_install_past_its_timeout_is_stopped_with_what_it_started(tmp_path, monkeypatch):
    code = fake_pip(tmp_path, monkeypatch, f"sleep 30 & echo $! > {tmp_path}/child\nwait\n")
    monkeypatch.setenv("SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS", "1")
    started = time.monotonic()
    with pytest.raises(JobError, match=r"requirements.txt took over 1 s \(SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS\) and was stopped"):
        source.install_requirements(str(code))
    assert time.monotonic() - started < 10
    child = int((tmp_path / "child").read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


@pytest.mark.parametrize("raw", ["soon", "0", "-5"])
def test_a_bad_pip_timeout_is_refused(raw):
    with pytest.raises(JobError, match="SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS must be"):
        source.pip_timeout_s({"SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS": raw})


def test_serve_installs_requirements_beside_the_script_or_in_code(tmp_path, monkeypatch):
    model = tmp_path / "model"
    path = put(model)
    (model / "requirements.txt").write_text("x\n")
    seen = []
    monkeypatch.setattr(source, "install_requirements", lambda folder: seen.append(folder))
    user_script.install_requirements(path, settings(model))
    user_script.install_requirements(None, settings(model))
    assert seen == [str(model), str(model / "code")]


def test_a_failing_install_stops_serve_with_a_config_error(tmp_path, monkeypatch):
    code = fake_pip(tmp_path / "model", monkeypatch, "echo 'ERROR: boom'\nexit 2\n")
    with pytest.raises(ConfigError, match=r"requirements.txt failed \(pip exit 2\): ERROR: boom"):
        user_script.install_requirements(str(code / "inference.py"), settings(tmp_path / "model"))
