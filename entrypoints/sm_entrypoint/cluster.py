"""Several hosts: each answers the others on a small TCP port for the whole job. At the start a
host waits, bounded and out loud, until every other host resolves and answers; at the end a host
whose work is done waits (bounded) until the others are done or gone. In local mode the first
container to exit stops all the others, so nobody may leave while another still works."""

import logging
import socket
import threading
import time

from .errors import JobError

log = logging.getLogger("sm_entrypoint")
RUNNING, DONE = b"R", b"D"
POLL_S = 1.0
LOG_EVERY_S = 10.0


class Presence:
    """Answers every connection with one byte: R while this host works, D once it is done."""

    def __init__(self, port):
        self.state = RUNNING
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("0.0.0.0", port))
        except OSError as e:
            raise JobError(f"cannot listen on port {port} for the other hosts "
                           f"(SM_ENTRYPOINT_BARRIER_PORT): {e}") from e
        self.sock.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(self.state)
                except OSError:
                    pass

    def done(self):
        self.state = DONE


def ask(host, port, timeout=2.0):
    """A host's state: R or D; None where it does not resolve; '' where it does not answer."""
    try:
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    except socket.gaierror:
        return None
    try:
        with socket.create_connection(addr, timeout=timeout) as conn:
            return conn.recv(1)
    except OSError:
        return b""


def wait_for_hosts(hosts, current, port, timeout_s):
    """Wait until every other host resolves and answers, or fail naming the ones that never did."""
    pending = [h for h in hosts if h != current]
    start = last_log = time.monotonic()
    log.info("waiting for %s to resolve and answer on port %d (at most %.0f s)", ", ".join(pending), port, timeout_s)
    while pending:
        states = {h: ask(h, port) for h in pending}
        pending = [h for h, s in states.items() if not s]
        elapsed = time.monotonic() - start
        if not pending:
            break
        if elapsed > timeout_s:
            unresolved = [h for h in pending if states[h] is None]
            what = "never resolved" if unresolved else "resolved but never answered"
            raise JobError(f"host(s) {', '.join(pending)} {what} within {timeout_s:.0f} s "
                           f"(SM_ENTRYPOINT_HOST_WAIT_SECONDS); the job cannot start without them")
        if time.monotonic() - last_log >= LOG_EVERY_S:
            last_log = time.monotonic()
            log.info("still waiting for %s (%.0f s of %.0f s): %s", ", ".join(pending), elapsed, timeout_s,
                     "; ".join(f"{h} {'does not resolve' if states[h] is None else 'does not answer'}" for h in pending))
        time.sleep(POLL_S)
    log.info("all %d hosts answer", len(hosts))


def wait_until_others_finish(hosts, current, port, timeout_s):
    """After our own work succeeded: wait until each other host is done or gone (bounded)."""
    pending = [h for h in hosts if h != current]
    start, last_log = time.monotonic(), None
    while pending:
        pending = [h for h in pending if ask(h, port) == RUNNING]
        if not pending:
            break
        elapsed = time.monotonic() - start
        if elapsed > timeout_s:
            log.warning("gave up waiting for %s after %.0f s (SM_ENTRYPOINT_MASTER_WAIT_SECONDS)",
                        ", ".join(pending), elapsed)
            return
        if last_log is None or time.monotonic() - last_log >= LOG_EVERY_S * 3:
            last_log = time.monotonic()
            log.info("done here; waiting for %s to finish before exiting (%.0f s)", ", ".join(pending), elapsed)
        time.sleep(POLL_S)
    log.info("every other host is done")
