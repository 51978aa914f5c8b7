"""gunicorn's arbiter as serve runs it, without Docker: a failed model_fn stops the server with
gunicorn's 'worker failed to boot' code, and the SIGCHLD handler never raises where it lands."""

import os
import signal
import time

import pytest
from gunicorn.errors import HaltServer
from sm_entrypoint.serving import frontend, runner
from sm_entrypoint.serving.arbiter import SignalSafeArbiter
from sm_entrypoint.serving.settings import ServingSettings

from smimages.testing.harness import write_tree

FAILING = """
import os
def model_fn(model_dir):
    open(os.path.join(os.environ["PIDS"], str(os.getpid())), "w").close()
    raise OSError("weights.bin is corrupt")
"""


def server(tmp_path, workers=2):
    write_tree(tmp_path / "model" / "code", {"inference.py": FAILING})
    settings = ServingSettings.from_env({"SM_MODEL_DIR": str(tmp_path / "model"),
                                         "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return runner.ModelServer(settings, runner.prepare(settings), str(run_dir))


def exited_child(code):
    """A child that has exited with `code` and is not yet reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(code)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    return pid


class Worker:
    def __init__(self, pid):
        self.pid, self.age = pid, 1
        self.tmp = open(os.devnull)  # what the arbiter closes when it drops a worker


def test_a_failed_boot_is_raised_by_the_main_loop_not_by_the_signal_handler(tmp_path):
    arbiter = SignalSafeArbiter(server(tmp_path))
    arbiter.PIPE = list(os.pipe())
    arbiter.LISTENERS = ["listening"]  # not stopping: a worker that never loaded the model halts the server
    first, second = exited_child(3), exited_child(3)
    arbiter.WORKERS = {first: Worker(first), second: Worker(second)}
    arbiter.handle_chld(signal.SIGCHLD, None)  # gunicorn's own raises HaltServer from here
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # both reaped in the one call
    with pytest.raises(HaltServer) as halt:
        arbiter.manage_workers()
    assert (halt.value.reason, halt.value.exit_status) == ("Worker failed to boot.", 3)
    arbiter.manage_workers = lambda: None  # the halt was raised once, and only once
    assert arbiter.pending_halt is None


def test_a_worker_that_had_loaded_the_model_is_replaced_whatever_its_exit_code(tmp_path):
    """gunicorn halts on 3 and 4 from any worker; here only one that never loaded the model stops it."""
    s = server(tmp_path)
    arbiter = SignalSafeArbiter(s)
    arbiter.PIPE = list(os.pipe())
    arbiter.LISTENERS = ["listening"]
    loaded = [exited_child(code) for code in (3, 4)]
    for pid in loaded:
        os.makedirs(os.path.join(s.run_dir, frontend.LOADED), exist_ok=True)
        open(os.path.join(s.run_dir, frontend.LOADED, str(pid)), "w").close()
    arbiter.WORKERS = {pid: Worker(pid) for pid in loaded}
    arbiter.handle_chld(signal.SIGCHLD, None)
    assert arbiter.WORKERS == {} and arbiter.pending_halt is None  # gunicorn starts two others
    assert not os.listdir(os.path.join(s.run_dir, frontend.LOADED))


def test_a_failing_model_fn_ends_the_server_with_its_cause_and_no_worker_left(tmp_path, monkeypatch):
    """Repeated: the race that hung the arbiter depends on where SIGCHLD lands."""
    for attempt in range(8):
        pids = tmp_path / f"pids{attempt}"
        pids.mkdir()
        monkeypatch.setenv("PIDS", str(pids))
        s = server(tmp_path / str(attempt))
        pid = os.fork()
        if pid == 0:
            runner._arbiter(s.settings, s.handlers, s.run_dir)
        deadline = time.monotonic() + 20
        while not os.waitpid(pid, os.WNOHANG)[0]:
            assert time.monotonic() < deadline, f"attempt {attempt}: the arbiter never ended"
            time.sleep(0.02)
        assert frontend.read_failure(s.run_dir) == "model_fn failed: OSError: weights.bin is corrupt"
        assert os.listdir(pids)
        for worker in map(int, os.listdir(pids)):
            assert not _alive(worker, within_s=5), f"attempt {attempt}: worker {worker} outlived its arbiter"


def test_the_arbiters_exit_code_is_gunicorns_for_a_failed_boot(tmp_path, monkeypatch):
    monkeypatch.setenv("PIDS", str(tmp_path))
    s = server(tmp_path / "one", workers=1)
    pid = os.fork()
    if pid == 0:
        runner._arbiter(s.settings, s.handlers, s.run_dir)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3


def _alive(pid, within_s):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True
