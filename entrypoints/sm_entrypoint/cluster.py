"""Several hosts: each answers the others on a small TCP port for the whole job. At the start a
host waits, bounded and out loud, until every other host resolves and answers; at the end a host
whose work is done waits (bounded) until the others are done or gone. In local mode the first
container to exit stops all the others, so nobody may leave while another still works. A host
whose work failed says so, with its cause, and waits the same way: a host that succeeded then
fails with that cause (a heterogeneous cluster's plain hosts learn of the distributed group's
failure so), and the job fails on every host, cause first. Every
other host is asked at the same time (waiting.each), so a wait lasts as long as the slowest host,
not as long as all of them in turn."""

import logging
import socket
import threading

from . import waiting
from .errors import JobError

log = logging.getLogger("sm_entrypoint")
RUNNING, DONE, FAILED = b"R", b"D", b"F"  # FAILED is followed by the cause
CAUSE_LIMIT = 1000  # bytes of a failed host's cause another host reads
POLL_S = 0.5  # the longest pause between asks (they start at waiting.FIRST_INTERVAL_S)
CONNECT_S = 0.5  # on one network a live host's kernel answers a connection in well under a millisecond


class Answering:
    """A TCP port that answers every connection with `answer` (bytes; it may change while the port
    serves) and closes it: a host's state for the other hosts, the MPI master's public SSH key for
    its workers. `purpose` says, in the error, what the port was for."""

    def __init__(self, port, answer, purpose):
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("0.0.0.0", port))
        except OSError as e:
            self.sock.close()
            raise JobError(f"cannot listen on port {port} {purpose}: {e}") from e
        self.sock.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


class Presence(Answering):
    """Answers every connection with one byte: R while this host works, D once it is done."""

    def __init__(self, port):
        super().__init__(port, RUNNING, "for the other hosts (SM_ENTRYPOINT_BARRIER_PORT)")

    def done(self):
        self.answer = DONE

    def failed(self, cause):
        self.answer = FAILED + cause.encode("utf-8", "replace")[:CAUSE_LIMIT]


def ask(host, port, timeout=2.0):
    """A host's state: R, D, or F and its cause; None where it does not resolve; '' where it does
    not answer.
    Connecting is bounded apart, by CONNECT_S: a live host's kernel accepts at once, while a host
    whose container just exited (its name still resolves, its address is dead) would hold every
    ask for the whole `timeout` (the last host out waited 2 s for each such host)."""
    try:
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    except socket.gaierror:
        return None
    try:
        with socket.create_connection(addr, timeout=CONNECT_S) as conn:
            conn.settimeout(timeout)  # the answer comes from the host's program, which may be busy
            return _read_answer(conn)
    except OSError:
        return b""


def _read_answer(conn):
    """The whole answer (the host closes the connection after it), at most a cause's length."""
    answer = b""
    while len(answer) <= CAUSE_LIMIT and (part := conn.recv(4096)):
        answer += part
    return answer


def wait_for_hosts(hosts, current, port, timeout_s):
    """Wait until every other host resolves and answers, or fail naming the ones that never did."""
    states = {h: None for h in hosts if h != current}
    log.info("waiting for %s to resolve and answer on port %d (at most %.0f s)", ", ".join(states), port, timeout_s)

    def pending():
        return [h for h, s in states.items() if not s]

    def attempt():
        states.update(waiting.each(pending(), lambda h: ask(h, port)))
        return True if all(states.values()) else None

    def give_up(_):
        what = "never resolved" if any(states[h] is None for h in pending()) else "resolved but never answered"
        raise JobError(f"host(s) {', '.join(pending())} {what} within {timeout_s:.0f} s "
                       f"(SM_ENTRYPOINT_HOST_WAIT_SECONDS); the job cannot start without them")

    def progress(elapsed):
        return (f"still waiting for {', '.join(pending())} ({elapsed:.0f} s of {timeout_s:.0f} s): " +
                "; ".join(f"{h} {'does not resolve' if states[h] is None else 'does not answer'}" for h in pending()))

    waiting.poll(attempt, timeout_s, give_up, progress, interval_s=POLL_S)
    log.info("all %d hosts answer", len(hosts))


def wait_until_others_finish(hosts, current, port, timeout_s, own_failure=False):
    """After our own work ended: wait until each other host is done, failed or gone (bounded).
    A host that failed makes this one fail with its cause, unless `own_failure` (ours comes first)."""
    pending = [h for h in hosts if h != current]

    def attempt():
        states = waiting.each(pending, lambda h: ask(h, port))
        failed = [h for h in pending if (states[h] or b"")[:1] == FAILED]
        if failed and not own_failure:
            host = failed[0]
            cause = states[host][1:].decode("utf-8", "replace")
            raise JobError(f"{cause} (host {host} failed; the work on {current} succeeded)")
        pending[:] = [h for h in pending if states[h] == RUNNING]
        return True if not pending else None

    def give_up(elapsed):
        if own_failure:
            log.info("leaving after %.0f s with %s still running: the failure above ends the job", elapsed,
                     ", ".join(pending))
        else:
            log.warning("gave up waiting for %s after %.0f s (SM_ENTRYPOINT_MASTER_WAIT_SECONDS)",
                        ", ".join(pending), elapsed)
        return False

    def progress(elapsed):
        return f"done here; waiting for {', '.join(pending)} to finish before exiting ({elapsed:.0f} s)"

    if waiting.poll(attempt, timeout_s, give_up, progress, interval_s=POLL_S, log_every_s=3 * waiting.LOG_EVERY_S,
                    log_at_once=True):
        log.info("every other host is done")
