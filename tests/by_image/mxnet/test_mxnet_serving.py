"""mxnet: `serve` over real HTTP, with the trained MNIST model, as batch transform drives it."""

import json
import shutil
import time

import numpy as np
import pytest

from smimages.testing.harness import SERVERLESS, ServingContainer, write_tree
from smimages.testing.multi_model import MultiModelEndpoint

CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}


@pytest.fixture(scope="module")
def server(image, trained):
    """As a serverless endpoint places it (2 GB, no GPU)."""
    with ServingContainer(image, trained[1], env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, **SERVERLESS) as s:
        s.wait_ready()
        yield s


def csv_records(images):
    """Each record with its trailing newline, as SplitType=Line hands them over."""
    return [",".join(str(int(v)) for v in row) + "\n" for row in images]


def batch_transform(server, records, strategy):
    """What a batch transform job does: /ping, /execution-parameters, then MultiRecord batches
    filled up to MaxPayloadInMB (or one record a request), AssembleWith=Line adding a newline
    after every response. Returns the output file's lines."""
    assert server.ping() == 200
    status, body, _ = server.request("GET", "/execution-parameters")
    assert status == 200
    limit = json.loads(body)["MaxPayloadInMB"] * 1024 * 1024
    batches, current = [], ""
    for record in records:
        if strategy == "SingleRecord" or (current and len(current) + len(record) > limit):
            batches.append(current) if current else None
            current = ""
        current += record
    batches.append(current)
    output = ""
    for batch in batches:
        status, body, headers = server.request("POST", "/invocations", batch.encode(), CSV)
        assert status == 200, body[:300]
        assert headers["content-type"] == "text/csv"
        output += body.decode() + "\n"
    return output.splitlines()


@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
def test_1000_csv_records_come_back_as_1000_lines_of_probabilities_in_order(server, mnist, strategy):
    _, images, labels = mnist
    lines = batch_transform(server, csv_records(images[:1000]), strategy)
    assert len(lines) == 1000
    probabilities = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert probabilities.shape == (1000, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    accuracy = float((probabilities.argmax(axis=1) == labels[:1000]).mean())
    assert accuracy >= 0.9, accuracy


def test_json_and_npy_are_answered_as_accept_asks(server, mnist):
    images = mnist[1][:3].astype(np.float32)
    status, body, headers = server.request("POST", "/invocations", json.dumps(images.tolist()).encode(),
                                           {"Content-Type": "application/json"})
    assert status == 200 and headers["content-type"] == "application/json"
    from_json = np.array(json.loads(body))
    import io

    buffer = io.BytesIO()
    np.save(buffer, images)
    status, body, headers = server.request("POST", "/invocations", buffer.getvalue(),
                                           {"content-type": "application/x-npy", "Accept": "text/csv"})
    assert status == 200 and headers["content-type"] == "text/csv"
    from_npy = np.array([[float(v) for v in line.split(",")] for line in body.decode().splitlines()])
    assert from_json.shape == (3, 10) and np.allclose(from_json, from_npy, atol=1e-5)


@pytest.mark.parametrize("headers, body, status, reason", [
    ({"Content-Type": "image/png"}, b"1,2", 415, "unsupported Content-Type 'image/png'"),
    ({"Content-Type": "text/csv", "Accept": "image/png"}, "784", 415, "cannot answer with Accept 'image/png'"),
    ({"Content-Type": "application/json"}, b"[1, 2", 400, "the body is not valid JSON"),
    ({"Content-Type": "text/csv"}, b"1,2,x\n", 400, "CSV line 1: 'x' is not a number"),
    ({"Content-Type": "text/csv"}, b"1,2,3\n", 400, "each record must hold 784 pixel values"),
])
def test_bad_requests_answer_with_their_status_and_reason_and_the_server_keeps_serving(
        server, mnist, headers, body, status, reason):
    if body == "784":
        body = csv_records(mnist[1][:1])[0].encode()
    got, text, _ = server.request("POST", "/invocations", body, headers)
    assert (got, text.decode().splitlines()[0][:len(reason)]) == (status, reason)
    assert server.ping() == 200
    assert server.request("POST", "/invocations", csv_records(mnist[1][:1])[0].encode(), CSV)[0] == 200


def test_a_body_over_the_payload_limit_is_a_413_without_being_read(server):
    answer = server.post_head_of_a_huge_body(100 * 1024 * 1024)
    assert answer.startswith("HTTP/1.1 413 ")
    assert "over the limit of 6291456 bytes" in answer
    assert server.ping() == 200


SCRIPTED = """
import os, time
from sm_mxnet.serving_defaults import predict_fn as mxnet_predict

def model_fn(model_dir):
    from sm_mxnet.serving_defaults import model_fn as mxnet_model_fn
    time.sleep(float(os.environ.get("TEST_MODEL_FN_SLEEP", "0")))
    print("model_fn finished in", os.getpid(), flush=True)
    return mxnet_model_fn(model_dir)

def predict_fn(data, model):
    if data[0, 0] == 7:
        raise ValueError("pixel 0 may not be 7\\nsecond line of the message")
    if data[0, 0] == 9:
        os._exit(1)  # a crashing worker
    if data[0, 0] == 5:
        time.sleep(30)  # longer than the timeout
    return mxnet_predict(data, model)
"""


@pytest.fixture(scope="module")
def scripted_model(trained, tmp_path_factory):
    """The trained model without its code/, and a script in a separate folder that uses the
    image's MXNet defaults (model_fn, predict_fn) with the generic codecs."""
    root = tmp_path_factory.mktemp("scripted")
    shutil.copytree(trained[1], root / "model", ignore=shutil.ignore_patterns("code"))
    write_tree(root / "code", {"scripted.py": SCRIPTED})
    return root


def scripted_server(image, root, **env):
    return ServingContainer(image, root / "model", volumes={str(root / "code"): {"bind": "/opt/ml/code", "mode": "ro"}},
                            env={"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/code", "SAGEMAKER_PROGRAM": "scripted.py",
                                 "SAGEMAKER_MODEL_SERVER_WORKERS": "2", **env})


def record(first_pixel, mnist):
    pixels = mnist[1][0].astype(int).copy()
    pixels[0] = first_pixel
    return (",".join(map(str, pixels)) + "\n").encode()


@pytest.mark.expect_log_errors("the failure under test")
def test_an_exception_in_user_code_is_a_500_with_its_first_line(image, scripted_model, mnist):
    with scripted_server(image, scripted_model) as s:
        s.wait_ready()
        status, body, _ = s.request("POST", "/invocations", record(7, mnist), CSV)
        assert (status, body.decode()) == (500, "ValueError: pixel 0 may not be 7\n")
        logs = s.logs_once("pixel 0 may not be 7")
        assert "Traceback" in logs and "pixel 0 may not be 7" in logs  # logged in full
        assert s.ping() == 200
        assert s.request("POST", "/invocations", record(0, mnist), CSV)[0] == 200


@pytest.mark.expect_log_errors("the failure under test")
def test_model_fn_runs_once_per_worker_and_a_crashed_worker_is_replaced(image, scripted_model, mnist):
    with scripted_server(image, scripted_model, SAGEMAKER_MODEL_SERVER_WORKERS="3") as s:
        s.wait_ready()
        assert s.logs_once("model_fn finished", count=3).count("model_fn finished") == 3
        status, body, _ = s.request("POST", "/invocations", record(9, mnist), CSV)  # the worker dies mid-request
        assert (status, body.decode()) == (502, "the model server's worker ended before it answered "
                                                "(see the server log); it is replaced\n")
        assert s.logs_once("model_fn finished", count=4).count("model_fn finished") == 4  # a new worker, with its own model
        for _ in range(6):
            assert s.request("POST", "/invocations", record(0, mnist), CSV)[0] == 200


@pytest.mark.expect_log_errors("the failure under test")
def test_a_request_over_the_timeout_answers_504_and_the_server_goes_on(image, scripted_model, mnist):
    with scripted_server(image, scripted_model, SAGEMAKER_MODEL_SERVER_TIMEOUT="2",
                         SAGEMAKER_MODEL_SERVER_WORKERS="1") as s:
        s.wait_ready()
        status, body, _ = s.request("POST", "/invocations", record(5, mnist), CSV, timeout_s=20)
        assert (status, body.decode()) == (504, "the model did not answer within 2 s "
                                                "(SAGEMAKER_MODEL_SERVER_TIMEOUT): this worker is replaced\n")
        s.wait_ready(timeout_s=30)
        assert s.request("POST", "/invocations", record(0, mnist), CSV)[0] == 200


def test_ping_says_200_only_once_the_model_answers(image, scripted_model, mnist):
    with scripted_server(image, scripted_model, TEST_MODEL_FN_SLEEP="3", SAGEMAKER_MODEL_SERVER_WORKERS="1") as s:
        early = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = s.ping()
            if status == 200:
                break
            early.add(status)
            time.sleep(0.05)
        assert "model_fn finished" in s.logs_once("model_fn finished")
        assert s.request("POST", "/invocations", record(0, mnist), CSV)[0] == 200
        assert early <= {None, 503}


def test_the_image_defaults_serve_a_saved_model_with_no_script(image, scripted_model, server, mnist):
    """model_fn and predict_fn from the image, CSV in and out from the shared codecs."""
    body = "".join(csv_records(mnist[1][:5])).encode()
    with ServingContainer(image, scripted_model / "model") as s:
        s.wait_ready()
        status, defaults, _ = s.request("POST", "/invocations", body, CSV)
        assert status == 200
        assert "model_fn: image default" in s.logs_once("model_fn: image default")
    _, example, _ = server.request("POST", "/invocations", body, CSV)
    assert np.allclose(np.loadtxt(defaults.decode().splitlines(), delimiter=","),
                       np.loadtxt(example.decode().splitlines(), delimiter=","), atol=1e-5)


def test_models_serve_side_by_side_on_a_multi_model_endpoint(image, trained, scripted_model, mnist, tmp_path):
    """The example's own script for one model, the image's defaults for the other: both answer as
    the single-model server does."""
    shutil.copytree(trained[1], tmp_path / "with-script" / "model")
    shutil.copytree(scripted_model / "model", tmp_path / "defaults" / "model")
    body = "".join(csv_records(mnist[1][:50])).encode()
    with MultiModelEndpoint(image, tmp_path, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as mme:
        mme.wait_ready()
        answers = []
        for name in ("with-script", "defaults"):
            assert mme.load(name)[0] == 200
            status, answer, _ = mme.invoke(name, body, "text/csv", {"Accept": "text/csv"})
            assert status == 200, answer[:300]
            answers.append(np.loadtxt(answer.decode().splitlines(), delimiter=","))
    assert (answers[0].argmax(axis=1) == mnist[2][:50]).mean() >= 0.9
    assert np.allclose(answers[0], answers[1], atol=1e-5)


def test_execution_parameters_follow_the_environment(image, scripted_model):
    env = {"SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
           "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    with ServingContainer(image, scripted_model / "model", env=env) as s:
        s.wait_ready()
        status, body, headers = s.request("GET", "/execution-parameters")
        assert (status, headers["content-type"]) == (200, "application/json")
        assert json.loads(body) == {"MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 2}
        assert "over the limit of 2097152 bytes" in s.post_head_of_a_huge_body(3 * 1024 * 1024)


def test_sigterm_stops_serve_cleanly(image, trained):
    """MXNet's engine threads make the interpreter's teardown slow after a fork: the workers leave
    without it (os._exit), so the stop is quick (`make bench-serving`: docker stop) and clean."""
    with ServingContainer(image, trained[1]) as s:
        s.wait_ready()
        assert s.stop() == 0, s.logs()
        assert "Shutting down: Master" in s.logs()


def test_sigterm_while_model_fn_is_still_loading_stops_at_once(image, tmp_path):
    """A worker still in model_fn leaves on the stop: no SIGKILL a second later, no error line."""
    slow = "import time\n\ndef model_fn(d):\n    print('loading', flush=True)\n    time.sleep(60)\n"
    write_tree(tmp_path / "model" / "code", {"inference.py": slow})
    with ServingContainer(image, tmp_path / "model") as s:
        deadline = time.monotonic() + 60
        while "loading" not in s.logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "loading" in s.logs()
        assert s.stop() == 0, s.logs()
        assert "SIGTERM while loading the model: stopped" in s.logs()


@pytest.mark.parametrize("env, cause", [
    ({"SAGEMAKER_PROGRAM": "missing.py"}, "the inference script /opt/ml/model/code/missing.py does not exist"),
    ({"SAGEMAKER_SUBMIT_DIRECTORY": "ftp://host/sourcedir.tar.gz"},
     "SAGEMAKER_SUBMIT_DIRECTORY=ftp://host/sourcedir.tar.gz: only a folder, a .tar.gz path, file:// or s3://"),
])
@pytest.mark.expect_log_errors("the failure under test")
def test_a_server_that_cannot_work_exits_at_once_saying_why(image, trained, env, cause):
    with ServingContainer(image, trained[1], env=env) as s:
        code = s.tracked.exit_code(30)
        assert code == 2
        assert f"serve cannot start: {cause}" in s.logs()


@pytest.mark.expect_log_errors("the failure under test")
def test_a_failing_model_fn_stops_the_server_with_its_cause(image, tmp_path):
    write_tree(tmp_path / "model" / "code", {"inference.py": "def model_fn(d):\n    raise OSError('weights.bin is corrupt')\n"})
    with ServingContainer(image, tmp_path / "model") as s:
        assert s.tracked.exit_code(60) == 3  # gunicorn's "worker failed to boot"
        assert "model_fn failed: OSError: weights.bin is corrupt" in s.logs()
