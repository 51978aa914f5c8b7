"""The serving front end (nginx before the gunicorn workers), through mxnet's `serve`: /ping
answers within SageMaker's 2 s whatever the workers do, slow clients never hold a worker, and a
front end that dies takes the server down with it."""

import threading
import time

import pytest

from smimages.testing.harness import ServingContainer, write_tree

CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}
PING_LIMIT_S = 2  # SageMaker takes an instance whose /ping takes longer out of service
SCRIPT = """
import os, time

def model_fn(model_dir):
    time.sleep(float(os.environ.get("TEST_MODEL_FN_SLEEP", "0")))
    print("model loaded in", os.getpid(), flush=True)
    return lambda data: data * 2

def predict_fn(data, model):
    if data[0, 0] == 3:
        print("busy in", os.getpid(), flush=True)
        time.sleep(10)
    if data[0, 0] == 9:
        os._exit(1)  # the worker dies mid-request
    return model(data)
"""


@pytest.fixture
def model_dir(tmp_path):
    write_tree(tmp_path / "model" / "code", {"inference.py": SCRIPT})
    return tmp_path / "model"


def ping_in_time(server):
    """The /ping status, with SageMaker's own limit as the client's timeout."""
    return server.request("GET", "/ping", timeout_s=PING_LIMIT_S)[0]


def in_background(fn, *args):
    results = []
    thread = threading.Thread(target=lambda: results.append(fn(*args)), daemon=True)
    thread.start()
    return thread, results


def test_ping_answers_while_every_worker_is_inside_a_10_s_request(image, model_dir):
    with ServingContainer(image, model_dir, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}) as s:
        s.wait_ready()
        slow = [in_background(s.request, "POST", "/invocations", b"3,1\n", CSV) for _ in range(2)]
        assert s.logs_once("busy in", count=2).count("busy in") == 2  # both workers are taken
        for _ in range(3):
            assert ping_in_time(s) == 200
        for thread, results in slow:
            thread.join(30)
            assert results[0][:2] == (200, b"6.0,2.0")  # the slow requests are answered too


def test_ping_and_requests_are_answered_while_16_clients_hold_half_sent_bodies(image, model_dir):
    with ServingContainer(image, model_dir, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}) as s:
        s.wait_ready()
        stalled = [s.half_sent_post(100_000, 100) for _ in range(16)]
        try:
            time.sleep(1)  # every stalled body has reached the server
            assert ping_in_time(s) == 200
            # The front end holds the partial bodies; no worker waits for them.
            assert s.request("POST", "/invocations", b"1,2\n", CSV, timeout_s=5)[:2] == (200, b"2.0,4.0")
        finally:
            for sock in stalled:
                sock.close()
        assert ping_in_time(s) == 200


@pytest.mark.expect_log_errors("the failure under test")
def test_ping_answers_while_the_only_worker_is_replaced(image, model_dir):
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "TEST_MODEL_FN_SLEEP": "4"}
    with ServingContainer(image, model_dir, env=env) as s:
        s.wait_ready(timeout_s=60)
        status, body, _ = s.request("POST", "/invocations", b"9,1\n", CSV)
        assert status == 502 and b"ended before it answered" in body
        assert ping_in_time(s) == 200  # the new worker is still inside its 4 s model_fn
        assert s.logs().count("model loaded in") == 1
        assert s.request("POST", "/invocations", b"1,1\n", CSV, timeout_s=30)[:2] == (200, b"2.0,2.0")
        assert s.logs_once("model loaded in", count=2).count("model loaded in") == 2


@pytest.mark.expect_log_errors("the failure under test")
def test_a_front_end_that_dies_stops_the_server_saying_so(image, model_dir):
    with ServingContainer(image, model_dir, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as s:
        s.wait_ready()
        s.container.exec_run(["pkill", "-KILL", "-f", "nginx: master"])
        assert s.tracked.exit_code(30) == 1
        assert "the front end (nginx) exited" in s.logs()
