"""The management calls of a multi-model endpoint, over HTTP on loopback behind nginx, answered
in JSON as MMS answers them (errors as {"code", "type", "message"}), one at a time:

    POST   /models              {"model_name": ..., "url": ...}   load (409 loaded, 507 no room)
    GET    /models              ?next_page_token=&limit=          list, a page at a time
    GET    /models/<name>                                         describe (404 not loaded)
    DELETE /models/<name>                                         unload (404 not loaded)

POST /models/<name>/invoke goes from nginx straight to the model's workers; it reaches this server
only for a name nginx cannot route, which cannot be loaded either."""

import json
import logging
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from .errors import BadRequest, ConfigError, MethodNotAllowed, NotFound, ServingError, kind_of, reason_of, status_of

log = logging.getLogger("sm_entrypoint")
LOOPBACK = "127.0.0.1"
MAX_BODY = 1 << 20  # a load request is a name and a path
POLL_S = 0.2  # how often the manager looks up from waiting for a call (stop requests, ended models)


def route(models, settings, method, target, body):
    """-> (status, JSON-able body) for one call."""
    url = urlsplit(target)
    parts = [p for p in url.path.split("/") if p]
    if parts == ["models"]:
        if method == "GET":
            query = parse_qs(url.query)
            return 200, models.list(query.get("next_page_token", [""])[0], query.get("limit", [""])[0])
        if method == "POST":
            request = _json(body)
            return 200, models.load(request.get("model_name"), request.get("url"))
        raise MethodNotAllowed("use GET /models to list, POST /models to load")
    if len(parts) == 2 and parts[0] == "models":
        if method == "GET":
            return 200, models.describe(parts[1])
        if method == "DELETE":
            return 200, models.unload(parts[1])
        raise MethodNotAllowed(f"use GET or DELETE /models/{parts[1]}")
    if len(parts) == 3 and parts[0] == "models" and parts[2] == "invoke":
        raise NotFound(f"Model not found: {parts[1]}")
    if parts == ["execution-parameters"] and method == "GET":
        return 200, settings.execution_parameters
    if parts == ["invocations"]:
        raise NotFound("this is a multi-model endpoint (SAGEMAKER_MULTI_MODEL=true): "
                       "invoke a model with POST /models/<name>/invoke")
    raise NotFound(f"no such path: {url.path}")


def _json(body):
    try:
        request = json.loads(body or b"{}")
    except ValueError as e:
        raise BadRequest(f"the body is not JSON: {e}") from None
    if not isinstance(request, dict):
        raise BadRequest('the body must be a JSON object: {"model_name": ..., "url": ...}')
    return request


class _Calls(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sm-entrypoint"

    def _handle(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise BadRequest(f"the body is {length} bytes; a management call takes at most {MAX_BODY}")
            body = self.rfile.read(length) if length else b""
            status, answer = route(self.server.models, self.server.settings, self.command, self.path, body)
        except Exception as e:  # noqa: BLE001 - every call answers; the manager keeps serving
            status = status_of(e)
            answer = {"code": status, "type": kind_of(e), "message": reason_of(e)}
            if status >= 500 and not isinstance(e, ServingError):
                log.exception("%s %s answered %d", self.command, self.path, status)
            else:
                (log.warning if status >= 500 else log.info)(
                    "%s %s answered %d: %s", self.command, self.path, status, answer["message"])
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    def log_message(self, *_args):  # each call's outcome is logged in _handle when it matters
        pass


def server(models, settings):
    """The management server on loopback (nginx proxies to it): on an ephemeral port, or on the
    first free one of SAGEMAKER_SAFE_PORT_RANGE when the container shares its network."""
    api = _bind(settings)
    api.models, api.settings = models, settings
    api.timeout = POLL_S
    return api


def _bind(settings):
    if settings.safe_ports is None:
        return HTTPServer((LOOPBACK, 0), _Calls)
    low, high = settings.safe_ports
    for port in range(low, high + 1):
        if port == settings.port:
            continue
        try:
            return HTTPServer((LOOPBACK, port), _Calls)
        except OSError:
            continue
    raise ConfigError(f"SAGEMAKER_SAFE_PORT_RANGE={low}-{high} has no free port for the model manager besides "
                      f"SAGEMAKER_BIND_TO_PORT={settings.port}: a multi-model endpoint needs one")
