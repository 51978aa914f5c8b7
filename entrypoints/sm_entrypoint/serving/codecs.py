"""Request bodies to arrays and predictions to response bodies, for the three content types
SageMaker sends: text/csv (one record a line), application/json and application/x-npy."""

import io
import json

import numpy as np

from .errors import BadRequest, UnsupportedMediaType

CSV, JSON, NPY = "text/csv", "application/json", "application/x-npy"
SUPPORTED = (CSV, JSON, NPY)


def media_type(header):
    """'Text/CSV; charset=utf-8' -> 'text/csv'."""
    return (header or "").split(";", 1)[0].strip().lower()


def choose_accept(accept, content_type):
    """The response type: the first supported type Accept lists (any order of q values is taken
    as written), the request's own type for none or */*, else 415."""
    if not accept or not accept.strip():
        return content_type if content_type in SUPPORTED else JSON
    wanted = [media_type(part) for part in accept.split(",")]
    for w in wanted:
        if w in SUPPORTED:
            return w
        if w in ("*/*", "application/*", "text/*"):
            if content_type in SUPPORTED and (w == "*/*" or content_type.startswith(w[:-1])):
                return content_type
            return JSON if w != "text/*" else CSV
    raise UnsupportedMediaType(f"cannot answer with Accept {accept!r}: supported are {', '.join(SUPPORTED)}")


# --- decoding -----------------------------------------------------------------------------------

def decode(body, content_type):
    ctype = media_type(content_type)
    if ctype not in SUPPORTED:
        raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}: supported are {', '.join(SUPPORTED)}")
    if not body:
        raise BadRequest("the request body is empty")
    return {CSV: decode_csv, JSON: decode_json, NPY: decode_npy}[ctype](body)


def _text(body):
    try:
        return body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    except UnicodeDecodeError as e:
        raise BadRequest(f"the body is not UTF-8 text: {e}") from None


def decode_csv(body):
    """One record a line (blank lines skipped) -> a 2-D float32 array, one row a record."""
    rows = []
    for number, line in enumerate(_text(body).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            bad = next(v for v in line.split(",") if not _is_number(v))
            raise BadRequest(f"CSV line {number}: {bad.strip()[:40]!r} is not a number") from None
        if len(rows[-1]) != len(rows[0]):
            raise BadRequest(f"CSV line {number} has {len(rows[-1])} values, the first line {len(rows[0])}")
    if not rows:
        raise BadRequest("the CSV body holds no records")
    return np.asarray(rows, dtype=np.float32)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def decode_json(body):
    """A JSON list (or {"instances": list} / {"inputs": list}) -> an array; other JSON as it is."""
    try:
        data = json.loads(_text(body))
    except ValueError as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if isinstance(data, dict) and len(data) == 1 and ("instances" in data or "inputs" in data):
        data = next(iter(data.values()))
    if not isinstance(data, list):
        return data
    numeric = _nested_numbers(data)
    try:
        array = np.array(data, dtype=None if numeric else object)
    except ValueError as e:
        raise BadRequest(f"the JSON list is not a regular array: {e}") from None
    if numeric and array.dtype == object:  # numpy < 1.24 makes ragged lists object arrays
        raise BadRequest("the JSON list is not a regular array: its rows differ in length")
    return array


def _nested_numbers(data):
    """True when a list nests only numbers (and is rectangular enough for numpy to judge)."""
    while isinstance(data, list) and data:
        data = data[0]
    return isinstance(data, (int, float, bool)) and not isinstance(data, str)


def decode_npy(body):
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BadRequest(f"the body is not a .npy array: {e}") from None


# --- encoding -----------------------------------------------------------------------------------

def to_numpy(prediction):
    """Framework outputs to numpy without importing any framework: MXNet's NDArray has asnumpy(),
    a torch tensor detach()/cpu()/numpy()."""
    if hasattr(prediction, "asnumpy"):
        return prediction.asnumpy()
    if hasattr(prediction, "detach") and hasattr(prediction, "numpy"):
        return prediction.detach().cpu().numpy()
    return prediction


def encode(prediction, accept):
    """-> (body bytes, content type). accept must be one of SUPPORTED (see choose_accept)."""
    prediction = to_numpy(prediction)
    if accept == CSV:
        return encode_csv(prediction), CSV
    if accept == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction), allow_pickle=False)
        return buffer.getvalue(), NPY
    if accept == JSON:
        value = prediction.tolist() if isinstance(prediction, np.ndarray) else prediction
        return json.dumps(value, default=_plain).encode(), JSON
    raise UnsupportedMediaType(f"cannot answer with Accept {accept!r}: supported are {', '.join(SUPPORTED)}")


def _plain(value):
    """numpy's scalars and arrays (and frameworks' tensors) inside a list or dict, as JSON values."""
    value = to_numpy(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_csv(prediction):
    """One line a record, no newline after the last (batch transform's AssembleWith=Line adds
    one after every response: a trailing newline here would make an empty line there)."""
    array = np.asarray(prediction)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1)
    elif array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    return "\n".join(",".join(map(str, row)) for row in array).encode()
