"""mxnet (the smaller serving image; nothing here depends on the framework): `serve` finds the
inference code where AWS's images look for it (the model's code/, the model folder's root, then
SAGEMAKER_SUBMIT_DIRECTORY, here an s3:// tarball on moto's real S3 API), installs a requirements.txt
beside the script first, and stops at once, saying why, when any of it cannot be done."""

import json
import re
import time
import zipfile

import pytest

from smimages.testing.harness import ServingContainer, tarball_bytes, write_tree
from smimages.testing.s3_server import CREDENTIALS as S3_CREDENTIALS

SOURCE_KEY = "source/sourcedir.tar.gz"
SCRIPT = """
import json, os
{imports}

def model_fn(model_dir):
    with open(os.path.join(model_dir, "factor.txt")) as f:
        return float(f.read())

def transform_fn(model, body, content_type, accept):
    values = json.loads(body)
    return json.dumps({{"scaled": [v * model for v in values], "script": __file__, "extra": {extra}}}), "application/json"
"""
PLAIN = SCRIPT.format(imports="", extra="None")
CREDENTIALS = {**S3_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def bucket(moto):
    """The bucket `models` on moto, holding a good sourcedir.tar.gz and one with an escaping member."""
    moto.bucket("models")
    s3 = moto.client()
    s3.put_object(Bucket="models", Key=SOURCE_KEY, Body=tarball_bytes({"inference.py": PLAIN, "helper.txt": "x"}))
    s3.put_object(Bucket="models", Key="source/evil.tar.gz",
                  Body=tarball_bytes({"inference.py": PLAIN, "../escaped.py": "print('escaped')\n"}))
    return moto.url


def wheel(folder, name="extra_pkg", version="1.0", code='GREETING = "hello from extra_pkg"\n'):
    """A pure-Python wheel written with zipfile (METADATA, WHEEL, RECORD): installable offline."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": code,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(path, "w") as whl:
        for member, text in files.items():
            whl.writestr(member, text)
        whl.writestr(f"{info}/RECORD", "".join(f"{m},,\n" for m in [*files, f"{info}/RECORD"]))
    return path


def model(folder, files=None):
    write_tree(folder, {"factor.txt": "3", **(files or {})})
    return folder


def answer(server):
    status, body, headers = server.request("POST", "/invocations", b"[1, 2.5]", {"Content-Type": "application/json"})
    assert (status, headers["content-type"]) == (200, "application/json"), body
    return json.loads(body)


def s3_env(url, variable="S3_ENDPOINT_URL", key=SOURCE_KEY):
    """What the Step Functions Data Science SDK's CreateModel sends, with the endpoint of the test S3."""
    return {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://models/{key}",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-west-2", "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
            variable: url, **CREDENTIALS}


def test_a_script_at_the_model_root_serves(image, tmp_path):
    """The layout older SDKs and many tutorials produce: /opt/ml/model/inference.py."""
    with ServingContainer(image, model(tmp_path / "model", {"inference.py": PLAIN}),
                          env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as s:
        s.wait_ready()
        assert answer(s) == {"scaled": [3.0, 7.5], "script": "/opt/ml/model/inference.py", "extra": None}


def test_code_requirements_txt_installs_an_offline_wheel_before_the_script_is_imported(image, tmp_path):
    code = tmp_path / "model" / "code"
    wheel(code / "wheels")
    write_tree(code, {"requirements.txt": "--no-index\n./wheels/extra_pkg-1.0-py3-none-any.whl\n",
                      "inference.py": SCRIPT.format(imports="import extra_pkg", extra="extra_pkg.GREETING")})
    with ServingContainer(image, model(tmp_path / "model"), env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as s:
        s.wait_ready(timeout_s=120)
        assert answer(s) == {"scaled": [3.0, 7.5], "script": "/opt/ml/model/code/inference.py",
                             "extra": "hello from extra_pkg"}
        logs = s.logs_once("loaded the inference script")
    installed = logs.index("pip: Successfully installed extra-pkg-1.0")  # pip's own output, in the log
    assert logs.index("installing /opt/ml/model/code/requirements.txt") < installed
    assert installed < logs.index("loaded the inference script /opt/ml/model/code/inference.py")


@pytest.mark.parametrize("variable", ["S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
def test_an_s3_submit_directory_is_fetched_at_start_up(image, bucket, tmp_path, variable):
    """SDK 1.x and the Step Functions Data Science SDK: SAGEMAKER_PROGRAM and an s3:// sourcedir.tar.gz,
    no code/ in the model (mounted read-only, as ServingContainer does)."""
    with ServingContainer(image, model(tmp_path / "model"), env=s3_env(bucket, variable)) as s:
        s.wait_ready()
        got = answer(s)
        logs = s.logs()
    assert got["scaled"] == [3.0, 7.5]
    assert re.fullmatch(r"/tmp/sm-submitted-code-[^/]+/code/inference\.py", got["script"]), got
    assert f"downloading s3://models/{SOURCE_KEY} (endpoint {bucket} from {variable})" in logs


def test_the_models_code_folder_comes_before_an_s3_submit_directory(image, bucket, tmp_path):
    """As in AWS's images: nothing is fetched when code/ has the script."""
    env = s3_env(bucket, key="source/missing.tar.gz")  # would fail if it were fetched
    with ServingContainer(image, model(tmp_path / "model", {"code/inference.py": PLAIN}), env=env) as s:
        s.wait_ready()
        assert answer(s)["script"] == "/opt/ml/model/code/inference.py"
        assert "SAGEMAKER_SUBMIT_DIRECTORY=s3://models/source/missing.tar.gz is not used" in s.logs()


def fails_at_start(image, model_dir, env, cause, timeout_s=60, exact=True):
    """The container exits non-zero within `timeout_s`, /ping never says 200 meanwhile, and the first
    error line of its log is `serve cannot start: <cause>` (or starts so, exact=False).
    -> (seconds it took, the logs)."""
    started = time.monotonic()
    with ServingContainer(image, model_dir, env=env) as s:
        pings = []
        while time.monotonic() - started < timeout_s:
            s.container.reload()
            if s.container.status == "exited":
                break
            try:
                pings.append(s.ping())
            except RuntimeError:  # exited before its port could be read
                break
            time.sleep(0.1)
        code = s.tracked.exit_code(30)
        took = time.monotonic() - started
        logs = s.logs()
    assert 200 not in pings, logs
    assert code == 2, logs
    errors = [line.split("[sm-entrypoint] ERROR ", 1)[1] for line in logs.splitlines() if "[sm-entrypoint] ERROR " in line]
    assert errors, logs
    assert errors[0] == f"serve cannot start: {cause}" if exact else errors[0].startswith(f"serve cannot start: {cause}"), logs
    assert "Booting worker" not in logs, logs
    head = logs.split("serve cannot start: ", 1)[0]
    assert "Traceback" not in head, logs  # any traceback comes after the cause
    return took, logs


@pytest.mark.expect_log_errors("the failure under test")
def test_an_s3_tarball_with_an_escaping_member_stops_the_server(image, bucket, tmp_path):
    took, _ = fails_at_start(image, model(tmp_path / "model"), s3_env(bucket, key="source/evil.tar.gz"),
                             "submitted tarball refused: member '../escaped.py' would be written outside the code folder "
                             "(in s3://models/source/evil.tar.gz)")
    assert took < 30


@pytest.mark.expect_log_errors("the failure under test")
def test_a_missing_s3_key_stops_the_server(image, bucket, tmp_path):
    took, _ = fails_at_start(image, model(tmp_path / "model"), s3_env(bucket, key="source/missing.tar.gz"),
                             "could not download the submitted source: could not download s3://models/source/missing.tar.gz "
                             f"(endpoint {bucket} from S3_ENDPOINT_URL): NoSuchKey: The specified key does not exist.")
    assert took < 30


@pytest.mark.expect_log_errors("the failure under test")
def test_a_requirements_txt_that_fails_to_install_stops_the_server(image, tmp_path):
    files = {"code/inference.py": PLAIN, "code/requirements.txt": "--no-index\nno-such-package-here==1.0\n"}
    took, logs = fails_at_start(image, model(tmp_path / "model", files), {},
                                "installing /opt/ml/model/code/requirements.txt failed (pip exit 1): ERROR: Could not find "
                                "a version that satisfies the requirement no-such-package-here==1.0 (from versions: none)")
    assert took < 60
    assert "pip: ERROR: No matching distribution found for no-such-package-here==1.0" in logs  # pip's output, logged


@pytest.mark.expect_log_errors("the failure under test")
def test_a_missing_named_script_stops_the_server(image, tmp_path):
    took, _ = fails_at_start(image, model(tmp_path / "model", {"code/inference.py": PLAIN}),
                             {"SAGEMAKER_PROGRAM": "missing.py"},
                             "the inference script /opt/ml/model/code/missing.py does not exist, "
                             "nor /opt/ml/model/missing.py (SAGEMAKER_SUBMIT_DIRECTORY is not set)")
    assert took < 30


@pytest.mark.expect_log_errors("the failure under test")
def test_a_script_missing_from_the_s3_tarball_stops_the_server(image, bucket, tmp_path):
    env = {**s3_env(bucket), "SAGEMAKER_PROGRAM": "serve_me.py"}
    took, _ = fails_at_start(image, model(tmp_path / "model"), env, "the inference script serve_me.py is not in "
                             f"SAGEMAKER_SUBMIT_DIRECTORY=s3://models/{SOURCE_KEY} (extracted into /tmp/sm-submitted-code-",
                             exact=False)
    assert took < 30


@pytest.mark.expect_log_errors("the failure under test")
def test_a_script_that_fails_to_import_stops_the_server_cause_first_traceback_after(image, tmp_path):
    files = {"code/inference.py": "import no_such_module_here\n"}
    took, logs = fails_at_start(image, model(tmp_path / "model", files), {},
                                "importing /opt/ml/model/code/inference.py failed: ModuleNotFoundError: "
                                "No module named 'no_such_module_here'")
    assert took < 30
    assert logs.index("serve cannot start") < logs.index("Traceback (most recent call last)")
