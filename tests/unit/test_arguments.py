"""The argv a user script receives: hyperparameters as `--key value`, the way sagemaker-training
renders them (sorted by name, each value JSON-decoded where it can be, then written as Python
writes it), through `train` on a temporary /opt/ml."""

import io
import json
import tarfile

import pytest
from sm_entrypoint import environment

# As hyperparameters.json holds them (every value a string; SDK 2.x Framework estimators
# JSON-encode each value, SDK 3.x and the generic Estimator do not), and the argv they become.
HYPERPARAMETERS = {
    "epochs": "3",
    "lr": "0.1",
    "use_cuda": "true",
    "shuffle": "false",
    "name": "plain words",
    "encoded": json.dumps("value1"),
    "encoded_number": json.dumps(3),
    "layers": "[64, 32]",
    "optimizer": json.dumps({"name": "adam", "beta": 0.9}),
    "nothing": "null",
    "k": "1",
}
ARGV = ["--encoded", "value1", "--encoded_number", "3", "--epochs", "3", "-k", "1", "--layers", "[64, 32]",
        "--lr", "0.1", "--name", "plain words", "--nothing", "", "--optimizer", "beta=0.9,name=adam",
        "--shuffle", "False", "--use_cuda", "True"]
# ... and SM_HPS, the same values decoded
DECODED = {"epochs": 3, "lr": 0.1, "use_cuda": True, "shuffle": False, "name": "plain words", "encoded": "value1",
           "encoded_number": 3, "layers": [64, 32], "optimizer": {"name": "adam", "beta": 0.9}, "nothing": None,
           "k": 1}


def test_sagemaker_program_receives_every_hyperparameter_but_sagemakers_own(job):
    job.program(job.ECHO_ARGS, **HYPERPARAMETERS)
    r = job.run()
    r.ok()
    assert r.received["argv"] == ARGV
    assert r.received["hps"] == DECODED  # sagemaker_program and sagemaker_submit_directory are not among them
    assert r.received["cwd"] == str(job.base / "code")


def test_the_entrypoint_script_receives_every_hyperparameter_but_entrypoint(job):
    job.lay_out(hyperparameters={"entrypoint": "sub/main.py", **HYPERPARAMETERS},
                channels={"training-code": {"sub/main.py": job.ECHO_ARGS}})
    r = job.run()
    r.ok()
    assert r.received["argv"] == ARGV
    assert r.received["hps"] == {"entrypoint": "sub/main.py", **DECODED}
    assert r.received["cwd"] == str(job.base / "input" / "data" / "training-code" / "sub")


def test_sdk2_json_encoded_program_and_a_file_url_tarball(job, tmp_path):
    """SDK 2.x Framework estimators JSON-encode sagemaker_program and sagemaker_submit_directory too."""
    tarball = tmp_path / "src.tar.gz"
    _tarball(tarball, {"pkg/train.py": job.ECHO_ARGS})
    job.lay_out(hyperparameters={"sagemaker_program": json.dumps("pkg/train.py"),
                                 "sagemaker_submit_directory": json.dumps(f"file://{tarball}"),
                                 "hp1": json.dumps("value1"), "epochs": json.dumps(3)})
    r = job.run()
    r.ok()
    assert r.received["argv"] == ["--epochs", "3", "--hp1", "value1"]
    # extracted into the empty code folder, and run from its top as sagemaker-training does
    assert r.received["cwd"] == str(job.base / "code") and (job.base / "code" / "pkg" / "train.py").is_file()


@pytest.mark.parametrize("hyperparameters, argv", [
    ({}, []),
    ({"b": 2, "a": 1.5}, ["-a", "1.5", "-b", "2"]),
    ({"flag": True, "none": None}, ["--flag", "True", "--none", ""]),
    ({"d": {"x": 1, "a": "b"}}, ["-d", "a=b,x=1"]),
])
def test_rendering_of_decoded_values(hyperparameters, argv):
    """environment.cmd_args, as the entrypoint path calls it (sagemaker-training's mapping.to_cmd_args)."""
    assert environment.cmd_args(hyperparameters) == argv


def _tarball(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
