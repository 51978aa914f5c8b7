"""`serve`'s own process: it starts gunicorn's arbiter (forked, so the prepared handlers come
along) and, once the workers' socket exists, the front end (nginx); it passes a stop request on to
both and ends with the arbiter's exit code. Either one dying ends the other: a server that cannot
answer must not keep saying 200 on /ping."""

import logging
import os
import signal
import time

from .errors import ConfigError

log = logging.getLogger("sm_entrypoint")
SOCKET_WAIT_S = 30.0  # gunicorn binds its socket before it forks any worker: this is generous
ARBITER_STOP_S = 5.0  # after the front end died: how long the arbiter may take to stop


class Supervisor:
    def __init__(self, arbiter_pid, nginx):
        self.arbiter_pid, self.nginx = arbiter_pid, nginx
        self.stopping = False

    def _on_stop(self, signum, _frame):
        log.info("received %s: stopping the front end and the workers", signal.Signals(signum).name)
        self.stopping = True
        self.nginx.stop_accepting()
        send_signal(self.arbiter_pid, signal.SIGTERM)

    def start_front_end(self, socket_path):
        """Start nginx once the arbiter listens on `socket_path`, or fail if it never does."""
        deadline = time.monotonic() + SOCKET_WAIT_S
        while not os.path.exists(socket_path):
            pid, status = os.waitpid(self.arbiter_pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                send_signal(self.arbiter_pid, signal.SIGKILL)
                raise ConfigError(f"the model server's workers never listened on {socket_path} "
                                  f"within {SOCKET_WAIT_S:.0f} s")
            time.sleep(0.01)
        self.nginx.start()
        return None

    def wait(self):
        """Until the arbiter has ended; returns its exit code (1 where the front end died first)."""
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._on_stop)
        while True:
            pid, status = os.waitpid(-1, 0)
            if pid == self.arbiter_pid:
                code = os.waitstatus_to_exitcode(status)
                break
            if self.nginx.proc and pid == self.nginx.proc.pid and not self.stopping:
                log.error("the front end (nginx) exited with code %d: stopping the model server",
                          os.waitstatus_to_exitcode(status))
                self._stop_arbiter()
                code = 1
                break
        self.nginx.stop()
        return code

    def _stop_arbiter(self):
        self.stopping = True
        end_child(self.arbiter_pid, ARBITER_STOP_S)


def end_child(pid, grace_s, poll_s=0.02):
    """SIGTERM to a child not yet reaped, SIGKILL after `grace_s`; reaped either way. Returns
    whether it ended within the grace."""
    send_signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return True
        time.sleep(poll_s)
    send_signal(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def send_signal(pid, signum):
    """os.kill, where a process already gone is no error."""
    if pid:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
