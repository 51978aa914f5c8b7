"""The checks on /opt/ml/input/config/*.json: a missing or malformed file, or a declared channel that
is not there, fails with a cause that names it, before any user code runs."""

import json

import pytest
from sm_entrypoint import config
from sm_entrypoint.errors import JobError


@pytest.fixture
def laid_out(job):
    return lambda **kwargs: job.lay_out(**kwargs).base


def test_good_files_are_returned_by_name(laid_out):
    base = laid_out(hyperparameters={"epochs": "3"}, channels={"train": {"a.csv": "1,2"}},
                    hosts=("algo-1", "algo-2"))
    files = config.check(str(base))
    assert files["hyperparameters.json"] == {"epochs": "3"}
    assert files["inputdataconfig.json"] == {"train": {"TrainingInputMode": "File"}}
    assert files["resourceconfig.json"]["hosts"] == ["algo-1", "algo-2"]


@pytest.mark.parametrize("name", config.FILES)
def test_a_missing_file_is_named(laid_out, name):
    base = laid_out(config_override={name: None})
    with pytest.raises(JobError) as e:
        config.check(str(base))
    assert e.value.cause == f"{base}/input/config/{name} is missing: SageMaker writes it before the container starts"


@pytest.mark.parametrize("name, text", [
    ("hyperparameters.json", "{not json"),
    ("resourceconfig.json", '{"hosts": ["algo-1"'),
    ("inputdataconfig.json", ""),
])
def test_malformed_json_is_named(laid_out, name, text):
    base = laid_out(config_override={name: text})
    with pytest.raises(JobError, match=f"^{base}/input/config/{name} is not valid JSON: "):
        config.check(str(base))


def test_bytes_that_are_not_utf8_are_not_valid_json(laid_out):
    base = laid_out()
    (base / "input" / "config" / "hyperparameters.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(JobError, match="hyperparameters.json is not valid JSON"):
        config.check(str(base))


@pytest.mark.parametrize("text, kind", [("[1, 2]", "list"), ('"x"', "str"), ("3", "int"), ("null", "NoneType")])
def test_a_file_must_hold_an_object(laid_out, text, kind):
    base = laid_out(config_override={"resourceconfig.json": text})
    with pytest.raises(JobError) as e:
        config.check(str(base))
    assert e.value.cause == f"{base}/input/config/resourceconfig.json must hold a JSON object, not {kind}"


@pytest.mark.parametrize("resources", [{}, {"hosts": [], "current_host": "algo-1"},
                                       {"hosts": "algo-1", "current_host": "algo-1"},
                                       {"hosts": ["algo-1", 2], "current_host": "algo-1"}])
def test_hosts_must_be_a_non_empty_list_of_names(laid_out, resources):
    base = laid_out(config_override={"resourceconfig.json": json.dumps(resources)})
    with pytest.raises(JobError) as e:
        config.check(str(base))
    assert e.value.cause == "resourceconfig.json: 'hosts' must be a non-empty list of host names"


def test_the_current_host_must_be_among_the_hosts(laid_out):
    resources = {"hosts": ["algo-1", "algo-2"], "current_host": "algo-3"}
    base = laid_out(config_override={"resourceconfig.json": json.dumps(resources)})
    with pytest.raises(JobError) as e:
        config.check(str(base))
    assert e.value.cause == "resourceconfig.json: current_host 'algo-3' is not among hosts ['algo-1', 'algo-2']"


@pytest.mark.parametrize("mode", ["File", "FastFile"])
def test_a_declared_file_channel_must_exist(laid_out, mode):
    base = laid_out(channels={"train": {}},
                    config_override={"inputdataconfig.json": json.dumps({"train": {"TrainingInputMode": mode}})})
    (base / "input" / "data" / "train").rmdir()
    with pytest.raises(JobError) as e:
        config.check(str(base))
    assert e.value.cause == (f"channel 'train' is declared in inputdataconfig.json but "
                             f"{base}/input/data/train does not exist")


def test_a_pipe_channel_has_no_folder_to_check(laid_out):
    base = laid_out(config_override={"inputdataconfig.json": json.dumps({"s": {"TrainingInputMode": "Pipe"}})})
    config.check(str(base))
