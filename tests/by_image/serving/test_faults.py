"""Faults stay contained: a worker that ends inside a request, whatever its exit code, is replaced
and the server keeps serving; requests in flight when a multi-model endpoint unloads their model
finish (200) or find it gone (404), never 502. The server is framework-free: once."""

import http.client
import threading
import time

import pytest

from smimages.testing.harness import ServingContainer, write_tree
from smimages.testing.multi_model import TARGET_MODEL, MultiModelEndpoint, write_scaling_model

EXITS = """\
import os

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    how, code = body.decode().split()
    if how == "os._exit":
        os._exit(int(code))
    return f"worker {os.getpid()}"
"""
TEXT = {"Content-Type": "text/plain"}


@pytest.mark.expect_log_errors("workers that exit on purpose")
def test_a_worker_ending_inside_a_request_with_any_code_is_replaced(one_image, tmp_path):
    """gunicorn reserves 3 and 4 for a worker that failed to boot: they used to stop the server."""
    write_tree(tmp_path / "model", {"code/inference.py": EXITS})
    with ServingContainer(one_image, tmp_path / "model", env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as s:
        s.wait_ready()
        for request in (b"os._exit 3", b"os._exit 4", b"os._exit 1"):
            assert s.request("POST", "/invocations", request, TEXT)[0] == 502, request
            status, body, _ = s.request("POST", "/invocations", b"answer 0", TEXT)
            assert status == 200 and body.startswith(b"worker "), (request, body)
        assert s.ping() == 200 and "Worker failed to boot" not in s.logs()


def test_requests_in_flight_when_a_model_is_unloaded_get_200_or_404(one_image, tmp_path):
    """8 clients invoking a model while the platform unloads and loads it again, 5 times."""
    write_scaling_model(tmp_path, "busy", 2)
    with MultiModelEndpoint(one_image, tmp_path, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}) as mme:
        mme.wait_ready()
        statuses, stop = [], threading.Event()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", mme.port, timeout=60)
            while not stop.is_set():
                conn.request("POST", "/models/busy/invoke", b"[1, 2]",
                             {"Content-Type": "application/json", TARGET_MODEL: "busy.tar.gz"})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                assert mme.load("busy")[0] == 200
                time.sleep(1)
                assert mme.unload("busy")[0] == 200
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        counts = {s: statuses.count(s) for s in set(statuses)}
        assert set(counts) == {200, 404} and counts[200] > 100, counts
