"""Running the check's steps: the time budget they share, each child process in a session of its
own under a timeout (its output kept in a log), the commands (this package, torchrun), and the
environment children get."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout
BUDGET_S = 480.0
RESERVE_S = 10.0  # kept back from each step for the report itself


class Budget:
    """The whole check's time: each step gets its own limit or what is left, less a reserve."""

    def __init__(self, total_s, clock=time.monotonic):
        self.clock = clock
        self.deadline = clock() + total_s

    def timeout(self, step_s):
        return max(0.0, min(step_s, self.deadline - self.clock() - RESERVE_S))


def budget_s():
    """The budget as set, for messages."""
    return os.environ.get("GPU_CHECK_BUDGET_S") or f"{BUDGET_S:.0f}"


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    timed_out: bool

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out

    def outcome(self, timeout_s):
        if self.timed_out:
            return f"did not finish within {timeout_s:.0f} s"
        return f"exited with code {self.returncode}"


def child_env(extra=None, drop=()):
    """This environment with PYTHONPATH made absolute (children may run in another folder)."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str((ROOT / p).resolve()) for p in paths] + [str(ROOT)])
    env.update(extra or {})
    return env


def run(cmd, timeout_s, log_path, env=None, cwd=ROOT):
    """Run `cmd` in a session of its own, its output to log_path; kill the whole session (torchrun's
    and gunicorn's children too) when it outlives timeout_s."""
    started = time.monotonic()
    with open(log_path, "w+", errors="replace") as log:
        log.write(f"$ {' '.join(map(str, cmd))}\n")
        log.flush()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or child_env(), cwd=cwd, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_session(proc)
        log.seek(0)
        output = log.read()
    return Run(proc.returncode if proc.returncode is not None else -9, output, time.monotonic() - started, timed_out)


def _kill_session(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # what is left of it (its own pid is its session's id)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def me(*args):
    """This package as a child: `python3 -m smimages.gpu_check <child> <args>` (see children)."""
    return [sys.executable, "-m", "smimages.gpu_check", *args]


def torchrun(nproc, *args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
