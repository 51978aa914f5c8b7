"""The WSGI app without a server: routes, /ping before and after the model, and the payload
limit enforced before the body is read."""

import io
import json

from sm_entrypoint.serving import handlers
from sm_entrypoint.serving.app import ModelState, make_app
from sm_entrypoint.serving.settings import ServingSettings


class Unreadable(io.RawIOBase):
    def read(self, *_):
        raise AssertionError("the body was read")


def call(app, method, path, body=b"", headers=None, stream=None, length=True):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": stream or io.BytesIO(body)}
    if length:
        environ["CONTENT_LENGTH"] = str(len(body)) if isinstance(length, bool) else str(length)
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    answer = {}

    def start_response(status, response_headers):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    answer["body"] = b"".join(app(environ, start_response))
    return answer


def server(loaded=True, **env):
    settings = ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "2", **env})
    state = ModelState()
    hooks = handlers.resolve(type("user", (), {"model_fn": staticmethod(lambda d: (lambda x: x * 2))}))
    if loaded:
        state.model, state.loaded = hooks.load_model("/m"), True
    return make_app(settings, hooks, state)


def test_ping_is_503_until_the_model_is_loaded_then_200():
    assert call(server(loaded=False), "GET", "/ping")["status"] == 503
    assert call(server(loaded=False), "POST", "/invocations", b"1", {"Content-Type": "text/csv"})["status"] == 503
    assert call(server(), "GET", "/ping")["status"] == 200


def test_invocations_and_execution_parameters():
    got = call(server(), "POST", "/invocations", b"1,2\n3,4\n", {"Content-Type": "text/csv"})
    assert (got["status"], got["body"], got["headers"]["Content-Type"]) == (200, b"2.0,4.0\n6.0,8.0", "text/csv")
    got = call(server(SAGEMAKER_MAX_PAYLOAD_IN_MB="3"), "GET", "/execution-parameters")
    assert json.loads(got["body"]) == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD",
                                       "MaxPayloadInMB": 3}


def test_unknown_paths_and_methods():
    assert call(server(), "GET", "/nowhere")["status"] == 404
    assert call(server(), "GET", "/invocations")["status"] == 405


def test_a_declared_length_over_the_limit_is_a_413_without_reading_the_body():
    got = call(server(SAGEMAKER_MAX_PAYLOAD_IN_MB="1"), "POST", "/invocations", stream=Unreadable(),
               headers={"Content-Type": "text/csv"}, length=1024 * 1024 + 1)
    assert got["status"] == 413
    assert got["body"] == b"the body is 1048577 bytes, over the limit of 1048576 bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)\n"


def test_a_chunked_body_is_read_only_to_just_past_the_limit():
    stream = io.BytesIO(b"1," * (1024 * 1024))
    got = call(server(SAGEMAKER_MAX_PAYLOAD_IN_MB="1"), "POST", "/invocations", stream=stream,
               headers={"Content-Type": "text/csv"}, length=False)
    assert got["status"] == 413 and stream.tell() == 1024 * 1024 + 1


def streaming_server(transform_fn):
    settings = ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    state = ModelState()
    state.model, state.loaded = None, True
    hooks = handlers.resolve(type("user", (), {"model_fn": staticmethod(lambda d: None),
                                               "transform_fn": staticmethod(transform_fn)}))
    return make_app(settings, hooks, state)


def test_an_iterator_is_answered_without_content_length_one_item_a_chunk():
    app = streaming_server(lambda m, b, c, a: (f"piece {i}" for i in range(3)))
    answer = {}
    chunks = app({"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "wsgi.input": io.BytesIO(b""),
                  "CONTENT_TYPE": "text/plain"}, lambda status, headers: answer.update(status=status, headers=dict(headers)))
    assert list(chunks) == [b"piece 0", b"piece 1", b"piece 2"]
    assert answer["status"] == "200 OK" and "Content-Length" not in answer["headers"]


def test_a_stream_that_fails_before_its_first_item_answers_500():
    def failing():
        raise ValueError("no tokens")
        yield "never"

    got = call(streaming_server(lambda m, b, c, a: failing()), "POST", "/invocations", b"", {"Content-Type": "text/plain"})
    assert (got["status"], got["body"]) == (500, b"ValueError: no tokens\n")
