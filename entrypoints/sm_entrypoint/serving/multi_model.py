"""A multi-model endpoint (SAGEMAKER_MULTI_MODEL=true), as SageMaker's contract for multi-model
containers has it: the platform loads a model with POST /models {"model_name", "url"} (url: the
folder it extracted the model into), lists the loaded ones (GET /models, paginated), describes one
(GET /models/<name>), unloads one (DELETE /models/<name>) and invokes one
(POST /models/<name>/invoke). 409 for a model loaded twice, 404 for one not loaded, 507 for one
that would not fit in the memory left, so that the platform unloads others and tries again.

Each model gets its own pool of gunicorn workers (runner.serve_one_model), forked from this
process, which has already imported the image's framework, so a load pays for the model alone.
Its script is its own (code/inference.py in its folder, else the image's defaults), a model that
fails to load says why without disturbing the others, and unloading ends its processes, so its
memory goes back to the machine whole. nginx sends invocations straight to the model's workers;
this process, the model manager, answers the management calls (model_api.py) one at a time."""

import dataclasses
import logging
import os
import re
import shutil
import signal
import time

from .. import process
from . import frontend, memory, model_api, runner, user_script
from .errors import BadRequest, Conflict, InsufficientStorage, NotFound, ServingError
from .supervisor import end_child, send_signal

log = logging.getLogger("sm_entrypoint")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # MMS's rule; nginx routes the same names
SOCKET_PATH_MAX = 107  # a unix socket's path, less the terminating NUL (sun_path)
STOP_S = 5.0  # an unloaded model's server gets this long to end before it is killed
POLL_S = 0.02
PAGE = 100  # GET /models: models per page unless the caller asks for fewer
MODEL_STORE = "/"  # a relative url is taken from here, as MMS and TorchServe started by AWS's toolkits do
OUT_OF_MEMORY = ("MemoryError", "out of memory", "std::bad_alloc")


@dataclasses.dataclass
class Model:
    name: str
    url: str
    pid: int  # its gunicorn arbiter
    folder: str  # its socket, ready marker and failure file

    def describe(self):
        return {"modelName": self.name, "modelUrl": self.url}


class Models:
    """The loaded models and their servers."""

    def __init__(self, settings, run_dir):
        self.settings = settings
        self.root = os.path.join(run_dir, frontend.MODELS)
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)  # nginx's worker (www-data) checks the ready markers here
        self.loaded = {}
        self.next_gpu = 0  # each model's workers take the next GPUs in turn (context.gpu_for)
        self.before_fork_child = lambda: None  # what a model's server closes first (the API's socket)

    # -- the contract's calls --------------------------------------------------------------------

    def load(self, name, url):
        self._check_name(name)
        if name in self.loaded:
            raise Conflict(f"Model {name} is already registered.")  # MMS's words
        if not isinstance(url, str) or not url:
            raise BadRequest("Parameter url is required.")
        folder = os.path.join(MODEL_STORE, url)
        if not os.path.isdir(folder):
            raise NotFound(f"Model not found in model store: {url}")
        workers = self._workers(name, folder)
        started = time.monotonic()
        oom_kills = process.oom_kill_count()
        model = self._start(name, url, folder, workers)
        try:
            self._wait_loaded(model, oom_kills)
        except ServingError:
            self._end(model)
            raise
        self.loaded[name] = model
        log.info("model %s: loaded from %s in %.1f s (%d worker(s))", name, url, time.monotonic() - started, workers)
        return {"status": f'Model "{name}" Version: 1.0 registered with {workers} initial workers'}

    def list(self, token="", limit=""):
        try:
            start = int(token or 0)
            size = min(PAGE, int(limit or PAGE))
        except ValueError:
            raise BadRequest(f"next_page_token and limit must be whole numbers, got {token!r}, {limit!r}") from None
        if start < 0 or size < 1:
            raise BadRequest("next_page_token must be at least 0 and limit at least 1")
        names = sorted(self.loaded)
        body = {"models": [self.loaded[n].describe() for n in names[start:start + size]]}
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return body

    def describe(self, name):
        return self._get(name).describe()

    def unload(self, name):
        model = self._get(name)
        del self.loaded[name]
        _remove(os.path.join(model.folder, frontend.READY))  # from now on nginx answers 404
        self._end(model)
        log.info("model %s: unloaded", name)
        return {"status": f'Model "{name}" unregistered'}

    # -- the model servers -----------------------------------------------------------------------

    def _get(self, name):
        if name not in self.loaded:
            raise NotFound(f"Model not found: {name}")
        return self.loaded[name]

    def _check_name(self, name):
        if not isinstance(name, str) or not NAME.match(name):
            raise BadRequest(f"model_name {name!r}: letters, digits, '_', '-' and '.', starting with a "
                             "letter or digit")
        longest = SOCKET_PATH_MAX - len(os.path.join(self.root, "", frontend.SOCKET))
        if len(name) > longest:
            raise BadRequest(f"model_name {name!r} is {len(name)} characters; at most {longest} here")

    def _workers(self, name, url):
        """Each worker holds its own copy (about its files' size): as many workers as the memory
        left holds, fewer than the default said in one line; not even one copy answers 507, so
        that the platform unloads a model and tries again."""
        found = memory.fit(url, self.settings.workers)
        if not found.workers:
            raise InsufficientStorage(found.says(f"model {name}") + ": unload a model first")
        if found.workers < self.settings.workers and not self.settings.workers_set:
            log.warning("model %s: %s", name, found.says("it"))
            return found.workers
        return self.settings.workers

    def _start(self, name, url, model_dir, workers):
        folder = os.path.join(self.root, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        os.chmod(folder, 0o755)
        settings = dataclasses.replace(self.settings, model_dir=model_dir, multi_model=False, workers=workers)
        gpu_offset, self.next_gpu = self.next_gpu, self.next_gpu + settings.workers
        pid = os.fork()
        if pid == 0:  # the model's server: never comes back here
            try:
                for s in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(s, signal.SIG_DFL)
                self.before_fork_child()
                runner.serve_one_model(settings, folder, gpu_offset)
            finally:
                runner.leave(1)
        return Model(name, url, pid, folder)

    def _wait_loaded(self, model, oom_kills):
        """Until the model's first worker has loaded it; its cause if it fails, bounded in time."""
        deadline = time.monotonic() + self.settings.load_timeout_s
        ready = os.path.join(model.folder, frontend.READY)
        while not os.path.exists(ready):
            if process.oom_kill_count() > oom_kills:
                raise InsufficientStorage(f"model {model.name} did not fit: the kernel's OOM killer ended "
                                          "a process of this container while it loaded")
            pid, status = os.waitpid(model.pid, os.WNOHANG)
            if pid:
                model.pid = 0
                cause = frontend.read_failure(model.folder) or f"its server ended with code {os.waitstatus_to_exitcode(status)}"
                error = InsufficientStorage if any(s in cause for s in OUT_OF_MEMORY) else ServingError
                raise error(f"model {model.name} failed to load: {cause}")
            if time.monotonic() > deadline:
                raise ServingError(f"model {model.name} did not load within {self.settings.load_timeout_s} s "
                                   "(SAGEMAKER_MODEL_LOAD_TIMEOUT)")
            time.sleep(POLL_S)

    def _end(self, model):
        """Stop the model's server (SIGTERM, then SIGKILL after STOP_S) and remove its folder."""
        if model.pid and not end_child(model.pid, STOP_S, POLL_S):
            log.error("model %s: its server did not stop within %.0f s: killed", model.name, STOP_S)
        model.pid = 0
        shutil.rmtree(model.folder, ignore_errors=True)

    def ended(self, pid, status):
        """A child ended on its own: a loaded model's server is dropped (the platform loads it
        again when it is next invoked and answers 404)."""
        for model in list(self.loaded.values()):
            if model.pid == pid:
                log.error("model %s: its server ended with code %d: the model is unloaded",
                          model.name, os.waitstatus_to_exitcode(status))
                model.pid = 0
                del self.loaded[model.name]
                self._end(model)

    def stop_all(self):
        for model in self.loaded.values():  # all at once; then each is awaited
            send_signal(model.pid, signal.SIGTERM)
        for model in list(self.loaded.values()):
            self._end(model)
        self.loaded.clear()


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class _Stop:
    requested = False

    def __call__(self, signum, _frame):
        log.info("received %s: stopping the front end and every model", signal.Signals(signum).name)
        self.requested = True


def run(settings):
    """The whole multi-model endpoint; never returns (leaves with its exit code)."""
    runner.share_cpus(settings)  # before the framework is imported: each model's workers share the CPUs
    run_dir = frontend.run_dir()
    user_script.load_defaults(settings.default_handlers)  # the framework, imported once for every model
    models = Models(settings, run_dir)
    api = model_api.server(models, settings)
    models.before_fork_child = api.socket.close
    nginx = frontend.Nginx(settings, run_dir, api.server_address[1])
    stop = _Stop()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, stop)
    nginx.start()
    frontend.mark_ready(run_dir)
    log.info("multi-model endpoint on port %d: POST /models loads a model, %d worker(s) each, "
             "load timeout %d s", settings.port, settings.workers, settings.load_timeout_s)
    code = 0
    try:
        while not stop.requested and code == 0:
            api.handle_request()
            code = _reap(models, nginx)
    finally:
        nginx.stop_accepting()
        models.stop_all()
        nginx.stop()
        api.server_close()
        frontend.remove(run_dir)
    runner.leave(code)


def _reap(models, nginx):
    """Children that ended: nginx ending ends the endpoint (1); a model's server, that model."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if not pid:
            return 0
        if nginx.proc and pid == nginx.proc.pid:
            log.error("the front end (nginx) exited with code %d: stopping", os.waitstatus_to_exitcode(status))
            return 1
        models.ended(pid, status)
