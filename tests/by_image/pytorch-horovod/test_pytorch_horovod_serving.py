"""pytorch-horovod: train the DDP example, then `serve` that model over real HTTP with the example
as its inference script (model_fn and predict_fn; input and output from the image's defaults)."""

import io
import json
import shutil

import numpy as np
import pytest

from smimages.testing.harness import SERVERLESS, MLJob, ServingContainer, run_command, run_job, write_tree
from smimages.testing.multi_model import MultiModelEndpoint
from smimages.testing.pytorch_mnist import EXAMPLES, channels, held_out, make_mnist, put_code

CSV, JSON, NPY = "text/csv", "application/json", "application/x-npy"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    mnist = make_mnist(tmp_path_factory.mktemp("serving-mnist"), train_limit=None)
    return mnist, held_out(mnist)


@pytest.fixture(scope="module")
def model_dir(one_image, digits, tmp_path_factory):
    """model.pth from a one-host training job, and the example as code/ (what the SDK packs)."""
    root = tmp_path_factory.mktemp("serving-job")
    job = MLJob(root / "ml", channels=channels(digits[0]),
                hyperparameters={"sagemaker_program": "mnist.py", "sagemaker_submit_directory": "/opt/ml/code",
                                 "epochs": 5, "lr": 0.02, "momentum": 0.9, "batch-size": 64})
    put_code(job, "pytorch-mnist-ddp")
    [r] = run_job(one_image, job, timeout_s=300)
    r.ok()
    model = root / "model"
    shutil.copytree(r.model, model)
    shutil.copytree(EXAMPLES / "pytorch-mnist-ddp", model / "code")
    return model


@pytest.fixture(scope="module")
def server(image, model_dir):
    """Each image's server as a serverless endpoint places it (2 GB, no GPU)."""
    env = {"SAGEMAKER_PROGRAM": "mnist.py", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    with ServingContainer(image, model_dir, env=env, **SERVERLESS) as s:
        s.wait_ready(timeout_s=120)
        yield s


def encode(images, content_type):
    if content_type == CSV:
        return "\n".join(",".join(map(str, row)) for row in images).encode()
    if content_type == JSON:
        return json.dumps(images.tolist()).encode()
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


def decode(body, content_type):
    if content_type == CSV:
        return np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2)
    if content_type == JSON:
        return np.array(json.loads(body))
    return np.load(io.BytesIO(body))


@pytest.mark.parametrize("content_type, accept", [(CSV, CSV), (JSON, JSON), (NPY, NPY), (NPY, JSON), (JSON, CSV)])
def test_held_out_digits_are_answered_with_at_least_90_percent(server, digits, content_type, accept):
    images, labels = digits[1]
    status, body, headers = server.request("POST", "/invocations", encode(images, content_type),
                                           {"Content-Type": content_type, "Accept": accept})
    assert status == 200, body[:500]
    assert headers["content-type"].startswith(accept)
    probabilities = decode(body, accept)
    assert probabilities.shape == (len(labels), 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.9


@pytest.mark.parametrize("content_type, body, status, reason", [
    ("text/plain", b"1,2,3", 415, "unsupported Content-Type 'text/plain'"),
    (CSV, b"1,2,x\n", 400, "CSV line 1: 'x' is not a number"),
    (JSON, b"[[1, 2", 400, "the body is not valid JSON"),
    (JSON, b'{"pixels": [1, 2]}', 400, "the default input_fn takes an array of numbers"),
    (CSV, b"1,2,3\n", 500, "ValueError: each record must hold 784 pixels, not 3"),
])
def test_bad_requests_answer_with_their_status_and_reason_and_the_server_keeps_serving(
        server, digits, content_type, body, status, reason):
    got, text, _ = server.request("POST", "/invocations", body, {"Content-Type": content_type})
    assert (got, text.decode()[:len(reason)]) == (status, reason)
    assert server.ping() == 200
    assert server.request("POST", "/invocations", encode(digits[1][0][:1], CSV), {"Content-Type": CSV})[0] == 200


def test_a_body_over_the_payload_limit_is_a_413_and_the_server_keeps_serving(server):
    answer = server.post_head_of_a_huge_body(100 * 1024 * 1024)
    assert answer.startswith("HTTP/1.1 413 ") and "over the limit of 6291456 bytes" in answer
    assert server.ping() == 200


def test_model_fn_ran_once_in_each_worker(server):
    logs = server.logs_once("model loaded", count=2)
    assert logs.count("model loaded") == 2
    assert "model_fn: inference script, input_fn: image default, predict_fn: inference script" in logs


TO_TORCHSCRIPT = """
import torch
from mnist import NORMALIZE, model_fn  # from /opt/ml/model/code, on PYTHONPATH

class Digits(torch.nn.Module):  # raw pixels in, probabilities out: nothing else is needed to serve
    def __init__(self, net):
        super().__init__()
        self.net, self.normalize = net, NORMALIZE
    def forward(self, x):
        return self.net(self.normalize(x.reshape(-1, 1, 28, 28) / 255)).exp()

torch.jit.save(torch.jit.script(Digits(model_fn("/opt/ml/model"))), "/out/model.pt")
"""


@pytest.fixture(scope="module")
def torchscript_model(one_image, model_dir, tmp_path_factory):
    """The trained model as TorchScript model.pt alone: what the image's defaults serve."""
    root = tmp_path_factory.mktemp("torchscript")
    scripted, tool = root / "scripted", root / "tool"
    write_tree(tool, {"to_torchscript.py": TO_TORCHSCRIPT})  # torch.jit.script reads the source
    scripted.mkdir()
    code, logs = run_command(one_image, ["python", "/tool/to_torchscript.py"],
                             volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"},
                                      str(tool): {"bind": "/tool", "mode": "ro"},
                                      str(scripted): {"bind": "/out", "mode": "rw"}},
                             env={"PYTHONPATH": "/opt/ml/model/code"})
    assert code == 0, logs
    return scripted


def test_a_torchscript_model_pt_serves_with_no_inference_script(one_image, torchscript_model, digits):
    images, labels = digits[1]
    with ServingContainer(one_image, torchscript_model) as s:
        s.wait_ready(timeout_s=120)
        status, body, _ = s.request("POST", "/invocations", encode(images, NPY), {"Content-Type": NPY})
        assert status == 200, body[:500]
        assert (np.load(io.BytesIO(body)).argmax(axis=1) == labels).mean() >= 0.9
        assert "model_fn: image default" in s.logs_once("model_fn: image default")


def test_torchscript_models_serve_side_by_side_on_a_multi_model_endpoint(one_image, torchscript_model, digits,
                                                                          tmp_path):
    """The image's defaults for each model of a multi-model endpoint; each answers as it would alone."""
    images, labels = digits[1]
    for name in ("digits-a", "digits-b"):
        shutil.copytree(torchscript_model, tmp_path / name / "model")
    with MultiModelEndpoint(one_image, tmp_path, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as mme:
        mme.wait_ready()
        answers = []
        for name in ("digits-a", "digits-b"):
            assert mme.load(name)[0] == 200
            status, body, _ = mme.invoke(name, encode(images, NPY), NPY, {"Accept": NPY})
            assert status == 200, body[:500]
            answers.append(np.load(io.BytesIO(body)))
        assert (answers[0].argmax(axis=1) == labels).mean() >= 0.9
        assert np.allclose(answers[0], answers[1])
        assert mme.logs_once("model_fn: image default", count=2).count("model_fn: image default") == 2


@pytest.mark.expect_log_errors("the failure under test")
def test_a_model_folder_without_model_pt_or_script_stops_the_server_saying_what_to_do(one_image, tmp_path):
    write_tree(tmp_path / "model", {"weights.bin": "not a model"})
    with ServingContainer(one_image, tmp_path / "model") as s:
        assert s.tracked.exit_code(120) != 0
        assert "Exactly one .pth or .pt file is required for PyTorch models: [] in /opt/ml/model" in s.logs()


def test_without_model_pt_the_only_pth_file_serves(one_image, torchscript_model, digits, tmp_path):
    """AWS's default model_fn: model.pt, else the one .pt or .pth file in the model."""
    write_tree(tmp_path / "model", {"digits.pth": torchscript_model / "model.pt"})
    with ServingContainer(one_image, tmp_path / "model", env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as s:
        s.wait_ready(timeout_s=120)
        status, body, _ = s.request("POST", "/invocations", encode(digits[1][0][:2], CSV), {"Content-Type": CSV})
        assert status == 200, body[:300]


def test_sagemaker_bind_to_port_moves_the_server(one_image, model_dir, digits):
    env = {"SAGEMAKER_PROGRAM": "mnist.py", "SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    with ServingContainer(one_image, model_dir, env=env, container_port=9090) as s:
        s.wait_ready(timeout_s=120)
        assert s.request("POST", "/invocations", encode(digits[1][0][:2], CSV), {"Content-Type": CSV})[0] == 200
        assert "on port 9090" in s.logs()


def test_sigterm_stops_serve_cleanly(server_for_stop):
    assert server_for_stop.stop() == 0, server_for_stop.logs()
    assert "Shutting down: Master" in server_for_stop.logs()


@pytest.fixture
def server_for_stop(one_image, model_dir):
    with ServingContainer(one_image, model_dir, env={"SAGEMAKER_PROGRAM": "mnist.py"}) as s:
        s.wait_ready(timeout_s=120)
        yield s
