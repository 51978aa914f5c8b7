"""Runs the app under gunicorn: pre-forked sync workers (one request at a time each, the fastest
shape for CPU-bound inference) on a unix socket behind the front end (frontend.py), model_fn once
in each worker before it accepts a connection, a worker that dies replaced, and SIGTERM ending
everything within about a second."""

import dataclasses
import logging
import os
import signal
import sys
import threading

from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer

from .. import process
from . import cpus, frontend, memory, user_script
from . import handlers as hooks
from .app import ModelState, make_app
from .arbiter import SignalSafeArbiter
from .context import Context, gpu_for
from .errors import ConfigError
from .supervisor import Supervisor

log = logging.getLogger("sm_entrypoint")
STOP_GRACE_S = 1  # SIGTERM: workers get this long to finish a request, then are killed


class ModelServer(BaseApplication):
    def __init__(self, settings, handlers, run_dir, gpu_offset=0):
        self.settings = settings
        self.handlers = handlers
        self.run_dir = run_dir
        self.gpu_offset = gpu_offset  # a multi-model endpoint's models take the GPUs in turn
        self.state = ModelState()
        self.oom_kills = process.oom_kill_count()
        super().__init__()

    def load_config(self):
        s = self.settings
        options = {
            "bind": [f"unix:{frontend.worker_socket(self.run_dir)}"],
            "workers": s.workers,
            "worker_class": "sync",
            "timeout": s.timeout_s,
            "graceful_timeout": STOP_GRACE_S,
            "backlog": 2048,
            "post_fork": self._post_fork,
            "worker_exit": _exit_now,
            "worker_abort": self._timed_out,
            "child_exit": self._child_exit,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "serve",
            # The default worker heartbeat folder; /dev/shm avoids a disk write on every request.
            "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        }
        if "control_socket_disable" in self.cfg.settings:  # gunicorn 24+
            # Its control socket is a thread in the arbiter, stopped and restarted around every
            # worker fork (waits of up to 2 s each) and stopped before the workers on SIGTERM, at
            # one path (~/.gunicorn/gunicorn.ctl) shared by every model's arbiter of a multi-model
            # endpoint. Nothing here uses it.
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def _post_fork(self, _arbiter, worker):
        """model_fn in the new worker, before it accepts anything: a connection that reaches a
        worker always finds the model. A heartbeat keeps a slow model_fn from being taken for a
        hung worker. An exception stops the server (gunicorn: 'Worker failed to boot')."""
        _leave_on_stop_while_loading()
        done = threading.Event()

        def heartbeat():
            while not done.wait(1.0):
                worker.notify()

        threading.Thread(target=heartbeat, daemon=True).start()
        try:
            # gunicorn numbers workers from 1, replacements too
            self.state.gpu_id = gpu_for(self.gpu_offset + worker.age - 1)
            context = Context(self.settings.model_dir, self.state.gpu_id)
            self.state.model = self.handlers.load_model(self.settings.model_dir, context)
            self.state.loaded = True
            frontend.mark_ready(self.run_dir)
        except Exception as e:
            log.exception("model_fn(%r) failed in worker %d", self.settings.model_dir, os.getpid())
            cause = f"model_fn failed: {type(e).__name__}: {e}"
            frontend.write_failure(self.run_dir, cause)
            raise ConfigError(cause) from e
        finally:
            done.set()
        gpu = "" if self.state.gpu_id is None else f" (GPU {self.state.gpu_id})"
        log.info("worker %d: model loaded%s", os.getpid(), gpu)

    def _child_exit(self, arbiter, worker):
        """In the arbiter, a worker ended. One that had loaded the model crashed: gunicorn starts
        another, whatever its exit code. One that had not stops the server (gunicorn would start
        one after another for ever): its model_fn failed, or it was killed while loading."""
        if frontend.forget_loaded(self.run_dir, worker.pid) or not arbiter.LISTENERS:  # none: stopping
            return
        cause = frontend.read_failure(self.run_dir)
        if not cause and process.oom_kill_count() > self.oom_kills:
            cause = (f"the kernel's OOM killer ended worker {worker.pid} while it loaded the model: the "
                     f"container's memory cannot hold one copy of it (memory left now: {memory.mb(memory.available() or 0)})")
            frontend.write_failure(self.run_dir, cause)
        log.error("worker %d ended before it loaded the model: %s", worker.pid, cause or "see above")
        raise HaltServer("Worker failed to boot.", 3)

    def _timed_out(self, _worker):
        """gunicorn's SIGABRT to a worker past the timeout: the request in hand answers 504."""
        self.state.timed_out = True

    def load(self):
        return make_app(self.settings, self.handlers, self.state)

    def run(self):
        """BaseApplication.run, with an arbiter that never raises from its signal handler."""
        try:
            SignalSafeArbiter(self).run()
        except RuntimeError as e:
            log.error("the model server cannot start: %s", e)
            sys.exit(1)


def _leave_on_stop_while_loading():
    """Until gunicorn installs the worker's own handlers (after post_fork), a forked worker holds
    the arbiter's, which only queue the signal: a worker still in model_fn would ignore the stop
    and be SIGKILLed a second later ('Perhaps out of memory?'). It has nothing to finish: leave.
    A raw write and a raw exit: the code the signal interrupted may hold the logging module's lock."""
    def stop(signum, _frame):
        os.write(2, f"worker {os.getpid()}: {signal.Signals(signum).name} while loading the model: "
                    "stopped\n".encode())
        os._exit(0)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, stop)


def _exit_now(_arbiter=None, worker=None):
    """Leave without the interpreter's teardown: a framework's own (MXNet's engine threads, for
    one) can take seconds after a fork, and SIGTERM must end the server within 2 s. Called by
    gunicorn in a worker as it exits (the pending SystemExit carries the code), and also in the
    arbiter for a worker already gone when it signals it: there it does nothing, or the arbiter
    would leave before stopping the other workers."""
    if worker is not None and worker.pid != os.getpid():
        return
    exc = sys.exc_info()[1]
    leave(_exit_code(exc) if isinstance(exc, SystemExit) else (1 if exc else 0))


def _exit_code(stop):
    return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)


def leave(code):
    """End this process now with `code`, logs flushed, without the interpreter's teardown."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _arbiter(settings, handlers, run_dir, gpu_offset=0):
    """The forked child that runs gunicorn's arbiter; leaves with its exit code."""
    code = 1
    try:
        ModelServer(settings, handlers, run_dir, gpu_offset).run()
    except SystemExit as stop:  # gunicorn's arbiter ends with sys.exit(status)
        code = _exit_code(stop)
    except BaseException:  # noqa: BLE001 - gunicorn's HaltServer is one; this fork must never return
        log.exception("the model server's arbiter failed")
    leave(code)


def serve_one_model(settings, run_dir, gpu_offset):
    """In a forked child of a multi-model endpoint: one model's script and workers, on the socket
    in its own `run_dir`; never returns. A cause that stops it is left in run_dir for the loader."""
    try:
        handlers = prepare(settings)
    except ConfigError as e:
        log.error("model %s cannot be served: %s", settings.model_dir, e)
        frontend.write_failure(run_dir, str(e))
        leave(2)
    except Exception as e:  # noqa: BLE001 - said to the loader, then this child ends
        log.exception("model %s cannot be served", settings.model_dir)
        frontend.write_failure(run_dir, f"{type(e).__name__}: {e}")
        leave(1)
    _arbiter(settings, handlers, run_dir, gpu_offset)


def prepare(settings):
    """Everything that can fail before a worker starts: the script (fetched if need be), its
    requirements.txt, the defaults, the hooks."""
    path = user_script.script_path(settings)
    user_script.install_requirements(path, settings)
    user = user_script.load(path) if path else None
    defaults = user_script.load_defaults(settings.default_handlers)
    handlers = hooks.resolve(user, defaults)
    log.info("model server: %s", handlers.source)
    return handlers


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # OpenMP (PyTorch's and MXNet's intra-op pools), MKL


def share_cpus(settings):
    """Each worker's math libraries (OpenMP: MXNet, PyTorch, BLAS) get their share of the CPUs the
    container is granted unless the user says otherwise: N workers each spinning up all CPUs'
    threads fight over them (measured with MXNet on 2 CPUs and 2 workers: 2.5x the throughput with
    1 thread each). PyTorch sizes its intra-op pool from OMP_NUM_THREADS. Set before the script,
    and so the framework, is imported."""
    share = str(max(1, cpus.granted() // settings.workers))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, share)
    log.info("OMP_NUM_THREADS=%s in each of %d worker(s)", os.environ["OMP_NUM_THREADS"], settings.workers)


def fit_in_memory(settings, model="the model"):
    """The settings with as many workers as the container's memory holds copies of the model (each
    worker loads its own): fewer than the default, said in one line; the user's
    SAGEMAKER_MODEL_SERVER_WORKERS is kept. Not even one copy: ConfigError."""
    found = memory.fit(settings.model_dir, settings.workers)
    if not found.workers:
        raise ConfigError(found.says(f"{model} in {settings.model_dir}"))
    if found.workers == settings.workers or settings.workers_set:
        return settings
    log.warning("%s", found.says(f"{model} in {settings.model_dir}"))
    transforms = settings.max_concurrent_transforms  # reported to batch transform: follows the workers
    if transforms == settings.workers:  # (the default; a count the user set is theirs)
        transforms = found.workers
    return dataclasses.replace(settings, workers=found.workers, max_concurrent_transforms=transforms)


def run(settings):
    """The whole server; never returns (leaves with the arbiter's exit code)."""
    settings = fit_in_memory(settings)
    share_cpus(settings)
    handlers = prepare(settings)
    run_dir = frontend.run_dir()
    nginx = frontend.Nginx(settings, run_dir)
    log.info("serving %s on port %d: %d worker(s), timeout %d s, payload limit %d MB, %s",
             settings.model_dir, settings.port, settings.workers, settings.timeout_s,
             settings.max_payload_mb, settings.batch_strategy)
    arbiter_pid = os.fork()
    if arbiter_pid == 0:
        _arbiter(settings, handlers, run_dir)
    supervisor = Supervisor(arbiter_pid, nginx)
    try:
        code = supervisor.start_front_end(frontend.worker_socket(run_dir))
        if code is None:
            code = supervisor.wait()
    finally:
        frontend.remove(run_dir)
    leave(code)
