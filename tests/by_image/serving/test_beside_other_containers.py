"""Multi-container endpoints and serial inference pipelines: SageMaker runs several containers in
one network namespace, each on its own SAGEMAKER_BIND_TO_PORT, every other port it opens inside
SAGEMAKER_SAFE_PORT_RANGE, and passes its placement headers on. The server is framework-free:
the containers run once, on one image; the label is checked on each serving image."""

import json

import docker
import pytest

from smimages.catalog import BIND_TO_PORT_LABEL
from smimages.testing.harness import ServingContainer, write_tree
from smimages.testing.multi_model import MultiModelEndpoint, write_scaling_model

PLACEMENT_HEADERS = {"X-Amzn-SageMaker-Target-Container-Hostname": "second",
                     "X-Amzn-SageMaker-Inference-Component": "ic-doubler",
                     "X-Amzn-SageMaker-Inference-Id": "req-42"}
# The pipeline's first container: doubles each number, and says which placement headers it saw.
DOUBLER = """\
import json

def model_fn(model_dir):
    return 2

def transform_fn(model, body, content_type, accept, context):
    seen = {name: context.get_request_header(0, name) for name in (
        "X-Amzn-SageMaker-Target-Container-Hostname", "X-Amzn-SageMaker-Inference-Component",
        "X-Amzn-SageMaker-Inference-Id")}
    return json.dumps({"out": [x * model for x in json.loads(body)], "seen": seen}), "application/json"
"""
# The second: adds one to each number of the first's answer.
ADDER = """\
import json

def model_fn(model_dir):
    return 1

def transform_fn(model, body, content_type, accept):
    return json.dumps([x + model for x in json.loads(body)["out"]]), "application/json"
"""
JSON = {"Content-Type": "application/json"}
SAFE = "9000-9009"


def test_the_image_accepts_a_bind_port(image):
    assert docker.from_env().images.get(image).labels.get(BIND_TO_PORT_LABEL) == "true"


def listening_ports(container):
    """The TCP ports listened on in the container's network namespace (/proc/net/tcp{,6})."""
    code, out = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    assert code == 0, out
    fields = [line.split() for line in out.decode().splitlines()[1:]]
    return {int(f[1].rsplit(":", 1)[1], 16) for f in fields if len(f) > 3 and f[3] == "0A"}


def test_two_containers_in_one_network_each_on_its_bind_port_make_a_pipeline(one_image, tmp_path):
    write_tree(tmp_path / "first" / "code", {"inference.py": DOUBLER})
    write_tree(tmp_path / "second" / "code", {"inference.py": ADDER})
    write_scaling_model(tmp_path / "models", "m", 3)
    one_worker = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "SAGEMAKER_SAFE_PORT_RANGE": SAFE}
    with ServingContainer(one_image, tmp_path / "first", container_port=8081, more_ports=(8082, 8083),
                          env={**one_worker, "SAGEMAKER_BIND_TO_PORT": "8081"}) as first, \
            ServingContainer(one_image, tmp_path / "second", network_mode=f"container:{first.container.id}",
                             env={**one_worker, "SAGEMAKER_BIND_TO_PORT": "8082"}) as second, \
            MultiModelEndpoint(one_image, tmp_path / "models", network_mode=f"container:{first.container.id}",
                               env={**one_worker, "SAGEMAKER_BIND_TO_PORT": "8083"}) as third:
        second_port, third_port = first.port_of(8082), first.port_of(8083)
        first.wait_ready()
        second.wait_ready(port=second_port)
        third.wait_ready(port=third_port)

        status, middle, _ = first.request("POST", "/invocations", b"[1, 2.5]", {**JSON, **PLACEMENT_HEADERS})
        assert status == 200 and json.loads(middle)["seen"] == PLACEMENT_HEADERS
        assert first.request("POST", "/invocations", b"[1, 2.5]", JSON)[1].startswith(b'{"out": [2, 5.0]')
        status, answer, _ = second.request("POST", "/invocations", middle, JSON, port=second_port)
        assert (status, json.loads(answer)) == (200, [3, 6.0])  # (x * 2) + 1: the composition

        assert third.request("POST", "/models", json.dumps({"model_name": "m", "url": "/opt/ml/models/m/model"}).encode(),
                             JSON, port=third_port)[0] == 200
        ports = listening_ports(first.container)
        low, high = map(int, SAFE.split("-"))
        assert {8081, 8082, 8083} <= ports
        assert all(p in (8081, 8082, 8083) or low <= p <= high for p in ports), ports


@pytest.mark.expect_log_errors("a range too small, on purpose")
def test_a_safe_port_range_without_room_stops_the_server_saying_why(one_image, tmp_path):
    env = {"SAGEMAKER_SAFE_PORT_RANGE": "8080-8080"}
    with MultiModelEndpoint(one_image, tmp_path, env=env) as mme:
        assert mme.tracked.exit_code(60) == 2
        assert ("serve cannot start: SAGEMAKER_SAFE_PORT_RANGE=8080-8080 has no free port for the model manager "
                "besides SAGEMAKER_BIND_TO_PORT=8080") in mme.logs()
