"""Each seed notebook's calls replayed as written (examples/seeds/, what `make seeds` runs): SDK
local mode with code, data and models through a real S3 API on this machine (moto's server, on the
Docker bridge's gateway so that containers reach it too). Each test checks what the notebook ends
with, in S3 or in the answers. A seed runs when every image it needs is under test.

They are also the SDK tests of the paths they take (SageMaker's: code and data through S3), so the
image folders' SDK tests leave those paths to them: seed 000 the generic Estimator with the
`training-code` channel (dgl-rdkit), 002 the Estimator and the Framework subclass on one host and
sdk3 ModelTrainer with and without SourceCode (custom-framework), 003 the PyTorch estimator over
MPI on two hosts then deploy() and predict() (pytorch-horovod), 004 the MXNet estimator and a
MultiRecord batch transform (mxnet)."""

import io
import json
import tarfile

import pytest

from smimages.seeds import SEEDS, replay
from smimages.testing.ports import free_port


def seed(name):
    return pytest.mark.needs_images(*SEEDS[name].images)


@pytest.fixture
def run_seed(moto, image_of, tmp_path):
    """run_seed(name) -> the Replay, once it succeeded (the log's tail otherwise)."""

    def run(name):
        seed = SEEDS[name]
        for image in seed.images:
            image_of(image)  # fails, naming the image, where it is not built
        result = replay(seed, moto, tmp_path / "work", serving_port=free_port(), log_dir=tmp_path / "logs")
        assert result.ok, result.tail()
        return result

    return run


def s3_object(moto, url):
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return moto.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def tar_members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.lstrip("./") for m in tar.getmembers()}


@seed("002")
def test_seed_002_custom_framework_trains_from_s3_both_ways(moto, run_seed):
    result = run_seed("002")
    assert len(result.outcome["models"]) == 2
    for model in result.outcome["models"]:
        assert {"model.json", "metrics.json"} <= tar_members(s3_object(moto, model))
    log = result.log.read_text()
    # the container fetched the code itself, as on SageMaker (SDK 2.x passes AWS_ENDPOINT_URL_S3)
    assert log.count("from AWS_ENDPOINT_URL_S3)") == 2
    assert "framework configuration:" in log and 'SM_CHANNELS=["train","validation"]' in log


@seed("001")
def test_seed_001_stepfunctions_training_pipeline_trains_on_two_hosts_and_serves(moto, run_seed):
    result = run_seed("001")
    outcome = result.outcome
    # the four Task states of TrainingPipeline's definition, carried out in order by the local client
    assert outcome["states"] == ["createTrainingJob.sync", "createModel", "createEndpointConfig", "createEndpoint"]
    assert outcome["accuracy"] >= 0.9
    # the model tarball holds the weights and no code: the server fetched the code named by
    # CreateModel's SAGEMAKER_SUBMIT_DIRECTORY, the sourcedir.tar.gz the training used
    members = tar_members(s3_object(moto, outcome["model_data"]))
    assert "model.pth" in members and not any(m.startswith("code") for m in members)
    assert outcome["submit_directory"].endswith("/source/sourcedir.tar.gz")
    assert "mnist.py" in tar_members(s3_object(moto, outcome["submit_directory"]))
    log = result.log.read_text()
    assert log.count("from AWS_ENDPOINT_URL_S3)") == 2  # each training host fetched the code from S3
    assert "from AWS_ENDPOINT_URL)" in log  # and the serving container, from CreateModel's environment
    assert "Current host rank is 1" in log and "terminate called without an active exception" not in log
    # the endpoint config asks for the training's 2 instances; local mode starts one serving container
    assert outcome["endpoint_instance_count"] == 2 and len(outcome["serving_containers"]) == 2
    assert "running" in outcome["serving_containers"].values()


@seed("004")
def test_seed_004_mxnet_trains_from_s3_and_batch_transforms_s3_input(moto, run_seed):
    result = run_seed("004")
    outcome = result.outcome
    assert {"model-symbol.json", "model-0000.params"} <= tar_members(s3_object(moto, outcome["model"]))
    # one <file>.out per input file, in S3, and the predictions the replay scored
    outputs = sorted(outcome["outputs"])
    assert all(url.startswith(outcome["transform_output"] + "/") for url in outputs)
    assert [url.rsplit("/", 1)[-1] for url in outputs] == [f"digits-{i:02d}.csv.out" for i in range(10)]
    lines = [line for url in outputs for line in s3_object(moto, url).decode().splitlines()]
    assert len(lines) == outcome["records"] == 500 and all(line.strip().isdigit() for line in lines)
    assert outcome["accuracy"] >= 0.9
    log = result.log.read_text()
    assert "from AWS_ENDPOINT_URL_S3)" in log  # the containers fetched code from S3 themselves


@seed("003")
def test_seed_003_horovod_over_mpi_on_two_hosts_then_deploy_and_predict(moto, run_seed):
    result = run_seed("003")
    outcome = result.outcome
    assert {"model.pth", "metrics.json"} <= tar_members(s3_object(moto, outcome["model"]))
    assert outcome["predictions"] == 300 and outcome["accuracy"] >= 0.9
    log = result.log.read_text()
    assert "horovod: 2 process(es), mpi=True" in log
    # both hosts fetched the code from S3 themselves
    assert log.count("sourcedir.tar.gz (endpoint") == 2 and "from AWS_ENDPOINT_URL_S3)" in log


@seed("sdk3")
def test_seed_sdk3_model_trainer_trains_from_s3_code_and_data(moto, run_seed):
    result = run_seed("sdk3")
    outcome = result.outcome
    with tarfile.open(fileobj=io.BytesIO(s3_object(moto, outcome["model"]))) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model["validation_loss"] < 0.01 and abs(model["bias"] - 0.5) < 0.05
    log = result.log.read_text()
    # SDK 3.x downloaded the S3 code channel and its driver ran the entry script from it
    assert "cd /opt/ml/input/data/code" in log and "Executing command: /opt/venv/bin/python3 train.py" in log
    # which S3 endpoint the container was told (SDK 3.x sets S3_ENDPOINT_URL only when the last channel
    # it looks at is in S3; with SourceCode that is its own local sm_drivers one): said in the log
    assert "S3 endpoint variable S3_ENDPOINT_URL=" in log
    # the second job (no SourceCode): the image's own train fetched sagemaker_submit_directory
    # with the endpoint SDK 3.x gave it, S3_ENDPOINT_URL (which boto3 alone ignores)
    assert "/model-trainer-local/source/sourcedir.tar.gz (endpoint " in log and " from S3_ENDPOINT_URL)" in log


@seed("000")
def test_seed_000_dgl_tox21_trains_main_py_from_the_s3_training_code_channel(moto, run_seed):
    result = run_seed("000")
    outcome = result.outcome
    assert outcome["code"].endswith("/main.py") and b"dgl" in s3_object(moto, outcome["code"])  # the script alone
    data = s3_object(moto, outcome["model"])
    assert {"model.pt", "metrics.json"} <= tar_members(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        metrics = json.load(tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("metrics.json"))))
    assert len(metrics["roc_auc_per_task"]) == 12
    log = result.log.read_text()
    assert "running /opt/venv/bin/python3 /opt/ml/input/data/training-code/main.py" in log
    assert "read 500 molecules from channel 'train'" in log
