"""The WSGI app: GET /ping, POST /invocations, GET /execution-parameters. Deliberately bare (no
web framework): every microsecond here is paid on each of a batch transform's requests."""

import json
import logging
import select
import socket
import time

from . import codecs
from .context import Context, request_headers
from .errors import BadRequest, PayloadTooLarge, reason_of, status_of
from .handlers import check_accept, is_stream

log = logging.getLogger("sm_entrypoint")

REASONS = {200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found", 405: "405 Method Not Allowed",
           413: "413 Payload Too Large", 415: "415 Unsupported Media Type", 500: "500 Internal Server Error",
           503: "503 Service Unavailable", 504: "504 Gateway Timeout"}
CHUNK = 1 << 20


class ModelState:
    """One worker's model: None until model_fn has returned, so /ping cannot say 200 before."""

    def __init__(self):
        self.model = None
        self.loaded = False
        self.gpu_id = None  # the GPU this worker was given (context.gpu_for), for each request's context
        self.timed_out = False  # set when gunicorn aborts this worker for running past the timeout


def read_body(environ, limit):
    """The request body, refused (413) from its Content-Length alone when over the limit, and
    never read past limit + 1 bytes when the length is not given (chunked)."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length.strip():
        try:
            size = int(length)
        except ValueError:
            raise BadRequest(f"Content-Length {length!r} is not a number") from None
        if size > limit:
            raise PayloadTooLarge(f"the body is {size} bytes, over the limit of {limit} bytes "
                                  "(SAGEMAKER_MAX_PAYLOAD_IN_MB)")
        return stream.read(size) if size else b""
    parts, total = [], 0
    while total <= limit:
        part = stream.read(min(CHUNK, limit + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    if total > limit:
        raise PayloadTooLarge(f"the body is over the limit of {limit} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)")
    return b"".join(parts)


def make_app(settings, handlers, state):
    """The WSGI callable for one worker; `state` holds the model once model_fn has run."""
    execution_parameters = json.dumps(settings.execution_parameters).encode()
    limit = settings.max_payload_bytes
    wants_context = handlers.takes_context  # a request's context is made only for hooks that take it

    def answer(start_response, status, body=b"", ctype="text/plain; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        start_response(REASONS.get(status, f"{status} Error"),
                       [("Content-Type", ctype), ("Content-Length", str(len(body))), *headers])
        return [body]

    def invocations(environ, start_response):
        started = time.perf_counter()
        try:
            content_type = environ.get("CONTENT_TYPE") or codecs.JSON
            accept = check_accept(handlers, environ.get("HTTP_ACCEPT", ""), content_type)
            body = read_body(environ, limit)
            context = Context(settings.model_dir, state.gpu_id, request_headers(environ)) if wants_context else None
            payload, ctype = handlers.transform(state.model, body, content_type, accept, context)
            first = _first_item(payload) if is_stream(payload) else None
        except SystemExit:
            if not state.timed_out:
                raise
            reason = (f"the model did not answer within {settings.timeout_s} s "
                      "(SAGEMAKER_MODEL_SERVER_TIMEOUT): this worker is replaced")
            log.error("POST /invocations answered 504: %s", reason)
            return answer(start_response, 504, reason + "\n")  # then the worker exits
        except Exception as e:  # noqa: BLE001 - every failure answers, and the worker keeps serving
            status, reason = status_of(e), reason_of(e)
            if status >= 500:
                log.error("POST /invocations answered %d: %s", status, reason, exc_info=True)
            else:
                log.info("POST /invocations answered %d: %s", status, reason)
            return answer(start_response, status, reason + "\n")
        extra = context.extra_response_headers() if context else ()
        if is_stream(payload):
            start_response(REASONS[200], [("Content-Type", ctype), *extra])
            return streamed(first, payload, environ.get("gunicorn.socket"))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST /invocations 200 in %.2f ms", (time.perf_counter() - started) * 1000)
        return answer(start_response, 200, payload, ctype, extra)

    def streamed(first, chunks, client):
        """A handler's iterator, one chunk an item (HTTP/1.1 chunked encoding: no Content-Length).
        Its first item was made before the status was sent, so a failure before it answers as any
        other; a failure after it ends the stream without its last chunk, which the client sees as
        a truncated answer, and the log says why. A client gone stops the handler's generator."""
        sent = 0
        try:
            yield first
            sent = 1
            for chunk in chunks:
                if client is not None and _gone(client):
                    log.info("POST /invocations: the client went away after %d chunk(s): the stream is stopped", sent)
                    return
                yield chunk
                sent += 1
        except SystemExit:
            if state.timed_out:
                log.error("POST /invocations: the stream ran past %d s (SAGEMAKER_MODEL_SERVER_TIMEOUT) after "
                          "%d chunk(s): it is cut off and this worker replaced", settings.timeout_s, sent)
            raise
        except Exception as e:
            log.error("POST /invocations: the stream failed after %d chunk(s) and is cut off: %s", sent, reason_of(e))
            raise
        finally:
            chunks.close()

    def app(environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/invocations":
            if method != "POST":
                return answer(start_response, 405, "use POST /invocations\n")
            if not state.loaded:
                return answer(start_response, 503, "the model is not loaded yet\n")
            return invocations(environ, start_response)
        if path == "/ping":
            return answer(start_response, 200 if state.loaded else 503)
        if path == "/execution-parameters":
            return answer(start_response, 200, execution_parameters, codecs.JSON)
        return answer(start_response, 404, f"no such path: {path}\n")

    return app


def _first_item(chunks):
    """The stream's first item (empty for an empty stream), the stream closed if it fails."""
    try:
        return next(chunks, b"")
    except BaseException:
        chunks.close()
        raise


def _gone(sock):
    """Whether the peer (nginx, for a client) has closed the connection: readable with nothing to
    read. A request's body has been read in full by now, so nothing else can be waiting."""
    try:
        if not select.select([sock], [], [], 0)[0]:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
