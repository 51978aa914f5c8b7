"""Asynchronous endpoints: a request may run as long as SAGEMAKER_MODEL_SERVER_TIMEOUT allows (up
to an hour), through the front end and the workers, and its answer carries Content-Length (the
platform refuses a chunked one). Alone in its file: its 90 s request runs beside other files."""

from smimages.testing.harness import ServingContainer, write_tree

SLOW = """\
import time

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    time.sleep(float(body))
    return f"slept {float(body):.0f} s"
"""


def test_a_90_s_request_under_a_120_s_timeout_answers_200_with_content_length(one_image, tmp_path):
    write_tree(tmp_path / "model", {"code/inference.py": SLOW})
    env = {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "120", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    with ServingContainer(one_image, tmp_path / "model", env=env) as s:
        s.wait_ready()
        status, body, headers = s.request("POST", "/invocations", b"90", {"Content-Type": "text/plain"}, timeout_s=150)
        assert (status, body) == (200, b"slept 90 s")
        assert headers["content-length"] == "10" and "transfer-encoding" not in headers
