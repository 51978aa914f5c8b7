"""The `context` argument, as scripts written for AWS's MMS- and TorchServe-based images take it:
detected from each hook's signature, carrying the request's headers (custom attributes among
them) and the worker's GPU, and custom attributes set by a handler sent back."""

import io
import types

import pytest
from sm_entrypoint.serving import handlers
from sm_entrypoint.serving.app import ModelState, make_app
from sm_entrypoint.serving.context import CUSTOM_ATTRIBUTES, Context, gpu_for, visible_gpus
from sm_entrypoint.serving.settings import ServingSettings


def module(**hooks):
    return types.SimpleNamespace(**hooks)


def invoke(user, headers, body=b"1,2", gpu_id=None):
    """POST /invocations through the WSGI app: (status, response headers, body)."""
    hooks = handlers.resolve(user)
    state = ModelState()
    state.gpu_id = gpu_id
    state.model, state.loaded = hooks.load_model("/opt/ml/model", Context("/opt/ml/model", gpu_id)), True
    app = make_app(ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}), hooks, state)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "text/csv"}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    answer = {}

    def start_response(status, response_headers):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    answer["body"] = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], answer["body"]


class TorchServeStyle:
    """sagemaker-pytorch-inference 2.x's signatures, every hook taking the context."""

    @staticmethod
    def model_fn(model_dir, context):
        return {"dir": model_dir, "gpu": context.system_properties["gpu_id"]}

    @staticmethod
    def input_fn(data, content_type, context):
        attributes = context.get_request_header(0, CUSTOM_ATTRIBUTES)
        return data.decode(), content_type, attributes

    @staticmethod
    def predict_fn(data, model, context):
        return {"data": data, "model": model}

    @staticmethod
    def output_fn(prediction, accept, context):
        context.set_response_header(0, CUSTOM_ATTRIBUTES, "answered=" + str(prediction["data"][2]))
        return repr(prediction), accept


def test_every_hook_that_takes_a_context_gets_one_and_custom_attributes_come_back():
    status, headers, body = invoke(TorchServeStyle, {"X-Amzn-SageMaker-Custom-Attributes": "trace=abc"}, gpu_id=1)
    assert status == 200
    assert body.decode() == repr({"data": ("1,2", "text/csv", "trace=abc"), "model": {"dir": "/opt/ml/model", "gpu": 1}})
    assert headers[CUSTOM_ATTRIBUTES] == "answered=trace=abc"


def test_mms_style_request_properties_and_the_two_argument_signatures_still_work():
    def transform_fn(model, body, content_type, accept, context):
        properties = context.request_processor[0].get_request_properties()
        return f"{properties.get('x-amzn-sagemaker-custom-attributes')}|{properties['Content-Type']}", "text/plain"

    status, headers, body = invoke(module(model_fn=lambda d: None, transform_fn=transform_fn),
                                   {"X-Amzn-SageMaker-Custom-Attributes": "a=1"})
    assert (status, body) == (200, b"a=1|text/csv") and CUSTOM_ATTRIBUTES not in headers
    plain = module(model_fn=lambda d: 3, input_fn=lambda b, c: int(b.split(b",")[0]), predict_fn=lambda x, m: x * m,
                   output_fn=lambda p, a: (str(p), "text/plain"))
    assert invoke(plain, {})[2] == b"3"


def test_a_response_header_set_twice_in_another_case_is_sent_once():
    context = Context("/m")
    context.set_response_header(0, "x-amzn-sagemaker-custom-attributes", "first")
    context.set_response_header(0, CUSTOM_ATTRIBUTES, "second")
    assert context.extra_response_headers() == [("x-amzn-sagemaker-custom-attributes", "second")]


def test_a_context_with_a_default_counts_and_model_fn_sees_the_model_dir():
    seen = {}

    def model_fn(model_dir, context=None):
        seen.update(context.system_properties)
        return None

    handlers.resolve(module(model_fn=model_fn, transform_fn=lambda *a: b"")).load_model("/m", Context("/m", None))
    assert seen["model_dir"] == "/m" and seen["gpu_id"] is None


@pytest.mark.parametrize("visible, gpus_seen, workers, placed", [
    (None, 4, 6, [0, 1, 2, 3, 0, 1]),  # every GPU the driver sees, round-robin
    ("2,3", 4, 3, [0, 1, 0]),  # indices among CUDA_VISIBLE_DEVICES, as torch numbers them
    ("", 4, 2, [None, None]),  # none visible
    ("-1", 4, 1, [None]),
    (None, 0, 2, [None, None]),  # no driver: CPU
])
def test_workers_are_spread_over_the_visible_gpus_round_robin(tmp_path, visible, gpus_seen, workers, placed):
    for i in range(gpus_seen):
        (tmp_path / f"0000:0{i}:00.0").mkdir()
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert [gpu_for(n, env, str(tmp_path)) for n in range(workers)] == placed


def test_without_a_driver_or_cuda_visible_devices_there_is_no_gpu(tmp_path):
    assert visible_gpus({}, str(tmp_path / "no-driver")) == 0 and gpu_for(0, {}, str(tmp_path / "no-driver")) is None
