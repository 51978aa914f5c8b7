"""mxnet (the smaller serving image; the server is the shared one): a script written for AWS's
TorchServe-based images, every hook taking `context`, runs unchanged over real HTTP; the custom
attributes a caller sends reach it, and those it sets come back on the response."""

import json

from smimages.testing.harness import ServingContainer, write_tree

SCRIPT = """
import json

def model_fn(model_dir, context):
    return {"gpu": context.system_properties["gpu_id"], "dir": context.system_properties["model_dir"]}

def input_fn(data, content_type, context):
    return json.loads(data), context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes")

def predict_fn(data, model, context):
    values, attributes = data
    return {"sum": sum(values), "attributes": attributes, "model": model}

def output_fn(prediction, accept, context):
    context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "seen=" + str(prediction["attributes"]))
    return json.dumps(prediction), "application/json"
"""


def test_a_context_script_runs_unchanged_and_custom_attributes_go_both_ways(image, tmp_path):
    write_tree(tmp_path / "model", {"code/inference.py": SCRIPT})
    with ServingContainer(image, tmp_path / "model") as server:
        server.wait_ready()
        status, body, headers = server.request("POST", "/invocations", b"[1, 2, 3]", {
            "Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "trace_id=42"})
        assert status == 200, body
        assert json.loads(body) == {"sum": 6, "attributes": "trace_id=42", "model": {"gpu": None, "dir": "/opt/ml/model"}}
        assert headers["x-amzn-sagemaker-custom-attributes"] == "seen=trace_id=42"
        status, body, headers = server.request("POST", "/invocations", b"[1]", {"Content-Type": "application/json"})
        assert json.loads(body)["attributes"] is None and headers["x-amzn-sagemaker-custom-attributes"] == "seen=None"
