"""The `context` a handler may take as its last argument, as AWS's serving images pass it: the
object of sagemaker-inference and MMS (`system_properties` with `model_dir` and `gpu_id`,
`request_processor[i].get_request_properties()` for the request's headers) with TorchServe's
accessors on it (`get_request_header(i, name)`, `get_all_request_header(i)`,
`set_response_header(i, name, value)`), so scripts written for either run unchanged. There is one
request per call here, so `i` is always 0.

A handler that sets `X-Amzn-SageMaker-Custom-Attributes` on the response has it sent back, as
SageMaker passes it on to the caller."""

import os

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
NVIDIA_GPUS = "/proc/driver/nvidia/gpus"  # one folder per GPU the driver sees


class Headers(dict):
    """Header names as sent; looked up whatever their case, as HTTP header names are."""

    def _key(self, name):
        lower = name.lower()
        return next((k for k in self if k.lower() == lower), name)

    def __getitem__(self, name):
        return super().__getitem__(self._key(name))

    def __setitem__(self, name, value):  # set again in another case: still one header
        super().__setitem__(self._key(name), value)

    def __contains__(self, name):
        return super().__contains__(self._key(name))

    def get(self, name, default=None):
        return super().get(self._key(name), default)


def request_headers(environ):
    """The request's headers from a WSGI environ, named as HTTP writes them (Content-Type, ...)."""
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers["-".join(part.capitalize() for part in key[5:].split("_"))] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    return headers


class RequestProcessor:
    """sagemaker-inference's per-request object: the request's headers, and what to answer with."""

    def __init__(self, headers=None):
        self._request = Headers(headers or {})
        self._response = Headers()

    def get_request_property(self, name):
        return self._request.get(name)

    def get_request_properties(self):
        return self._request

    def add_response_property(self, name, value):
        self._response[name] = str(value)

    def get_response_headers(self):
        return self._response


class Context:
    def __init__(self, model_dir, gpu_id=None, headers=None):
        self.system_properties = {"model_dir": model_dir, "gpu_id": gpu_id, "server_name": "sm-images"}
        self.request_processor = [RequestProcessor(headers)]
        self.model_name = "model"

    def get_request_header(self, idx, name):
        return self.request_processor[idx].get_request_property(name)

    def get_all_request_header(self, idx):
        return self.request_processor[idx].get_request_properties()

    def set_response_header(self, idx, name, value):
        self.request_processor[idx].add_response_property(name, value)

    def get_response_headers(self, idx):
        return self.request_processor[idx].get_response_headers()

    def extra_response_headers(self):
        """What the handlers asked to send back, Content-Type and Content-Length aside."""
        return [(k, v) for k, v in self.get_response_headers(0).items()
                if k.lower() not in ("content-type", "content-length")]


def visible_gpus(env=None, gpu_dir=NVIDIA_GPUS):
    """How many GPUs a worker can use: those CUDA_VISIBLE_DEVICES names when it is set, else
    those the NVIDIA driver sees (none without a driver)."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        return len(os.listdir(gpu_dir))
    except OSError:
        return 0


def gpu_for(worker_number, env=None, gpu_dir=NVIDIA_GPUS):
    """The GPU (an index among the visible ones) of the worker numbered `worker_number`, round-robin
    as MMS and TorchServe place workers, so N workers use N GPUs; None without a GPU."""
    count = visible_gpus(env, gpu_dir)
    return worker_number % count if count else None
