"""Response streaming (InvokeEndpointWithResponseStream): a handler that returns an iterator is
answered with HTTP/1.1 chunked encoding, each item one chunk as it is made, on single- and
multi-model endpoints. The server is framework-free: once."""

import pytest

from smimages.catalog import ROOT
from smimages.testing.harness import ServingContainer, write_tree
from smimages.testing.multi_model import MultiModelEndpoint

EXAMPLE = ROOT / "examples" / "serving-streaming" / "inference.py"  # the documented example, as it is
# A script for the failures: one quick answer, a stream that fails after its first piece, else 5 pieces.
STREAMING = """\
import time

def model_fn(model_dir):
    return "model"

def transform_fn(model, body, content_type, accept):
    if body == b"quick":
        return b"at once"
    if body == b"fail":
        return failing()
    return pieces(5)

def pieces(count):
    for i in range(count):
        if i:
            time.sleep(1)
        yield f"piece {i}\\n"

def failing():
    yield "piece 0\\n"
    raise ValueError("the model ran out of tokens")
"""
# predict_fn's iterator: the default output_fn encodes each item, one JSON line a chunk
PREDICTIONS = """\
def model_fn(model_dir):
    return 10

def predict_fn(data, model):
    return ([x * model for x in data[:i + 1]] for i in range(len(data)))
"""
TEXT = {"Content-Type": "text/plain"}
ONE_WORKER = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}


@pytest.fixture(scope="module")
def server(one_image, tmp_path_factory):
    model = tmp_path_factory.mktemp("streaming") / "model"
    write_tree(model, {"code/inference.py": STREAMING})
    with ServingContainer(one_image, model, env=ONE_WORKER) as s:
        s.wait_ready()
        yield s


def test_each_item_is_a_chunk_sent_as_it_is_made(one_image, tmp_path):
    """The example script: 5 words, one a second."""
    write_tree(tmp_path / "model", {"code/inference.py": EXAMPLE})
    with ServingContainer(one_image, tmp_path / "model", env=ONE_WORKER) as s:
        s.wait_ready()
        answer = s.stream("/invocations", b"one two three four five", TEXT)
    assert answer.status == 200 and answer.complete
    assert answer.headers["transfer-encoding"] == "chunked" and "content-length" not in answer.headers
    assert [data for _, data in answer.chunks] == [b"one ", b"two ", b"three ", b"four ", b"five\n"]
    times = [t for t, _ in answer.chunks]
    assert times[0] < 1.5, times
    assert all(b - a > 0.5 for a, b in zip(times, times[1:])), times  # each when it was made


def test_a_client_that_goes_away_frees_the_worker(server):
    first = server.stream("/invocations", b"go", TEXT, keep=1)
    assert [data for _, data in first.chunks] == [b"piece 0\n"]
    answer = server.stream("/invocations", b"quick", TEXT)  # one worker: it must be free again
    assert answer.body == b"at once" and answer.chunks[0][0] < 2.5, answer.chunks
    assert "the client went away after 1 chunk(s): the stream is stopped" in server.logs_once("went away")


@pytest.mark.expect_log_errors("a stream that fails on purpose")
def test_an_exception_mid_stream_cuts_it_off_visibly_and_the_server_keeps_serving(server):
    answer = server.stream("/invocations", b"fail", TEXT)
    assert answer.status == 200 and not answer.complete
    assert answer.body == b"piece 0\n"
    assert ("the stream failed after 1 chunk(s) and is cut off: ValueError: the model ran out of tokens"
            in server.logs_once("the stream failed"))
    assert server.request("POST", "/invocations", b"quick", TEXT)[1] == b"at once"


def test_predict_fn_iterators_stream_through_the_default_output_fn(one_image, tmp_path):
    write_tree(tmp_path / "model", {"code/inference.py": PREDICTIONS})
    with ServingContainer(one_image, tmp_path / "model", env=ONE_WORKER) as s:
        s.wait_ready()
        answer = s.stream("/invocations", b"[1, 2, 3]", {"Content-Type": "application/json"})
        assert answer.complete and answer.headers["content-type"] == "application/json"
        assert answer.body == b"[10]\n[10, 20]\n[10, 20, 30]\n"  # made at once: they may share a chunk


def test_a_multi_model_endpoint_streams_too(one_image, tmp_path):
    write_tree(tmp_path / "talker" / "model", {"code/inference.py": STREAMING})
    with MultiModelEndpoint(one_image, tmp_path, env=ONE_WORKER) as mme:
        mme.wait_ready()
        assert mme.load("talker")[0] == 200
        answer = mme.stream("/models/talker/invoke", b"go", TEXT)
        assert answer.complete and len(answer.chunks) == 5 and answer.chunks[0][0] < 1.5
