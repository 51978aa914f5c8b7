"""The front end: nginx on the public port, in front of the gunicorn workers (on a unix socket).

SageMaker pings an endpoint while it takes traffic and takes an instance whose /ping fails or
takes over 2 s out of service. A sync worker answers nothing while it runs a request, so /ping
must not wait for one: nginx answers it itself, from a marker file that the first worker to load
the model creates. nginx also reads every request body in full before a worker sees it, so slow
clients never hold a worker, and it refuses an oversized body from its Content-Length alone.
The same design as AWS's own scikit-learn and XGBoost containers (nginx + gunicorn), and as MMS and
TorchServe, which answer /ping from their Netty front end whatever the workers do.
"""

import json
import logging
import os
import shutil
import subprocess
import tempfile

from .errors import ConfigError

log = logging.getLogger("sm_entrypoint")
NGINX = "/usr/sbin/nginx"
READY = "ready"  # the marker: a worker has loaded the model
SOCKET = "workers.sock"
FAILURE = "failure"  # a model that could not be served says why here
LOADED = "loaded"  # loaded/<pid>: that worker has loaded the model
CLIENT_TIMEOUT_S = 60  # a client that sends its request slower than this is answered 408
STOP_S = 2.0  # how long nginx may take to stop before it is killed

TEMPLATE = """\
daemon off;
master_process on;
user www-data;
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server_tokens off;
  charset utf-8;
  default_type text/plain;
  client_body_temp_path {run_dir}/body;
  proxy_temp_path {run_dir}/proxy;
  fastcgi_temp_path {run_dir}/fastcgi;
  uwsgi_temp_path {run_dir}/uwsgi;
  scgi_temp_path {run_dir}/scgi;
  # Bodies stay in memory, and one over the limit is refused from its Content-Length, unread.
  client_max_body_size {max_body};
  client_body_buffer_size {max_body};
  client_header_timeout {client_timeout}s;
  client_body_timeout {client_timeout}s;
  send_timeout {client_timeout}s;
  underscores_in_headers on;
{upstreams}
  server {{
    listen {port} backlog=2048;
    error_page 413 @too_large;
    error_page 502 @no_worker;
    error_page 504 @worker_timeout;
    location = /ping {{
      if (-f {run_dir}/{ready}) {{ return 200; }}
      return 503 "the model is not loaded yet\\n";
    }}
{locations}
{errors}
  }}
}}
"""


# The workers answer 504 themselves at SAGEMAKER_MODEL_SERVER_TIMEOUT; a request may also wait for
# a free worker first, so nginx waits longer than that.
# HTTP/1.1 to the workers: a streamed answer comes chunked, and one cut off (a handler that failed
# mid-stream) reaches the client cut off too, not completed as HTTP/1.0's end-at-close would have it.
TO_WORKERS = """\
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_read_timeout {upstream_timeout}s;
      proxy_send_timeout {upstream_timeout}s;
      proxy_buffering off;"""

ONE_MODEL = """\
    location / {{
      proxy_pass http://workers;
{to_workers}
    }}"""

# A multi-model endpoint: each loaded model's workers listen in models/<name>/, where its ready
# marker says it may take traffic (a model being unloaded loses it first); everything else goes to
# the model manager (multi_model.py). Names as MMS allows them, so none can leave that folder.
# A request that reaches a model's workers as it is unloaded (queued at its socket, or the socket
# just removed) finds no worker: 404 once its ready marker is gone, as for any model not loaded.
MANY_MODELS = """\
    location ~ ^/models/(?<model>[A-Za-z0-9][A-Za-z0-9_.-]*)/invoke$ {{
      default_type application/json;  # nginx's own answers here; the workers' carry their type
      if (!-f {run_dir}/{models}/$model/{ready}) {{ {not_loaded} }}
      error_page 413 @too_large;
      error_page 502 = @model_failed;
      error_page 504 @worker_timeout;
      proxy_pass http://unix:{run_dir}/{models}/$model/{socket}:/invocations;
{to_workers}
    }}
    location @model_failed {{
      default_type application/json;
      if (!-f {run_dir}/{models}/$invoked_model/{ready}) {{ {invoked_not_loaded} }}
      {no_worker}
    }}
    location / {{
      proxy_pass http://127.0.0.1:{manager_port};
      proxy_read_timeout {load_timeout}s;
      proxy_buffering off;
    }}"""
MODELS = "models"  # a multi-model endpoint's folder of models, each in models/<name>/


# The model named in an invocation's path, for the named location a failed one goes to.
INVOKED_MODEL = """\
  map $uri $invoked_model {{ "~^/models/(?<name>[A-Za-z0-9][A-Za-z0-9_.-]*)/invoke$" $name; default ""; }}"""


NO_WORKER = (502, "WorkerDiedException",
             "the model server's worker ended before it answered (see the server log); it is replaced")


def error(status, kind, message, as_json):
    """nginx's answer with `status`: text, or a multi-model endpoint's JSON in MMS's shape
    ({"code", "type", "message"}), which tools written for AWS's MMS-based images read; the
    location it is in sets `default_type application/json` (not allowed inside an `if`). `message`
    may hold nginx variables ($model)."""
    if as_json:
        body = json.dumps({"code": status, "type": kind, "message": message}).replace("'", "\\'")
        return f"return {status} '{body}';"
    return f'return {status} "{message}\\n";'


def not_loaded(variable, as_json):
    return error(404, "ModelNotFoundException", f"Model not found: {variable}", as_json)


def errors(settings, upstream_timeout, as_json):
    """The named locations of nginx's own error answers."""
    limit = settings.max_payload_bytes
    answers = {
        "too_large": error(413, "RequestEntityTooLargeException", f"the body is $content_length bytes, over the "
                           f"limit of {limit} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)", as_json),
        "no_worker": error(*NO_WORKER, as_json),
        "worker_timeout": error(504, "RequestTimeoutException",
                                f"no model server worker answered within {upstream_timeout} s", as_json),
    }
    json_type = "default_type application/json; " if as_json else ""
    return "\n".join(f"    location @{name} {{ {json_type}{answer} }}" for name, answer in answers.items())


def config(settings, run_dir, manager_port=None):
    """nginx's whole configuration for these settings (a multi-model endpoint's: with the port of
    its model manager)."""
    upstream_timeout = 2 * settings.timeout_s + 30
    to_workers = TO_WORKERS.format(upstream_timeout=upstream_timeout)
    as_json = settings.multi_model
    if settings.multi_model:
        upstreams = INVOKED_MODEL.format()
        locations = MANY_MODELS.format(
            run_dir=run_dir, models=MODELS, ready=READY, socket=SOCKET, to_workers=to_workers,
            manager_port=manager_port, load_timeout=settings.load_timeout_s + 30,
            not_loaded=not_loaded("$model", True), invoked_not_loaded=not_loaded("$invoked_model", True),
            no_worker=error(*NO_WORKER, True))
    else:
        upstreams = f"  upstream workers {{ server unix:{run_dir}/{SOCKET}; }}"
        locations = ONE_MODEL.format(to_workers=to_workers)
    return TEMPLATE.format(run_dir=run_dir, ready=READY, port=settings.port, upstreams=upstreams,
                           locations=locations, errors=errors(settings, upstream_timeout, as_json),
                           client_timeout=CLIENT_TIMEOUT_S, max_body=settings.max_payload_bytes)


def run_dir():
    """A fresh folder for the socket, the marker and nginx's files: in memory where possible."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="sm-serve-", dir=parent)
    os.chmod(folder, 0o755)  # nginx's worker (www-data) reaches the socket and the marker here
    return folder


def worker_socket(folder):
    return os.path.join(folder, SOCKET)


def write_failure(folder, cause):
    """Why a model could not be served, for whoever started it (a multi-model endpoint's loader)."""
    try:
        with open(os.path.join(folder, FAILURE), "w") as f:
            f.write(cause)
    except OSError:
        pass


def read_failure(folder):
    try:
        with open(os.path.join(folder, FAILURE)) as f:
            return f.read().strip()
    except OSError:
        return ""


def mark_ready(folder):
    """Called in a worker once model_fn has returned: from now on /ping answers 200. The worker's
    own marker tells the arbiter that its end, whatever its code, is a crash to recover from."""
    with open(os.path.join(folder, READY), "w"):
        pass
    os.makedirs(os.path.join(folder, LOADED), exist_ok=True)
    with open(os.path.join(folder, LOADED, str(os.getpid())), "w"):
        pass


def forget_loaded(folder, pid):
    """Whether worker `pid` had loaded the model (its marker is removed)."""
    try:
        os.remove(os.path.join(folder, LOADED, str(pid)))
        return True
    except FileNotFoundError:
        return False


class Nginx:
    def __init__(self, settings, folder, manager_port=None):
        if not os.access(NGINX, os.X_OK):
            raise ConfigError(f"this image cannot serve models: {NGINX} (the front end) is missing")
        self.folder = folder
        self.conf = os.path.join(folder, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(config(settings, folder, manager_port))
        self.check()
        self.proc = None

    def check(self):
        """`nginx -t`: a bad setting is said in one line before anything starts."""
        proc = subprocess.run([NGINX, "-q", "-t", "-c", self.conf, "-e", "stderr"], capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise ConfigError(f"the front end (nginx) refuses its configuration: {lines[0] if lines else proc.returncode}")

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-c", self.conf, "-e", "stderr"], stdin=subprocess.DEVNULL)
        return self.proc

    def stop_accepting(self):
        """SIGQUIT: nginx stops listening and closes once the requests in hand are answered."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(3)

    def stop(self):
        """SIGTERM (nginx's fast shutdown), then SIGKILL after STOP_S."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            log.warning("the front end (nginx) did not stop within %.0f s: killed", STOP_S)
            self.proc.kill()
            self.proc.wait()


def remove(folder):
    shutil.rmtree(folder, ignore_errors=True)
