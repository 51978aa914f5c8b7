"""The model server's codecs: what each content type decodes to, and which failure is a 400 or 415."""

import io
import json

import numpy as np
import pytest
from sm_entrypoint.serving import codecs
from sm_entrypoint.serving.errors import BadRequest, UnsupportedMediaType


def test_csv_is_one_record_a_line_with_the_trailing_newline_batch_transform_keeps():
    array = codecs.decode(b"1,2,3\n4,5,6\n", "text/csv")
    assert array.dtype == np.float32 and array.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_a_single_csv_record_is_a_batch_of_one():
    assert codecs.decode(b"0.5,1\n", "text/csv").shape == (1, 2)


@pytest.mark.parametrize("header", ["text/csv", "Text/CSV", "text/csv; charset=utf-8", " TEXT/csv "])
def test_content_type_is_read_in_any_case_and_with_parameters(header):
    assert codecs.decode(b"1,2", header).shape == (1, 2)


@pytest.mark.parametrize("body, reason", [
    (b"1,2\n3,x\n", "CSV line 2: 'x' is not a number"),
    (b"1,2\n3\n", "CSV line 2 has 1 values, the first line 2"),
    (b"\n\n", "the CSV body holds no records"),
    (b"", "the request body is empty"),
    (b"\xff\xfe", "the body is not UTF-8 text"),
])
def test_bad_csv_is_a_400_that_says_where(body, reason):
    with pytest.raises(BadRequest) as e:
        codecs.decode(body, "text/csv")
    assert e.value.status == 400 and e.value.reason.startswith(reason)


def test_json_lists_become_arrays_and_instances_are_unwrapped():
    assert codecs.decode(b"[[1, 2], [3, 4]]", "application/json").tolist() == [[1, 2], [3, 4]]
    assert codecs.decode(b'{"instances": [1, 2]}', "application/json").tolist() == [1, 2]
    assert codecs.decode(b'{"a": 1, "b": 2}', "application/json") == {"a": 1, "b": 2}


@pytest.mark.parametrize("body, reason", [(b"[1, 2", "the body is not valid JSON"),
                                          (b"[[1, 2], [3]]", "the JSON list is not a regular array")])
def test_bad_json_is_a_400(body, reason):
    with pytest.raises(BadRequest) as e:
        codecs.decode(body, "application/json")
    assert e.value.reason.startswith(reason)


def test_npy_round_trips_and_garbage_is_a_400():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert codecs.decode(buffer.getvalue(), "application/x-npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(BadRequest, match="not a .npy array"):
        codecs.decode(b"not numpy", "application/x-npy")


def test_an_unsupported_content_type_is_a_415_naming_what_is_supported():
    with pytest.raises(UnsupportedMediaType) as e:
        codecs.decode(b"1", "image/png")
    assert e.value.status == 415
    assert e.value.reason == ("unsupported Content-Type 'image/png': supported are "
                              "text/csv, application/json, application/x-npy")


@pytest.mark.parametrize("accept, ctype, chosen", [
    ("", "text/csv", "text/csv"),
    ("*/*", "application/x-npy", "application/x-npy"),
    ("application/json", "text/csv", "application/json"),
    ("image/png, text/csv;q=0.5", "application/json", "text/csv"),
    ("", "image/png", "application/json"),
])
def test_accept_is_honoured_and_defaults_to_the_request_type(accept, ctype, chosen):
    assert codecs.choose_accept(accept, ctype) == chosen


def test_an_accept_nothing_supports_is_a_415():
    with pytest.raises(UnsupportedMediaType, match="cannot answer with Accept 'image/png'"):
        codecs.choose_accept("image/png", "text/csv")


def test_csv_output_is_one_line_a_record_with_no_newline_after_the_last():
    """Batch transform (AssembleWith=Line) adds a newline after each response."""
    body, ctype = codecs.encode(np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32), "text/csv")
    assert ctype == "text/csv" and body == b"0.25,0.75\n1.0,0.0"
    assert codecs.encode(np.array([3, 4]), "text/csv")[0] == b"3\n4"


def test_json_and_npy_output():
    assert json.loads(codecs.encode(np.array([[1.5]]), "application/json")[0]) == [[1.5]]
    body, ctype = codecs.encode(np.array([1, 2]), "application/x-npy")
    assert ctype == "application/x-npy" and np.load(io.BytesIO(body)).tolist() == [1, 2]


def test_framework_outputs_are_converted_without_importing_a_framework():
    class FakeNDArray:
        def asnumpy(self):
            return np.array([[0.5, 0.5]])

    assert codecs.encode(FakeNDArray(), "text/csv")[0] == b"0.5,0.5"


def test_numpy_scalars_inside_lists_and_dicts_are_json_numbers():
    body, ctype = codecs.encode({"scores": [np.int64(3), np.float32(0.5)], "ids": np.arange(2)}, codecs.JSON)
    assert (json.loads(body), ctype) == ({"scores": [3, 0.5], "ids": [0, 1]}, codecs.JSON)
