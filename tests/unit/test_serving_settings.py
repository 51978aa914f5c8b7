"""The model server's settings from the environment, and the errors a bad value gets."""

import pytest
from sm_entrypoint.serving.cpus import granted as cpu_count
from sm_entrypoint.serving.errors import ConfigError
from sm_entrypoint.serving.settings import ServingSettings


def test_defaults_follow_sagemaker():
    s = ServingSettings.from_env({})
    assert (s.port, s.workers, s.timeout_s, s.max_payload_mb) == (8080, cpu_count(), 60, 6)
    assert s.max_payload_bytes == 6 * 1024 * 1024
    assert s.execution_parameters == {"MaxConcurrentTransforms": cpu_count(), "BatchStrategy": "MULTI_RECORD",
                                      "MaxPayloadInMB": 6}
    assert (s.model_dir, s.program, s.submit_dir, s.default_handlers) == ("/opt/ml/model", "inference.py", "", "")
    assert not s.program_named


def test_every_variable_is_honoured():
    s = ServingSettings.from_env({
        "SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "5", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
        "SAGEMAKER_BATCH_STRATEGY": "single_record", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "7",
        "SAGEMAKER_PROGRAM": "serve_me.py", "SAGEMAKER_SUBMIT_DIRECTORY": "file:///opt/ml/code",
        "SAGEMAKER_DEFAULT_HANDLERS": "pkg.defaults"})
    assert (s.port, s.workers, s.timeout_s, s.max_payload_mb) == (9000, 3, 5, 1)
    assert s.execution_parameters == {"MaxConcurrentTransforms": 7, "BatchStrategy": "SINGLE_RECORD",
                                      "MaxPayloadInMB": 1}
    assert (s.program, s.submit_dir, s.default_handlers) == ("serve_me.py", "/opt/ml/code", "pkg.defaults")


def test_max_concurrent_transforms_defaults_to_the_workers():
    assert ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "5"}).max_concurrent_transforms == 5


@pytest.mark.parametrize("env, message", [
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"}, "SAGEMAKER_MODEL_SERVER_WORKERS must be a whole number, got 'many'"),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS must be at least 1, got '0'"),
    ({"SAGEMAKER_BATCH_STRATEGY": "ALL"}, "SAGEMAKER_BATCH_STRATEGY must be one of MULTI_RECORD, SINGLE_RECORD"),
    ({"SAGEMAKER_PROGRAM": "../x.py"}, "SAGEMAKER_PROGRAM must be a file name"),
    ({"SAGEMAKER_SUBMIT_DIRECTORY": "https://example.invalid/sourcedir.tar.gz"},
     "SAGEMAKER_SUBMIT_DIRECTORY=https://example.invalid/sourcedir.tar.gz: only a folder, a .tar.gz path, file:// or "
     "s3:// is supported"),
])
def test_a_bad_setting_is_refused_in_one_line(env, message):
    with pytest.raises(ConfigError) as e:
        ServingSettings.from_env(env)
    assert str(e.value).startswith(message)


def test_an_s3_submit_directory_is_accepted_and_kept_as_given():
    """SDK 1.x and the Step Functions Data Science SDK deploy so: fetched at start-up (user_script)."""
    s = ServingSettings.from_env({"SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/source/sourcedir.tar.gz",
                                  "SAGEMAKER_PROGRAM": "inference.py"})
    assert (s.submit_dir, s.program, s.program_named) == ("s3://bucket/source/sourcedir.tar.gz", "inference.py", True)


def test_a_multi_model_endpoint_is_asked_for_by_sagemaker_multi_model():
    assert not ServingSettings.from_env({}).multi_model
    s = ServingSettings.from_env({"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_LOAD_TIMEOUT": "30"})
    assert (s.multi_model, s.load_timeout_s) == (True, 30)
    assert ServingSettings.from_env({"SAGEMAKER_MULTI_MODEL": "False"}).multi_model is False
    with pytest.raises(ConfigError, match="SAGEMAKER_MULTI_MODEL must be true or false, got 'maybe'"):
        ServingSettings.from_env({"SAGEMAKER_MULTI_MODEL": "maybe"})


def test_the_default_workers_are_the_cpus_granted_and_the_users_count_is_marked(monkeypatch):
    from sm_entrypoint.serving import cpus

    monkeypatch.setattr(cpus, "granted", lambda: 3)
    assert (ServingSettings.from_env({}).workers, ServingSettings.from_env({}).workers_set) == (3, False)
    s = ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "5"})
    assert (s.workers, s.workers_set) == (5, True)


def test_a_request_may_take_up_to_an_hour():
    assert ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600"}).timeout_s == 3600
    with pytest.raises(ConfigError, match="SAGEMAKER_MODEL_SERVER_TIMEOUT must be at most 3600, got '3601'"):
        ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3601"})


@pytest.mark.parametrize("raw, ports", [("", None), ("20000-20999", (20000, 20999)), (" 9000-9000 ", (9000, 9000))])
def test_the_safe_port_range(raw, ports):
    assert ServingSettings.from_env({"SAGEMAKER_SAFE_PORT_RANGE": raw}).safe_ports == ports


@pytest.mark.parametrize("raw", ["20000", "a-b", "9000-8000", "0-10", "1-70000"])
def test_a_bad_safe_port_range_is_refused(raw):
    with pytest.raises(ConfigError, match="SAGEMAKER_SAFE_PORT_RANGE must be two ports as LOW-HIGH"):
        ServingSettings.from_env({"SAGEMAKER_SAFE_PORT_RANGE": raw})
